//! Nothing acknowledged is lost: a write answered 2xx is on disk, whatever
//! failed before it — a full disk, a commit the database refused.

use keel_app::Location;
use keel_testkit::{json, postgres_url, spawn_on, TestDb};
use reqwest::StatusCode;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(mib: u32) -> Option<Tmpfs> {
        let dir = std::env::temp_dir().join(format!("keel_full_{}_{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Some(Tmpfs(dir))
        } else {
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 % 1_000_000_007
}

/// Takes every free byte of the filesystem holding `dir`.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let mut chunk = vec![0x5a_u8; 1 << 20];
    while !chunk.is_empty() {
        if f.write_all(&chunk).is_err() {
            let half = chunk.len() / 2;
            chunk.truncate(if half < 512 { 0 } else { half });
        }
    }
    let _ = f.sync_all();
    path
}

/// Text SQLite cannot store in fewer pages than its length.
fn noise(n: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

#[tokio::test]
async fn a_full_disk_acknowledges_only_what_it_keeps_and_writes_resume_when_space_returns() {
    if postgres_url().is_some() {
        return; // SQLite's own disk; PostgreSQL's commit path is covered below.
    }
    let Some(fs) = Tmpfs::mount(24) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let db = TestDb { location: Location::SqliteFile(fs.0.join("keel.db")), dir: fs.0.clone() };
    let t = spawn_on(db).await;
    let product = |i: u64| json!({"title": format!("Disk {i}"), "status": "active", "description": noise(19_000, i),
        "variants": [{"sku": format!("DISK-{i}"), "prices": [{"currency": "USD", "amount": 1000}]}]});
    t.ok("/products", product(0)).await;

    let filler = fill(&fs.0);
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 1..=40u64 {
        let key = format!("disk-{i}");
        let r = t.send(reqwest::Method::POST, "/products", Some(product(i)), &[("Idempotency-Key", &key)]).await;
        match r.status {
            StatusCode::CREATED | StatusCode::OK => acknowledged.push((key, i)),
            StatusCode::INSUFFICIENT_STORAGE => {
                assert_eq!(r.error_code(), "storage_full", "{}", r.body);
                assert!(r.headers.contains_key("retry-after"));
                refused += 1;
            }
            other => panic!("a write on a full disk answered {other}: {}", r.body),
        }
    }
    assert!(refused > 0, "the disk never filled up; the test proved nothing");
    let ready = t.http.get(format!("{}/readyz", t.base)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE, "a full disk is not ready");
    // Reads keep working while the disk is full.
    assert_eq!(t.get("/products?limit=1").await.status, StatusCode::OK);

    std::fs::remove_file(filler).unwrap();
    for i in 41..=45u64 {
        let key = format!("disk-{i}");
        let r = t.send(reqwest::Method::POST, "/products", Some(product(i)), &[("Idempotency-Key", &key)]).await;
        assert!(r.status.is_success(), "a write after space returned answered {}: {}", r.status, r.body);
        acknowledged.push((key, i));
    }

    // The episode is told through the outbox once it can be written.
    let ready: serde_json::Value = t.http.get(format!("{}/readyz", t.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["checks"]["storage"], "ok", "writes commit again: {ready}");
    assert_eq!(t.app.record_storage_alerts(keel_domain::time::now_micros()).await.unwrap(), 2);
    let alerts = t.events("type=alert.*", 2).await;
    let kinds: Vec<&str> = alerts["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["alert.raised", "alert.resolved"]);
    assert_eq!(alerts["data"][0]["data"]["component"]["id"], "storage", "{alerts}");

    // Every acknowledged write is visible to a separate connection ...
    let expected = 1 + acknowledged.len() as i64;
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM products").await, expected);
    // ... and survives a restart, and its key replays instead of applying again.
    let mut t = t;
    t.restart().await;
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM products").await, expected);
    let (key, i) = &acknowledged[0];
    let replay = t.send(reqwest::Method::POST, "/products", Some(product(*i)), &[("Idempotency-Key", key)]).await;
    assert!(replay.status.is_success(), "{}", replay.body);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM products").await, expected);
    t.assert_consistent().await;
    drop(t);
    drop(fs);
}

/// A commit the database refuses (a deferred constraint, checked only at
/// COMMIT) must leave no pooled connection inside a transaction: the next
/// write commits for real, on both backends.
#[tokio::test]
async fn a_refused_commit_leaves_the_connection_usable_and_later_writes_durable() {
    let db = TestDb::fresh().await;
    let app = db.open().await;
    let deferred = match app.store.backend() {
        keel_app::Backend::Sqlite => {
            "CREATE TEMP TABLE IF NOT EXISTS parent_t (id INTEGER PRIMARY KEY); \
             CREATE TEMP TABLE IF NOT EXISTS child_t (p INTEGER REFERENCES parent_t(id) DEFERRABLE INITIALLY DEFERRED); \
             INSERT INTO child_t (p) VALUES (42);"
        }
        keel_app::Backend::Postgres => {
            "CREATE TEMP TABLE IF NOT EXISTS twice_t (x BIGINT UNIQUE DEFERRABLE INITIALLY DEFERRED); \
             INSERT INTO twice_t VALUES (1); INSERT INTO twice_t VALUES (1);"
        }
    };
    for round in 0..3 {
        let mut tx = app.store.begin().await.unwrap();
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(deferred)).await.unwrap();
        let refused = tx.commit().await.expect_err("the deferred violation must fail the commit");
        assert_eq!(refused.outage(), None, "a refused commit is not an outage");

        let mut tx = app.store.begin().await.unwrap();
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&format!(
            "INSERT INTO idempotency_keys (scope, key, method, path, request_hash, created_at) VALUES ('t', 'k{round}', 'POST', '/', 'h', 1)"
        )))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let seen = db.scalar(&format!("SELECT COUNT(*) FROM idempotency_keys WHERE key = 'k{round}'")).await;
        assert_eq!(seen, 1, "round {round}: a write committed after a refused commit must be visible elsewhere");
    }
}


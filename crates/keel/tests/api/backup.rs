//! `keel backup` taken from the real binary while it serves and takes writes,
//! then `keel restore` into a fresh data directory and a clean `keel check`.

use keel_testkit::{postgres_url, test_secret_key_hex, TestDb};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keel_in(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["--data-dir", &data_dir.display().to_string()])
        .args(args)
        .env_remove("KEEL_DATABASE_URL")
        .env("KEEL_SECRET_KEY", test_secret_key_hex())
        .env("KEEL_LOG", "warn")
        .output()
        .expect("run keel")
}

fn text(o: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test]
async fn on_postgres_backup_and_restore_print_the_pg_dump_path_and_fail() {
    let dir = std::env::temp_dir().join(format!("keel_pg_backup_{}", std::process::id()));
    for args in [["backup", "x.db"], ["restore", "x.db"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(["--data-dir", &dir.display().to_string(), "--database-url", "postgres://nobody@127.0.0.1:1/keel"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("pg_dump --format=custom") && err.contains("pg_restore"), "{err}");
    }
}

#[tokio::test]
async fn backup_while_serving_restores_into_a_fresh_dir_with_a_clean_check() {
    if postgres_url().is_some() {
        eprintln!("skipped on PostgreSQL: `keel backup`/`keel restore` are for SQLite; PostgreSQL uses pg_dump/pg_restore");
        return;
    }
    let db = TestDb::fresh().await;
    let app = db.open().await;
    let (_, key) = app.create_api_key("backup-test").await.unwrap();
    app.store.close().await;

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(db.cli_args())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env_remove("KEEL_DATABASE_URL")
            .env("KEEL_SECRET_KEY", test_secret_key_hex())
            .env("KEEL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "keel did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Writes keep arriving over HTTP for the whole backup.
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, created, base, key) = (stop.clone(), created.clone(), base.clone(), key.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"title": format!("Backup {n}"), "status": "active",
                    "variants": [{"sku": format!("BK-{n}"), "prices": [{"currency": "USD", "amount": 100}]}]});
                let r = http.post(format!("{base}/api/v1/products")).bearer_auth(&key).json(&body).send().await.unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                created.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while created.load(Ordering::Relaxed) < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let file = db.dir.join("snapshot.keel");
    let before = created.load(Ordering::Relaxed);
    let dir = db.dir.clone();
    let f = file.clone();
    let out = tokio::task::spawn_blocking(move || keel_in(&dir, &["backup", &f.display().to_string()])).await.unwrap();
    let after = created.load(Ordering::Relaxed);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("backup written to"), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "backups are private");
    }

    // An existing file is not replaced without --force.
    let out = keel_in(&db.dir, &["backup", &file.display().to_string()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"), "{}", text(&out));

    // Restoring over the database the server is using is refused.
    let out = keel_in(&db.dir, &["restore", &file.display().to_string()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"), "{}", text(&out));

    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    drop(server);

    // Something that is not a Keel database is refused.
    let fresh = db.dir.join("restored");
    let junk = db.dir.join("junk.db");
    std::fs::write(&junk, b"not a database at all, just some bytes").unwrap();
    let out = keel_in(&fresh, &["restore", &junk.display().to_string()]);
    assert!(!out.status.success(), "{}", text(&out));

    let out = keel_in(&fresh, &["restore", &file.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("restored"), "{}", text(&out));
    let out = keel_in(&fresh, &["check"]);
    assert!(out.status.success(), "{}", text(&out));

    let restored = TestDb { location: keel_app::Location::SqliteFile(fresh.join("keel.db")), dir: fresh.clone() };
    let products = restored.scalar("SELECT COUNT(*) FROM products").await as usize;
    assert!(products >= before && products <= after, "the snapshot holds {products} products; {before}..={after} were written around it");
    assert!(restored.scalar("SELECT COUNT(*) FROM api_keys").await >= 1);

    // Restoring again keeps the previous copy aside.
    let out = keel_in(&fresh, &["restore", &file.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let aside = std::fs::read_dir(&fresh)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("keel.db.before-restore-"));
    assert!(aside, "the replaced database is kept");
    let _ = std::fs::remove_dir_all(&db.dir);
}

/// `keel` with only a data directory: the master key is the generated
/// `DATA_DIR/secret.key`, as on a fresh install.
fn keel_plain(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["--data-dir", &data_dir.display().to_string()])
        .args(args)
        .env_remove("KEEL_DATABASE_URL")
        .env_remove("KEEL_SECRET_KEY")
        .env("KEEL_LOG", "warn")
        .output()
        .expect("run keel")
}

/// A backup carries its master key: restored into a fresh directory on
/// another machine (no KEEL_SECRET_KEY), its personal data reads back and
/// `keel check` decrypts a sample; a wrong key is refused before anything is
/// replaced; a mistyped data directory is an error, not an empty database.
#[tokio::test]
async fn a_backup_restored_elsewhere_brings_its_key_and_reads_its_personal_data() {
    if postgres_url().is_some() {
        return; // SQLite's backup command; PostgreSQL uses pg_dump.
    }
    let root = std::env::temp_dir().join(format!("keel_keyed_backup_{}_{}", std::process::id(), rand_suffix()));
    let (a, b, c, d) = (root.join("a"), root.join("b"), root.join("c"), root.join("d"));
    for dir in [&a, &b, &c, &d] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let out = keel_plain(&a, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    let cart_id = {
        let store = keel_app::Store::open(&keel_app::Location::SqliteFile(a.join("keel.db")), keel_app::PoolSizes::default()).await.unwrap();
        let secrets = keel_app::secrets::Secrets::load(None, &a).unwrap();
        let app = keel_app::App::new(store, secrets);
        let cart = app
            .create_cart(&keel_app::Actor::system("test"), serde_json::from_value(json!({"currency": "USD", "email": "restored@example.com"})).unwrap())
            .await
            .unwrap();
        app.store.close().await;
        cart.id
    };

    let file = b.join("shop.db");
    let out = keel_plain(&a, &["backup", &file.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let key_file = b.join("shop.db.key");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), std::fs::read_to_string(a.join("secret.key")).unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // Another key cannot read it: refused, and nothing is put in place.
    let wrong = root.join("wrong.key");
    std::fs::write(&wrong, "11".repeat(32)).unwrap();
    let out = keel_plain(&d, &["restore", &file.display().to_string(), "--key", &wrong.display().to_string()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be decrypted"), "{}", text(&out));
    assert!(!d.join("keel.db").exists(), "a refused restore replaces nothing");

    // A fresh directory: the key comes along, the data reads back.
    let out = keel_plain(&c, &["restore", &file.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = keel_plain(&c, &["check"]);
    assert!(out.status.success(), "{}", text(&out));
    {
        let store = keel_app::Store::open(&keel_app::Location::SqliteFile(c.join("keel.db")), keel_app::PoolSizes::default()).await.unwrap();
        let app = keel_app::App::new(store, keel_app::secrets::Secrets::load(None, &c).unwrap());
        let cart = app.get_cart(&cart_id).await.unwrap();
        assert_eq!(cart.email.as_deref(), Some("restored@example.com"));
        app.store.close().await;
    }

    // The same database under another key: `keel check` names it.
    std::fs::remove_file(c.join("secret.key")).unwrap();
    std::fs::write(c.join("secret.key"), "22".repeat(32)).unwrap();
    let out = keel_plain(&c, &["check"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL [encryption] carts"), "{}", text(&out));

    // A mistyped data directory is an error, and creates nothing.
    let typo = root.join("typo");
    let out = keel_plain(&typo, &["check"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Keel database"), "{}", text(&out));
    assert!(!typo.join("keel.db").exists());
    let _ = std::fs::remove_dir_all(&root);
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_007
}

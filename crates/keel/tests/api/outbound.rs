//! The outbound guard (`keel_app::outbound`) from the outside: every URL
//! Keel would fetch is refused when it is not a public http(s) target, at
//! save time on webhook endpoints and integration pulls alike, and again at
//! fetch time — a name resolving to loopback, a URL saved by a node that
//! allowed private targets, a redirect — unless the opt-in allows it.

use crate::feeds::{csv, now_rfc3339};
use keel_app::outbound::Outbound;
use keel_app::purge::{PurgeConfig, PurgeRun};
use keel_domain::time::now_micros;
use keel_testkit::{allow_private_targets, json, spawn_with, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SEC: i64 = 1_000_000;

/// The review's list: private literals in every spelling, loopback names,
/// and URLs that are not plain http(s) to a host.
const REFUSED: &[&str] = &[
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/feed.csv",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0x7f.1/",
    "http://[::1]/",
    "http://[::1]:9/hook",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",
    "http://localhost/",
    "http://localhost:9/hook",
    "http://localhost./",
    "http://LOCALHOST/",
    "http://foo.localhost/",
    "http://[::]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2001::1]/",
    "http://user:pw@example.com/",
    "https://user@example.com/",
    "ftp://example.com/feed.csv",
    "file:///etc/passwd",
    "gopher://example.com/",
    // Names that resolve (here, through a static host entry) to refused addresses.
    "http://intranet.test/feed.csv",
    "http://rebind.test/hook",
];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The strict policy, with names pointing at loopback (and at a public
/// address plus loopback) as a DNS server could.
fn strict_with_hosts() -> Outbound {
    Outbound::default()
        .with_static_host("intranet.test", &[ip("127.0.0.1")])
        .with_static_host("rebind.test", &[ip("93.184.216.34"), ip("::1")])
        .with_static_host("feeds.internal.test", &[ip("127.0.0.1")])
        .with_static_host("hooks.internal.test", &[ip("127.0.0.1")])
}

fn open_with_hosts() -> Outbound {
    strict_with_hosts().allowing_private_targets(true)
}

async fn count(t: &TestApp, path: &str) -> usize {
    let r = t.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn every_private_or_malformed_target_is_refused_on_webhooks_and_pulls_and_nothing_is_saved() {
    assert!(REFUSED.len() >= 30);
    let t = spawn_with(|app| app.with_outbound(strict_with_hosts())).await;
    // Existing records, to refuse the same URLs as changes.
    let ep = t.ok("/webhook-endpoints", json!({"url": "https://93.184.216.34/hook"})).await;
    let ep = ep["id"].as_str().unwrap().to_owned();
    let integ = t.ok("/integrations", json!({"name": "Public", "kind": "erp", "pull": {"url": "https://93.184.216.34/feed.csv", "every_seconds": 60}})).await;
    let integ = integ["id"].as_str().unwrap().to_owned();
    for (n, url) in REFUSED.iter().enumerate() {
        let r = t.post("/webhook-endpoints", json!({"url": url})).await;
        assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "url_not_allowed", "url"), "{url}: {}", r.body);
        let r = t.post(&format!("/webhook-endpoints/{ep}"), json!({"url": url})).await;
        assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "url_not_allowed", "url"), "{url}: {}", r.body);
        let body = json!({"name": format!("Pull {n}"), "kind": "erp", "pull": {"url": url, "every_seconds": 60}});
        let r = t.post("/integrations", body).await;
        assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "url_not_allowed", "pull.url"), "{url}: {}", r.body);
        let r = t.post(&format!("/integrations/{integ}"), json!({"pull": {"url": url, "every_seconds": 60}})).await;
        assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "url_not_allowed", "pull.url"), "{url}: {}", r.body);
    }
    assert_eq!(count(&t, "/webhook-endpoints?limit=100").await, 1);
    assert_eq!(count(&t, "/integrations?limit=100").await, 1);
    assert_eq!(t.get(&format!("/webhook-endpoints/{ep}")).await.body["url"], "https://93.184.216.34/hook");
    assert_eq!(t.get(&format!("/integrations/{integ}")).await.body["pull"]["url"], "https://93.184.216.34/feed.csv");
    // The message says why.
    let r = t.post("/webhook-endpoints", json!({"url": "http://169.254.169.254/"})).await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("link-local"), "{}", r.body);
    let r = t.post("/webhook-endpoints", json!({"url": "http://intranet.test/"})).await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("resolves to 127.0.0.1"), "{}", r.body);

    // The opt-in lets private targets through (the malformed ones stay refused).
    let open = spawn_with(|app| app.with_outbound(open_with_hosts())).await;
    for url in ["http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/hook", "http://intranet.test/x"] {
        let r = open.post("/webhook-endpoints", json!({"url": url})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{url}: {}", r.body);
    }
    for url in ["ftp://example.com/feed.csv", "file:///etc/passwd", "http://user:pw@example.com/"] {
        let r = open.post("/integrations", json!({"name": "X", "kind": "erp", "pull": {"url": url, "every_seconds": 60}})).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "url_not_allowed"), "{url}: {}", r.body);
    }
}

/// A small server on 127.0.0.1 counting requests: `/feed.csv` serves
/// `body`, `/hook` answers 200, `/moved` and `/hook-moved` redirect to
/// `redirect_to`.
struct Local {
    port: u16,
    hits: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Local {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn local(body: String, redirect_to: Option<String>) -> Local {
    use axum::http::{header, StatusCode as S};
    use axum::response::IntoResponse;
    let hits = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(Mutex::new(body));
    let (h1, h2, h3) = (hits.clone(), hits.clone(), hits.clone());
    let target = redirect_to.unwrap_or_default();
    let target2 = target.clone();
    let router = axum::Router::new()
        .route(
            "/feed.csv",
            axum::routing::get(move || {
                h1.fetch_add(1, Ordering::SeqCst);
                let b = body.lock().unwrap().clone();
                async move { ([(header::CONTENT_TYPE, "text/csv")], b).into_response() }
            }),
        )
        .route(
            "/hook",
            axum::routing::post(move || {
                h2.fetch_add(1, Ordering::SeqCst);
                async { (S::OK, "ok").into_response() }
            }),
        )
        .route(
            "/moved",
            axum::routing::get(move || {
                h3.fetch_add(1, Ordering::SeqCst);
                let to = target.clone();
                async move { (S::FOUND, [(header::LOCATION, to)], "").into_response() }
            }),
        )
        .route(
            "/hook-moved",
            axum::routing::post(move || {
                let to = target2.clone();
                async move { (S::TEMPORARY_REDIRECT, [(header::LOCATION, to)], "").into_response() }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Local { port, hits, server }
}

async fn batches_of(t: &TestApp, integration: &str) -> Vec<Value> {
    let r = t.get(&format!("/sync-batches?integration_id={integration}&limit=100")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn rows_of(t: &TestApp, batch: &str) -> Vec<Value> {
    let r = t.get(&format!("/sync-batches/{batch}/rows?limit=100")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn pull_integration(t: &TestApp, name: &str, url: &str) -> String {
    let r = t.post("/integrations", json!({"name": name, "kind": "erp", "pull": {"url": url, "every_seconds": 60}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_pull_saved_while_allowed_is_refused_at_fetch_time_and_its_body_never_reaches_rows() {
    let open = spawn_with(|app| app.with_outbound(open_with_hosts())).await;
    let loc = open.location("Main", 1).await;
    open.product("Pen", &["PEN"]).await;
    // What an attacker wants to read: the first column comes back as `sku`.
    let src = local(csv(&[("INTERNAL-SECRET", &loc, 1, &now_rfc3339())]), None).await;
    let by_name = pull_integration(&open, "By name", &format!("http://feeds.internal.test:{}/feed.csv", src.port)).await;
    let by_literal = pull_integration(&open, "By literal", &format!("http://127.0.0.1:{}/feed.csv", src.port)).await;

    // A node without the opt-in (the same name → loopback entry) polls them.
    let strict = open.db.open().await.with_outbound(strict_with_hosts());
    let now = now_micros();
    assert_eq!(strict.poll_feeds(now).await.unwrap(), 2);
    assert_eq!(src.hits.load(Ordering::SeqCst), 0, "nothing reached the private source");
    for (id, why) in [(&by_name, "resolves to 127.0.0.1"), (&by_literal, "127.0.0.1 is loopback")] {
        let b = batches_of(&open, id).await;
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!((b[0]["source"].as_str(), b[0]["status"].as_str()), (Some("pull"), Some("failed")), "{}", b[0]);
        let error = b[0]["error"].as_str().unwrap();
        assert!(error.contains("blocked: ") && error.contains(why), "{error}");
        assert_eq!(b[0]["rows"]["total"], 0, "{}", b[0]);
        assert!(rows_of(&open, b[0]["id"].as_str().unwrap()).await.is_empty());
    }
    let stats = strict.integration_stats(now_micros()).await.unwrap();
    assert!(stats.iter().all(|s| s.failures_last_hour == 1 && s.last_error.as_deref().is_some_and(|e| e.contains("blocked"))), "{stats:?}");

    // The opt-in lets loopback through: the node that allows it fetches.
    assert_eq!(open.app.poll_feeds(now + 61 * SEC).await.unwrap(), 2);
    assert_eq!(src.hits.load(Ordering::SeqCst), 2);
    let b = batches_of(&open, &by_name).await;
    assert_eq!(b.len(), 2);
    assert!(!b[0]["error"].as_str().unwrap_or("").contains("blocked"), "{}", b[0]);
    let rows = rows_of(&open, b[0]["id"].as_str().unwrap()).await;
    assert_eq!(rows[0]["sku"], "INTERNAL-SECRET", "{rows:?}");
}

/// Fans out and runs one delivery on `app`, with its clock `ahead` of now.
async fn deliver_one(app: &keel_app::App, t: &TestApp, ep: &str, ahead: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.fan_out_webhooks().await.unwrap();
        if app.deliver_due_webhooks(now_micros() + ahead).await.unwrap() == 1 {
            let r = t.get(&format!("/webhook-endpoints/{ep}/messages?limit=10")).await;
            return r.body["data"][0].clone();
        }
        assert!(Instant::now() < deadline, "no delivery was due");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_webhook_to_a_name_resolving_to_loopback_fails_without_reaching_it() {
    let open = spawn_with(|app| app.with_outbound(open_with_hosts())).await;
    let rx = local(String::new(), None).await;
    let ep = open.ok("/webhook-endpoints", json!({"url": format!("http://hooks.internal.test:{}/hook", rx.port), "event_types": ["location.*"]})).await;
    let ep = ep["id"].as_str().unwrap().to_owned();
    open.location("Main", 1).await;

    let strict = open.db.open().await.with_outbound(strict_with_hosts());
    let m = deliver_one(&strict, &open, &ep, 0).await;
    assert_eq!(rx.hits.load(Ordering::SeqCst), 0, "the receiver saw no request");
    let error = m["attempts"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("blocked: ") && error.contains("resolves to 127.0.0.1"), "{error}");
    assert_eq!(m["status"], "pending", "retried like any failure");

    // With the opt-in, the retry is delivered.
    let m = deliver_one(&open.app, &open, &ep, 3600 * SEC).await;
    assert_eq!(rx.hits.load(Ordering::SeqCst), 1);
    assert_eq!(m["status"], "succeeded", "{m}");
}

#[tokio::test]
async fn redirects_are_never_followed_even_to_allowed_targets() {
    let t = spawn_with(allow_private_targets).await;
    let loc = t.location("Main", 1).await;
    let inner = local(csv(&[("PEN", &loc, 1, &now_rfc3339())]), None).await;
    let outer = local(String::new(), Some(format!("http://127.0.0.1:{}/feed.csv", inner.port))).await;
    let integ = pull_integration(&t, "Redirected", &format!("http://127.0.0.1:{}/moved", outer.port)).await;
    assert_eq!(t.app.poll_feeds(now_micros()).await.unwrap(), 1);
    assert_eq!(outer.hits.load(Ordering::SeqCst), 1);
    let b = batches_of(&t, &integ).await;
    assert_eq!(b[0]["status"], "failed");
    assert!(b[0]["error"].as_str().unwrap().contains("302"), "{}", b[0]);

    let hook_target = local(String::new(), Some(format!("http://127.0.0.1:{}/hook", inner.port))).await;
    let ep = t.ok("/webhook-endpoints", json!({"url": format!("http://127.0.0.1:{}/hook-moved", hook_target.port), "event_types": ["location.*"]})).await;
    let ep = ep["id"].as_str().unwrap().to_owned();
    t.location("Second", 2).await;
    let m = deliver_one(&t.app, &t, &ep, 0).await;
    assert!(m["attempts"][0]["error"].as_str().unwrap().contains("redirects are not followed"), "{m}");
    assert_eq!(inner.hits.load(Ordering::SeqCst), 0, "neither redirect was followed");
}

#[tokio::test]
async fn the_cdn_purge_is_refused_a_private_target_without_the_opt_in() {
    let cdn = local(String::new(), None).await;
    let url = format!("http://127.0.0.1:{}/hook", cdn.port);
    let t = spawn_with(move |app| app.with_purge_config(PurgeConfig { url: Some(url), ..PurgeConfig::default() })).await;
    t.product("Tee", &["TEE"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        match t.app.purge_cdn(now_micros()).await.unwrap() {
            PurgeRun::Failed { error, .. } => break error,
            PurgeRun::Advanced { keys, .. } if !keys.is_empty() => panic!("purged a private target: {keys:?}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the purge never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(error.starts_with("blocked: "), "{error}");
    assert_eq!(cdn.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_binary_refuses_a_private_purge_url_unless_the_opt_in_or_its_older_name_is_set() {
    let db = keel_testkit::TestDb::fresh().await;
    let migrate = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keel"));
        cmd.args(db.cli_args()).arg("migrate").env("KEEL_LOG", "warn");
        for var in ["KEEL_DATABASE_URL", "KEEL_ALLOW_PRIVATE_TARGETS", "KEEL_WEBHOOKS_ALLOW_PRIVATE"] {
            cmd.env_remove(var);
        }
        cmd.env("KEEL_CDN_PURGE_URL", "http://0x7f000001:9/purge");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run keel")
    };
    let out = migrate(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("KEEL_CDN_PURGE_URL (url_not_allowed)") && stderr.contains("127.0.0.1 is loopback"), "{stderr}");
    for opt_in in [("KEEL_ALLOW_PRIVATE_TARGETS", "1"), ("KEEL_WEBHOOKS_ALLOW_PRIVATE", "1")] {
        let out = migrate(&[opt_in]);
        assert!(out.status.success(), "{opt_in:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // The new name wins over the old one.
    assert!(!migrate(&[("KEEL_ALLOW_PRIVATE_TARGETS", "0"), ("KEEL_WEBHOOKS_ALLOW_PRIVATE", "1")]).status.success());
}

#[tokio::test]
async fn keel_serve_warns_when_private_targets_are_allowed() {
    use std::io::{BufRead, Read};
    let db = keel_testkit::TestDb::fresh().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(db.cli_args())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-workers"])
        .env_remove("KEEL_DATABASE_URL")
        .env_remove("KEEL_WEBHOOKS_ALLOW_PRIVATE")
        .env("KEEL_ALLOW_PRIVATE_TARGETS", "1")
        .env("KEEL_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start keel serve");
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let serving = stdout.lines().map_while(Result::ok).any(|l| l.contains("is serving on"));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(serving, "{stderr}");
    assert!(stderr.contains("WARN") && stderr.contains("private outbound targets are allowed"), "{stderr}");
}

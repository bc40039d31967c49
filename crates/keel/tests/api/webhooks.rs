//! Outbound webhooks end to end: endpoints over the API, fan-out from the
//! outbox, signed deliveries to small receivers on 127.0.0.1, retries driven
//! by a controlled clock (no real sleeps), dead-lettering, replay and
//! recovery, the SSRF guard, and signatures checked by the Standard Webhooks
//! reference library (PyPI `standardwebhooks`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use keel_app::webhooks::{WebhookConfig, RETRY_SCHEDULE_SECS};
use keel_domain::time::{now_micros, parse_rfc3339, to_rfc3339};
use keel_testkit::{allow_private_targets, json, spawn_with, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SEC: i64 = 1_000_000;

async fn shop() -> TestApp {
    spawn_with(allow_private_targets).await
}

#[derive(Debug, Clone)]
struct Hit {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    received_at: i64,
}

#[derive(Default)]
struct ReceiverState {
    hits: Mutex<Vec<Hit>>,
    /// Answer 500 to the first N requests.
    fail_first: AtomicUsize,
    always_fail: AtomicBool,
    delay_ms: AtomicU64,
    completed: AtomicUsize,
    /// Answer with a redirect (which must not be followed).
    redirect: AtomicBool,
    /// Answer with a body this large (only the start may be read).
    big_body: AtomicBool,
}

/// A webhook receiver on 127.0.0.1 that records every request.
struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn hook(State(st): State<Arc<ReceiverState>>, headers: HeaderMap, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let n = {
        let mut hits = st.hits.lock().unwrap();
        hits.push(Hit {
            id: h("webhook-id"),
            timestamp: h("webhook-timestamp"),
            signature: h("webhook-signature"),
            body,
            received_at: now_micros(),
        });
        hits.len()
    };
    let delay = st.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    st.completed.fetch_add(1, Ordering::SeqCst);
    if st.redirect.load(Ordering::SeqCst) {
        (AxumStatus::TEMPORARY_REDIRECT, [("location", "/hook")], "moved").into_response()
    } else if st.big_body.load(Ordering::SeqCst) {
        (AxumStatus::OK, "x".repeat(1 << 20)).into_response()
    } else if st.always_fail.load(Ordering::SeqCst) || n <= st.fail_first.load(Ordering::SeqCst) {
        (AxumStatus::INTERNAL_SERVER_ERROR, "boom").into_response()
    } else {
        (AxumStatus::OK, "ok").into_response()
    }
}

impl Receiver {
    async fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().unwrap(), Arc::default()).await
    }

    async fn start_on(addr: SocketAddr, state: Arc<ReceiverState>) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { addr, state, server }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }
}

/// A local address nothing listens on (yet).
async fn free_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

async fn endpoint(t: &TestApp, url: &str, types: &[&str]) -> (String, String) {
    let r = t.post("/webhook-endpoints", json!({"url": url, "event_types": types})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["id"].as_str().unwrap().to_owned(), r.body["secret"].as_str().unwrap().to_owned())
}

async fn messages(t: &TestApp, ep: &str) -> Vec<Value> {
    let r = t.get(&format!("/webhook-endpoints/{ep}/messages?limit=100")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn message(t: &TestApp, id: &str) -> Value {
    let r = t.get(&format!("/webhook-messages/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Runs fan-out until `ep` has `n` messages. On PostgreSQL an event becomes
/// readable only once older transactions (of any test) have finished.
async fn pump(t: &TestApp, ep: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        t.app.fan_out_webhooks().await.expect("fan-out");
        let m = messages(t, ep).await;
        if m.len() >= n {
            assert_eq!(m.len(), n, "no more messages than expected");
            return m;
        }
        assert!(Instant::now() < deadline, "expected {n} messages for {ep}, have {}", m.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn micros(v: &Value) -> i64 {
    parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("a timestamp, got {v}"))).unwrap()
}

fn assert_delay(from: i64, next: i64, secs: i64) {
    let d = (next - from) as f64;
    let base = (secs * SEC) as f64;
    assert!(d >= base * 0.9 - 1.0 && d <= base * 1.1 + 1.0, "delay {}s is not {secs}s ± 10 %", d / 1e6);
}

/// Delivers whatever is due, advancing the clock to the next due time (or a
/// minute, while a circuit is open), until nothing is queued or `stop` says so.
async fn drive(t: &TestApp, mut clock: i64, mut stop: impl FnMut() -> bool) -> i64 {
    for _ in 0..5000 {
        if stop() {
            return clock;
        }
        let Some(next) = t.app.next_webhook_due_at().await.unwrap() else { return clock };
        clock = clock.max(next);
        if t.app.deliver_due_webhooks(clock).await.unwrap() == 0 {
            clock += 60 * SEC;
        }
    }
    panic!("deliveries did not settle");
}

/// `Some(results)` from the reference library, one `ok`/`fail` per secret;
/// `None` when python3 lacks it (unless `KEEL_REQUIRE_PYTHON_STANDARDWEBHOOKS`).
fn reference_verify(hit: &Hit, secrets: &[&str]) -> Option<Vec<String>> {
    let available = std::process::Command::new("python3").args(["-c", "import standardwebhooks"]).output();
    if !available.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("KEEL_REQUIRE_PYTHON_STANDARDWEBHOOKS").is_err(),
            "KEEL_REQUIRE_PYTHON_STANDARDWEBHOOKS is set but python3 cannot import standardwebhooks"
        );
        eprintln!("skipped: python3 `standardwebhooks` package not installed (scripts/test installs it)");
        return None;
    }
    let script = r#"
import sys, json
from standardwebhooks import Webhook
body, headers = sys.argv[1], json.loads(sys.argv[2])
out = []
for secret in sys.argv[3:]:
    try:
        Webhook(secret).verify(body, headers)
        out.append("ok")
    except Exception:
        out.append("fail")
print(" ".join(out))
"#;
    let headers = json!({"webhook-id": hit.id, "webhook-timestamp": hit.timestamp, "webhook-signature": hit.signature}).to_string();
    let mut args = vec!["-c".to_owned(), script.to_owned(), hit.body.clone(), headers];
    args.extend(secrets.iter().map(|s| s.to_string()));
    let out = std::process::Command::new("python3").args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap().split_whitespace().map(str::to_owned).collect())
}

#[tokio::test]
async fn endpoints_are_managed_over_the_api() {
    let t = shop().await;
    let r = t.post("/webhook-endpoints", json!({"url": "https://example.com/hooks", "description": "ERP", "event_types": ["inventory.*", "order.created"], "rate_limit": 50})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ep = r.body.clone();
    let id = ep["id"].as_str().unwrap();
    assert!(id.starts_with("ep_"));
    assert_eq!((ep["object"].as_str(), ep["enabled"].as_bool(), ep["rate_limit"].as_i64()), (Some("webhook_endpoint"), Some(true), Some(50)));
    let secret = ep["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() == "whsec_".len() + 44, "{secret}");

    let shown = t.get(&format!("/webhook-endpoints/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.get("secret").is_none(), "the secret is only shown on creation and on request");
    assert_eq!(shown.body["event_types"], json!(["inventory.*", "order.created"]));
    let revealed = t.get(&format!("/webhook-endpoints/{id}/secret")).await;
    assert_eq!(revealed.body["secret"].as_str(), Some(secret));

    let updated = t.ok(&format!("/webhook-endpoints/{id}"), json!({"description": null, "rate_limit": null, "event_types": []})).await;
    assert_eq!((updated["description"].clone(), updated["rate_limit"].clone(), updated["version"].as_i64()), (Value::Null, Value::Null, Some(2)));
    assert_eq!(updated["event_types"], json!([]));
    let disabled = t.ok(&format!("/webhook-endpoints/{id}"), json!({"enabled": false})).await;
    assert_eq!((disabled["enabled"].as_bool(), disabled["disabled_reason"].as_str()), (Some(false), Some("manual")));

    t.ok("/webhook-endpoints", json!({"url": "https://example.org/b"})).await;
    let page = t.get("/webhook-endpoints?limit=1").await;
    assert_eq!((page.body["data"].as_array().unwrap().len(), page.body["has_more"].as_bool()), (1, Some(true)));

    for (body, param, code) in [
        (json!({"url": "ftp://example.com/x"}), "url", "url_not_allowed"),
        (json!({"url": "https://u:p@example.com/x"}), "url", "url_not_allowed"),
        (json!({"url": "not a url"}), "url", "invalid_url"),
        (json!({"url": "https://example.com/x", "event_types": ["order.created", "Nope!"]}), "event_types[1]", "invalid_event_type"),
        (json!({"url": "https://example.com/x", "rate_limit": 0}), "rate_limit", "invalid_rate_limit"),
        (json!({"url": "https://example.com/x", "colour": "red"}), "colour", "unknown_field"),
    ] {
        let r = t.post("/webhook-endpoints", body.clone()).await;
        assert_eq!((r.status, r.error_param(), r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, param, code), "{body}: {}", r.body);
    }
    let missing = "ep_0193a0a0a0a07000800000000000000a";
    assert_eq!(t.get(&format!("/webhook-endpoints/{missing}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/webhook-endpoints/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.post(&format!("/webhook-endpoints/{missing}/rotate-secret"), json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/webhook-messages/msg_0193a0a0a0a07000800000000000000a").await.status, StatusCode::NOT_FOUND);
    let bad_status = t.get(&format!("/webhook-endpoints/{id}/messages?status=lost")).await;
    assert_eq!((bad_status.status, bad_status.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "status"));
    let bad_since = t.post(&format!("/webhook-endpoints/{id}/recover"), json!({"since": "yesterday"})).await;
    assert_eq!((bad_since.status, bad_since.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "since"));
    let disabled_recover = t.post(&format!("/webhook-endpoints/{id}/recover"), json!({"since": "2020-01-01T00:00:00Z"})).await;
    assert_eq!((disabled_recover.status, disabled_recover.error_code()), (StatusCode::CONFLICT, "webhook_endpoint_disabled"));

    // The API is described in the OpenAPI document.
    let doc = t.get("/openapi.json").await.body;
    for path in ["/webhook-endpoints", "/webhook-endpoints/{id}/rotate-secret", "/webhook-endpoints/{id}/recover", "/webhook-messages/{id}/retry"] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}

#[tokio::test]
async fn signatures_verify_with_the_reference_library_including_during_rotation() {
    let t = shop().await;
    let rx = Receiver::start().await;
    let (ep, old_secret) = endpoint(&t, &rx.url(), &["location.*"]).await;
    t.location("A", 1).await;
    let m = pump(&t, &ep, 1).await;
    assert_eq!(t.app.deliver_due_webhooks(now_micros()).await.unwrap(), 1);
    let hits = rx.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.id, m[0]["id"].as_str().unwrap(), "webhook-id is the message id");
    assert!(hit.id.starts_with("msg_"));
    assert_eq!(hit.signature.matches("v1,").count(), 1);
    let body: Value = serde_json::from_str(&hit.body).unwrap();
    assert_eq!(body["type"], "location.created");
    assert_eq!(body["data"]["object"]["name"], "A");
    assert!(parse_rfc3339(body["timestamp"].as_str().unwrap()).is_some());
    assert_eq!(body.as_object().unwrap().len(), 3, "{{type, timestamp, data}}");
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    if let Some(v) = reference_verify(hit, &[&old_secret, other]) {
        assert_eq!(v, ["ok", "fail"]);
        let mut tampered = hit.clone();
        tampered.body.push(' ');
        assert_eq!(reference_verify(&tampered, &[&old_secret]).unwrap(), ["fail"]);
    }
    let delivered = message(&t, hit.id.as_str()).await;
    assert_eq!((delivered["status"].as_str(), delivered["attempt_count"].as_i64()), (Some("succeeded"), Some(1)));
    assert_eq!((delivered["attempts"][0]["status_code"].as_i64(), delivered["attempts"][0]["response"].as_str()), (Some(200), Some("ok")));

    // Rotation: for 24 hours both secrets sign every message.
    let rotated = t.ok(&format!("/webhook-endpoints/{ep}/rotate-secret"), json!({})).await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != old_secret);
    let expires = micros(&rotated["previous_secret_expires_at"]);
    assert!((expires - now_micros() - 24 * 3600 * SEC).abs() < 60 * SEC);
    assert_eq!(t.get(&format!("/webhook-endpoints/{ep}/secret")).await.body["secret"].as_str(), Some(new_secret.as_str()));
    t.location("B", 1).await;
    pump(&t, &ep, 2).await;
    assert_eq!(t.app.deliver_due_webhooks(now_micros()).await.unwrap(), 1);
    let hit = rx.hits()[1].clone();
    assert_eq!(hit.signature.split(' ').filter(|s| s.starts_with("v1,")).count(), 2, "{}", hit.signature);
    if let Some(v) = reference_verify(&hit, &[&old_secret, &new_secret, other]) {
        assert_eq!(v, ["ok", "ok", "fail"], "old and new secrets both verify during rotation");
    }

    // After 24 hours only the new secret signs.
    t.location("C", 1).await;
    pump(&t, &ep, 3).await;
    assert_eq!(t.app.deliver_due_webhooks(now_micros() + 25 * 3600 * SEC).await.unwrap(), 1);
    let hit = rx.hits()[2].clone();
    assert_eq!(hit.signature.matches("v1,").count(), 1, "{}", hit.signature);
    assert!(t.get(&format!("/webhook-endpoints/{ep}")).await.body["previous_secret_expires_at"].is_string());
}

#[tokio::test]
async fn a_receiver_failing_its_first_attempts_gets_the_message_after_retries() {
    let t = shop().await;
    let rx = Receiver::start().await;
    rx.state.fail_first.store(3, Ordering::SeqCst);
    let (ep, _) = endpoint(&t, &rx.url(), &["location.created"]).await;
    t.location("Main", 1).await;
    let id = pump(&t, &ep, 1).await[0]["id"].as_str().unwrap().to_owned();

    let mut clock = now_micros();
    assert_eq!(t.app.deliver_due_webhooks(clock).await.unwrap(), 1);
    for (i, delay) in RETRY_SCHEDULE_SECS.iter().take(3).enumerate() {
        let m = message(&t, &id).await;
        assert_eq!((m["status"].as_str(), m["attempt_count"].as_i64()), (Some("pending"), Some(i as i64 + 1)), "{m}");
        let next = micros(&m["next_attempt_at"]);
        assert_delay(clock, next, *delay);
        // Not before it is due …
        assert_eq!(t.app.deliver_due_webhooks(clock + delay * SEC * 85 / 100).await.unwrap(), 0);
        // … and then, exactly once.
        clock = next;
        assert_eq!(t.app.deliver_due_webhooks(clock).await.unwrap(), 1);
    }
    let m = message(&t, &id).await;
    assert_eq!((m["status"].as_str(), m["attempt_count"].as_i64(), &m["next_attempt_at"]), (Some("succeeded"), Some(4), &Value::Null));
    let codes: Vec<i64> = m["attempts"].as_array().unwrap().iter().map(|a| a["status_code"].as_i64().unwrap()).collect();
    assert_eq!(codes, [500, 500, 500, 200]);
    assert_eq!(m["attempts"][0]["error"].as_str(), Some("HTTP 500"));
    assert_eq!(m["attempts"][0]["response"].as_str(), Some("boom"));
    let hits = rx.hits();
    assert_eq!(hits.len(), 4);
    assert!(hits.iter().all(|h| h.id == id && h.body == hits[0].body), "every redelivery carries the same webhook-id and body");
    assert_eq!(t.app.deliver_due_webhooks(clock + 3600 * SEC).await.unwrap(), 0, "nothing left to send");

    let stats = t.app.webhook_endpoint_stats(clock).await.unwrap();
    let s = stats.iter().find(|s| s.id == ep).unwrap();
    assert_eq!((s.attempts_1h, s.failures_1h, s.attempts_24h, s.failures_24h), (4, 3, 4, 3));
    assert_eq!((s.pending, s.oldest_pending_age_micros, s.enabled, s.last_success_at), (0, 0, true, Some(clock)));
    assert_eq!(s.consecutive_failures, 0);
}

#[tokio::test]
async fn messages_are_dead_lettered_after_the_last_attempt_and_can_be_recovered() {
    let t = shop().await;
    let rx = Receiver::start().await;
    rx.state.always_fail.store(true, Ordering::SeqCst);
    let (ep, _) = endpoint(&t, &rx.url(), &["location.*"]).await;
    let since = to_rfc3339(now_micros() - SEC);
    t.location("Main", 1).await;
    let id = pump(&t, &ep, 1).await[0]["id"].as_str().unwrap().to_owned();

    let mut clock = now_micros();
    assert_eq!(t.app.deliver_due_webhooks(clock).await.unwrap(), 1);
    for delay in RETRY_SCHEDULE_SECS {
        let m = message(&t, &id).await;
        assert_eq!(m["status"], "pending");
        let next = micros(&m["next_attempt_at"]);
        assert_delay(clock, next, delay);
        clock = next;
        assert_eq!(t.app.deliver_due_webhooks(clock).await.unwrap(), 1);
    }
    let m = message(&t, &id).await;
    assert_eq!((m["status"].as_str(), m["attempt_count"].as_i64(), &m["next_attempt_at"]), (Some("failed"), Some(8), &Value::Null));
    assert_eq!(t.app.deliver_due_webhooks(clock + 7 * 24 * 3600 * SEC).await.unwrap(), 0, "dead letters are not retried");
    assert_eq!(rx.hits().len(), 8);
    let failed = t.get(&format!("/webhook-endpoints/{ep}/messages?status=failed")).await;
    assert_eq!(failed.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(t.get(&format!("/webhook-endpoints/{ep}")).await.body["enabled"], true, "27 hours of failure do not disable");

    // The receiver is fixed: recovery sends the message again, same id.
    rx.state.always_fail.store(false, Ordering::SeqCst);
    let r = t.ok(&format!("/webhook-endpoints/{ep}/recover"), json!({"since": since})).await;
    assert_eq!((r["object"].as_str(), r["messages_scheduled"].as_i64()), (Some("webhook_recovery"), Some(1)));
    let clock = drive(&t, clock, || false).await;
    let m = message(&t, &id).await;
    assert_eq!((m["status"].as_str(), m["attempt_count"].as_i64()), (Some("succeeded"), Some(9)));
    assert!(rx.hits().iter().all(|h| h.id == id));
    let again = t.ok(&format!("/webhook-endpoints/{ep}/recover"), json!({"since": since})).await;
    assert_eq!(again["messages_scheduled"], 0, "only failed messages are recovered");
    assert_eq!(t.app.deliver_due_webhooks(clock).await.unwrap(), 0);
}

#[tokio::test]
async fn a_receiver_down_then_up_loses_nothing() {
    let t = shop().await;
    let addr = free_addr().await;
    let (ep, _) = endpoint(&t, &format!("http://{addr}/hook"), &["location.*"]).await;
    let since = to_rfc3339(now_micros() - SEC);
    for name in ["A", "B", "C"] {
        t.location(name, 1).await;
    }
    let ids: Vec<String> = pump(&t, &ep, 3).await.iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();

    // Down for longer than the whole retry schedule: everything dead-letters.
    let clock = drive(&t, now_micros(), || false).await;
    let all = messages(&t, &ep).await;
    assert!(all.iter().all(|m| m["status"] == "failed" && m["attempt_count"] == 8), "{all:?}");
    let error = all[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("connection failed"), "{error}");
    let stats = t.app.webhook_endpoint_stats(clock).await.unwrap();
    let s = stats.iter().find(|s| s.id == ep).unwrap();
    assert!(s.consecutive_failures >= 24 && s.last_failure_at.is_some() && s.last_success_at.is_none(), "{s:?}");

    // Up again, then recover: every message arrives, each with its id.
    let rx = Receiver::start_on(addr, Arc::default()).await;
    let r = t.ok(&format!("/webhook-endpoints/{ep}/recover"), json!({"since": since})).await;
    assert_eq!(r["messages_scheduled"], 3);
    drive(&t, clock, || false).await;
    let mut got: Vec<String> = rx.hits().iter().map(|h| h.id.clone()).collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
    assert!(messages(&t, &ep).await.iter().all(|m| m["status"] == "succeeded"));
}

#[tokio::test]
async fn a_slow_endpoint_does_not_delay_the_others() {
    let t = shop().await;
    let slow = Receiver::start().await;
    slow.state.delay_ms.store(6000, Ordering::SeqCst);
    let fast = Receiver::start().await;
    let (slow_ep, _) = endpoint(&t, &slow.url(), &["location.*"]).await;
    let (fast_ep, _) = endpoint(&t, &fast.url(), &["location.*"]).await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let workers = keel_app::webhooks::spawn_workers(t.app.clone(), shutdown);
    let started = Instant::now();
    for name in ["A", "B", "C"] {
        t.location(name, 1).await;
    }
    let deadline = started + Duration::from_secs(4);
    while fast.hits().len() < 3 {
        assert!(Instant::now() < deadline, "the fast endpoint got {} of 3 in time", fast.hits().len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(slow.state.completed.load(Ordering::SeqCst), 0, "the fast endpoint was served while the slow one was still busy");
    // Shutting down lets sends in flight finish and records them.
    stop.send(true).unwrap();
    for w in workers {
        w.await.unwrap();
    }
    assert!(messages(&t, &fast_ep).await.iter().all(|m| m["status"] == "succeeded"));
    let slow_msgs = messages(&t, &slow_ep).await;
    assert_eq!(slow_msgs.len(), 3);
    let done = slow_msgs.iter().filter(|m| m["status"] == "succeeded").count();
    assert_eq!(done, slow.hits().len(), "every send that went out was recorded");
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let t = spawn_with(|app| app).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ] {
        let r = t.post("/webhook-endpoints", json!({"url": url})).await;
        assert_eq!((r.status, r.error_param(), r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "url", "url_not_allowed"), "{url}: {}", r.body);
    }
    let public = t.post("/webhook-endpoints", json!({"url": "https://93.184.216.34/hook"})).await;
    assert_eq!(public.status, StatusCode::CREATED, "{}", public.body);
    let (_, ep_id) = (public.body["id"].clone(), public.body["id"].as_str().unwrap().to_owned());
    let changed = t.post(&format!("/webhook-endpoints/{ep_id}"), json!({"url": "http://127.0.0.1/x"})).await;
    assert_eq!((changed.status, changed.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "url"));

    // Checked again at delivery: an endpoint registered where loopback was
    // allowed is refused by a node that does not allow it.
    let open = shop().await;
    let rx = Receiver::start().await;
    let (ep, _) = endpoint(&open, &rx.url(), &["location.*"]).await;
    open.location("Main", 1).await;
    pump(&open, &ep, 1).await;
    let strict = open.db.open().await;
    assert_eq!(strict.deliver_due_webhooks(now_micros()).await.unwrap(), 1);
    assert!(rx.hits().is_empty(), "nothing reached the private target");
    let m = &messages(&open, &ep).await[0];
    let error = m["attempts"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("blocked"), "{error}");
    assert_eq!(m["status"], "pending", "a refused attempt is retried like any failure");
}

#[tokio::test]
async fn the_event_filter_selects_types_and_families() {
    let t = shop().await;
    let rx = Receiver::start().await;
    let (locations, _) = endpoint(&t, &rx.url(), &["location.*"]).await;
    let (products, _) = endpoint(&t, &rx.url(), &["product.created"]).await;
    let off = t.ok("/webhook-endpoints", json!({"url": rx.url(), "enabled": false})).await;
    let off = off["id"].as_str().unwrap().to_owned();
    let (everything, _) = endpoint(&t, &rx.url(), &[]).await;
    let loc = t.location("Main", 1).await;
    t.product("Tee", &["TEE"]).await;
    t.receive("TEE", &loc, 3).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let all = loop {
        t.app.fan_out_webhooks().await.unwrap();
        let m = messages(&t, &everything).await;
        if m.iter().any(|m| m["event_type"] == "inventory.level_changed") {
            break m;
        }
        assert!(Instant::now() < deadline, "fan-out did not reach the last event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let types = |msgs: &[Value]| msgs.iter().map(|m| m["event_type"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let all_types = types(&all);
    for t in ["location.created", "product.created", "inventory.level_changed", "webhook_endpoint.created"] {
        assert!(all_types.iter().any(|x| x == t), "{t} in {all_types:?}");
    }
    assert_eq!(types(&messages(&t, &locations).await), ["location.created"]);
    assert_eq!(types(&messages(&t, &products).await), ["product.created"]);
    assert!(messages(&t, &off).await.is_empty(), "disabled endpoints get nothing");
    // The same event for two endpoints: two messages, two ids, the same body.
    let a = &messages(&t, &locations).await[0];
    let b = all.iter().find(|m| m["event_type"] == "location.created").unwrap();
    assert_ne!(a["id"], b["id"]);
    assert_eq!((&a["event_id"], &a["payload"]), (&b["event_id"], &b["payload"]));
    // Fan-out is exactly-once: running it again creates nothing.
    assert_eq!(t.app.fan_out_webhooks().await.unwrap(), 0);
}

#[tokio::test]
async fn one_message_can_be_replayed() {
    let t = shop().await;
    let rx = Receiver::start().await;
    let (ep, _) = endpoint(&t, &rx.url(), &["location.*"]).await;
    t.location("Main", 1).await;
    let id = pump(&t, &ep, 1).await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(t.app.deliver_due_webhooks(now_micros()).await.unwrap(), 1);
    assert_eq!(message(&t, &id).await["status"], "succeeded");

    let r = t.ok(&format!("/webhook-messages/{id}/retry"), json!({})).await;
    assert_eq!((r["id"].as_str(), r["status"].as_str()), (Some(id.as_str()), Some("pending")));
    assert_eq!(t.app.deliver_due_webhooks(now_micros()).await.unwrap(), 1);
    let hits = rx.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!((hits[0].id.as_str(), hits[1].id.as_str(), hits[0].body == hits[1].body), (id.as_str(), id.as_str(), true));
    let m = message(&t, &id).await;
    assert_eq!((m["status"].as_str(), m["attempt_count"].as_i64(), m["attempts"].as_array().unwrap().len()), (Some("succeeded"), Some(2), 2));

    assert_eq!(t.post("/webhook-messages/msg_0193a0a0a0a07000800000000000000a/retry", json!({})).await.status, StatusCode::NOT_FOUND);
    t.ok(&format!("/webhook-endpoints/{ep}"), json!({"enabled": false})).await;
    let refused = t.post(&format!("/webhook-messages/{id}/retry"), json!({})).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::CONFLICT, "webhook_endpoint_disabled"));
}

#[tokio::test]
async fn the_rate_limit_spreads_deliveries() {
    let t = shop().await;
    let rx = Receiver::start().await;
    let r = t.post("/webhook-endpoints", json!({"url": rx.url(), "event_types": ["location.*"], "rate_limit": 2})).await;
    let ep = r.body["id"].as_str().unwrap().to_owned();
    for i in 0..5 {
        t.location(&format!("L{i}"), 1).await;
    }
    pump(&t, &ep, 5).await;
    let now = now_micros();
    assert_eq!(t.app.deliver_due_webhooks(now).await.unwrap(), 2);
    assert_eq!(t.app.deliver_due_webhooks(now + SEC / 2).await.unwrap(), 0);
    assert_eq!(t.app.deliver_due_webhooks(now + SEC).await.unwrap(), 2);
    assert_eq!(t.app.deliver_due_webhooks(now + 2 * SEC).await.unwrap(), 1);
    assert_eq!(rx.hits().len(), 5);
}

#[tokio::test]
async fn an_endpoint_failing_for_days_is_disabled_with_an_alert() {
    let t = shop().await;
    let rx = Receiver::start().await;
    rx.state.always_fail.store(true, Ordering::SeqCst);
    let (ep, _) = endpoint(&t, &rx.url(), &["location.*"]).await;
    let since = to_rfc3339(now_micros() - SEC);
    t.location("Main", 1).await;
    let id = pump(&t, &ep, 1).await[0]["id"].as_str().unwrap().to_owned();
    let start = now_micros();
    assert_eq!(t.app.deliver_due_webhooks(start).await.unwrap(), 1);
    // Still failing five days later (a manual retry asks again).
    t.ok(&format!("/webhook-messages/{id}/retry"), json!({})).await;
    assert_eq!(t.app.deliver_due_webhooks(start + 5 * 24 * 3600 * SEC + SEC).await.unwrap(), 1);

    let e = t.get(&format!("/webhook-endpoints/{ep}")).await.body;
    assert_eq!((e["enabled"].as_bool(), e["disabled_reason"].as_str()), (Some(false), Some("failing")), "{e}");
    assert_eq!(message(&t, &id).await["status"], "failed", "pending messages are dead-lettered");
    let alerts = t.events("type=alert.*", 1).await;
    let alert = &alerts["data"][0];
    assert_eq!(alert["type"], "alert.webhook_endpoint_disabled");
    assert_eq!(alert["data"]["object"]["id"].as_str(), Some(ep.as_str()));
    assert!(alert["data"]["alert"]["id"].as_str().unwrap().starts_with("alert_"));
    assert!(alert.to_string().find("whsec_").is_none(), "no secrets in events");

    // A disabled endpoint receives no new messages; enabling and recovering
    // brings back what was dead-lettered.
    t.location("Second", 1).await;
    t.events("type=location.created", 2).await;
    t.app.fan_out_webhooks().await.unwrap();
    assert_eq!(messages(&t, &ep).await.len(), 1);
    t.ok(&format!("/webhook-endpoints/{ep}"), json!({"enabled": true})).await;
    rx.state.always_fail.store(false, Ordering::SeqCst);
    let r = t.ok(&format!("/webhook-endpoints/{ep}/recover"), json!({"since": since})).await;
    assert_eq!(r["messages_scheduled"], 1);
    assert_eq!(t.app.deliver_due_webhooks(now_micros()).await.unwrap(), 1);
    assert_eq!(message(&t, &id).await["status"], "succeeded");
}

#[tokio::test]
async fn the_circuit_breaker_opens_then_lets_one_probe_through() {
    let t = shop().await;
    let rx = Receiver::start().await;
    rx.state.always_fail.store(true, Ordering::SeqCst);
    let (ep, _) = endpoint(&t, &rx.url(), &["location.*"]).await;
    for i in 0..6 {
        t.location(&format!("L{i}"), 1).await;
    }
    pump(&t, &ep, 6).await;
    let now = now_micros();
    assert_eq!(t.app.deliver_due_webhooks(now).await.unwrap(), 6);
    // Six failures in a row (threshold 5): the circuit is open for 30 s,
    // though the retries fall due after 5 s.
    assert_eq!(t.app.deliver_due_webhooks(now + 6 * SEC).await.unwrap(), 0);
    let stats = t.app.webhook_endpoint_stats(now + 6 * SEC).await.unwrap();
    let s = stats.iter().find(|s| s.id == ep).unwrap();
    assert!(s.circuit_open && s.pending == 6, "{s:?}");
    // Half-open: one probe; it fails and the circuit opens again.
    assert_eq!(t.app.deliver_due_webhooks(now + 31 * SEC).await.unwrap(), 1);
    assert_eq!(t.app.deliver_due_webhooks(now + 32 * SEC).await.unwrap(), 0);
    // The next probe succeeds and closes the circuit: the rest follow.
    rx.state.always_fail.store(false, Ordering::SeqCst);
    assert_eq!(t.app.deliver_due_webhooks(now + 62 * SEC).await.unwrap(), 1);
    assert_eq!(t.app.deliver_due_webhooks(now + 62 * SEC).await.unwrap(), 4);
    // The failed probe's message follows its own schedule (5 min later).
    assert_eq!(t.app.deliver_due_webhooks(now + 31 * SEC + 331 * SEC).await.unwrap(), 1);
    assert!(messages(&t, &ep).await.iter().all(|m| m["status"] == "succeeded"));
}

#[tokio::test]
async fn deliveries_in_flight_are_limited_per_endpoint() {
    let t = spawn_with(|app| allow_private_targets(app).with_webhook_config(WebhookConfig { max_in_flight_per_endpoint: 2, ..WebhookConfig::default() })).await;
    let rx = Receiver::start().await;
    let other = Receiver::start().await;
    let (ep, _) = endpoint(&t, &rx.url(), &["location.*"]).await;
    let (ep2, _) = endpoint(&t, &other.url(), &["location.*"]).await;
    for i in 0..5 {
        t.location(&format!("L{i}"), 1).await;
    }
    pump(&t, &ep, 5).await;
    pump(&t, &ep2, 5).await;
    let now = now_micros();
    // Each pass leases at most two per endpoint, so each endpoint gets its share.
    assert_eq!(t.app.deliver_due_webhooks(now).await.unwrap(), 4);
    assert_eq!((rx.hits().len(), other.hits().len()), (2, 2));
    assert_eq!(t.app.deliver_due_webhooks(now).await.unwrap(), 4);
    assert_eq!(t.app.deliver_due_webhooks(now).await.unwrap(), 2);
    assert_eq!((rx.hits().len(), other.hits().len()), (5, 5));
}

#[tokio::test]
async fn redirects_are_not_followed_and_responses_are_read_only_in_part() {
    let t = spawn_with(|app| allow_private_targets(app).with_webhook_config(WebhookConfig { timeout: Duration::from_millis(500), ..WebhookConfig::default() })).await;
    let rx = Receiver::start().await;
    rx.state.redirect.store(true, Ordering::SeqCst);
    let (ep, _) = endpoint(&t, &rx.url(), &["location.*"]).await;
    t.location("Main", 1).await;
    let id = pump(&t, &ep, 1).await[0]["id"].as_str().unwrap().to_owned();
    let mut clock = now_micros();
    assert_eq!(t.app.deliver_due_webhooks(clock).await.unwrap(), 1);
    assert_eq!(rx.hits().len(), 1, "the redirect was not followed");
    let a = &message(&t, &id).await["attempts"][0];
    assert_eq!((a["status"].as_str(), a["status_code"].as_i64()), (Some("failed"), Some(307)));
    assert!(a["error"].as_str().unwrap().contains("redirects are not followed"), "{a}");

    // A 1 MiB answer: a success, of which 1 KiB is kept.
    rx.state.redirect.store(false, Ordering::SeqCst);
    rx.state.big_body.store(true, Ordering::SeqCst);
    clock = micros(&message(&t, &id).await["next_attempt_at"]);
    assert_eq!(t.app.deliver_due_webhooks(clock).await.unwrap(), 1);
    let a = &message(&t, &id).await["attempts"][1];
    assert_eq!(a["status"], "succeeded");
    assert!(a["response"].as_str().unwrap().len() <= 1024 + "…".len());

    // A receiver slower than the (here 0.5 s) timeout fails the attempt.
    rx.state.big_body.store(false, Ordering::SeqCst);
    rx.state.delay_ms.store(3000, Ordering::SeqCst);
    t.post(&format!("/webhook-messages/{id}/retry"), json!({})).await;
    let started = Instant::now();
    assert_eq!(t.app.deliver_due_webhooks(clock + 10 * SEC).await.unwrap(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    let a = &message(&t, &id).await["attempts"][2];
    assert!(a["error"].as_str().unwrap().starts_with("timeout"), "{a}");
}

/// A latency smoke check for the worker path (the real benchmark belongs in
/// `scripts/bench`): stock changes at 500 per second (or
/// `KEEL_WEBHOOK_LATENCY_RATE`) for 10 s, in the same process as the server
/// and the receiver; prints the p50/p99 from the event to the signed
/// webhook's arrival. Run with
/// `cargo test --release -p keel --test api webhook_latency -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn webhook_latency_under_load() {
    let t = shop().await;
    let rx = Receiver::start().await;
    endpoint(&t, &rx.url(), &["inventory.*"]).await;
    let loc = t.location("Main", 1).await;
    // Spread over SKUs, as real stock changes are (one hot level row would
    // serialise the writers and hold back the outbox's commit horizon).
    let skus: Vec<String> = (0..50).map(|i| format!("TEE-{i}")).collect();
    t.product("Tee", &skus.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let workers = keel_app::webhooks::spawn_workers(t.app.clone(), shutdown);
    let t = Arc::new(t);
    let rate: u64 = std::env::var("KEEL_WEBHOOK_LATENCY_RATE").ok().and_then(|r| r.parse().ok()).unwrap_or(500);
    let total = rate as usize * 10;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let t = t.clone();
        let loc = loc.clone();
        let sku = skus[i % skus.len()].clone();
        sends.spawn(async move { t.receive(&sku, &loc, 1).await });
    }
    while sends.join_next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.hits().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let mut lat: Vec<i64> = rx
        .hits()
        .iter()
        .map(|h| {
            let body: Value = serde_json::from_str(&h.body).unwrap();
            h.received_at - parse_rfc3339(body["timestamp"].as_str().unwrap()).unwrap()
        })
        .collect();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    eprintln!("webhooks: {} of {total} received; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", lat.len(), p(0.5), p(0.99), p(1.0));
    let fan_out = t.db.scalar("SELECT CAST(AVG(m.created_at - e.occurred_at) AS BIGINT) FROM webhook_messages m JOIN events e ON e.id = m.event_id").await;
    let queued = t.db.scalar("SELECT CAST(AVG(a.attempted_at - m.created_at) AS BIGINT) FROM webhook_attempts a JOIN webhook_messages m ON m.id = a.message_id").await;
    eprintln!("webhooks: mean fan-out lag {:.1} ms, mean queue wait {:.1} ms", fan_out as f64 / 1000.0, queued as f64 / 1000.0);
    assert_eq!(lat.len(), total);
}

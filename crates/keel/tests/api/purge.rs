//! CDN purge by surrogate key: the `cdn-purge` outbox consumer against a
//! test double of a CDN purge API on 127.0.0.1, driven step by step with a
//! controlled clock; the in-process invalidation feed; health and metrics.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use keel_app::purge::{PurgeConfig, PurgeRun, PurgeToken, CONSUMER, PRODUCTS_KEY};
use keel_domain::time::now_micros;
use keel_testkit::{json, spawn_app, spawn_with, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOUR: i64 = 3_600_000_000;

#[derive(Debug, Clone)]
struct PurgeCall {
    header_keys: Vec<String>,
    body_keys: Vec<String>,
    authorization: String,
}

#[derive(Default)]
struct DoubleState {
    calls: Mutex<Vec<PurgeCall>>,
    failing: AtomicBool,
}

/// Test double of a CDN purge API: records every request, answers 503
/// while `failing`, else 200.
struct CdnDouble {
    url: String,
    state: Arc<DoubleState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for CdnDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn purge_endpoint(State(st): State<Arc<DoubleState>>, headers: HeaderMap, body: String) -> AxumStatus {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let body_keys = body["surrogate_keys"].as_array().map(|a| a.iter().map(|k| k.as_str().unwrap().to_owned()).collect()).unwrap_or_default();
    st.calls.lock().unwrap().push(PurgeCall {
        header_keys: h("surrogate-key").split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        body_keys,
        authorization: h("authorization"),
    });
    if st.failing.load(Ordering::SeqCst) {
        AxumStatus::SERVICE_UNAVAILABLE
    } else {
        AxumStatus::OK
    }
}

impl CdnDouble {
    async fn start() -> CdnDouble {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(DoubleState::default());
        let router = axum::Router::new().route("/purge", axum::routing::post(purge_endpoint)).with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        CdnDouble { url: format!("http://{addr}/purge"), state, server }
    }

    fn calls(&self) -> Vec<PurgeCall> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Every key received so far (from the headers; bodies are checked to agree).
    fn keys(&self) -> BTreeSet<String> {
        let calls = self.calls();
        for c in &calls {
            assert_eq!(c.header_keys, c.body_keys, "the Surrogate-Key header and the JSON body name the same keys");
        }
        calls.into_iter().flat_map(|c| c.header_keys).collect()
    }
}

async fn shop_with_cdn(cdn: &CdnDouble) -> TestApp {
    let url = cdn.url.clone();
    spawn_with(move |app| {
        keel_testkit::allow_private_targets(app)
            .with_purge_config(PurgeConfig { url: Some(url), token: Some(PurgeToken::new("cdn-token-1")), ..PurgeConfig::default() })
    })
    .await
}

/// Steps the consumer (advancing the clock past any backoff) until `done`.
/// On PostgreSQL an event becomes readable once older transactions of the
/// cluster finish, so this polls briefly; it never waits on a timer to pass.
async fn drive(t: &TestApp, clock: &mut i64, mut done: impl FnMut(&PurgeRun) -> bool) -> PurgeRun {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = t.app.purge_cdn(*clock).await.expect("purge step");
        if done(&run) {
            return run;
        }
        if let PurgeRun::Waiting { until } | PurgeRun::Failed { retry_at: until, .. } = run {
            *clock = (*clock).max(until);
        }
        assert!(Instant::now() < deadline, "purge did not reach the expected state; last step: {run:?}");
        if matches!(run, PurgeRun::Idle) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Drives until the consumer has nothing left and the double holds `key`.
async fn drive_until_purged(t: &TestApp, cdn: &CdnDouble, clock: &mut i64, key: &str) {
    drive(t, clock, |run| matches!(run, PurgeRun::Idle) && cdn.keys().contains(key)).await;
}

#[tokio::test]
async fn product_and_stock_changes_purge_their_keys() {
    let cdn = CdnDouble::start().await;
    let t = shop_with_cdn(&cdn).await;
    let mut clock = now_micros();
    let loc = t.location("Main", 1).await;
    let tee = t.product("Tee", &["TEE-M"]).await;
    let tee_id = tee["id"].as_str().unwrap().to_owned();
    let mug = t.product("Mug", &["MUG"]).await;
    let mug_id = mug["id"].as_str().unwrap().to_owned();
    drive_until_purged(&t, &cdn, &mut clock, &mug_id).await;
    let keys = cdn.keys();
    assert!(keys.contains(&tee_id) && keys.contains(PRODUCTS_KEY), "{keys:?}");
    assert!(cdn.calls().iter().all(|c| c.authorization == "Bearer cdn-token-1"));
    let calls_before = cdn.calls().len();
    assert!(calls_before <= 2, "changes in one batch share one request: {calls_before} requests");

    // A bundle of both: a stock change of the tee purges the tee and the bundle, not the mug.
    let kit = t.ok("/products", json!({"title": "Kit", "status": "active", "variants": [{"sku": "KIT", "prices": [{"currency": "USD", "amount": 1500}], "components": [{"sku": "TEE-M", "quantity": 1}, {"sku": "MUG", "quantity": 1}]}]})).await;
    let kit_id = kit["id"].as_str().unwrap().to_owned();
    drive_until_purged(&t, &cdn, &mut clock, &kit_id).await;
    cdn.state.calls.lock().unwrap().clear();

    t.receive("TEE-M", &loc, 40).await;
    drive(&t, &mut clock, |run| matches!(run, PurgeRun::Advanced { requests: 1.., .. })).await;
    let keys = cdn.keys();
    assert!(keys.contains(&tee_id) && keys.contains(&kit_id), "{keys:?}");
    assert!(!keys.contains(&mug_id), "the mug did not change: {keys:?}");
    assert!(keys.contains(PRODUCTS_KEY), "from out of stock to in stock shows on listings: {keys:?}");

    // A small change far above the listing threshold purges the product pages only.
    cdn.state.calls.lock().unwrap().clear();
    t.ok("/inventory/adjustments", json!({"sku": "TEE-M", "location_id": loc, "quantity_delta": -1})).await;
    drive(&t, &mut clock, |run| matches!(run, PurgeRun::Advanced { requests: 1.., .. })).await;
    assert_eq!(cdn.keys(), BTreeSet::from([kit_id.clone(), tee_id.clone()]));

    // Changing the product through the API.
    cdn.state.calls.lock().unwrap().clear();
    let r = t.post(&format!("/products/{mug_id}"), json!({"title": "Big Mug"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    drive(&t, &mut clock, |run| matches!(run, PurgeRun::Advanced { requests: 1.., .. })).await;
    assert_eq!(cdn.keys(), BTreeSet::from([mug_id.clone(), PRODUCTS_KEY.to_owned()]));
    drive(&t, &mut clock, |run| matches!(run, PurgeRun::Idle)).await;

    // The consumer is monitored, caught up, in health and in /metrics.
    let h = t.get("/integrations/health").await;
    let c = h.body["components"].as_array().unwrap().iter().find(|c| c["kind"] == "consumer" && c["id"] == CONSUMER).cloned();
    let c = c.unwrap_or_else(|| panic!("{CONSUMER} is listed: {}", h.body));
    assert_eq!((c["state"].as_str(), c["backlog"].as_i64()), (Some("healthy"), Some(0)), "{c}");
    let m = t.http.get(format!("{}/metrics", t.base)).bearer_auth(&t.key).send().await.unwrap().text().await.unwrap();
    assert!(m.contains(&format!("keel_component_backlog{{kind=\"consumer\",id=\"{CONSUMER}\"}} 0")), "{m}");
}

#[tokio::test]
async fn a_failing_cdn_gets_the_keys_again_after_it_recovers() {
    let cdn = CdnDouble::start().await;
    let t = shop_with_cdn(&cdn).await;
    let mut clock = now_micros();
    cdn.state.failing.store(true, Ordering::SeqCst);
    let p = t.product("Tee", &["TEE-M"]).await;
    let id = p["id"].as_str().unwrap().to_owned();

    let failed = drive(&t, &mut clock, |run| matches!(run, PurgeRun::Failed { .. })).await;
    let PurgeRun::Failed { error, retry_at } = failed else { unreachable!() };
    assert!(error.contains("503"), "{error}");
    assert!(retry_at > clock, "backs off");
    assert!(cdn.keys().contains(&id));
    // Until the backoff ends nothing is tried; then it fails again, backing off longer.
    assert_eq!(t.app.purge_cdn(clock).await.unwrap(), PurgeRun::Waiting { until: retry_at });
    let again = t.app.purge_cdn(retry_at).await.unwrap();
    let PurgeRun::Failed { retry_at: second, .. } = again else { panic!("{again:?}") };
    assert!(second - retry_at > (retry_at - clock), "exponential backoff");
    assert_eq!(cdn.calls().len(), 2);

    // Health shows the backlog and the error (never the token).
    let report = t.app.integration_health(now_micros() + HOUR).await.unwrap();
    let c = report.components.iter().find(|c| c.id == CONSUMER).expect("monitored");
    assert!(c.backlog >= 1 && c.state.as_str() != "healthy", "{c:?}");
    let detail = c.detail.clone().unwrap_or_default();
    assert!(detail.contains("503") && !detail.contains("cdn-token-1"), "{detail}");

    // Recovered: the same keys arrive again and the cursor moves on.
    cdn.state.failing.store(false, Ordering::SeqCst);
    cdn.state.calls.lock().unwrap().clear();
    let done = t.app.purge_cdn(second).await.unwrap();
    assert!(matches!(&done, PurgeRun::Advanced { keys, requests: 1, .. } if keys.contains(&id)), "{done:?}");
    assert!(cdn.keys().contains(&id));
    assert_eq!(t.app.purge_cdn(second).await.unwrap(), PurgeRun::Idle, "at-least-once, then caught up");
    assert_eq!(t.app.purge_last_error(), None);
}

#[tokio::test]
async fn no_url_no_calls_but_the_cursor_moves_and_local_caches_hear() {
    let cdn = CdnDouble::start().await;
    let t = spawn_app().await;
    assert!(t.app.purge_config().url.is_none());
    let mut invalidations = t.app.cache_invalidations();
    assert_eq!(t.app.publish_cache_invalidations().await.unwrap(), 0, "the first step finds the outbox head");

    let loc = t.location("Main", 1).await;
    let p = t.product("Tee", &["TEE-M"]).await;
    let id = p["id"].as_str().unwrap().to_owned();
    t.receive("TEE-M", &loc, 3).await;

    let mut clock = now_micros();
    let run = drive(&t, &mut clock, |run| matches!(run, PurgeRun::Advanced { .. })).await;
    assert!(matches!(run, PurgeRun::Advanced { requests: 0, ref keys, .. } if keys.is_empty()), "{run:?}");
    // On PostgreSQL an event becomes visible once every older transaction in
    // the cluster has ended (other tests' databases included), so the
    // consumer may go idle before the last events are readable: drive again
    // until the backlog is empty.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        drive(&t, &mut clock, |run| matches!(run, PurgeRun::Idle)).await;
        let report = t.app.integration_health(now_micros()).await.unwrap();
        let c = report.components.iter().find(|c| c.id == CONSUMER).expect("monitored without a URL too");
        if c.backlog == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "backlog stays at {}", c.backlog);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(cdn.calls().is_empty());

    // The in-process feed broadcasts the same keys, however many batches it takes.
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(seen.contains(&id) && seen.contains(PRODUCTS_KEY)) {
        if t.app.publish_cache_invalidations().await.unwrap() == 0 {
            assert!(Instant::now() < deadline, "no invalidation for {id}: {seen:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while let Ok(keys) = invalidations.try_recv() {
            seen.extend(keys.iter().cloned());
        }
    }
}

//! Admin integrations pages: the health overview, a webhook endpoint with a
//! failed delivery and its attempt, replay (then delivered once the
//! receiver is fixed), recovery, enable/disable, a sync batch shown and
//! rolled back (and a refused rollback as a 409 naming the SKU), refusals by
//! role and without CSRF, and the audit entry of a replay. Delivery is
//! driven with explicit clocks, as in `webhooks.rs`.

use crate::admin_client::{between, signed_in, Browser};
use axum::http::StatusCode as AxumStatus;
use keel_domain::time::{now_micros, to_rfc3339};
use keel_testkit::{json, spawn_with, Res, TestApp};
use keel_web::access::Role;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEC: i64 = 1_000_000;

async fn shop() -> TestApp {
    spawn_with(keel_testkit::allow_private_targets).await
}

#[derive(Default)]
struct ReceiverState {
    fail: AtomicBool,
    hits: AtomicUsize,
}

/// A webhook receiver on 127.0.0.1 answering 500 ("boom") while `fail`.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let st = state.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let st = st.clone();
                async move {
                    st.hits.fetch_add(1, Ordering::SeqCst);
                    if st.fail.load(Ordering::SeqCst) {
                        (AxumStatus::INTERNAL_SERVER_ERROR, "boom")
                    } else {
                        (AxumStatus::OK, "ok")
                    }
                }
            }),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { url, state, server }
    }
}

/// An endpoint for `location.*` events; returns (id, secret).
async fn endpoint(t: &TestApp, url: &str) -> (String, String) {
    let r = t.post("/webhook-endpoints", json!({"url": url, "event_types": ["location.*"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["id"].as_str().unwrap().to_owned(), r.body["secret"].as_str().unwrap().to_owned())
}

async fn message(t: &TestApp, id: &str) -> Value {
    let r = t.get(&format!("/webhook-messages/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Fans out until `ep` has a message (on PostgreSQL an event is readable
/// once older transactions have finished); returns its id.
async fn one_message(t: &TestApp, ep: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        t.app.fan_out_webhooks().await.unwrap();
        let r = t.get(&format!("/webhook-endpoints/{ep}/messages")).await;
        if let Some(id) = r.body["data"][0]["id"].as_str() {
            return id.to_owned();
        }
        assert!(Instant::now() < deadline, "no message for {ep}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An endpoint whose receiver failed the first delivery of a
/// `location.created` message: (receiver, endpoint id, secret, message id).
async fn failed_delivery(t: &TestApp) -> (Receiver, String, String, String) {
    let rx = Receiver::start().await;
    rx.state.fail.store(true, Ordering::SeqCst);
    let (ep, secret) = endpoint(t, &rx.url).await;
    t.location("Main", 1).await;
    let msg = one_message(t, &ep).await;
    assert_eq!(t.app.deliver_due_webhooks(now_micros()).await.unwrap(), 1);
    let m = message(t, &msg).await;
    assert_eq!((m["status"].as_str(), m["attempts"][0]["status_code"].as_i64()), (Some("pending"), Some(500)), "{m}");
    (rx, ep, secret, msg)
}

async fn ok_page(b: &mut Browser, path: &str) -> String {
    let p = b.get(path).await;
    assert_eq!(p.status, StatusCode::OK, "GET {path}: {}", p.body);
    p.body
}

#[tokio::test]
async fn an_owner_replays_a_failed_webhook_and_it_is_delivered() {
    let t = shop().await;
    let (rx, ep, secret, msg) = failed_delivery(&t).await;
    let mut b = signed_in(&t, Role::Owner).await;

    let overview = ok_page(&mut b, "/admin/integrations").await;
    assert!(overview.contains(&format!("/admin/webhook-endpoints/{ep}")) && overview.contains(&rx.url), "{overview}");
    assert!(overview.contains("Event consumers") && overview.contains("webhooks"), "the outbox consumers are listed");
    assert!(overview.contains("0 % of 1 attempt"), "the success rate is shown");

    let ep_path = format!("/admin/webhook-endpoints/{ep}");
    let page = ok_page(&mut b, &ep_path).await;
    assert!(page.contains(">Failed, retry scheduled</span>") && page.contains("HTTP 500"), "the attempt is shown: {page}");
    assert!(page.contains(&format!("action=\"/admin/webhook-messages/{msg}/replay\"")), "a Replay button");
    assert!(page.contains("location.created"));
    assert!(ok_page(&mut b, &format!("{ep_path}?status=failed")).await.contains(&msg));
    assert!(!ok_page(&mut b, &format!("{ep_path}?status=delivered")).await.contains(&msg));

    let msg_path = format!("/admin/webhook-messages/{msg}");
    let page = ok_page(&mut b, &msg_path).await;
    assert!(page.contains("HTTP 500") && page.contains("boom") && page.contains("Replay message"), "{page}");
    assert!(page.contains("&#34;type&#34;: &#34;location.created&#34;"), "the payload, pretty and escaped: {page}");
    for p in [&overview, &page] {
        assert!(!p.contains(&secret), "the signing secret is never shown");
    }

    // Without the CSRF token nothing is scheduled.
    let before = message(&t, &msg).await["next_attempt_at"].clone();
    let r = b.post(&format!("{msg_path}/replay"), &[("back", "endpoint")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(message(&t, &msg).await["next_attempt_at"], before);

    // Replay from the endpoint's log: back to it, with a flash.
    let csrf = b.get(&ep_path).await.csrf();
    let r = b.post(&format!("{msg_path}/replay"), &[("csrf", &csrf), ("back", "endpoint"), ("status", "failed"), ("page", "1")]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, format!("{ep_path}?status=failed").as_str()), "{}", r.body);
    assert!(ok_page(&mut b, &ep_path).await.contains("replayed"), "the flash");
    let m = message(&t, &msg).await;
    assert!(m["next_attempt_at"] != before && m["status"] == "pending", "due again now: {m}");

    // The receiver is fixed: the next delivery succeeds.
    rx.state.fail.store(false, Ordering::SeqCst);
    assert_eq!(t.app.deliver_due_webhooks(now_micros() + SEC).await.unwrap(), 1);
    let m = message(&t, &msg).await;
    assert_eq!((m["status"].as_str(), m["attempts"].as_array().unwrap().len()), (Some("succeeded"), 2), "{m}");
    assert_eq!(rx.state.hits.load(Ordering::SeqCst), 2);
    let page = ok_page(&mut b, &msg_path).await;
    assert!(page.contains("Delivered") && page.contains("HTTP 200"), "{page}");
    assert!(ok_page(&mut b, &format!("{ep_path}?status=delivered")).await.contains(&msg));

    let audit = t.get("/audit-log?action_contains=replay").await;
    let entries = audit.body["data"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["status"] == 303 && e["actor"] == format!("staff:{}", b.user_id) && e["action"].as_str().unwrap().contains("/admin/webhook-messages/")),
        "{entries:?}"
    );
}

#[tokio::test]
async fn an_owner_disables_enables_and_recovers_an_endpoint() {
    let t = shop().await;
    let (rx, ep, _, msg) = failed_delivery(&t).await;
    let mut b = signed_in(&t, Role::Owner).await;
    let ep_path = format!("/admin/webhook-endpoints/{ep}");
    let csrf = b.get(&ep_path).await.csrf();

    let r = b.post(&format!("{ep_path}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, ep_path.as_str()));
    assert_eq!(t.get(&format!("/webhook-endpoints/{ep}")).await.body["enabled"], false);
    assert_eq!(message(&t, &msg).await["status"], "failed", "disabling dead-letters the pending message");
    let page = ok_page(&mut b, &ep_path).await;
    assert!(page.contains(">Dead-lettered</span>") && page.contains("Enable endpoint") && !page.contains("Replay failed messages"), "{page}");
    // A replay while disabled is refused and changes nothing.
    let r = b.post(&format!("/admin/webhook-messages/{msg}/replay"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(message(&t, &msg).await["status"], "failed");

    let r = b.post(&format!("{ep_path}/enable"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(t.get(&format!("/webhook-endpoints/{ep}")).await.body["enabled"], true);

    // Bad times: 422 naming the field, nothing scheduled.
    for bad in ["", "yesterday", "2999-01-01T00:00"] {
        let r = b.post(&format!("{ep_path}/recover"), &[("csrf", &csrf), ("since", bad)]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", r.body);
        assert!(r.body.contains("There is a problem") && r.body.contains("href=\"#f-since\""), "{}", r.body);
    }
    assert_eq!(message(&t, &msg).await["status"], "failed");

    let since = chrono::DateTime::from_timestamp_micros(now_micros() - 3600 * SEC).unwrap().format("%Y-%m-%dT%H:%M").to_string();
    let r = b.post(&format!("{ep_path}/recover"), &[("csrf", &csrf), ("since", &since)]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, ep_path.as_str()), "{}", r.body);
    assert!(ok_page(&mut b, &ep_path).await.contains("1 failed message since"), "the flash");
    rx.state.fail.store(false, Ordering::SeqCst);
    assert_eq!(t.app.deliver_due_webhooks(now_micros() + SEC).await.unwrap(), 1);
    assert_eq!(message(&t, &msg).await["status"], "succeeded");
}

// ------------------------------------------------------------------ feeds

/// An integration authenticated by API key; returns (id, credential).
async fn integration(t: &TestApp, name: &str) -> (String, String) {
    let r = t.post("/integrations", json!({"name": name, "kind": "3pl", "auth": "api_key", "freshness_sla_seconds": 900})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["id"].as_str().unwrap().to_owned(), r.body["credential"].as_str().unwrap().to_owned())
}

async fn push_csv(t: &TestApp, id: &str, credential: &str, body: String) -> Res {
    let res = t
        .http
        .post(format!("{}/hooks/integrations/{id}/stock-feed?mode=apply_valid", t.base))
        .header("content-type", "text/csv")
        .bearer_auth(credential)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap();
    Res { status, headers, body }
}

/// MUG 10 → 15 and CUP 4 → 6 by a feed that also names an unknown SKU
/// (line 3): (location, integration id, credential, batch id).
async fn applied_batch(t: &TestApp) -> (String, String, String, String) {
    let loc = t.location("Main", 1).await;
    t.product("Mug", &["MUG", "CUP"]).await;
    t.receive("MUG", &loc, 10).await;
    t.receive("CUP", &loc, 4).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let at = to_rfc3339(now_micros());
    let (id, credential) = integration(t, "Acme 3PL").await;
    let csv = format!("sku,location_id,on_hand,counted_at\nMUG,{loc},15,{at}\nNOPE,{loc},1,{at}\nCUP,{loc},6,{at}\n");
    let r = push_csv(t, &id, &credential, csv).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::CREATED, Some("partially_applied")), "{}", r.body);
    (loc, id, credential, r.body["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_feed_batch_is_shown_and_rolled_back_and_a_refusal_names_the_sku() {
    let t = shop().await;
    let (loc, integ, credential, batch) = applied_batch(&t).await;
    let mut b = signed_in(&t, Role::Owner).await;

    let overview = ok_page(&mut b, "/admin/integrations").await;
    assert!(overview.contains("Acme 3PL") && overview.contains(&format!("/admin/sync-batches/{batch}")), "{overview}");
    let page = ok_page(&mut b, &format!("/admin/integrations/{integ}")).await;
    assert!(page.contains("Integration Acme 3PL") && page.contains("Partly applied") && page.contains(&batch), "{page}");
    assert!(page.contains("API key") && !page.contains(&credential) && !page.contains(&credential[..14]), "no credential");
    let batch_path = format!("/admin/sync-batches/{batch}");
    let page = ok_page(&mut b, &batch_path).await;
    assert!(page.contains("Unknown SKU") && page.contains("<code>NOPE</code>"), "the rejected row: {page}");
    assert!(between(&page, "Rejected rows", "Applied movements").unwrap().contains("<th scope=\"row\" class=\"num\">3</th>"), "by line number");
    assert!(page.contains("MUG") && page.contains("+5") && page.contains("+2"), "the applied movements");
    assert!(page.contains("Roll back this batch"));

    // 12 mugs reserved since: undoing +5 would leave −2 available.
    let r = t.post("/reservations", json!({"sku": "MUG", "quantity": 12})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let reservation = r.body["id"].as_str().unwrap().to_owned();
    let mug = t.level("MUG", &loc).await;
    let csrf = b.get(&batch_path).await.csrf();
    // Without the CSRF token: refused, nothing changed.
    let r = b.post(&format!("{batch_path}/rollback"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post(&format!("{batch_path}/rollback"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("Rollback refused") && r.body.contains("<code>MUG</code>") && !r.body.contains("<code>CUP</code>"), "{}", r.body);
    assert_eq!(t.level("MUG", &loc).await, mug, "nothing changed");
    assert_eq!(t.get(&format!("/sync-batches/{batch}")).await.body["status"], "partially_applied");
    t.assert_consistent().await;

    let r = t.post(&format!("/reservations/{reservation}/release"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = b.post(&format!("{batch_path}/rollback"), &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, batch_path.as_str()), "{}", r.body);
    assert_eq!((t.level("MUG", &loc).await["on_hand"].as_i64(), t.level("CUP", &loc).await["on_hand"].as_i64()), (Some(10), Some(4)));
    assert_eq!(t.get(&format!("/sync-batches/{batch}")).await.body["status"], "rolled_back");
    t.assert_consistent().await;
    let page = ok_page(&mut b, &batch_path).await;
    assert!(page.contains("Batch rolled back") && page.contains("Rolled back") && !page.contains("Roll back this batch"), "{page}");
    // A second rollback is a conflict page.
    let r = b.post(&format!("{batch_path}/rollback"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_analyst_may_read_but_not_replay_roll_back_or_disable() {
    let t = shop().await;
    let (_rx, ep, _, msg) = failed_delivery(&t).await;
    let (loc, integ, _, batch) = applied_batch(&t).await;
    let mut b = signed_in(&t, Role::Analyst).await;
    for path in [
        "/admin/integrations".to_owned(),
        format!("/admin/integrations/{integ}"),
        format!("/admin/sync-batches/{batch}"),
        format!("/admin/webhook-messages/{msg}"),
    ] {
        let page = ok_page(&mut b, &path).await;
        assert!(!page.contains("Replay message") && !page.contains("Roll back this batch"), "{path}: no write buttons");
    }
    let page = ok_page(&mut b, &format!("/admin/webhook-endpoints/{ep}")).await;
    assert!(page.contains("HTTP 500") && !page.contains("/replay\"") && !page.contains("Disable endpoint"), "{page}");
    let csrf = b.get("/admin/integrations").await.csrf();
    let before = message(&t, &msg).await;
    let mug = t.level("MUG", &loc).await;
    for path in [
        format!("/admin/webhook-messages/{msg}/replay"),
        format!("/admin/sync-batches/{batch}/rollback"),
        format!("/admin/webhook-endpoints/{ep}/disable"),
        format!("/admin/webhook-endpoints/{ep}/recover"),
    ] {
        let r = b.post(&path, &[("csrf", &csrf), ("since", "2026-01-01T00:00")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(message(&t, &msg).await["next_attempt_at"], before["next_attempt_at"]);
    assert_eq!(t.level("MUG", &loc).await, mug);
    assert_eq!(t.get(&format!("/sync-batches/{batch}")).await.body["status"], "partially_applied");
    assert_eq!(t.get(&format!("/webhook-endpoints/{ep}")).await.body["enabled"], true);
}

#[tokio::test]
async fn roles_without_integrations_read_are_refused_the_pages() {
    let t = shop().await;
    let (_rx, ep, _, msg) = failed_delivery(&t).await;
    for role in [Role::Fulfillment, Role::SupportAgent] {
        let mut b = signed_in(&t, role).await;
        let home = b.get("/admin").await;
        assert!(!home.body.contains("href=\"/admin/integrations\""), "{role:?}: not in the navigation");
        for path in ["/admin/integrations".to_owned(), format!("/admin/webhook-endpoints/{ep}"), format!("/admin/webhook-messages/{msg}")] {
            let p = b.get(&path).await;
            assert_eq!(p.status, StatusCode::FORBIDDEN, "{role:?} {path}");
            assert!(!p.body.contains("location.created"), "{role:?} {path}");
        }
    }
    // Unknown ids answer a 404 page, not an error.
    let mut b = signed_in(&t, Role::Owner).await;
    for (path, what) in [
        ("/admin/webhook-endpoints/ep_0193a0a0a0a07000800000000000000a", "webhook endpoint"),
        ("/admin/webhook-messages/nope", "webhook message"),
        ("/admin/integrations/intg_0193a0a0a0a07000800000000000000a", "integration"),
        ("/admin/sync-batches/batch_x", "sync batch"),
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        assert!(p.body.contains(&format!("There is no such {what}")), "{path}: {}", p.body);
    }
}

// ------------------------------------------------ adding and rotating

use crate::admin_staff::{assert_secret_stays_in_body, secret_of};

async fn endpoints(t: &TestApp) -> Vec<Value> {
    let r = t.get("/webhook-endpoints?limit=100").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn integrations(t: &TestApp) -> Vec<Value> {
    let r = t.get("/integrations?limit=100").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn api_secret(t: &TestApp, ep: &str) -> String {
    let r = t.get(&format!("/webhook-endpoints/{ep}/secret")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["secret"].as_str().unwrap().to_owned()
}

/// The target of the audit entry of the admin route `route` answered `status`.
async fn audit_target(t: &TestApp, route: &str, status: u16) -> Value {
    let audit = t.get(&format!("/audit-log?action={}", route.replace(' ', "%20"))).await;
    let entries = audit.body["data"].as_array().unwrap();
    entries.iter().find(|e| e["status"] == status).unwrap_or_else(|| panic!("{route} {status} is audited: {entries:?}"))["target"].clone()
}

/// A one-line stock feed for MUG at a new location.
async fn mug_feed(t: &TestApp) -> String {
    let loc = t.location("Main", 1).await;
    t.product("Mug", &["MUG"]).await;
    format!("sku,location_id,on_hand,counted_at\nMUG,{loc},7,{}\n", to_rfc3339(now_micros()))
}

async fn push_signed(t: &TestApp, id: &str, secret: &str, body: String) -> StatusCode {
    let sig = crate::feeds::sign(secret, crate::feeds::signing_time(), body.as_bytes());
    let res = t
        .http
        .post(format!("{}/hooks/integrations/{id}/stock-feed", t.base))
        .header("content-type", "text/csv")
        .header("x-keel-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    res.status()
}

fn names_field(p: &crate::admin_client::Page, field: &str) {
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {}", p.body);
    assert!(p.body.contains("There is a problem") && p.body.contains(&format!("href=\"#f-{field}\"")), "{field}: {}", p.body);
}

#[tokio::test]
async fn an_owner_adds_a_webhook_endpoint_and_rotates_its_secret() {
    let t = shop().await;
    let mut b = signed_in(&t, Role::Owner).await;
    let overview = ok_page(&mut b, "/admin/integrations").await;
    assert!(overview.contains("action=\"/admin/webhook-endpoints\"") && overview.contains("Add webhook endpoint"), "{overview}");
    let csrf = b.get("/admin/integrations").await.csrf();
    let url = "https://hooks.example.com/keel";

    // Bad input: 422 naming the field, nothing created.
    for (fields, field) in [
        (vec![("url", "")], "url"),
        (vec![("url", "not a url")], "url"),
        (vec![("url", "ftp://hooks.example.com/x")], "url"),
        (vec![("url", url), ("event_types", "order.*, Order.Created")], "event_types"),
        (vec![("url", url), ("event_types", "order*")], "event_types"),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let r = b.post("/admin/webhook-endpoints", &form).await;
        names_field(&r, field);
        assert!(r.body.contains("Add inbound integration"), "the overview is shown again");
    }
    let long = "x".repeat(501);
    names_field(&b.post("/admin/webhook-endpoints", &[("csrf", &csrf), ("url", url), ("description", &long)]).await, "description");
    // Without the CSRF token: refused.
    let r = b.post("/admin/webhook-endpoints", &[("url", url)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(endpoints(&t).await.is_empty(), "nothing was created");

    let form = [("csrf", csrf.as_str()), ("url", url), ("event_types", "order.* inventory.level_changed,order.*"), ("description", "ERP order import")];
    let r = b.post("/admin/webhook-endpoints", &form).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.contains("Webhook endpoint added") && r.body.contains("shows this secret only once") && r.body.contains("Standard Webhooks"), "{}", r.body);
    let secret = secret_of(&r);
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_secret_stays_in_body(&r, &secret);
    let all = endpoints(&t).await;
    assert_eq!(all.len(), 1);
    let ep = all[0]["id"].as_str().unwrap().to_owned();
    assert_eq!((all[0]["url"].as_str(), all[0]["description"].as_str()), (Some(url), Some("ERP order import")));
    assert_eq!(all[0]["event_types"], json!(["order.*", "inventory.level_changed"]));
    assert!(r.body.contains(&format!("href=\"/admin/webhook-endpoints/{ep}\"")), "a link to the endpoint");
    assert!(r.body.contains(&format!("GET /api/v1/webhook-endpoints/{ep}/secret")), "where the API reads it again");
    assert_eq!(api_secret(&t, &ep).await, secret, "the secret shown is the endpoint's");
    assert_eq!(audit_target(&t, "POST /admin/webhook-endpoints", 201).await, ep.as_str(), "the audit entry names the endpoint made");

    let ep_path = format!("/admin/webhook-endpoints/{ep}");
    let page = ok_page(&mut b, &ep_path).await;
    assert!(!page.contains(&secret) && page.contains("Rotate signing secret"), "{page}");

    // Rotation: refused without the CSRF token, then a new secret shown once.
    let rotate = format!("{ep_path}/rotate-secret");
    assert_eq!(b.post(&rotate, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(api_secret(&t, &ep).await, secret);
    let r = b.post(&rotate, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new = secret_of(&r);
    assert!(new.starts_with("whsec_") && new != secret, "{new}");
    assert_secret_stays_in_body(&r, &new);
    assert!(!r.body.contains(&secret), "the old secret is not shown");
    assert!(r.body.contains("Signing secret rotated") && r.body.contains("keeps working for 24 hours"), "{}", r.body);
    assert_eq!(api_secret(&t, &ep).await, new);
    let e = t.get(&format!("/webhook-endpoints/{ep}")).await.body;
    assert!(e["previous_secret_expires_at"].is_string(), "the old secret still signs: {e}");
    assert_eq!(audit_target(&t, "POST /admin/webhook-endpoints/{endpoint_id}/rotate-secret", 200).await, ep.as_str());
    // An unknown endpoint: a 404 page.
    let r = b.post("/admin/webhook-endpoints/ep_0193a0a0a0a07000800000000000000a/rotate-secret", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("There is no such webhook endpoint"));
}

#[tokio::test]
async fn a_private_webhook_target_is_refused_on_the_url_field() {
    let t = spawn_with(|app| app).await;
    let mut b = signed_in(&t, Role::Owner).await;
    let csrf = b.get("/admin/integrations").await.csrf();
    for target in ["http://127.0.0.1:9/hook", "http://10.0.0.5/hook", "http://localhost/hook"] {
        let r = b.post("/admin/webhook-endpoints", &[("csrf", &csrf), ("url", target)]).await;
        names_field(&r, "url");
        assert!(r.body.contains("Use a public address"), "{}", r.body);
        assert!(r.body.contains(&format!("value=\"{target}\"")), "the value is kept: {}", r.body);
    }
    assert!(endpoints(&t).await.is_empty());
}

#[tokio::test]
async fn an_owner_adds_inbound_integrations_and_rotates_a_credential() {
    let t = shop().await;
    let mut b = signed_in(&t, Role::Owner).await;
    let overview = ok_page(&mut b, "/admin/integrations").await;
    assert!(overview.contains("action=\"/admin/integrations\"") && overview.contains("Add inbound integration"), "{overview}");
    let csrf = b.get("/admin/integrations").await.csrf();
    let good = [("name", "Acme 3PL"), ("kind", "3pl"), ("auth", "api_key"), ("freshness_sla_minutes", "30")];
    let with = |name: &str, value: &'static str| -> Vec<(&'static str, String)> {
        good.iter().map(|(k, v)| (*k, if *k == name { value.to_owned() } else { (*v).to_owned() })).collect()
    };
    for (field, value) in [
        ("name", ""),
        ("kind", "spaceship"),
        ("auth", "password"),
        ("freshness_sla_minutes", "0"),
        ("freshness_sla_minutes", "43201"),
        ("freshness_sla_minutes", "soon"),
    ] {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        let pairs = with(field, value);
        form.extend(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        names_field(&b.post("/admin/integrations", &form).await, field);
    }
    assert_eq!(b.post("/admin/integrations", &good).await.status, StatusCode::FORBIDDEN, "no CSRF token");
    assert!(integrations(&t).await.is_empty(), "nothing was created");

    // An API key integration: its key pushes a feed that is accepted.
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend(good);
    let r = b.post("/admin/integrations", &form).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let key = secret_of(&r);
    assert!(key.starts_with("keel_ik_"), "{key}");
    assert_secret_stays_in_body(&r, &key);
    let all = integrations(&t).await;
    assert_eq!(all.len(), 1);
    let id = all[0]["id"].as_str().unwrap().to_owned();
    assert_eq!((all[0]["name"].as_str(), all[0]["kind"].as_str(), all[0]["auth"].as_str()), (Some("Acme 3PL"), Some("3pl"), Some("api_key")));
    assert_eq!(all[0]["freshness_sla_seconds"], 1800);
    assert!(r.body.contains(&format!("/hooks/integrations/{id}/stock-feed")) && r.body.contains("Authorization: Bearer"), "{}", r.body);
    assert!(r.body.contains(&format!("href=\"/admin/integrations/{id}\"")));
    assert_eq!(audit_target(&t, "POST /admin/integrations", 201).await, id.as_str(), "the audit entry names the integration made");
    let feed = mug_feed(&t).await;
    let pushed = push_csv(&t, &id, &key, feed.clone()).await;
    assert_eq!((pushed.status, pushed.body["status"].as_str()), (StatusCode::CREATED, Some("applied")), "{}", pushed.body);

    // The same name again: 422 on the name, nothing created.
    names_field(&b.post("/admin/integrations", &form).await, "name");
    assert_eq!(integrations(&t).await.len(), 1);

    // A signed (HMAC) integration.
    let r = b.post("/admin/integrations", &[("csrf", &csrf), ("name", "Acme ERP"), ("kind", "erp"), ("auth", "hmac"), ("freshness_sla_minutes", "15")]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let secret = secret_of(&r);
    assert!(secret.starts_with("keel_whsec_") && r.body.contains("X-Keel-Signature"), "{}", r.body);
    assert_secret_stays_in_body(&r, &secret);
    let erp = integrations(&t).await.into_iter().find(|i| i["name"] == "Acme ERP").unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(push_signed(&t, &erp, &secret, feed.clone()).await, StatusCode::CREATED);

    // Rotation: the page has the button; refused without CSRF; the old
    // secret stops working, the new one works.
    let page_path = format!("/admin/integrations/{erp}");
    let page = ok_page(&mut b, &page_path).await;
    assert!(page.contains("Rotate credential") && !page.contains(&secret), "{page}");
    let rotate = format!("{page_path}/rotate-credential");
    assert_eq!(b.post(&rotate, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(push_signed(&t, &erp, &secret, feed.clone()).await, StatusCode::CREATED, "still the old secret");
    let r = b.post(&rotate, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new = secret_of(&r);
    assert!(new.starts_with("keel_whsec_") && new != secret);
    assert_secret_stays_in_body(&r, &new);
    assert!(r.body.contains("Credential rotated") && r.body.contains("stopped working"), "{}", r.body);
    assert_eq!(push_signed(&t, &erp, &secret, feed.clone()).await, StatusCode::UNAUTHORIZED, "the old secret is refused");
    assert_eq!(push_signed(&t, &erp, &new, feed).await, StatusCode::CREATED);
    assert_eq!(audit_target(&t, "POST /admin/integrations/{integration_id}/rotate-credential", 200).await, erp.as_str());
    let r = b.post("/admin/integrations/intg_0193a0a0a0a07000800000000000000a/rotate-credential", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("There is no such integration"));
}

#[tokio::test]
async fn an_analyst_may_not_add_endpoints_or_integrations_or_rotate_secrets() {
    let t = shop().await;
    let (ep, secret) = endpoint(&t, "https://hooks.example.com/keel").await;
    let (integ, key) = integration(&t, "Acme 3PL").await;
    let mut b = signed_in(&t, Role::Analyst).await;
    let overview = ok_page(&mut b, "/admin/integrations").await;
    assert!(!overview.contains("Add webhook endpoint") && !overview.contains("Add inbound integration"), "no add forms");
    assert!(!ok_page(&mut b, &format!("/admin/webhook-endpoints/{ep}")).await.contains("Rotate signing secret"));
    assert!(!ok_page(&mut b, &format!("/admin/integrations/{integ}")).await.contains("Rotate credential"));
    let csrf = b.get("/admin/integrations").await.csrf();
    for (path, form) in [
        ("/admin/webhook-endpoints".to_owned(), vec![("url", "https://evil.example.com/x")]),
        ("/admin/integrations".to_owned(), vec![("name", "Sneaky"), ("kind", "erp"), ("auth", "hmac"), ("freshness_sla_minutes", "15")]),
        (format!("/admin/webhook-endpoints/{ep}/rotate-secret"), vec![]),
        (format!("/admin/integrations/{integ}/rotate-credential"), vec![]),
    ] {
        let mut f = vec![("csrf", csrf.as_str())];
        f.extend(form);
        let r = b.post(&path, &f).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!r.body.contains("whsec_") && !r.body.contains("keel_ik_"), "{path}: no secret");
    }
    assert_eq!((endpoints(&t).await.len(), integrations(&t).await.len()), (1, 1), "nothing was created");
    assert_eq!(api_secret(&t, &ep).await, secret, "the secret is unchanged");
    let csv = mug_feed(&t).await;
    assert_eq!(push_csv(&t, &integ, &key, csv).await.status, StatusCode::CREATED, "the credential still works");
}

//! Crash the real binary mid-checkout (the test-only `KEEL_FAULT` switch),
//! restart it, and check the recovery worker leaves no held stock and no
//! charge without an order.

use keel_app::Actor;
use keel_testkit::{test_secret_key_hex, TestDb};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start(db: &TestDb, fault: Option<&str>) -> Server {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
    cmd.args(db.cli_args())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("KEEL_SECRET_KEY", test_secret_key_hex())
        .env("KEEL_CHECKOUT_LEASE_SECONDS", "1")
        .env("KEEL_LOG", "warn")
        .env_remove("KEEL_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match fault {
        Some(f) => cmd.env("KEEL_FAULT", f),
        None => cmd.env_remove("KEEL_FAULT"),
    };
    let child = cmd.spawn().expect("start keel");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "keel did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server { child, base }
}

fn v<T: serde::de::DeserializeOwned>(j: Value) -> T {
    serde_json::from_value(j).unwrap()
}

/// Stock, a shipping method and a cart of 2 × CRASH ready for checkout.
async fn fixture(db: &TestDb) -> (String, String, String) {
    let app = db.open().await;
    let actor = Actor::system("test");
    let loc = app.create_location(&actor, v(json!({"name": "L", "kind": "warehouse", "country": "US"}))).await.unwrap();
    app.create_product(&actor, v(json!({"title": "Crash", "status": "active", "variants": [{"sku": "CRASH", "prices": [{"currency": "USD", "amount": 2500}]}]})))
        .await
        .unwrap();
    app.adjust_inventory(&actor, v(json!({"sku": "CRASH", "location_id": loc.id, "kind": "receive", "quantity_delta": 5}))).await.unwrap();
    let ship = app.create_shipping_method(&actor, v(json!({"name": "Std", "currency": "USD", "amount": 400}))).await.unwrap();
    let cart = app.create_cart(&actor, v(json!({"currency": "USD", "email": "crash@example.com"}))).await.unwrap();
    app.add_cart_line(&actor, &cart.id, v(json!({"sku": "CRASH", "quantity": 2}))).await.unwrap();
    let address = json!({"name": "C", "line1": "1 Road", "city": "Town", "postal_code": "1000", "country": "US"});
    app.update_cart(&actor, &cart.id, v(json!({"shipping_address": address, "shipping_method_id": ship.id}))).await.unwrap();
    let (_, key) = app.create_api_key("recovery").await.unwrap();
    app.store.close().await;
    (cart.id, loc.id, key)
}

async fn get(s: &Server, key: &str, path: &str) -> Value {
    let r = reqwest::Client::new().get(format!("{}/api/v1{path}", s.base)).bearer_auth(key).send().await.unwrap();
    r.json().await.unwrap()
}

/// Waits until the cart leaves `completing` (recovery settled it).
async fn settled_cart(s: &Server, key: &str, cart: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = get(s, key, &format!("/carts/{cart}")).await;
        if c["status"] != "completing" {
            return c;
        }
        assert!(Instant::now() < deadline, "recovery did not settle the checkout: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn crash_during_checkout(db: &TestDb, fault: &str, cart: &str, key: &str) {
    let mut s = start(db, Some(fault)).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/carts/{cart}/complete", s.base))
        .bearer_auth(key)
        .json(&json!({"payment_method": "tok_visa"}))
        .send()
        .await;
    assert!(r.is_err(), "the process should have died mid-request: {:?}", r.map(|r| r.status()));
    let status = s.child.wait().unwrap();
    assert_eq!(status.code(), Some(86), "exited through the fault switch");
}

#[tokio::test]
async fn crash_between_authorize_and_order_finishes_the_order() {
    let db = TestDb::fresh().await;
    let (cart, loc, key) = fixture(&db).await;
    crash_during_checkout(&db, "after_authorize", &cart, &key).await;
    assert_eq!(db.scalar("SELECT COUNT(*) FROM test_payments WHERE key LIKE 'payment:%'").await, 1, "authorized before the crash");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 0, "no order yet");

    let s = start(&db, None).await;
    let c = settled_cart(&s, &key, &cart).await;
    assert_eq!(c["status"], "completed", "the paid checkout became an order: {c}");
    // Recovery creates the order, then captures it in a step of its own: the
    // cart can read "completed" while the capture is still under way.
    let order_path = format!("/orders/{}", c["order_id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let order = loop {
        let o = get(&s, &key, &order_path).await;
        if o["payment_status"] != "authorized" || Instant::now() >= deadline {
            break o;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(order["payment_status"], "captured");
    assert_eq!(order["totals"]["total"], 5400);
    let level = get(&s, &key, &format!("/inventory/levels?sku=CRASH&location_id={loc}")).await;
    assert_eq!((level["data"][0]["on_hand"].as_i64(), level["data"][0]["reserved"].as_i64()), (Some(5), Some(2)));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM test_payments WHERE key LIKE 'payment:%'").await, 1, "no second charge");
    let report = db.open().await.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[tokio::test]
async fn crash_between_reserve_and_authorize_releases_the_stock() {
    let db = TestDb::fresh().await;
    let (cart, loc, key) = fixture(&db).await;
    crash_during_checkout(&db, "after_reserve", &cart, &key).await;
    assert_eq!(db.scalar("SELECT COUNT(*) FROM reservations WHERE status = 'active'").await, 1, "stock held at the crash");

    let s = start(&db, None).await;
    let c = settled_cart(&s, &key, &cart).await;
    assert_eq!(c["status"], "open", "the shopper can check out again: {c}");
    let level = get(&s, &key, &format!("/inventory/levels?sku=CRASH&location_id={loc}")).await;
    assert_eq!((level["data"][0]["on_hand"].as_i64(), level["data"][0]["reserved"].as_i64()), (Some(5), Some(0)));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM test_payments").await, 0, "no charge");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 0);
    // And it can still be bought.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/carts/{cart}/complete", s.base))
        .bearer_auth(&key)
        .json(&json!({"payment_method": "tok_visa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let report = db.open().await.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// The order committed, then the process died before answering: the same
/// request retried (same Idempotency-Key and body) gets that order back at
/// once — not `idempotency_key_in_use`, not `cart_completed` — and the
/// payment is captured, once.
#[tokio::test]
async fn a_checkout_retried_after_a_crash_gets_its_original_order() {
    let db = TestDb::fresh().await;
    let (cart, loc, key) = fixture(&db).await;
    let complete = |s: &Server| {
        reqwest::Client::new()
            .post(format!("{}/api/v1/carts/{cart}/complete", s.base))
            .bearer_auth(&key)
            .header("Idempotency-Key", "checkout-retry-1")
            .json(&json!({"payment_method": "tok_visa"}))
            .send()
    };
    let mut s = start(&db, Some("after_order")).await;
    assert!(complete(&s).await.is_err(), "the process should have died mid-request");
    assert_eq!(s.child.wait().unwrap().code(), Some(86));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 1, "the order committed before the crash");

    let s = start(&db, None).await;
    // On SQLite the restarted process is the only one, so the dead one's
    // claim is free at once; on PostgreSQL other nodes may live, so it is
    // free when the dead process's lease runs out (at most 15 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = complete(&s).await.unwrap();
        if r.status() != reqwest::StatusCode::CONFLICT || keel_testkit::postgres_url().is_none() || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let status = r.status();
    let order: Value = r.json().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::CREATED, "the retry gets the original answer: {order}");
    let order_id = order["id"].as_str().unwrap().to_owned();
    assert_eq!(db.scalar(&format!("SELECT COUNT(*) FROM orders WHERE id = '{order_id}'")).await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders").await, 1, "no second order");
    // Replayed from then on.
    let again = complete(&s).await.unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::CREATED);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], order_id.as_str());

    // The capture the crash skipped happens anyway.
    let deadline = Instant::now() + Duration::from_secs(30);
    let paid = loop {
        let o = get(&s, &key, &format!("/orders/{order_id}")).await;
        if o["payment_status"] != "authorized" || Instant::now() >= deadline {
            break o;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(paid["payment_status"], "captured", "{paid}");
    let level = get(&s, &key, &format!("/inventory/levels?sku=CRASH&location_id={loc}")).await;
    assert_eq!(level["data"][0]["reserved"].as_i64(), Some(2));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM test_payments WHERE key LIKE 'payment:%'").await, 1, "one charge");
    let report = db.open().await.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// The provider captured but Keel never recorded it (a crash between the
/// two, or a capture made at the provider's dashboard): `keel check` names
/// the order, and reconciliation records the capture.
#[tokio::test]
async fn reconciliation_records_a_capture_only_the_provider_knows() {
    use keel_app::checkout::{CaptureMode, CheckoutConfig};
    let db = TestDb::fresh().await;
    let (cart, _, _) = fixture(&db).await;
    let app = db.open().await.with_checkout(CheckoutConfig { capture: CaptureMode::Fulfillment, ..CheckoutConfig::default() });
    let actor = Actor::system("test");
    let order = app.complete_cart(&actor, &cart, v(json!({"payment_method": "tok_visa"})), None).await.unwrap();
    assert_eq!(order.payment_status, "authorized");
    let payment_id = order.payment.id.clone().unwrap();
    app.payments.capture(&payment_id, None, "captured-elsewhere").await.unwrap();

    let later = keel_domain::time::now_micros() + 60_000_000;
    let problems = app.check_payments(later).await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!((problems[0].check, problems[0].subject.as_str()), ("payment_state", order.id.as_str()));

    assert_eq!(app.reconcile_payments(later).await.unwrap(), 1);
    let repaired = app.get_order(&order.id).await.unwrap();
    assert_eq!((repaired.payment_status.as_str(), repaired.payment.amount_captured), ("captured", 5400));
    assert!(app.check_payments(later + 60_000_000).await.unwrap().is_empty());
    assert_eq!(app.reconcile_payments(later + 60_000_000).await.unwrap(), 0, "nothing left to do");
}

/// kill -9 under concurrent checkouts, then a restart: every acknowledged
/// order is there, orders never exceed the stock, the same requests retried
/// get their original answers, every order ends captured and agreeing with
/// the provider, and the ledger equals the levels.
#[tokio::test]
async fn kill_9_under_concurrent_checkouts_loses_nothing_acknowledged() {
    const CARTS: usize = 16;
    const UNITS: i64 = 10;
    let db = TestDb::fresh().await;
    let (carts, loc, key) = {
        let app = db.open().await;
        let actor = Actor::system("test");
        let loc = app.create_location(&actor, v(json!({"name": "L", "kind": "warehouse", "country": "US"}))).await.unwrap();
        app.create_product(&actor, v(json!({"title": "Kill", "status": "active", "variants": [{"sku": "KILL", "prices": [{"currency": "USD", "amount": 1000}]}]})))
            .await
            .unwrap();
        app.adjust_inventory(&actor, v(json!({"sku": "KILL", "location_id": loc.id, "kind": "receive", "quantity_delta": UNITS}))).await.unwrap();
        let ship = app.create_shipping_method(&actor, v(json!({"name": "Std", "currency": "USD", "amount": 400}))).await.unwrap();
        let address = json!({"name": "K", "line1": "1 Road", "city": "Town", "postal_code": "1000", "country": "US"});
        let mut carts = Vec::new();
        for i in 0..CARTS {
            let cart = app.create_cart(&actor, v(json!({"currency": "USD", "email": format!("k{i}@example.com")}))).await.unwrap();
            app.add_cart_line(&actor, &cart.id, v(json!({"sku": "KILL", "quantity": 1}))).await.unwrap();
            app.update_cart(&actor, &cart.id, v(json!({"shipping_address": address, "shipping_method_id": ship.id}))).await.unwrap();
            carts.push(cart.id);
        }
        let (_, key) = app.create_api_key("kill").await.unwrap();
        app.store.close().await;
        (carts, loc.id, key)
    };
    let complete = |base: String, cart: String, key: String| async move {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/carts/{cart}/complete"))
            .bearer_auth(key)
            .header("Idempotency-Key", format!("kill-{cart}"))
            .json(&json!({"payment_method": "tok_visa"}))
            .timeout(Duration::from_secs(20))
            .send()
            .await
    };

    let mut s = start(&db, None).await;
    let calls: Vec<_> = carts.iter().map(|c| tokio::spawn(complete(s.base.clone(), c.clone(), key.clone()))).collect();
    // Let a few finish, then kill -9 with the rest in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.scalar("SELECT COUNT(*) FROM orders").await < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.child.kill().unwrap();
    let _ = s.child.wait();
    let mut acknowledged = std::collections::BTreeMap::new();
    for (cart, call) in carts.iter().zip(calls) {
        if let Ok(Ok(r)) = call.await {
            if r.status() == reqwest::StatusCode::CREATED {
                let o: Value = r.json().await.unwrap_or(Value::Null);
                if let Some(id) = o["id"].as_str() {
                    acknowledged.insert(cart.clone(), id.to_owned());
                }
            }
        }
    }

    let s = start(&db, None).await;
    // Every acknowledged order survived.
    for id in acknowledged.values() {
        assert_eq!(db.scalar(&format!("SELECT COUNT(*) FROM orders WHERE id = '{id}'")).await, 1, "acknowledged order {id} lost");
    }
    // The same requests retried: the acknowledged get the same order back;
    // the rest settle to an order or a clean refusal, never a 5xx.
    let deadline = Instant::now() + Duration::from_secs(60);
    for cart in &carts {
        loop {
            let r = complete(s.base.clone(), cart.clone(), key.clone()).await.unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let busy = status == reqwest::StatusCode::CONFLICT
                && matches!(body["error"]["code"].as_str(), Some("idempotency_key_in_use" | "checkout_in_progress" | "cart_not_open"));
            if busy && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            assert!(!status.is_server_error(), "retry of {cart}: {status} {body}");
            if let Some(id) = acknowledged.get(cart) {
                assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
                assert_eq!(body["id"], id.as_str(), "the original order, not another");
            }
            break;
        }
    }
    // Orders = units sold, never more than the stock.
    let orders = db.scalar("SELECT COUNT(*) FROM orders").await;
    assert!(orders <= UNITS, "{orders} orders for {UNITS} units");
    let level = get(&s, &key, &format!("/inventory/levels?sku=KILL&location_id={loc}")).await;
    assert_eq!(level["data"][0]["reserved"].as_i64(), Some(orders), "sold units = orders: {level}");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM reservations WHERE status = 'active'").await, 0, "no stock held by a dead checkout");
    // Every order captured (the job finishes captures the crash skipped),
    // one charge each, and agreeing with the provider.
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.scalar("SELECT COUNT(*) FROM orders WHERE payment_status <> 'captured'").await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM orders WHERE payment_status <> 'captured'").await, 0, "orders left uncaptured");
    let app = db.open().await;
    let later = keel_domain::time::now_micros() + 60_000_000;
    assert!(app.check_payments(later).await.unwrap().is_empty(), "payments disagree with the provider");
    let report = app.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

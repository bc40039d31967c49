use keel_testkit::{json, spawn_app, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;

/// A shop with one location, a shipping method to the US, a 10 % US tax and
/// the given SKUs in stock.
pub(crate) async fn shop(stock: &[(&str, i64)]) -> (TestApp, String) {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    let skus: Vec<&str> = stock.iter().map(|(s, _)| *s).collect();
    t.product("Goods", &skus).await;
    for (sku, n) in stock {
        if *n > 0 {
            t.receive(sku, &loc, *n).await;
        }
    }
    t.ok("/shipping-methods", json!({"name": "Standard", "currency": "USD", "amount": 500, "countries": ["US"]})).await;
    t.ok("/tax-rates", json!({"country": "US", "rate_bps": 1000})).await;
    (t, loc)
}

/// A cart ready for checkout with `lines` (sku, quantity).
pub(crate) async fn ready_cart(t: &TestApp, lines: &[(&str, i64)]) -> String {
    let cart = t.ok("/carts", json!({"currency": "USD", "email": "Ada@Example.com"})).await;
    let id = cart["id"].as_str().unwrap().to_owned();
    for (sku, q) in lines {
        t.ok(&format!("/carts/{id}/lines"), json!({"sku": sku, "quantity": q})).await;
    }
    let methods = t.get(&format!("/carts/{id}/shipping-methods")).await;
    let address = json!({"name": "Ada Lovelace", "line1": "1 Main St", "city": "Springfield", "region": "IL", "postal_code": "62701", "country": "US"});
    t.ok(&format!("/carts/{id}"), json!({"shipping_address": address})).await;
    let method = methods.body["data"][0]["id"].clone();
    t.ok(&format!("/carts/{id}"), json!({"shipping_method_id": method})).await;
    id
}

pub(crate) async fn complete(t: &TestApp, cart: &str, token: &str) -> keel_testkit::Res {
    t.post(&format!("/carts/{cart}/complete"), json!({"payment_method": token})).await
}

pub(crate) fn levels(v: &Value) -> (i64, i64, i64) {
    (v["on_hand"].as_i64().unwrap(), v["reserved"].as_i64().unwrap(), v["available"].as_i64().unwrap())
}

#[tokio::test]
async fn full_checkout_creates_a_paid_order_and_commits_stock() {
    let (t, loc) = shop(&[("TEE", 10), ("MUG", 5)]).await;
    let cart = ready_cart(&t, &[("TEE", 2), ("MUG", 1)]).await;
    let c = t.get(&format!("/carts/{cart}")).await.body;
    // 2 × 1000 + 1000 = 3000; shipping 500; 10 % tax on 3500 = 350.
    assert_eq!(c["totals"], json!({"subtotal": 3000, "discount_total": 0, "shipping_total": 500, "tax_total": 350, "total": 3850, "tax_inclusive": false}));
    assert_eq!(c["email"], "ada@example.com");

    let r = complete(&t, &cart, "tok_visa").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let o = r.body;
    assert!(o["id"].as_str().unwrap().starts_with("ord_"));
    assert_eq!(o["number"], 1001);
    assert_eq!((o["status"].as_str(), o["payment_status"].as_str()), (Some("paid"), Some("captured")));
    assert_eq!(o["totals"]["total"], 3850);
    assert_eq!(o["payment"]["amount_captured"], 3850);
    assert_eq!(o["shipping_address"]["name"], "Ada Lovelace");
    let kinds: Vec<&str> = o["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["order.created", "order.paid"]);
    // The stock is held for the order until it ships.
    assert_eq!(levels(&t.level("TEE", &loc).await), (10, 2, 8));
    let res = t.get(&format!("/reservations/{}", o["reservation_id"].as_str().unwrap())).await;
    assert_eq!(res.body["status"], "committed");
    let cart_after = t.get(&format!("/carts/{cart}")).await.body;
    assert_eq!((cart_after["status"].as_str(), cart_after["order_id"].as_str()), (Some("completed"), o["id"].as_str()));
    // Completing again is refused, and the order is findable by email.
    let again = complete(&t, &cart, "tok_visa").await;
    assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "cart_completed"));
    let by_email = t.get("/orders?email=ADA@example.com").await;
    assert_eq!(by_email.body["data"].as_array().unwrap().len(), 1);
    // Events carry no personal data.
    let events = t.events("type=order.*", 2).await;
    // Hex ids can contain "ada", so look for the name and the address, not the letters.
    let text = events.to_string().to_lowercase();
    assert!(!text.contains("lovelace") && !text.contains("ada@example.com"), "{events}");
    t.assert_consistent().await;
}

#[tokio::test]
async fn a_declined_card_leaves_stock_exactly_as_before() {
    let (t, loc) = shop(&[("TEE", 3)]).await;
    let cart = ready_cart(&t, &[("TEE", 2)]).await;
    let before = t.level("TEE", &loc).await;
    for (token, decline) in [("tok_chargeDeclinedInsufficientFunds", Some("insufficient_funds")), ("tok_chargeDeclined", Some("generic_decline"))] {
        let r = complete(&t, &cart, token).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::PAYMENT_REQUIRED, "card_declined"), "{}", r.body);
        assert_eq!(r.body["error"]["decline_code"].as_str(), decline);
        assert_eq!(r.body["error"]["type"], "card_error");
        let after = t.level("TEE", &loc).await;
        assert_eq!(levels(&after), levels(&before));
        assert_eq!(t.get(&format!("/carts/{cart}")).await.body["status"], "open", "the shopper can try another card");
    }
    let failed = t.events("type=payment.failed", 2).await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 2);
    let ok = complete(&t, &cart, "tok_visa").await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM orders").await, 1);
    t.assert_consistent().await;
}

#[tokio::test]
async fn carts_validate_their_input() {
    let (t, _) = shop(&[("TEE", 3)]).await;
    let r = t.post("/carts", json!({"currency": "XXX"})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "currency"));
    let cart = t.ok("/carts", json!({"currency": "EUR"})).await;
    let id = cart["id"].as_str().unwrap();
    let r = t.post(&format!("/carts/{id}/lines"), json!({"sku": "TEE", "quantity": 1})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "no_price"), "prices must match the cart currency");
    let r = t.post(&format!("/carts/{id}/lines"), json!({"sku": "TEE", "quantity": 0})).await;
    assert_eq!(r.error_param(), "quantity");
    let r = t.post(&format!("/carts/{id}/complete"), json!({"payment_method": "tok_visa"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "cart_empty"));
    let r = t.post(&format!("/carts/{id}"), json!({"email": "not-an-email"})).await;
    assert_eq!(r.error_param(), "email");
    let r = t.post(&format!("/carts/{id}"), json!({"shipping_address": {"name": "A", "line1": "B", "city": "C", "postal_code": "1", "country": "USA"}})).await;
    assert_eq!(r.error_param(), "shipping_address.country");
    let usd = ready_cart(&t, &[("TEE", 1)]).await;
    let line = t.get(&format!("/carts/{usd}")).await.body["lines"][0]["id"].as_str().unwrap().to_owned();
    let r = t.post(&format!("/carts/{usd}/lines/{line}"), json!({"quantity": 3})).await;
    assert_eq!(r.body["totals"]["subtotal"], 3000);
    let r = t.send(Method::DELETE, &format!("/carts/{usd}/lines/{line}"), None, &[]).await;
    assert_eq!(r.body["lines"].as_array().unwrap().len(), 0);
    let r = t.post(&format!("/carts/{usd}/complete"), json!({"payment_method": "4242 4242 4242 4242"})).await;
    assert_eq!(r.error_param(), "payment_method", "card numbers are refused");
}

#[tokio::test]
async fn same_sku_twice_or_a_kit_and_its_part_cannot_take_more_than_exists() {
    let (t, loc) = shop(&[("TEE", 3), ("MUG", 2)]).await;
    t.post("/products", json!({"title": "Kit", "status": "active", "variants": [{"sku": "KIT", "prices": [{"currency": "USD", "amount": 1500}], "components": [{"sku": "TEE", "quantity": 1}, {"sku": "MUG", "quantity": 1}]}]})).await;
    let cart = ready_cart(&t, &[("TEE", 2), ("TEE", 2)]).await;
    let r = complete(&t, &cart, "tok_visa").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "insufficient_stock"));
    let cart = ready_cart(&t, &[("KIT", 2), ("MUG", 1)]).await;
    let r = complete(&t, &cart, "tok_visa").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "insufficient_stock"));
    assert_eq!(levels(&t.level("MUG", &loc).await), (2, 0, 2), "nothing held after a refusal");
    assert_eq!(t.get(&format!("/carts/{cart}")).await.body["status"], "open");
    let cart = ready_cart(&t, &[("KIT", 1), ("MUG", 1)]).await;
    assert_eq!(complete(&t, &cart, "tok_visa").await.status, StatusCode::CREATED);
    assert_eq!(levels(&t.level("MUG", &loc).await), (2, 2, 0));
    t.assert_consistent().await;
}

#[tokio::test]
async fn cancel_releases_stock_and_refunds_and_partial_refunds_add_up() {
    let (t, loc) = shop(&[("TEE", 5)]).await;
    let cart = ready_cart(&t, &[("TEE", 2)]).await;
    let order = complete(&t, &cart, "tok_visa").await.body;
    let id = order["id"].as_str().unwrap();
    let r = t.post(&format!("/orders/{id}/refunds"), json!({"amount": 1000, "reason": "damaged box"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["payment_status"].as_str(), r.body["payment"]["amount_refunded"].as_i64()), (Some("partially_refunded"), Some(1000)));
    let r = t.post(&format!("/orders/{id}/refunds"), json!({"amount": 99999})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "amount"));
    let c = t.post(&format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    assert_eq!((c.body["status"].as_str(), c.body["payment_status"].as_str()), (Some("cancelled"), Some("refunded")));
    assert_eq!(c.body["payment"]["amount_refunded"], c.body["payment"]["amount_captured"]);
    assert_eq!(c.body["refunds"].as_array().unwrap().len(), 2);
    assert_eq!(levels(&t.level("TEE", &loc).await), (5, 0, 5), "unshipped stock comes back");
    let kinds: Vec<&str> = c.body["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["order.created", "order.paid", "refund.created", "order.cancelled"]);
    let again = t.post(&format!("/orders/{id}/cancel"), json!({})).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "invalid_order_state"));
    t.assert_consistent().await;
}

#[tokio::test]
async fn one_order_per_cart_under_retries_and_races() {
    let (t, loc) = shop(&[("TEE", 10)]).await;
    let t = Arc::new(t);
    // The same Idempotency-Key, concurrently: one order, same answer.
    let cart = ready_cart(&t, &[("TEE", 1)]).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (t, cart) = (t.clone(), cart.clone());
        tasks.push(tokio::spawn(async move {
            t.send(Method::POST, &format!("/carts/{cart}/complete"), Some(json!({"payment_method": "tok_visa"})), &[("Idempotency-Key", "pay-1")]).await
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        let r = task.await.unwrap();
        assert!(r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT, "{} {}", r.status, r.body);
        if r.status == StatusCode::CREATED {
            created.push(r.body["id"].clone());
        }
    }
    assert!(!created.is_empty());
    assert!(created.iter().all(|id| *id == created[0]));
    let replay = t.send(Method::POST, &format!("/carts/{cart}/complete"), Some(json!({"payment_method": "tok_visa"})), &[("Idempotency-Key", "pay-1")]).await;
    assert_eq!((replay.status, &replay.body["id"]), (StatusCode::CREATED, &created[0]));

    // Concurrent completes without a key: one order, no orphan hold or charge.
    let cart = ready_cart(&t, &[("TEE", 2)]).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (t, cart) = (t.clone(), cart.clone());
        tasks.push(tokio::spawn(async move { complete(&t, &cart, "tok_visa").await }));
    }
    let mut ok = 0;
    for task in tasks {
        let r = task.await.unwrap();
        match r.status {
            StatusCode::CREATED => ok += 1,
            StatusCode::CONFLICT => assert!(["cart_not_open", "cart_completed", "cart_changed"].contains(&r.error_code()), "{}", r.body),
            other => panic!("{other} {}", r.body),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM orders").await, 2);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM test_payments WHERE key LIKE 'payment:%'").await, 2, "one charge per order");
    assert_eq!(levels(&t.level("TEE", &loc).await), (10, 3, 7));
    t.assert_consistent().await;
}

/// 300 concurrent checkouts for the last 40 units: exactly 40 orders and 260
/// clean `insufficient_stock`; failures never reach the payment provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_checkouts_for_forty_units() {
    let (t, loc) = shop(&[("LAST", 40)]).await;
    let t = Arc::new(t);
    let mut carts = Vec::new();
    for _ in 0..300 {
        carts.push(ready_cart(&t, &[("LAST", 1)]).await);
    }
    let mut tasks = Vec::new();
    for cart in carts {
        let t = t.clone();
        tasks.push(tokio::spawn(async move { complete(&t, &cart, "tok_visa").await }));
    }
    let (mut ok, mut sold_out, mut other) = (0, 0, Vec::new());
    for task in tasks {
        let r = task.await.unwrap();
        match (r.status, r.error_code()) {
            (StatusCode::CREATED, _) => ok += 1,
            (StatusCode::CONFLICT, "insufficient_stock") => sold_out += 1,
            _ => other.push(format!("{} {}", r.status, r.body)),
        }
    }
    assert!(other.is_empty(), "{other:?}");
    assert_eq!((ok, sold_out), (40, 260));
    assert_eq!(levels(&t.level("LAST", &loc).await), (40, 40, 0));
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM test_payments WHERE key LIKE 'payment:%'").await, 40, "no payment for a failed checkout");
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM orders WHERE payment_status = 'captured'").await, 40);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM carts WHERE status = 'completing'").await, 0);
    t.assert_consistent().await;
}

#[tokio::test]
async fn capture_at_fulfillment_keeps_the_authorization_until_captured() {
    use keel_app::checkout::{CaptureMode, CheckoutConfig};
    let t = keel_testkit::spawn_with(|app| app.with_checkout(CheckoutConfig { capture: CaptureMode::Fulfillment, ..CheckoutConfig::default() })).await;
    let loc = t.location("Main", 1).await;
    t.product("Goods", &["TEE"]).await;
    t.receive("TEE", &loc, 4).await;
    let cart = ready_cart(&t, &[("TEE", 1)]).await;
    let o = complete(&t, &cart, "tok_visa").await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.body);
    assert_eq!((o.body["status"].as_str(), o.body["payment_status"].as_str()), (Some("authorized"), Some("authorized")));
    let id = o.body["id"].as_str().unwrap();
    let r = t.post(&format!("/orders/{id}/refunds"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "nothing_to_refund"), "nothing captured yet");
    let c = t.post(&format!("/orders/{id}/capture"), json!({})).await;
    assert_eq!((c.body["status"].as_str(), c.body["payment_status"].as_str()), (Some("paid"), Some("captured")), "{}", c.body);
    assert_eq!(c.body["payment"]["amount_captured"], 1000);

    // Cancelling an order that was only authorized voids the payment.
    let cart = ready_cart(&t, &[("TEE", 1)]).await;
    let o = complete(&t, &cart, "tok_visa").await.body;
    let x = t.post(&format!("/orders/{}/cancel", o["id"].as_str().unwrap()), json!({})).await;
    assert_eq!((x.body["status"].as_str(), x.body["payment_status"].as_str()), (Some("cancelled"), Some("voided")), "{}", x.body);
    assert_eq!(levels(&t.level("TEE", &loc).await), (4, 1, 3));
    t.assert_consistent().await;
}

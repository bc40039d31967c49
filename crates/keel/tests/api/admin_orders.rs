//! Admin order pages: the list and its filters, the detail page with its
//! timeline, cancel / capture / refund through the forms, refusals by role
//! and without CSRF, and the audit entries.

use crate::admin_client::{signed_in, Browser, Page};
use crate::checkout::{complete, levels, ready_cart, shop};
use keel_testkit::{json, TestApp};
use keel_web::access::Role;
use reqwest::StatusCode;
use serde_json::Value;

/// Places an order for `lines` paid with `tok_visa` by `email`.
async fn order(t: &TestApp, lines: &[(&str, i64)], email: &str) -> Value {
    let cart = ready_cart(t, lines).await;
    t.ok(&format!("/carts/{cart}"), json!({"email": email})).await;
    let r = complete(t, &cart, "tok_visa").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

fn id(o: &Value) -> String {
    o["id"].as_str().unwrap().to_owned()
}

fn href(o: &Value) -> String {
    format!("/admin/orders/{}", id(o))
}

async fn api_order(t: &TestApp, o: &Value) -> Value {
    t.get(&format!("/orders/{}", id(o))).await.body
}

/// The orders a list page links to.
fn listed(p: &Page, orders: &[&Value]) -> Vec<bool> {
    orders.iter().map(|o| p.body.contains(&format!("href=\"{}\"", href(o)))).collect()
}

fn day(offset_days: i64) -> String {
    let now = keel_domain::time::now_micros() + offset_days * 86_400_000_000;
    keel_domain::time::to_rfc3339(now)[..10].to_owned()
}

#[tokio::test]
async fn the_list_shows_orders_and_each_filter_narrows_it() {
    let (t, _) = shop(&[("TEE", 10), ("MUG", 5)]).await;
    let a = order(&t, &[("TEE", 2), ("MUG", 1)], "ada@example.com").await;
    let b = order(&t, &[("TEE", 1)], "grace@example.com").await;
    let c = t.post(&format!("/orders/{}/cancel", id(&b)), json!({})).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let mut owner = signed_in(&t, Role::Owner).await;

    let p = owner.get("/admin/orders").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(listed(&p, &[&a, &b]), [true, true]);
    for text in ["#1001", "#1002", "ada@example.com", "grace@example.com", "$38.50", "Paid, not yet fulfilled", "Cancelled", "Captured", "Refunded"] {
        assert!(p.body.contains(text), "{text} in {}", p.body);
    }
    assert!(p.body.contains("<td class=\"num\">3</td>"), "three units in the first order");

    let cases: &[(&str, [bool; 2])] = &[
        ("status=cancelled", [false, true]),
        ("status=paid", [true, false]),
        ("payment_status=captured", [true, false]),
        ("payment_status=refunded", [false, true]),
        ("q=1002", [false, true]),
        ("q=%231001", [true, false]),
        ("q=%20GRACE%40Example.com%20", [false, true]),
        ("q=nobody%40example.com", [false, false]),
        ("status=paid&q=1002", [false, false]),
    ];
    for (query, expected) in cases {
        let p = owner.get(&format!("/admin/orders?{query}")).await;
        assert_eq!(p.status, StatusCode::OK, "{query}: {}", p.body);
        assert_eq!(listed(&p, &[&a, &b]), *expected, "{query}");
    }
    let (yesterday, today, tomorrow) = (day(-1), day(0), day(1));
    for (query, expected) in [
        (format!("from={today}&to={today}"), [true, true]),
        (format!("from={tomorrow}"), [false, false]),
        (format!("to={yesterday}"), [false, false]),
        (format!("from={yesterday}&payment_status=captured"), [true, false]),
    ] {
        let p = owner.get(&format!("/admin/orders?{query}")).await;
        assert_eq!(p.status, StatusCode::OK, "{query}: {}", p.body);
        assert_eq!(listed(&p, &[&a, &b]), expected, "{query}");
    }
    // Bad filters: 422 naming the field, no rows.
    for (query, field) in [("q=ada", "f-q"), ("from=yesterday", "f-from"), (&*format!("from={today}&to={yesterday}"), "f-to")] {
        let p = owner.get(&format!("/admin/orders?{query}")).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(p.body.contains(&format!("href=\"#{field}\"")), "{query}: {}", p.body);
        assert_eq!(listed(&p, &[&a, &b]), [false, false]);
    }

    // A role that reads orders but not customers sees no emails and cannot
    // search by one.
    let mut im = signed_in(&t, Role::InventoryManager).await;
    let p = im.get("/admin/orders").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.body.contains("ada@example.com") && p.body.contains("Hidden"), "{}", p.body);
    let p = im.get("/admin/orders?q=ada%40example.com").await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    let p = im.get(&href(&a)).await;
    assert!(!p.body.contains("ada@example.com") && !p.body.contains("Lovelace"), "{}", p.body);
}

#[tokio::test]
async fn the_list_pages_by_fifty() {
    let (t, _) = shop(&[("TEE", 100)]).await;
    let mut first = None;
    for _ in 0..51 {
        let o = order(&t, &[("TEE", 1)], "ada@example.com").await;
        first.get_or_insert(o);
    }
    let first = first.unwrap();
    let mut b = signed_in(&t, Role::Analyst).await;
    let p = b.get("/admin/orders?payment_status=captured").await;
    assert_eq!(listed(&p, &[&first]), [false], "the oldest is on page 2");
    assert!(p.body.contains("page=2\" rel=\"next\"") && p.body.contains("payment_status=captured"), "the next page keeps the filter");
    let p = b.get("/admin/orders?payment_status=captured&page=2").await;
    assert_eq!(listed(&p, &[&first]), [true]);
    assert!(p.body.contains("Previous page") && !p.body.contains("Next page"));
}

#[tokio::test]
async fn the_detail_shows_the_order_and_a_cancel_releases_stock_with_the_staff_user_in_the_timeline() {
    let (t, loc) = shop(&[("TEE", 10), ("MUG", 5)]).await;
    let a = order(&t, &[("TEE", 2), ("MUG", 1)], "ada@example.com").await;
    assert_eq!(levels(&t.level("TEE", &loc).await), (10, 2, 8));
    let mut b = signed_in(&t, Role::Owner).await;
    let p = b.get(&href(&a)).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    for text in [
        "<h1>Order #1001</h1>", "TEE", "MUG", "$10.00", "$20.00", "$30.00", "$5.00", "$3.50", "$38.50", "ada@example.com", "Ada Lovelace",
        "1 Main St", "Springfield, IL 62701", "Order placed; payment of $38.50 authorized", "Payment of $38.50 captured",
        "Cancel order", "$38.50 still captured is refunded", "reserved stock goes back on sale", "value=\"38.50\"", "Guest checkout",
    ] {
        assert!(p.body.contains(text), "{text} in {}", p.body);
    }
    assert!(!p.body.contains("Capture payment"), "already captured");
    let cancel = format!("{}/cancel", href(&a));

    // Without the CSRF token nothing changes.
    let r = b.post(&cancel, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(api_order(&t, &a).await["status"], "paid");

    let r = b.post(&cancel, &[("csrf", &p.csrf())]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, href(&a).as_str()), "{}", r.body);
    let o = api_order(&t, &a).await;
    assert_eq!((o["status"].as_str(), o["payment_status"].as_str()), (Some("cancelled"), Some("refunded")));
    assert_eq!(levels(&t.level("TEE", &loc).await), (10, 0, 10), "the stock is back on sale");
    assert_eq!(levels(&t.level("MUG", &loc).await), (5, 0, 5));
    t.assert_consistent().await;

    let p = b.get(&href(&a)).await;
    assert!(p.body.contains("Order #1001 cancelled"), "the flash: {}", p.body);
    assert!(p.body.contains("Order cancelled; stock released and the payment refunded ($38.50 in all)"), "{}", p.body);
    assert!(p.body.contains("by owner@example.com"), "the staff actor by email: {}", p.body);
    assert!(!p.body.contains("Cancel order") && !p.body.contains("/refunds\""), "nothing left to do");
    // Cancelling again is a state conflict, and changes nothing.
    let r = b.post(&cancel, &[("csrf", &p.csrf())]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = b.post(&format!("{}/refunds", href(&a)), &[("csrf", &p.csrf()), ("amount", "1.00")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "all was refunded by the cancel: {}", r.body);
    assert_eq!(api_order(&t, &a).await["refunds"].as_array().unwrap().len(), 1);

    let audit = t.get("/audit-log?action_contains=cancel").await;
    let entries = audit.body["data"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["status"] == 303 && e["actor"] == format!("staff:{}", b.user_id)), "{entries:?}");

    let p = b.get("/admin/orders/ord_00000000000000000000000000000000").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.body.contains("There is no such order"));
}

#[tokio::test]
async fn a_partial_refund_then_too_much_is_refused_naming_the_amount() {
    let (t, loc) = shop(&[("TEE", 10), ("MUG", 5)]).await;
    let a = order(&t, &[("TEE", 2), ("MUG", 1)], "ada@example.com").await;
    let mut b = signed_in(&t, Role::Fulfillment).await;
    let p = b.get(&href(&a)).await;
    let refunds = format!("{}/refunds", href(&a));
    let csrf = p.csrf();

    let r = b.post(&refunds, &[("amount", "12.50")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    for bad in ["", "12.505", "abc", "0", "38.51"] {
        let r = b.post(&refunds, &[("csrf", &csrf), ("amount", bad), ("reason", "x")]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", r.body);
        assert!(r.body.contains("href=\"#f-amount\"") && r.body.contains("f-amount-error"), "{bad}: {}", r.body);
    }
    assert_eq!(api_order(&t, &a).await["payment"]["amount_refunded"], 0);

    let form = [("csrf", csrf.as_str()), ("amount", "12.50"), ("reason", "damaged box"), ("expected_amount_refunded", "0")];
    assert!(p.body.contains("name=\"expected_amount_refunded\" value=\"0\""), "the form carries its guard");
    let r = b.post(&refunds, &form).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, href(&a).as_str()), "{}", r.body);
    let o = api_order(&t, &a).await;
    assert_eq!((o["payment_status"].as_str(), o["payment"]["amount_refunded"].as_i64()), (Some("partially_refunded"), Some(1250)));
    let p = b.get(&href(&a)).await;
    for text in ["Refunded $12.50 on order #1001", "Refund of $12.50 issued", "by fulfillment@example.com", "damaged box", "Succeeded", "value=\"26.00\"", "Partially refunded"] {
        assert!(p.body.contains(text), "{text} in {}", p.body);
    }

    // The same form sent again (a double click) refunds nothing more.
    let r = b.post(&refunds, &form).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("was refunded since this page was shown"), "{}", r.body);
    assert_eq!(api_order(&t, &a).await["payment"]["amount_refunded"], 1250);
    let r = b.post(&refunds, &[("csrf", &p.csrf()), ("amount", "26.01")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("at most $26.00"), "{}", r.body);
    assert!(r.body.contains("value=\"26.01\""), "the typed amount is kept");
    let o = api_order(&t, &a).await;
    assert_eq!(o["payment"]["amount_refunded"], 1250, "nothing changed");
    assert_eq!(o["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(levels(&t.level("TEE", &loc).await), (10, 2, 8), "refunds leave stock alone");

    let audit = t.get("/audit-log?action_contains=refunds").await;
    let entries = audit.body["data"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["status"] == 303 && e["actor"] == format!("staff:{}", b.user_id)), "{entries:?}");
    t.assert_consistent().await;
}

#[tokio::test]
async fn an_authorized_payment_is_captured_from_the_detail_page() {
    use keel_app::checkout::{CaptureMode, CheckoutConfig};
    let t = keel_testkit::spawn_with(|app| app.with_checkout(CheckoutConfig { capture: CaptureMode::Fulfillment, ..CheckoutConfig::default() })).await;
    let loc = t.location("Main", 1).await;
    t.product("Goods", &["TEE"]).await;
    t.receive("TEE", &loc, 4).await;
    t.ok("/shipping-methods", json!({"name": "Standard", "currency": "USD", "amount": 500, "countries": ["US"]})).await;
    let a = order(&t, &[("TEE", 1)], "ada@example.com").await;
    assert_eq!(a["payment_status"], "authorized");
    let mut b = signed_in(&t, Role::Admin).await;
    let p = b.get(&href(&a)).await;
    assert!(p.body.contains("Capture payment") && p.body.contains("Charges the customer the authorized $15.00"), "{}", p.body);
    assert!(p.body.contains("payment authorization of $15.00 is voided"), "what a cancel would do");
    assert!(!p.body.contains("/refunds\""), "nothing captured to refund");
    let capture = format!("{}/capture", href(&a));
    let r = b.post(&capture, &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    assert_eq!(api_order(&t, &a).await["payment_status"], "authorized");
    let r = b.post(&capture, &[("csrf", &p.csrf())]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let o = api_order(&t, &a).await;
    assert_eq!((o["status"].as_str(), o["payment_status"].as_str(), o["payment"]["amount_captured"].as_i64()), (Some("paid"), Some("captured"), Some(1500)));
    let p = b.get(&href(&a)).await;
    assert!(p.body.contains("Payment captured: $15.00"), "{}", p.body);
    assert!(p.body.contains("Payment of $15.00 captured") && p.body.contains("by admin@example.com"), "{}", p.body);
    assert!(!p.body.contains("Capture payment"));
    let r = b.post(&capture, &[("csrf", &p.csrf())]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(levels(&t.level("TEE", &loc).await), (4, 1, 3));
    t.assert_consistent().await;
}

/// Posts every action of the order's page as `b` with a valid token.
async fn try_every_write(b: &mut Browser, o: &Value, csrf: &str) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for (action, form) in [("cancel", vec![]), ("capture", vec![]), ("refunds", vec![("amount", "1.00")])] {
        let mut f = vec![("csrf", csrf)];
        f.extend(form);
        out.push(b.post(&format!("{}/{action}", href(o)), &f).await.status);
    }
    out
}

#[tokio::test]
async fn roles_without_orders_write_are_refused_and_nothing_changes() {
    let (t, loc) = shop(&[("TEE", 10)]).await;
    let a = order(&t, &[("TEE", 2)], "ada@example.com").await;
    for role in [Role::SupportAgent, Role::Analyst] {
        let mut b = signed_in(&t, role).await;
        let p = b.get(&href(&a)).await;
        assert_eq!(p.status, StatusCode::OK, "{role:?} may read");
        assert!(p.body.contains("ada@example.com"), "{role:?} holds customers.read");
        assert!(!p.body.contains("Cancel order") && !p.body.contains("/refunds\""), "{role:?} is shown no actions");
        let csrf = p.csrf();
        assert_eq!(try_every_write(&mut b, &a, &csrf).await, [StatusCode::FORBIDDEN; 3], "{role:?}");
    }
    // The catalog manager may not even look.
    let mut b = signed_in(&t, Role::CatalogManager).await;
    assert_eq!(b.get("/admin/orders").await.status, StatusCode::FORBIDDEN);
    let p = b.get(&href(&a)).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let csrf = b.get("/admin").await.csrf();
    assert_eq!(try_every_write(&mut b, &a, &csrf).await, [StatusCode::FORBIDDEN; 3]);

    let o = api_order(&t, &a).await;
    assert_eq!((o["status"].as_str(), o["payment"]["amount_refunded"].as_i64()), (Some("paid"), Some(0)));
    assert_eq!(o["timeline"].as_array().unwrap().len(), 2);
    assert_eq!(levels(&t.level("TEE", &loc).await), (10, 2, 8));
    // The refusals are audited too.
    let audit = t.get("/audit-log?action_contains=cancel").await;
    let entries = audit.body["data"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "one refused cancel per role: {}", audit.body);
    assert!(entries.iter().all(|e| e["status"] == 403), "{}", audit.body);
}

#[tokio::test]
async fn two_refunds_from_one_reading_refund_once() {
    let (t, _) = shop(&[("TEE", 10)]).await;
    let a = order(&t, &[("TEE", 2)], "ada@example.com").await;
    let order_id = id(&a);
    let actor = keel_app::Actor("test:double-click".into());
    let input = keel_app::orders::RefundInput { amount: Some(1000), reason: None, expected_amount_refunded: Some(0) };
    let (x, y) = tokio::join!(t.app.refund_order(&actor, &order_id, input.clone()), t.app.refund_order(&actor, &order_id, input.clone()));
    let refused: Vec<_> = [&x, &y].into_iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(refused.len(), 1, "one of the twins is refused: {x:?} {y:?}");
    assert!(matches!(refused[0], keel_app::AppError::Conflict { code: "stale_refund", .. }), "{:?}", refused[0]);
    let o = api_order(&t, &a).await;
    assert_eq!(o["payment"]["amount_refunded"], 1000);
    assert_eq!(o["refunds"].as_array().unwrap().len(), 1);
    // A stale reading is refused before the provider is asked.
    let r = t.post(&format!("/orders/{order_id}/refunds"), json!({"amount": 100, "expected_amount_refunded": 0})).await;
    assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::CONFLICT, "stale_refund", "expected_amount_refunded"));
    assert_eq!(api_order(&t, &a).await["payment"]["amount_refunded"], 1000);
}

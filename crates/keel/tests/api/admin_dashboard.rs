//! The admin dashboard: figures from the record, sections by role.

use crate::admin_client::signed_in;
use keel_testkit::{json, spawn_app};
use keel_web::access::Role;
use reqwest::StatusCode;

#[tokio::test]
async fn the_dashboard_shows_sales_stock_and_health_to_those_who_may_read_them() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Goods", &["TEE", "MUG", "CAP"]).await;
    t.receive("TEE", &loc, 10).await;
    t.receive("MUG", &loc, 3).await; // low after nothing sells: 3 ≤ 5
    t.receive("CAP", &loc, 1).await;
    t.ok("/shipping-methods", json!({"name": "Standard", "currency": "USD", "amount": 500, "countries": ["US"]})).await;
    // Two orders: one stays paid (to fulfil), one is cancelled.
    let mut orders = Vec::new();
    for sku in ["TEE", "CAP"] {
        let cart = t.ok("/carts", json!({"currency": "USD", "email": "ada@example.com"})).await;
        let id = cart["id"].as_str().unwrap().to_owned();
        t.ok(&format!("/carts/{id}/lines"), json!({"sku": sku, "quantity": 1})).await;
        let address = json!({"name": "Ada", "line1": "1 Main St", "city": "Springfield", "region": "IL", "postal_code": "62701", "country": "US"});
        t.ok(&format!("/carts/{id}"), json!({"shipping_address": address})).await;
        let methods = t.get(&format!("/carts/{id}/shipping-methods")).await;
        t.ok(&format!("/carts/{id}"), json!({"shipping_method_id": methods.body["data"][0]["id"]})).await;
        let o = t.post(&format!("/carts/{id}/complete"), json!({"payment_method": "tok_visa"})).await;
        assert_eq!(o.status, StatusCode::CREATED, "{}", o.body);
        orders.push(o.body);
    }
    let cancelled = orders[1]["id"].as_str().unwrap();
    t.ok(&format!("/orders/{cancelled}/cancel"), json!({})).await;
    // TEE: 9 available; MUG: none (out of stock); CAP: 1 again after the cancel (low).
    t.ok("/inventory/adjustments", json!({"sku": "MUG", "location_id": loc, "kind": "adjust", "set_on_hand": 0})).await;

    let mut b = signed_in(&t, Role::Owner).await;
    let p = b.get("/admin").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    // 1000 + 500 shipping for the order that stands; the cancelled one is counted apart.
    assert!(p.body.contains("<td class=\"num\">2</td><td class=\"num\">$15.00</td>"), "{}", p.body);
    assert!(p.body.contains("50.0%"), "cancellation rate");
    assert!(p.body.contains("1 order to fulfil"));
    assert!(p.body.contains("<strong>1</strong> out of stock"), "MUG");
    assert!(p.body.contains("<strong>2</strong> low"), "CAP, and MUG out of stock, as the linked list shows them");
    let low = b.get("/admin/inventory?low=1&threshold=5").await;
    assert!(low.body.contains(">CAP<") && low.body.contains(">MUG<") && !low.body.contains(">TEE<"), "{}", low.body);
    assert!(p.body.contains("id=\"health-title\""));

    // A catalog manager reads stock but not orders or integrations.
    let mut c = signed_in(&t, Role::CatalogManager).await;
    let p = c.get("/admin").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("id=\"stock-title\""));
    assert!(!p.body.contains("id=\"sales-title\"") && !p.body.contains("$15.00"));
    assert!(!p.body.contains("id=\"health-title\""));
    assert!(!p.body.contains("href=\"/admin/orders\""), "no link to a section the role cannot read");
}

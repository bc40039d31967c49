use keel_domain::time::now_micros;
use keel_testkit::{json, spawn_app, TestApp};
use reqwest::StatusCode;

async fn shop() -> (TestApp, String, String) {
    let t = spawn_app().await;
    let a = t.location("Warehouse", 1).await;
    let b = t.location("Store", 2).await;
    (t, a, b)
}

#[tokio::test]
async fn reserve_release_and_commit() {
    let (t, a, _) = shop().await;
    t.product("Tee", &["TEE"]).await;
    t.receive("TEE", &a, 5).await;
    let r = t.post("/reservations", json!({"sku": "TEE", "quantity": 2, "reference": "cart_1"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("res_"));
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["allocations"][0]["location_id"], a.as_str());
    assert_eq!(t.level("TEE", &a).await["available"], 3);

    let rel = t.post(&format!("/reservations/{id}/release"), json!({})).await;
    assert_eq!((rel.status, rel.body["status"].as_str()), (StatusCode::OK, Some("released")));
    assert_eq!(t.level("TEE", &a).await["available"], 5);
    let again = t.post(&format!("/reservations/{id}/release"), json!({})).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "reservation_not_active"));

    let r = t.post("/reservations", json!({"sku": "TEE", "quantity": 5, "ttl_seconds": 900})).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(r.body["expires_at"].is_string());
    let c = t.post(&format!("/reservations/{id}/commit"), json!({})).await;
    assert_eq!((c.status, c.body["status"].as_str()), (StatusCode::OK, Some("committed")));
    assert!(c.body["expires_at"].is_null(), "committed holds do not expire");
    let l = t.level("TEE", &a).await;
    assert_eq!((l["reserved"].as_i64(), l["available"].as_i64()), (Some(5), Some(0)));
    let ledger = t.get("/inventory/ledger?sku=TEE").await;
    assert_eq!(ledger.body["data"][0]["kind"], "commit");
    assert_eq!(ledger.body["data"][0]["reservation_id"], id.as_str());
    t.assert_consistent().await;
}

#[tokio::test]
async fn insufficient_stock_reserves_nothing() {
    let (t, a, b) = shop().await;
    t.product("Cap", &["CAP", "HAT"]).await;
    t.receive("CAP", &a, 2).await;
    t.receive("HAT", &b, 1).await;
    let r = t.post("/reservations", json!({"lines": [{"sku": "CAP", "quantity": 2}, {"sku": "HAT", "quantity": 2}]})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!((r.error_code(), r.error_param()), ("insufficient_stock", "lines[1].sku"));
    assert_eq!(t.level("CAP", &a).await["reserved"], 0, "all or nothing");
    let r = t.post("/reservations", json!({"sku": "CAP", "quantity": 1, "location_id": b})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "insufficient_stock"));
    let r = t.post("/reservations", json!({"sku": "NOPE", "quantity": 1})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::NOT_FOUND, "sku"));
    for (body, param) in [
        (json!({"sku": "CAP", "quantity": 0}), "quantity"),
        (json!({"sku": "CAP", "quantity": -1}), "quantity"),
        (json!({"sku": "CAP"}), "quantity"),
        (json!({}), "sku"),
        (json!({"lines": []}), "lines"),
        (json!({"lines": [{"sku": "CAP", "quantity": 0}]}), "lines[0].quantity"),
        (json!({"sku": "CAP", "quantity": 1, "ttl_seconds": 0}), "ttl_seconds"),
    ] {
        let r = t.post("/reservations", body).await;
        assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, param), "{}", r.body);
    }
    t.assert_consistent().await;
}

#[tokio::test]
async fn demand_is_summed_per_item_across_lines_and_bundles() {
    let (t, a, _) = shop().await;
    t.product("Tee", &["TEE"]).await;
    t.product("Mug", &["MUG"]).await;
    let kit = t
        .post("/products", json!({"title": "Kit", "variants": [{"sku": "KIT", "components": [{"sku": "TEE", "quantity": 1}, {"sku": "MUG", "quantity": 2}]}]}))
        .await;
    assert_eq!(kit.status, StatusCode::CREATED, "{}", kit.body);
    t.receive("TEE", &a, 3).await;
    t.receive("MUG", &a, 4).await;
    // Two lines of one SKU cannot pass on the same unit.
    let r = t.post("/reservations", json!({"lines": [{"sku": "TEE", "quantity": 2}, {"sku": "TEE", "quantity": 2}]})).await;
    assert_eq!(r.error_code(), "insufficient_stock");
    // A kit and one of its parts are checked together: 2 kits need 4 mugs.
    let r = t.post("/reservations", json!({"lines": [{"sku": "KIT", "quantity": 2}, {"sku": "MUG", "quantity": 1}]})).await;
    assert_eq!(r.error_code(), "insufficient_stock");
    let r = t.post("/reservations", json!({"lines": [{"sku": "KIT", "quantity": 1}, {"sku": "MUG", "quantity": 2}]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(t.level("MUG", &a).await["available"], 0);
    assert_eq!(t.level("TEE", &a).await["available"], 2);
    let r = t.post("/reservations", json!({"sku": "KIT", "quantity": 1})).await;
    assert_eq!(r.error_code(), "insufficient_stock", "the kit sells no more than its scarcest part");
    t.assert_consistent().await;
}

#[tokio::test]
async fn allocation_prefers_one_location_then_splits_by_priority() {
    let (t, a, b) = shop().await;
    t.product("Sock", &["SOCK"]).await;
    t.receive("SOCK", &a, 2).await;
    t.receive("SOCK", &b, 5).await;
    let r = t.post("/reservations", json!({"sku": "SOCK", "quantity": 4})).await;
    let allocs = r.body["allocations"].as_array().unwrap();
    assert_eq!((allocs.len(), allocs[0]["location_id"].as_str()), (1, Some(b.as_str())), "one shipment when possible");
    let r = t.post("/reservations", json!({"sku": "SOCK", "quantity": 3})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let allocs = r.body["allocations"].as_array().unwrap();
    assert_eq!(allocs.len(), 2, "split across locations: {allocs:?}");
    let at = |loc: &str| allocs.iter().find(|x| x["location_id"] == loc).unwrap()["quantity"].as_i64().unwrap();
    assert_eq!((at(&a), at(&b)), (2, 1));
    t.assert_consistent().await;
}

#[tokio::test]
async fn expired_reservations_are_released() {
    let (t, a, _) = shop().await;
    t.product("Tee", &["TEE"]).await;
    t.receive("TEE", &a, 3).await;
    let short = t.ok("/reservations", json!({"sku": "TEE", "quantity": 2, "ttl_seconds": 60})).await;
    let long = t.ok("/reservations", json!({"sku": "TEE", "quantity": 1, "ttl_seconds": 3600})).await;
    // The expiry job with a clock two minutes ahead: only the short hold ends.
    let released = t.app.expire_reservations(now_micros() + 120_000_000).await.unwrap();
    assert_eq!(released, 1);
    let s = t.get(&format!("/reservations/{}", short["id"].as_str().unwrap())).await;
    assert_eq!(s.body["status"], "expired");
    let l = t.get(&format!("/reservations/{}", long["id"].as_str().unwrap())).await;
    assert_eq!(l.body["status"], "active");
    assert_eq!(t.level("TEE", &a).await["reserved"], 1);
    let c = t.post(&format!("/reservations/{}/commit", short["id"].as_str().unwrap()), json!({})).await;
    assert_eq!((c.status, c.error_code()), (StatusCode::CONFLICT, "reservation_expired"));
    let events = t.events("type=reservation.expired", 1).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    t.assert_consistent().await;
}

use keel_testkit::{json, spawn_app};
use reqwest::StatusCode;

#[tokio::test]
async fn every_write_appends_events_in_order() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    let p = t.product("Tee", &["TEE"]).await;
    t.receive("TEE", &loc, 4).await;
    let res = t.ok("/reservations", json!({"sku": "TEE", "quantity": 1})).await;
    t.ok(&format!("/products/{}", p["id"].as_str().unwrap()), json!({"title": "Tee 2"})).await;

    let all = t.events("limit=100", 6).await;
    let types: Vec<&str> = all["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["location.created", "product.created", "inventory.level_changed", "reservation.created", "inventory.level_changed", "product.updated"]
    );
    let first = &all["data"][0];
    assert!(first["id"].as_str().unwrap().starts_with("evt_"));
    assert!(first["occurred_at"].as_str().unwrap().ends_with('Z'));

    // Per-aggregate sequences.
    let product_events: Vec<i64> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["aggregate_id"] == p["id"])
        .map(|e| e["aggregate_seq"].as_i64().unwrap())
        .collect();
    assert_eq!(product_events, [1, 2]);
    let level_event = &all["data"][4];
    assert_eq!(level_event["data"]["movement"]["kind"], "reserve");
    assert_eq!(level_event["data"]["movement"]["reservation_id"], res["id"]);
    assert_eq!(level_event["data"]["level"]["reserved"], 1);

    // Type filters and the cursor.
    let inv = t.get("/events?type=inventory.*").await;
    assert_eq!(inv.body["data"].as_array().unwrap().len(), 2);
    let two = t.get("/events?type=product.created,reservation.created").await;
    assert_eq!(two.body["data"].as_array().unwrap().len(), 2);
    let page = t.get("/events?limit=2").await;
    assert_eq!(page.body["has_more"], true);
    let cursor = page.body["data"][1]["id"].as_str().unwrap();
    let next = t.get(&format!("/events?limit=10&starting_after={cursor}")).await;
    assert_eq!(next.body["data"][0]["type"], "inventory.level_changed");
    assert_eq!(next.body["data"][1]["type"], "reservation.created");
    assert_eq!(next.body["data"].as_array().unwrap().len(), 4);
    let one = t.get(&format!("/events/{cursor}")).await;
    assert_eq!(one.body["type"], "product.created");
    let bad = t.get("/events?type=DROP%20TABLE").await;
    assert_eq!((bad.status, bad.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "type"));
}

use keel_testkit::{json, spawn_app};
use reqwest::StatusCode;

#[tokio::test]
async fn adjustments_counts_and_compare_and_swap() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Tee", &["TEE-M"]).await;
    let r = t.receive("TEE-M", &loc, 10).await;
    assert_eq!(r["level"]["on_hand"], 10);
    assert_eq!(r["kind"], "receive");

    let r = t.post("/inventory/adjustments", json!({"sku": "TEE-M", "location_id": loc, "quantity_delta": -3, "reason": "cycle count"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["level"]["on_hand"], 7);

    // Guarded write with a stale expectation: refused, nothing changes.
    let r = t.post("/inventory/adjustments", json!({"sku": "TEE-M", "location_id": loc, "quantity_delta": 5, "expected_on_hand": 10})).await;
    assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::CONFLICT, "stale_quantity", "expected_on_hand"));
    let r = t.post("/inventory/adjustments", json!({"sku": "TEE-M", "location_id": loc, "quantity_delta": 5, "expected_on_hand": 7})).await;
    assert_eq!(r.body["level"]["on_hand"], 12);

    // A count sets on_hand and records the delta.
    let r = t.post("/inventory/adjustments", json!({"sku": "TEE-M", "location_id": loc, "set_on_hand": 4, "expected_on_hand": 12})).await;
    assert_eq!((r.body["level"]["on_hand"].as_i64(), r.body["quantity"].as_i64()), (Some(4), Some(-8)));

    // Cannot go below zero; buckets move.
    let r = t.post("/inventory/adjustments", json!({"sku": "TEE-M", "location_id": loc, "quantity_delta": -5})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "insufficient_stock"));
    let r = t.post("/inventory/adjustments", json!({"sku": "TEE-M", "location_id": loc, "kind": "damage", "quantity_delta": 1})).await;
    assert_eq!((r.body["level"]["damaged"].as_i64(), r.body["level"]["available"].as_i64()), (Some(1), Some(3)));
    let r = t.post("/inventory/adjustments", json!({"sku": "TEE-M", "location_id": loc, "kind": "safety_stock", "quantity_delta": 2})).await;
    assert_eq!(r.body["level"]["available"], 1);
    let r = t.post("/inventory/adjustments", json!({"sku": "TEE-M", "location_id": loc, "kind": "qc_hold", "quantity_delta": 2})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "insufficient_stock"));

    // Bad input names the field.
    for (body, param) in [
        (json!({"sku": "TEE-M", "location_id": loc, "quantity_delta": 0}), "quantity_delta"),
        (json!({"sku": "TEE-M", "location_id": loc, "kind": "receive", "quantity_delta": -1}), "quantity_delta"),
        (json!({"sku": "TEE-M", "location_id": loc}), "quantity_delta"),
        (json!({"sku": "TEE-M", "location_id": loc, "kind": "reserve", "quantity_delta": 1}), "kind"),
        (json!({"sku": "TEE-M", "location_id": "loc_x", "quantity_delta": 1}), "location_id"),
        (json!({"sku": "TEE-M", "location_id": loc, "quantity_delta": 1, "occurred_at": "yesterday"}), "occurred_at"),
    ] {
        let r = t.post("/inventory/adjustments", body).await;
        assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, param), "{}", r.body);
    }
    let r = t.post("/inventory/adjustments", json!({"sku": "NOPE", "location_id": loc, "quantity_delta": 1})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::NOT_FOUND, "sku"));

    // The ledger shows each accepted movement, newest first, with its actor.
    let l = t.get("/inventory/ledger?sku=TEE-M").await;
    let kinds: Vec<&str> = l.body["data"].as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["safety_stock", "damage", "adjust", "adjust", "adjust", "receive"]);
    assert!(l.body["data"][0]["actor"].as_str().unwrap().starts_with("api_key:key_"));
    let page = t.get("/inventory/ledger?sku=TEE-M&limit=2").await;
    let cursor = page.body["data"][1]["id"].as_str().unwrap();
    let next = t.get(&format!("/inventory/ledger?sku=TEE-M&limit=2&starting_after={cursor}")).await;
    assert_eq!(next.body["data"][0]["kind"], "adjust");
    t.assert_consistent().await;
}

#[tokio::test]
async fn transfers_move_stock_in_one_transaction() {
    let t = spawn_app().await;
    let a = t.location("A", 1).await;
    let b = t.location("B", 2).await;
    t.product("Mug", &["MUG"]).await;
    t.receive("MUG", &a, 5).await;
    let r = t.post("/inventory/transfers", json!({"sku": "MUG", "from_location_id": a, "to_location_id": b, "quantity": 3})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["from_level"]["on_hand"].as_i64(), r.body["to_level"]["on_hand"].as_i64()), (Some(2), Some(3)));
    let r = t.post("/inventory/transfers", json!({"sku": "MUG", "from_location_id": a, "to_location_id": b, "quantity": 3})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "insufficient_stock"));
    assert_eq!(t.level("MUG", &b).await["on_hand"], 3, "a refused transfer moves nothing");
    let r = t.post("/inventory/transfers", json!({"sku": "MUG", "from_location_id": a, "to_location_id": a, "quantity": 1})).await;
    assert_eq!(r.error_param(), "to_location_id");
    // Archived locations take no stock.
    t.ok(&format!("/locations/{b}"), json!({"archived": true})).await;
    let r = t.post("/inventory/transfers", json!({"sku": "MUG", "from_location_id": a, "to_location_id": b, "quantity": 1})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "location_archived"));
    let levels = t.get("/inventory/levels?sku=MUG").await;
    let total: i64 = levels.body["data"].as_array().unwrap().iter().map(|l| l["on_hand"].as_i64().unwrap()).sum();
    assert_eq!(total, 5, "transfers conserve stock");
    t.assert_consistent().await;
}

use keel_testkit::{json, spawn_app};
use reqwest::StatusCode;
use std::sync::Arc;

/// 500 concurrent `reserve 1` against 50 available units over HTTP: exactly
/// 50 succeed, 450 are clean `insufficient_stock`, nothing is oversold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_reservations_for_fifty_units() {
    let t = Arc::new(spawn_app().await);
    let loc = t.location("Main", 1).await;
    t.product("Hot", &["HOT"]).await;
    t.receive("HOT", &loc, 50).await;
    let mut tasks = Vec::new();
    for _ in 0..500 {
        let (http, url, key) = (t.http.clone(), t.url("/reservations"), t.key.clone());
        tasks.push(tokio::spawn(async move {
            let r = http.post(url).bearer_auth(key).json(&json!({"sku": "HOT", "quantity": 1})).send().await.unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body["error"]["code"].as_str().unwrap_or("").to_owned())
        }));
    }
    let (mut ok, mut sold_out, mut other) = (0, 0, Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            (StatusCode::CREATED, _) => ok += 1,
            (StatusCode::CONFLICT, code) if code == "insufficient_stock" => sold_out += 1,
            unexpected => other.push(unexpected),
        }
    }
    assert!(other.is_empty(), "unexpected responses: {other:?}");
    assert_eq!((ok, sold_out), (50, 450));
    let level = t.level("HOT", &loc).await;
    assert_eq!((level["reserved"].as_i64(), level["available"].as_i64()), (Some(50), Some(0)));
    t.assert_consistent().await;
}

/// Concurrent adjustments with set_on_hand and transfers never corrupt the
/// projection; every write either applies or is refused cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mixed_writes_keep_the_ledger_true() {
    let t = Arc::new(spawn_app().await);
    let a = t.location("A", 1).await;
    let b = t.location("B", 2).await;
    t.product("Mix", &["MIX"]).await;
    t.receive("MIX", &a, 100).await;
    let mut tasks = Vec::new();
    for i in 0..120 {
        let t = t.clone();
        let (a, b) = (a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let r = match i % 4 {
                0 => t.post("/inventory/transfers", json!({"sku": "MIX", "from_location_id": a, "to_location_id": b, "quantity": 3})).await,
                1 => t.post("/inventory/transfers", json!({"sku": "MIX", "from_location_id": b, "to_location_id": a, "quantity": 2})).await,
                2 => t.post("/reservations", json!({"sku": "MIX", "quantity": 2})).await,
                _ => t.post("/inventory/adjustments", json!({"sku": "MIX", "location_id": a, "quantity_delta": -1})).await,
            };
            assert!(r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT, "{} {}", r.status, r.body);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    t.assert_consistent().await;
}

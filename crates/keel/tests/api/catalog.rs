use keel_testkit::{json, spawn_app};
use reqwest::StatusCode;

#[tokio::test]
async fn create_read_update_archive_a_product() {
    let t = spawn_app().await;
    let chan = t.ok("/sales-channels", json!({"name": "Online Store"})).await;
    let r = t
        .post(
            "/products",
            json!({
                "title": "Linen Shirt",
                "description": "Breathable.",
                "channel_ids": [chan["id"]],
                "variants": [
                    {"sku": "LIN-S", "options": {"Size": "S"}, "prices": [{"currency": "usd", "amount": 6800}, {"currency": "EUR", "amount": 6200}]},
                    {"sku": "LIN-M", "options": {"Size": "M"}, "prices": [{"currency": "USD", "amount": 6800}]}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let p = r.body;
    let id = p["id"].as_str().unwrap();
    assert!(id.starts_with("prod_"));
    assert_eq!(p["handle"], "linen-shirt");
    assert_eq!(p["status"], "draft");
    assert_eq!(p["channel_ids"][0], chan["id"]);
    assert_eq!(p["variants"][0]["sku"], "LIN-S");
    assert_eq!(p["variants"][0]["title"], "S");
    assert_eq!(p["variants"][0]["prices"][1], json!({"currency": "USD", "amount": 6800}));
    assert_eq!(p["variants"][0]["components"][0]["sku"], "LIN-S");
    assert_eq!(p["variants"][0]["components"][0]["quantity"], 1);

    let got = t.get(&format!("/products/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, p);

    let upd = t.post(&format!("/products/{id}"), json!({"title": "Linen Shirt II", "status": "active"})).await;
    assert_eq!(upd.status, StatusCode::OK, "{}", upd.body);
    assert_eq!(upd.body["title"], "Linen Shirt II");
    assert_eq!(upd.body["handle"], "linen-shirt", "the handle is stable unless changed");
    assert_eq!(upd.body["version"], 2);

    let var = p["variants"][1]["id"].as_str().unwrap();
    let v = t.post(&format!("/products/{id}/variants/{var}"), json!({"prices": [{"currency": "USD", "amount": 5900}]})).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    assert_eq!(v.body["variants"][1]["prices"], json!([{"currency": "USD", "amount": 5900}]));

    let added = t.post(&format!("/products/{id}/variants"), json!({"sku": "LIN-L", "options": {"Size": "L"}})).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(added.body["variants"].as_array().unwrap().len(), 3);

    let arch = t.post(&format!("/products/{id}/archive"), json!({})).await;
    assert_eq!(arch.status, StatusCode::OK);
    assert_eq!(arch.body["status"], "archived");
    let listed = t.get("/products?status=archived").await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn list_paginates_with_cursor() {
    let t = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let p = t.product(&format!("P{i}"), &[&format!("SKU-{i}")]).await;
        ids.push(p["id"].as_str().unwrap().to_owned());
    }
    let page1 = t.get("/products?limit=2").await;
    assert_eq!(page1.body["object"], "list");
    assert_eq!(page1.body["has_more"], true);
    let data = page1.body["data"].as_array().unwrap();
    assert_eq!(data[0]["id"], ids[4].as_str(), "newest first");
    let last = data[1]["id"].as_str().unwrap();
    let page2 = t.get(&format!("/products?limit=2&starting_after={last}")).await;
    assert_eq!(page2.body["data"][0]["id"], ids[2].as_str());
    let page3 = t.get(&format!("/products?limit=2&starting_after={}", ids[1])).await;
    assert_eq!(page3.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(page3.body["has_more"], false);
    let bad = t.get("/products?limit=0").await;
    assert_eq!((bad.status, bad.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "limit"));
}

#[tokio::test]
async fn duplicate_skus_and_bad_input_are_refused_without_writes() {
    let t = spawn_app().await;
    t.product("First", &["DUP-1"]).await;
    let r = t.post("/products", json!({"title": "Second", "variants": [{"sku": "NEW-1"}, {"sku": "DUP-1"}]})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!((r.error_code(), r.error_param()), ("duplicate_sku", "variants[1].sku"));
    let r = t.post("/products", json!({"title": "Twice", "variants": [{"sku": "TW-1"}, {"sku": "TW-1"}]})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "duplicate_sku"));

    let r = t.post("/products", json!({"title": "X", "variants": [{"sku": "C-1", "prices": [{"currency": "XYZ", "amount": 1}]}]})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((r.error_code(), r.error_param()), ("unknown_currency", "variants[0].prices[0].currency"));
    let r = t.post("/products", json!({"title": "X", "variants": [{"sku": "C-1", "prices": [{"currency": "USD", "amount": -5}]}]})).await;
    assert_eq!(r.error_param(), "variants[0].prices[0].amount");
    let r = t.post("/products", json!({"title": "X", "colour": "red"})).await;
    assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_field", "colour"));
    let r = t.post("/products", json!({"title": 5})).await;
    assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_type", "title"));
    let r = t.post("/products", json!({"title": "   "})).await;
    assert_eq!((r.error_code(), r.error_param()), ("required", "title"));
    let r = t.post("/products", json!({"title": "X", "variants": [{"sku": "has space"}]})).await;
    assert_eq!(r.error_param(), "variants[0].sku");
    let r = t.post("/products", json!({"title": "Kit", "variants": [{"sku": "KIT", "components": [{"sku": "NOPE", "quantity": 1}]}]})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::NOT_FOUND, "variants[0].components[0].sku"));

    // None of the refused requests left anything behind.
    let list = t.get("/products?limit=100").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    let events = t.events("type=product.created&limit=100", 1).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    t.assert_consistent().await;
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let t = spawn_app().await;
    let r = t.get("/products/prod_0192d5a0e7c47c3e8b1f2a9d4e5f6a7b").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::NOT_FOUND, "resource_missing"));
    let r = t.get("/products/not-an-id").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t.get("/locations/loc_0192d5a0e7c47c3e8b1f2a9d4e5f6a7b").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t.post("/products/prod_0192d5a0e7c47c3e8b1f2a9d4e5f6a7b", json!({"title": "x"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn locations_and_channels() {
    let t = spawn_app().await;
    let r = t.post("/locations", json!({"name": "Store", "kind": "store", "priority": 5, "country": "de"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["kind"].as_str(), r.body["country"].as_str()), (Some("store"), Some("DE")));
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = t.post(&format!("/locations/{id}"), json!({"priority": 1, "kind": "3pl"})).await;
    assert_eq!((r.body["priority"].as_i64(), r.body["kind"].as_str()), (Some(1), Some("3pl")));
    let r = t.post("/locations", json!({"name": "X", "kind": "moon", "country": "US"})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "kind"));
    let r = t.post("/locations", json!({"name": "X", "kind": "store", "country": "USA"})).await;
    assert_eq!(r.error_param(), "country");
    let r = t.post("/sales-channels", json!({"name": "POS", "handle": "pos"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = t.post("/sales-channels", json!({"name": "POS 2", "handle": "pos"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "duplicate_handle"));
}

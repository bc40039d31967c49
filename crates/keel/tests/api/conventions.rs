use keel_testkit::{json, spawn_app};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn requests_need_a_live_api_key() {
    let t = spawn_app().await;
    let r = t.http.get(t.url("/products")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    let r = t.http.get(t.url("/products")).bearer_auth("keel_sk_nope").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The OpenAPI document is public.
    let r = t.http.get(t.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/products", "/products/{id}", "/inventory/adjustments", "/reservations", "/events"] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from OpenAPI");
    }
}

#[tokio::test]
async fn idempotency_key_replays_once_and_refuses_reuse() {
    let t = spawn_app().await;
    let body = json!({"title": "Once", "variants": [{"sku": "ONCE-1"}]});
    let a = t.send(Method::POST, "/products", Some(body.clone()), &[("Idempotency-Key", "k-1")]).await;
    let b = t.send(Method::POST, "/products", Some(body.clone()), &[("Idempotency-Key", "k-1")]).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(b.status, StatusCode::CREATED);
    assert_eq!(a.body, b.body, "the stored response is replayed");
    assert_eq!(b.headers["idempotent-replayed"], "true");
    let list = t.get("/products").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1, "written once");
    assert_eq!(
        t.db.scalar("SELECT COUNT(*) FROM idempotency_keys WHERE response_body LIKE '%Once%'").await,
        0,
        "stored responses are encrypted"
    );

    let other = json!({"title": "Other", "variants": [{"sku": "OTHER-1"}]});
    let c = t.send(Method::POST, "/products", Some(other), &[("Idempotency-Key", "k-1")]).await;
    assert_eq!((c.status, c.error_code()), (StatusCode::CONFLICT, "idempotency_key_reused"));

    // Concurrent requests with one key: exactly one product is created.
    let body = json!({"title": "Race", "variants": [{"sku": "RACE-1"}]});
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, url, key, body) = (t.http.clone(), t.url("/products"), t.key.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            http.post(url).bearer_auth(key).header("Idempotency-Key", "race").json(&body).send().await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{statuses:?}");
    let list = t.get("/products?limit=100").await;
    let races = list.body["data"].as_array().unwrap().iter().filter(|p| p["title"] == "Race").count();
    assert_eq!(races, 1);
}

#[tokio::test]
async fn malformed_requests_get_the_documented_errors() {
    let t = spawn_app().await;
    let raw = |body: &'static str| {
        t.http.post(t.url("/products")).bearer_auth(&t.key).header("content-type", "application/json").body(body).send()
    };
    let r = raw("{not json").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "invalid_json");
    assert_eq!(b["error"]["type"], "invalid_request_error");

    let big = format!("{{\"title\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let r = t.http.post(t.url("/products")).bearer_auth(&t.key).header("content-type", "application/json").body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "body_too_large");

    let r = t.http.post(t.url("/products")).bearer_auth(&t.key).header("content-type", "text/plain").body("hi").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // `curl -d` sends form-urlencoded; a JSON body is still read as JSON.
    let r = t
        .http
        .post(t.url("/locations"))
        .bearer_auth(&t.key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"name":"Curl","kind":"store","country":"US"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let r = t.get("/nope").await;
    assert_eq!((r.status, r.error_code()), (StatusCode::NOT_FOUND, "resource_missing"));
    let r = t.send(Method::DELETE, "/products", None, &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = t.get("/products?colour=red").await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "colour"));
    let r = t.get("/products?limit=abc").await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "limit"));
}

#[tokio::test]
async fn data_survives_a_restart() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Keep", &["KEEP-1"]).await;
    t.receive("KEEP-1", &loc, 7).await;
    t.app.store.close().await;
    let again = t.db.open().await;
    let page = again.list_products(None, None, None).await.unwrap();
    assert_eq!(page.data.len(), 1);
    let levels = again.inventory_levels("KEEP-1", None).await.unwrap();
    assert_eq!(levels.data[0].on_hand, 7);
    let report = again.check().await.unwrap();
    assert!(report.problems.is_empty());
}

/// Every query parameter used to be declared `in: path, required`, so
/// generated clients could neither page nor filter: a path parameter is
/// one the path template names, every other one is in the query.
#[test]
fn openapi_parameters_are_in_the_path_only_when_the_path_names_them() {
    let doc = serde_json::to_value(keel_web::api::openapi::document()).unwrap();
    let mut query = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
                let templated = path.contains(&format!("{{{name}}}"));
                match place {
                    "path" => assert!(templated, "{method} {path}: `{name}` is declared in the path but the path does not name it"),
                    "query" => {
                        assert!(!templated, "{method} {path}: `{name}` is in the path");
                        query += 1;
                    }
                    other => panic!("{method} {path}: `{name}` in {other}"),
                }
            }
        }
    }
    assert!(query > 30, "{query} query parameters described");
}

/// Forty operations were all called `list`, `create`, `show`…: generated
/// clients need one id per operation.
#[test]
fn openapi_operation_ids_are_unique_and_name_their_resource() {
    let doc = serde_json::to_value(keel_web::api::openapi::document()).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId")).to_owned();
            let resource = path.trim_start_matches('/').split('/').next().unwrap();
            assert!(id.starts_with(&format!("{resource}.")), "{method} {path}: {id}");
            if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
                panic!("{id} names both {other} and {method} {path}");
            }
        }
    }
    assert_eq!(seen.get("products.list").map(String::as_str), Some("get /products"));
}

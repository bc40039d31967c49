//! Staff access: the permission table covers every route, API keys are
//! scoped to a role, expire and can be revoked.

use keel_testkit::{json, spawn_app, TestApp};
use keel_web::access::{route_permission, Permission, Role};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Sends a request with another key than the test kit's.
async fn send_as(t: &TestApp, key: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = t.http.request(method, t.url(path)).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn key_with_role(t: &TestApp, role: &str) -> (String, String) {
    let b = t.ok("/api-keys", json!({"name": format!("{role} key"), "role": role})).await;
    (b["id"].as_str().unwrap().to_owned(), b["secret"].as_str().unwrap().to_owned())
}

/// Every route the API serves, from its OpenAPI document plus the
/// few machine routes outside it.
fn all_routes() -> Vec<(Method, String)> {
    let doc = serde_json::to_value(keel_web::api::openapi::document()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if let Ok(m) = method.to_uppercase().parse::<Method>() {
                routes.push((m, format!("/api/v1{path}")));
            }
        }
    }
    // Routes not (yet) described in the document.
    for (m, p) in [
        (Method::POST, "/api/v1/customers/{id}/addresses/{address_id}/delete"),
        (Method::POST, "/api/v1/products/{id}/images/{image_id}/delete"),
        (Method::GET, "/metrics"),
    ] {
        routes.push((m, p.to_owned()));
    }
    routes
}

#[test]
fn every_route_needs_a_permission() {
    let routes = all_routes();
    assert!(routes.len() > 60, "the OpenAPI document lists the routes ({})", routes.len());
    let missing: Vec<_> = routes.iter().filter(|(m, p)| route_permission(m, p).is_none()).collect();
    assert!(missing.is_empty(), "routes without a permission: {missing:?}");
    // Reads need read permissions; a write never gets by with one.
    for (m, p) in &routes {
        let perm = route_permission(m, p).unwrap();
        if *m != Method::GET {
            assert!(!perm.is_read(), "{m} {p} needs only {perm:?}");
        }
    }
    assert_eq!(route_permission(&Method::GET, "/api/v1/webhook-endpoints/{id}/secret"), Some(Permission::IntegrationsWrite));
    assert_eq!(route_permission(&Method::POST, "/api/v1/api-keys"), Some(Permission::ApiKeysManage));
    assert_eq!(route_permission(&Method::GET, "/api/v1/no-such-thing"), None);
}

#[tokio::test]
async fn every_served_route_is_in_the_table() {
    // A route the table does not know would be refused with 403 even for the
    // owner key; walk the document's routes with it and look for that.
    let t = spawn_app().await;
    for (m, p) in all_routes() {
        let Some(path) = p.strip_prefix("/api/v1") else { continue };
        let path = path.replace("{id}", "x").replace("{address_id}", "x").replace("{image_id}", "x").replace("{variant_id}", "x").replace("{line_id}", "x");
        let body = (m != Method::GET).then(|| json!({}));
        let (status, b) = send_as(&t, &t.key, m.clone(), &path, body).await;
        assert_ne!(status, StatusCode::FORBIDDEN, "{m} {p}: {b}");
    }
}

#[tokio::test]
async fn roles_limit_what_a_key_can_do() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Tee", &["TEE-M"]).await;

    let (_, analyst) = key_with_role(&t, "analyst").await;
    let (s, _) = send_as(&t, &analyst, Method::GET, "/products", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = send_as(&t, &analyst, Method::GET, "/inventory/levels?sku=TEE-M", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = send_as(&t, &analyst, Method::POST, "/products", Some(json!({"title": "X"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!((b["error"]["type"].as_str(), b["error"]["code"].as_str()), (Some("permission_error"), Some("forbidden")));
    let (s, _) = send_as(&t, &analyst, Method::POST, "/api-keys", Some(json!({"name": "more", "role": "analyst"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an analyst cannot make keys");

    let (_, catalog) = key_with_role(&t, "catalog_manager").await;
    let (s, b) = send_as(&t, &catalog, Method::POST, "/products", Some(json!({"title": "Cap", "variants": [{"sku": "CAP", "prices": [{"currency": "USD", "amount": 500}]}]}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let adjust = json!({"sku": "TEE-M", "location_id": loc, "kind": "receive", "quantity_delta": 5});
    let (s, _) = send_as(&t, &catalog, Method::POST, "/inventory/adjustments", Some(adjust.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = send_as(&t, &catalog, Method::GET, "/customers", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = send_as(&t, &catalog, Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "/metrics is not under /api/v1");

    let (_, inventory) = key_with_role(&t, "inventory_manager").await;
    let (s, b) = send_as(&t, &inventory, Method::POST, "/inventory/adjustments", Some(adjust)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // Metrics: analysts may read them, catalog managers may not.
    let get = |key: String| {
        let http = t.http.clone();
        let url = format!("{}/metrics", t.base);
        async move { http.get(url).bearer_auth(key).send().await.unwrap().status() }
    };
    assert_eq!(get(analyst.clone()).await, StatusCode::OK);
    assert_eq!(get(catalog.clone()).await, StatusCode::FORBIDDEN);

    // Unknown routes stay 404 for any valid key.
    let (s, _) = send_as(&t, &analyst, Method::GET, "/no-such-thing", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn keys_are_shown_once_listed_without_secrets_and_revocable() {
    let t = spawn_app().await;
    let r = t.post("/api-keys", json!({"name": "ci", "role": "fulfillment", "expires_in_days": 30})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("keel_sk_") && secret.starts_with(r.body["prefix"].as_str().unwrap()));
    assert_eq!(r.body["role"], "fulfillment");
    assert!(r.body["expires_at"].is_string());
    assert!(r.body["created_by"].as_str().unwrap().starts_with("key_"));

    let list = t.get("/api-keys?limit=100").await;
    assert_eq!(list.status, StatusCode::OK);
    let text = list.body.to_string();
    assert!(!text.contains(&secret[8..]), "a list never shows a secret");
    let listed = list.body["data"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap().clone();
    assert!(listed.get("secret").is_none());

    let (s, _) = send_as(&t, &secret, Method::GET, "/orders", None).await;
    assert_eq!(s, StatusCode::OK);
    // Used: last_used_at is recorded (in the background).
    let mut used = false;
    for _ in 0..50 {
        let list = t.get("/api-keys?limit=100").await;
        let k = list.body["data"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap().clone();
        if k["last_used_at"].is_string() {
            used = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(used, "last_used_at is recorded");

    // Revocation takes effect at once, despite the key cache.
    let r = t.post(&format!("/api-keys/{id}/revoke"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["revoked_at"].is_string());
    let (s, b) = send_as(&t, &secret, Method::GET, "/orders", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let r = t.post("/api-keys/key_nope/revoke", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Bad input names the field.
    let r = t.post("/api-keys", json!({"name": "x", "role": "root"})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "role"));
    let r = t.post("/api-keys", json!({"name": "x", "role": "analyst", "expires_in_days": 0})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "expires_in_days"));
}

#[tokio::test]
async fn admins_cannot_grant_owner_and_expired_keys_stop() {
    let t = spawn_app().await;
    let (_, admin) = key_with_role(&t, "admin").await;
    let (s, _) = send_as(&t, &admin, Method::POST, "/api-keys", Some(json!({"name": "up", "role": "owner"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = send_as(&t, &admin, Method::POST, "/api-keys", Some(json!({"name": "ok", "role": "analyst"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // An admin cannot revoke the owner's key.
    let owner_key_id = t.get("/api-keys?limit=100").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = send_as(&t, &admin, Method::POST, &format!("/api-keys/{owner_key_id}/revoke"), Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (id, secret) = key_with_role(&t, "analyst").await;
    t.db.execute_raw(&format!("UPDATE api_keys SET expires_at = 1 WHERE id = '{id}'")).await;
    let (s, _) = send_as(&t, &secret, Method::GET, "/products", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "an expired key is refused");
    assert_eq!(Role::parse("role", "analyst").unwrap(), Role::Analyst);
}

//! Rate limits per client address and per API key: `429`, `Retry-After`
//! and the `rate_limited` error once a bucket is empty.

use keel_testkit::{json, spawn_app, spawn_with_edge, TestApp};
use keel_web::edge::EdgeSettings;
use keel_web::ratelimit::Limits;
use reqwest::Method;

fn edge(ip: Option<u32>, key: Option<u32>, trust_proxy: bool) -> EdgeSettings {
    EdgeSettings { trust_proxy, rate_limits: Limits { per_ip_per_min: ip, per_key_per_min: key }, ..EdgeSettings::default() }
}

fn assert_limited(r: &keel_testkit::Res) {
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.error_code(), "rate_limited");
    assert_eq!(r.body["error"]["type"], "rate_limit_error");
    let after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&after), "Retry-After {after}");
}

async fn storefront_get(t: &TestApp, headers: &[(&str, &str)]) -> reqwest::StatusCode {
    let mut req = t.http.get(format!("{}/", t.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status()
}

#[tokio::test]
async fn per_api_key_limit_answers_429_with_retry_after() {
    let t = spawn_with_edge(edge(None, Some(5), false)).await;
    for _ in 0..5 {
        assert_eq!(t.get("/products").await.status, 200);
    }
    assert_limited(&t.get("/products").await);
    // Another key has its own allowance.
    let (_, other) = t.app.create_api_key("other").await.unwrap();
    let r = t.http.get(t.url("/products")).bearer_auth(&other).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The storefront is not limited per key.
    assert_eq!(storefront_get(&t, &[]).await, 200);
}

/// One key per headless storefront used to share the whole 600/min default:
/// a secret key now carries its own limit, and a publishable key (every
/// shopper's browser presents the same one) is limited per client address.
#[tokio::test]
async fn keys_have_their_own_limits_and_publishable_keys_are_limited_per_address() {
    let t = spawn_with_edge(edge(Some(8), Some(3), true)).await;
    let own = t.ok("/api-keys", json!({"name": "busy ERP", "role": "analyst", "rate_limit_per_min": 6})).await["secret"].as_str().unwrap().to_owned();
    let pk = t.ok("/api-keys", json!({"name": "shop front", "type": "publishable"})).await["secret"].as_str().unwrap().to_owned();
    let get = |key: &str, from: &str| t.http.get(t.url("/products")).bearer_auth(key).header("x-forwarded-for", from).send();
    // The key's own 6/min, not the default 3 (each request from a fresh address).
    for i in 0..6 {
        assert_eq!(get(&own, &format!("10.0.0.{i}")).await.unwrap().status(), 200, "request {i} within the key's own limit");
    }
    assert_eq!(get(&own, "10.0.0.99").await.unwrap().status(), 429, "the key's own limit");
    // Twenty shoppers on one publishable key: none limited by the key.
    for i in 0..20 {
        assert_eq!(get(&pk, &format!("10.1.0.{i}")).await.unwrap().status(), 200, "shopper {i}");
    }
    // One shopper hammering is limited by their address.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(get(&pk, "10.2.0.1").await.unwrap().status().as_u16());
    }
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 2, "{statuses:?}");
}

#[tokio::test]
async fn per_ip_limit_covers_the_storefront_and_the_api() {
    let t = spawn_with_edge(edge(Some(4), None, false)).await;
    for _ in 0..2 {
        assert_eq!(storefront_get(&t, &[]).await, 200);
        assert_eq!(t.get("/products").await.status, 200);
    }
    assert_eq!(storefront_get(&t, &[]).await, 429);
    assert_limited(&t.get("/products").await);
    // Health checks are never limited.
    assert_eq!(t.http.get(format!("{}/healthz", t.base)).send().await.unwrap().status(), 200);
    // Without a trusted proxy, X-Forwarded-For does not buy a new allowance.
    assert_eq!(storefront_get(&t, &[("x-forwarded-for", "203.0.113.9")]).await, 429);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_limited() {
    let t = spawn_with_edge(edge(Some(2), None, true)).await;
    let a = [("x-forwarded-for", "198.51.100.1, 203.0.113.1")];
    let b = [("x-forwarded-for", "203.0.113.2")];
    assert_eq!(storefront_get(&t, &a).await, 200);
    assert_eq!(storefront_get(&t, &a).await, 200);
    assert_eq!(storefront_get(&t, &a).await, 429);
    assert_eq!(storefront_get(&t, &b).await, 200, "another client behind the proxy has its own bucket");
    // The audit log records the forwarded address.
    let r = t.send(Method::POST, "/sales-channels", Some(serde_json::json!({"name": "Proxy"})), &[("x-forwarded-for", "203.0.113.7")]).await;
    assert!(r.status.is_success(), "{}", r.body);
    let log = t.send(Method::GET, "/audit-log", None, &[("x-forwarded-for", "203.0.113.8")]).await;
    assert_eq!(log.body["data"][0]["ip"], "203.0.113.7");
}

#[tokio::test]
async fn the_test_kit_runs_without_limits() {
    let t = spawn_app().await;
    for _ in 0..50 {
        assert_eq!(t.get("/products").await.status, 200);
    }
}

//! Security headers on every response (API JSON, errors, files and pages;
//! HSTS only when served over HTTPS), and API keys stored hashed.

use keel_testkit::{spawn_app, spawn_with_edge};
use keel_web::edge::EdgeSettings;

fn assert_secure(h: &reqwest::header::HeaderMap, what: &str) {
    let csp = h.get("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP")).to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{what}: {csp}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let t = spawn_app().await;
    let api = t.get("/products").await;
    assert_secure(&api.headers, "API list");
    assert_eq!(api.headers["content-security-policy"], keel_web::headers::NON_HTML_CSP);
    let no_key = t.http.get(t.url("/products")).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
    assert_secure(no_key.headers(), "401");
    for path in ["/healthz", "/api/v1/openapi.json", "/api/nowhere", "/media/img_x/nothing.webp", "/", "/no-such-page", "/sitemap.xml"] {
        let r = t.http.get(format!("{}{path}", t.base)).send().await.unwrap();
        assert_secure(r.headers(), path);
        assert!(r.headers().get("strict-transport-security").is_none(), "no HSTS over plain HTTP");
    }
    // The storefront keeps its own policy (the stylesheet's hash).
    let home = t.http.get(format!("{}/", t.base)).send().await.unwrap();
    assert!(home.headers()["content-security-policy"].to_str().unwrap().contains("style-src 'sha256-"));
}

#[tokio::test]
async fn hsts_is_sent_when_serving_https() {
    let t = spawn_with_edge(EdgeSettings { https: true, ..EdgeSettings::default() }).await;
    for path in ["/", "/healthz"] {
        let r = t.http.get(format!("{}{path}", t.base)).send().await.unwrap();
        assert_eq!(r.headers()["strict-transport-security"], keel_web::headers::HSTS, "{path}");
    }
    assert_eq!(t.get("/products").await.headers["strict-transport-security"], keel_web::headers::HSTS);
}

#[tokio::test]
async fn api_keys_are_stored_only_as_hashes() {
    let t = spawn_app().await;
    let hash = keel_app::apikeys::hash_secret(&t.key);
    let stored = t.db.scalar(&format!("SELECT COUNT(*) FROM api_keys WHERE secret_hash = '{hash}'")).await;
    assert_eq!(stored, 1);
    let clear = t.db.scalar(&format!("SELECT COUNT(*) FROM api_keys WHERE secret_hash = '{}' OR prefix = '{}'", t.key, t.key)).await;
    assert_eq!(clear, 0, "the secret itself is not stored");
}

use keel_testkit::spawn_app;
use reqwest::StatusCode;

#[tokio::test]
async fn metrics_and_health_are_served() {
    let t = spawn_app().await;
    t.get("/products").await;
    t.get("/products/prod_0192d5a0e7c47c3e8b1f2a9d4e5f6a7b").await;
    let r = t.http.get(format!("{}/metrics", t.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "metrics need an API key");
    let r = t.http.get(format!("{}/metrics", t.base)).bearer_auth(&t.key).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(text.contains(r#"keel_http_requests_total{method="GET",route="/api/v1/products",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"route="/api/v1/products/{id}",status="404"} 1"#), "ids never become labels: {text}");
    assert!(text.contains("keel_http_request_duration_seconds_bucket"));
    let h = t.get("/integrations/health").await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.body);
    assert_eq!((h.body["object"].as_str(), h.body["status"].as_str()), (Some("integration_health"), Some("healthy")));
}

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

/// A change of an integration's health raises exactly one alert event.
#[tokio::test]
async fn health_changes_raise_one_alert_each() {
    use keel_domain::time::now_micros;
    let t = spawn_app().await;
    let integ = t.post("/integrations", keel_testkit::json!({"name": "3PL feed", "kind": "3pl", "freshness_sla_seconds": 900, "auth": "hmac"})).await;
    assert_eq!(integ.status, StatusCode::CREATED, "{}", integ.body);
    let report = t.app.integration_health(now_micros()).await.unwrap();
    let c = report.components.iter().find(|c| c.kind == "integration").expect("the integration is monitored");
    assert_eq!(c.state.as_str(), "degraded", "registered, nothing received yet");
    assert_eq!(c.sla_seconds, Some(900));
    assert_eq!(t.app.record_health_transitions(now_micros()).await.unwrap(), 1);
    assert_eq!(t.app.record_health_transitions(now_micros()).await.unwrap(), 0, "one alert per change");
    let alerts = t.events("type=alert.*", 1).await;
    assert_eq!(alerts["data"][0]["type"], "alert.raised");
    assert_eq!(alerts["data"][0]["data"]["to"], "degraded");
    // An hour past the SLA with no feed: stale.
    let later = t.app.integration_health(now_micros() + 3_600_000_000).await.unwrap();
    let c = later.components.iter().find(|c| c.kind == "integration").unwrap();
    assert!(matches!(c.state.as_str(), "degraded" | "stale"), "{c:?}");
}

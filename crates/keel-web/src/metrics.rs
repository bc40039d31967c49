//! Prometheus `/metrics`: HTTP request counts and latencies recorded by a
//! middleware, plus integration health, consumer lag and freshness computed
//! on each scrape. Text exposition format 0.0.4, written by hand: a few
//! families do not justify an exporter dependency.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keel_domain::health::HealthState;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl HttpMetrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()).entry((method.to_owned(), route.to_owned(), status)).or_insert(0) += 1;
        let mut lat = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = lat.entry(route.to_owned()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }
}

/// Records every request under its route template (never the raw path, so
/// ids do not explode the label set).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    tracing::Span::current().record("route", route.as_str());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    state.http.record(&method, &route, res.status().as_u16(), started.elapsed().as_secs_f64());
    res
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub async fn serve(State(state): State<AppState>) -> Response {
    let mut out = String::with_capacity(8192);
    let _ = writeln!(out, "# HELP keel_build_info Keel version.\n# TYPE keel_build_info gauge");
    let _ = writeln!(out, "keel_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    {
        let reqs = state.http.requests.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP keel_http_requests_total HTTP requests by route and status.\n# TYPE keel_http_requests_total counter");
        for ((m, r, s), n) in reqs.iter() {
            let _ = writeln!(out, "keel_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}", label(r));
        }
    }
    {
        let lat = state.http.latency.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP keel_http_request_duration_seconds HTTP request latency by route.\n# TYPE keel_http_request_duration_seconds histogram");
        for (r, h) in lat.iter() {
            let r = label(r);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "keel_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "keel_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "keel_http_request_duration_seconds_sum{{route=\"{r}\"}} {}", h.sum);
            let _ = writeln!(out, "keel_http_request_duration_seconds_count{{route=\"{r}\"}} {}", h.count);
        }
    }
    match state.app.integration_health(keel_domain::time::now_micros()).await {
        Ok(report) => {
            let _ = writeln!(out, "# HELP keel_component_health 1 for the component's current state.\n# TYPE keel_component_health gauge");
            for c in &report.components {
                for s in [HealthState::Healthy, HealthState::Degraded, HealthState::Stale, HealthState::Failing] {
                    let _ = writeln!(
                        out,
                        "keel_component_health{{kind=\"{}\",id=\"{}\",state=\"{}\"}} {}",
                        c.kind,
                        label(&c.id),
                        s.as_str(),
                        u8::from(c.state == s)
                    );
                }
            }
            let _ = writeln!(out, "# HELP keel_component_backlog Work waiting: events behind, deliveries pending.\n# TYPE keel_component_backlog gauge");
            for c in &report.components {
                let _ = writeln!(out, "keel_component_backlog{{kind=\"{}\",id=\"{}\"}} {}", c.kind, label(&c.id), c.backlog);
            }
            let _ = writeln!(out, "# HELP keel_component_freshness_lag_seconds Age of the newest good data.\n# TYPE keel_component_freshness_lag_seconds gauge");
            for c in report.components.iter().filter(|c| c.freshness_lag_seconds.is_some()) {
                let _ = writeln!(
                    out,
                    "keel_component_freshness_lag_seconds{{kind=\"{}\",id=\"{}\"}} {}",
                    c.kind,
                    label(&c.id),
                    c.freshness_lag_seconds.unwrap_or(0)
                );
            }
            let _ = writeln!(out, "# HELP keel_component_error_rate Failed share of attempts.\n# TYPE keel_component_error_rate gauge");
            for c in &report.components {
                let _ = writeln!(out, "keel_component_error_rate{{kind=\"{}\",id=\"{}\",window=\"1h\"}} {}", c.kind, label(&c.id), c.error_rate_1h);
                let _ = writeln!(out, "keel_component_error_rate{{kind=\"{}\",id=\"{}\",window=\"24h\"}} {}", c.kind, label(&c.id), c.error_rate_24h);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: health unavailable"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

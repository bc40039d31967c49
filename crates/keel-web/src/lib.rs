//! Keel's HTTP edge: the storefront (server-rendered HTML) at `/`, and the
//! JSON API under `/api/v1` with its own authentication, idempotency and
//! error layers. Handlers are thin: parse, call one use case, map the result.

pub mod access;
pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod edge;
pub mod error;
pub mod extract;
pub mod headers;
pub mod hooks;
pub mod idempotency;
pub mod media;
pub mod metrics;
pub mod ratelimit;
pub mod storefront;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Json, Router};
use error::ApiError;
use keel_app::App;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub keys: Arc<auth::KeyCache>,
    pub http: Arc<metrics::HttpMetrics>,
    /// Storefront settings (public URL, cookie security, currency, page cache).
    pub storefront: Arc<storefront::Settings>,
    /// Client address, rate limits, TLS.
    pub edge: Arc<edge::EdgeSettings>,
    pub limiters: Arc<ratelimit::RateLimiters>,
}

impl AppState {
    pub fn new(app: App) -> AppState {
        AppState {
            app,
            keys: Arc::new(auth::KeyCache::default()),
            http: Arc::new(metrics::HttpMetrics::default()),
            storefront: Arc::new(storefront::Settings::default()),
            edge: Arc::new(edge::EdgeSettings::default()),
            limiters: Arc::new(ratelimit::RateLimiters::default()),
        }
    }

    pub fn with_storefront(mut self, settings: storefront::Settings) -> AppState {
        self.storefront = Arc::new(settings);
        self
    }

    pub fn with_edge(mut self, settings: edge::EdgeSettings) -> AppState {
        self.limiters = Arc::new(ratelimit::RateLimiters::new(settings.rate_limits));
        self.edge = Arc::new(settings);
        self
    }
}

pub fn router(state: AppState) -> Router {
    let api = api::router()
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::idempotent_posts))
        .layer(middleware::from_fn_with_state(state.clone(), audit::record_writes))
        .layer(middleware::from_fn_with_state(state.clone(), ratelimit::per_key))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_api_key))
        .route("/openapi.json", get(api::openapi::serve));
    Router::new()
        .nest("/api/v1", api)
        .route(
            "/metrics",
            get(metrics::serve).layer(middleware::from_fn_with_state(state.clone(), auth::require_api_key)),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(hooks::router())
        .merge(media::router())
        .merge(api::integrations::hooks_router())
        .merge(admin::router(state.clone()))
        .merge(storefront::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_JSON_BODY))
        .route_layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(middleware::from_fn_with_state(state.clone(), ratelimit::per_ip))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal().into_response()))
        .layer(middleware::from_fn_with_state(state.clone(), headers::every_response))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// One span per request naming its method and, once routed, its matched
/// route (`/api/v1/orders/{id}`; recorded by `metrics::track`) — never the
/// URI, whose query string can carry emails and tokens.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::info_span!("request", method = %req.method(), route = tracing::field::Empty)
}

/// Liveness: the process answers. Load balancers route on `/readyz`.
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database answers with the migrations this binary needs,
/// the disk takes writes, and every background job is running; else 503
/// with `Retry-After`, so a load balancer sends traffic elsewhere.
async fn readyz(State(state): State<AppState>) -> Response {
    let r = state.app.readiness().await;
    let body = serde_json::json!({ "status": if r.ready { "ready" } else { "not_ready" }, "checks": r });
    let mut res = Json(body).into_response();
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    if !r.ready {
        *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(5));
    }
    res
}

/// Unknown paths: a JSON error for machine routes, the storefront's 404 page
/// for everything else.
async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let path = uri.path();
    let machine = ["/api/", "/hooks/", "/metrics", "/healthz", "/readyz"].iter().any(|p| path.starts_with(p));
    if machine {
        ApiError::not_found("no such route").into_response()
    } else {
        storefront::not_found(&headers)
    }
}

async fn method_not_allowed() -> Response {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error", "method_not_allowed", "this method is not allowed here")
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_spans_carry_the_route_never_the_uri() {
        let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(std::io::sink).finish();
        tracing::subscriber::with_default(subscriber, || {
            let req = axum::http::Request::get("/orders/lookup?email=victim@example.com").body(axum::body::Body::empty()).unwrap();
            let span = super::request_span(&req);
            let fields = span.metadata().expect("an enabled span").fields();
            assert!(fields.field("route").is_some() && fields.field("method").is_some());
            let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
            assert_eq!(names, ["method", "route"], "nothing else, above all not the URI");
        });
    }
}

//! Inbound integrations (registry, credentials), sync batches (report,
//! rollback) under `/api/v1`, and the stock-feed push endpoint, which lives
//! outside `/api/v1` because it authenticates with the integration's own
//! credential rather than an admin API key.

use super::check_limit;
use crate::auth::ApiKey;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use keel_app::feeds::{
    FeedError, FeedFormat, FeedMode, FeedRequest, IntegrationChanges, IntegrationView, NewIntegration, RollbackOutcome,
    RollbackProblemView, SyncBatchRowView, SyncBatchView, MAX_FEED_BYTES,
};
use keel_app::views::Page;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations", post(create).get(list))
        .route("/integrations/{id}", get(show).post(update))
        .route("/integrations/{id}/rotate-credential", post(rotate_credential))
        .route("/sync-batches", get(list_batches))
        .route("/sync-batches/{id}", get(show_batch))
        .route("/sync-batches/{id}/rows", get(batch_rows))
        .route("/sync-batches/{id}/rollback", post(rollback))
}

/// `POST /hooks/integrations/{id}/stock-feed`: served without the admin key
/// (see `keel_web::router`), with a body limit of its own.
pub fn hooks_router() -> Router<AppState> {
    Router::new()
        .route("/hooks/integrations/{id}/stock-feed", post(stock_feed))
        .layer(DefaultBodyLimit::max(MAX_FEED_BYTES as usize))
}

#[derive(OpenApi)]
#[openapi(
    paths(create, list, show, update, rotate_credential, list_batches, show_batch, batch_rows, rollback),
    components(schemas(RollbackRefusal, RollbackRefusalBody, RollbackProblemView, FeedMode))
)]
pub struct Doc;

#[utoipa::path(post, path = "/integrations", tag = "integrations", request_body = NewIntegration,
    responses((status = 201, description = "The integration with its `credential` (an HMAC signing secret or an API key), shown only here and on rotation", body = IntegrationView),
              (status = 409, description = "duplicate_name", body = ErrorEnvelope),
              (status = 422, description = "invalid field; `url_not_allowed` on `pull.url` for a scheme other than http(s), credentials in the URL, or a target that is not public (loopback, private, link-local or metadata, CGNAT, IPv6 unique-local, addresses embedding those, `localhost`, or a name resolving to any of them)", body = ErrorEnvelope)))]
pub async fn create(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<NewIntegration>) -> ApiResult<(StatusCode, Json<IntegrationView>)> {
    Ok((StatusCode::CREATED, Json(s.app.create_integration(&key.actor(), input).await?)))
}

#[utoipa::path(get, path = "/integrations", tag = "integrations", params(super::ListQuery),
    responses((status = 200, description = "Newest first", body = Page<IntegrationView>)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<super::ListQuery>) -> ApiResult<Json<Page<IntegrationView>>> {
    Ok(Json(s.app.list_integrations(q.starting_after.as_deref(), check_limit(q.limit)?).await?))
}

#[utoipa::path(get, path = "/integrations/{id}", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, body = IntegrationView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<IntegrationView>> {
    Ok(Json(s.app.get_integration(&id).await?))
}

#[utoipa::path(post, path = "/integrations/{id}", tag = "integrations", params(("id" = String, Path)), request_body = IntegrationChanges,
    responses((status = 200, description = "Changing `auth` returns the new `credential`", body = IntegrationView),
              (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
              (status = 422, description = "invalid field; `url_not_allowed` on `pull.url` as when creating", body = ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<IntegrationChanges>,
) -> ApiResult<Json<IntegrationView>> {
    Ok(Json(s.app.update_integration(&key.actor(), &id, input).await?))
}

#[utoipa::path(post, path = "/integrations/{id}/rotate-credential", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, description = "The new `credential`; the old one stops working at once", body = IntegrationView),
              (status = 404, body = ErrorEnvelope)))]
pub async fn rotate_credential(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<IntegrationView>> {
    Ok(Json(s.app.rotate_integration_credential(&key.actor(), &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BatchListQuery {
    pub integration_id: Option<String>,
    /// 1–100, default 10.
    pub limit: Option<i64>,
    /// A batch id: the page starts after it.
    pub starting_after: Option<String>,
}

#[utoipa::path(get, path = "/sync-batches", tag = "integrations", params(BatchListQuery),
    responses((status = 200, description = "Newest first", body = Page<SyncBatchView>), (status = 422, body = ErrorEnvelope)))]
pub async fn list_batches(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<BatchListQuery>) -> ApiResult<Json<Page<SyncBatchView>>> {
    let limit = check_limit(q.limit)?;
    Ok(Json(s.app.list_sync_batches(q.integration_id.as_deref(), q.starting_after.as_deref(), limit).await?))
}

#[utoipa::path(get, path = "/sync-batches/{id}", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, description = "Status, row counts per outcome and the first problem rows", body = SyncBatchView),
              (status = 404, body = ErrorEnvelope)))]
pub async fn show_batch(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<SyncBatchView>> {
    Ok(Json(s.app.get_sync_batch(&id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RowsQuery {
    /// One outcome, several separated by commas, or `problems` (unknown_sku,
    /// unknown_location, invalid, rejected).
    pub outcome: Option<String>,
    /// 1–100, default 10.
    pub limit: Option<i64>,
    /// A line number: the page starts after it.
    pub starting_after: Option<i64>,
}

#[utoipa::path(get, path = "/sync-batches/{id}/rows", tag = "integrations", params(("id" = String, Path), RowsQuery),
    responses((status = 200, description = "Rows in line order with their outcome", body = Page<SyncBatchRowView>),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn batch_rows(
    State(s): State<AppState>,
    _key: ApiKey,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<RowsQuery>,
) -> ApiResult<Json<Page<SyncBatchRowView>>> {
    let limit = check_limit(q.limit)?;
    Ok(Json(s.app.sync_batch_rows(&id, q.outcome.as_deref(), q.starting_after, limit).await?))
}

/// The error shape, plus the rows that block a rollback.
#[derive(Debug, Serialize, ToSchema)]
pub struct RollbackRefusal {
    pub error: RollbackRefusalBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RollbackRefusalBody {
    #[serde(flatten)]
    pub error: ErrorBody,
    /// Per SKU and location: why undoing it would drive available stock
    /// negative (at most 100).
    pub details: Vec<RollbackProblemView>,
    pub has_more: bool,
}

#[utoipa::path(post, path = "/sync-batches/{id}/rollback", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, description = "Compensating movements applied; the batch is rolled_back", body = SyncBatchView),
              (status = 404, body = ErrorEnvelope),
              (status = 409, description = "rollback_refused (with `details` per SKU), batch_not_applied, batch_rolled_back", body = RollbackRefusal)))]
pub async fn rollback(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> Response {
    match s.app.rollback_sync_batch(&key.actor(), &id).await {
        Ok(RollbackOutcome::RolledBack(view)) => Json(*view).into_response(),
        Ok(RollbackOutcome::Refused { message, problems, more }) => {
            let error = ApiError::invalid(StatusCode::CONFLICT, "rollback_refused", message, None).body;
            let mut res = (StatusCode::CONFLICT, Json(RollbackRefusal { error: RollbackRefusalBody { error, details: problems, has_more: more } }))
                .into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// `all_or_nothing` (default) or `apply_valid`.
    pub mode: Option<FeedMode>,
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn feed_error(e: FeedError) -> Response {
    match e {
        FeedError::Unauthorized(m) => ApiError::unauthorized(&m).into_response(),
        FeedError::TooLarge => ApiError::invalid(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a feed may be at most {MAX_FEED_BYTES} bytes"),
            None,
        )
        .into_response(),
        FeedError::App(e) => ApiError::from(e).into_response(),
    }
}

/// Receives a stock feed: CSV (`text/csv`, header
/// `sku,location_id,on_hand,counted_at`), NDJSON (`application/x-ndjson`)
/// or JSON (`{"rows":[…]}`), streamed and staged without holding the body.
/// Authenticated by the integration's credential: `X-Keel-Signature:
/// t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">` (300 s tolerance) or
/// `Authorization: Bearer keel_ik_…`. `Idempotency-Key` names the batch: a
/// repeat answers with the stored batch (200, `Idempotent-Replayed: true`);
/// while the first is still streaming a repeat is `409 batch_in_progress`,
/// unless that upload stopped (no chunk for 30 s, e.g. its process died):
/// then the repeat takes over at once. A signature already accepted is
/// refused with `409 signature_replayed` (nothing applied): sign again.
async fn stock_feed(
    State(s): State<AppState>,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<FeedQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ct = header_text(&headers, "content-type").unwrap_or_default();
    let Some(format) = FeedFormat::from_content_type(&ct) else {
        return ApiError::invalid(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send text/csv, application/x-ndjson or application/json",
            None,
        )
        .into_response();
    };
    let bearer = header_text(&headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(|s| s.trim().to_owned()));
    let req = FeedRequest {
        format,
        mode: q.mode.unwrap_or_default(),
        idempotency_key: header_text(&headers, "idempotency-key"),
        bearer,
        signature: header_text(&headers, "x-keel-signature"),
    };
    let mut upload = match s.app.begin_stock_feed(&id, req).await {
        Ok(u) => u,
        Err(e) => return feed_error(e),
    };
    let mut body = body;
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if let Err(e) = upload.push(&data).await {
                        upload.abort().await;
                        return feed_error(e);
                    }
                }
            }
            Some(Err(_)) => {
                upload.abort().await;
                return ApiError::invalid(StatusCode::BAD_REQUEST, "invalid_body", "the body could not be read", None).into_response();
            }
        }
    }
    match upload.finish().await {
        Ok(outcome) if outcome.replayed => {
            let mut res = (StatusCode::OK, Json(outcome.batch)).into_response();
            res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            res
        }
        Ok(outcome) => (StatusCode::CREATED, Json(outcome.batch)).into_response(),
        Err(e) => feed_error(e),
    }
}

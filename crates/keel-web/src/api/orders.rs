use super::check_limit;
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_app::orders::{OrderView, RefundInput};
use keel_app::views::Page;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(list))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/capture", post(capture))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/orders/{id}/refunds", post(refund))
}

#[derive(OpenApi)]
#[openapi(paths(list, show, capture, cancel, refund))]
pub struct Doc;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrderListQuery {
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
    pub status: Option<String>,
    pub customer_id: Option<String>,
    /// Exact match (looked up through a keyed hash; emails are stored
    /// encrypted). Needs `customers.read` (403 otherwise).
    pub email: Option<String>,
}

#[utoipa::path(get, path = "/orders", tag = "orders", params(OrderListQuery),
    responses((status = 200, body = Page<OrderView>), (status = 403, description = "filtering by email without customers.read", body = ErrorEnvelope)))]
pub async fn list(State(s): State<AppState>, key: ApiKey, QueryParams(q): QueryParams<OrderListQuery>) -> ApiResult<Json<Page<OrderView>>> {
    let limit = check_limit(q.limit)?;
    if q.email.is_some() {
        key.viewer().may_search_by("email")?;
    }
    Ok(Json(key.viewer().show(s.app.list_orders(q.status.as_deref(), q.customer_id.as_deref(), q.email.as_deref(), q.starting_after.as_deref(), limit).await?)))
}

#[utoipa::path(get, path = "/orders/{id}", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, description = "The order with its lines, payment, refunds and timeline", body = OrderView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<OrderView>> {
    Ok(Json(key.viewer().show(s.app.get_order(&id).await?)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureInput {
    /// Minor units; the whole authorization when omitted.
    pub amount: Option<i64>,
}

#[utoipa::path(post, path = "/orders/{id}/capture", tag = "orders", params(("id" = String, Path)), request_body = CaptureInput,
    responses((status = 200, body = OrderView), (status = 409, description = "invalid_order_state", body = ErrorEnvelope)))]
pub async fn capture(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>, JsonBody(input): JsonBody<CaptureInput>) -> ApiResult<Json<OrderView>> {
    Ok(Json(key.viewer().show(s.app.capture_order(&key.actor(), &id, input.amount).await?)))
}

#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, description = "Cancelled: stock released, payment voided or refunded", body = OrderView),
              (status = 409, description = "invalid_order_state", body = ErrorEnvelope)))]
pub async fn cancel(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<OrderView>> {
    Ok(Json(key.viewer().show(s.app.cancel_order(&key.actor(), &id).await?)))
}

#[utoipa::path(post, path = "/orders/{id}/refunds", tag = "orders", params(("id" = String, Path)), request_body = RefundInput,
    responses((status = 201, body = OrderView), (status = 409, description = "nothing_to_refund", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn refund(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>, JsonBody(input): JsonBody<RefundInput>) -> ApiResult<(StatusCode, Json<OrderView>)> {
    Ok((StatusCode::CREATED, Json(key.viewer().show(s.app.refund_order(&key.actor(), &id, input).await?))))
}

use super::check_limit;
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_app::inventory::{AdjustmentInput, TransferInput};
use keel_app::views::{AdjustmentView, LevelView, MovementView, Page, TransferView};
use serde::Deserialize;
use utoipa::IntoParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inventory/adjustments", post(adjust))
        .route("/inventory/transfers", post(transfer))
        .route("/inventory/levels", get(levels))
        .route("/inventory/ledger", get(ledger))
}

#[utoipa::path(post, path = "/inventory/adjustments", tag = "inventory", request_body = AdjustmentInput,
    responses((status = 201, body = AdjustmentView),
              (status = 409, description = "stale_quantity, insufficient_stock or invalid_movement", body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn adjust(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<AdjustmentInput>) -> ApiResult<(StatusCode, Json<AdjustmentView>)> {
    Ok((StatusCode::CREATED, Json(s.app.adjust_inventory(&key.actor(), input).await?)))
}

#[utoipa::path(post, path = "/inventory/transfers", tag = "inventory", request_body = TransferInput,
    responses((status = 201, body = TransferView), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn transfer(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<TransferInput>) -> ApiResult<(StatusCode, Json<TransferView>)> {
    Ok((StatusCode::CREATED, Json(s.app.transfer_inventory(&key.actor(), input).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LevelsQuery {
    /// Inventory item SKU.
    pub sku: String,
    pub location_id: Option<String>,
}

#[utoipa::path(get, path = "/inventory/levels", tag = "inventory", params(LevelsQuery),
    responses((status = 200, body = Page<LevelView>), (status = 404, body = ErrorEnvelope)))]
pub async fn levels(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<LevelsQuery>) -> ApiResult<Json<Page<LevelView>>> {
    Ok(Json(s.app.inventory_levels(&q.sku, q.location_id.as_deref()).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    pub sku: String,
    pub location_id: Option<String>,
    pub limit: Option<i64>,
    /// A movement id: the page continues with older movements.
    pub starting_after: Option<String>,
}

#[utoipa::path(get, path = "/inventory/ledger", tag = "inventory", params(LedgerQuery),
    responses((status = 200, description = "Movements, newest first", body = Page<MovementView>), (status = 404, body = ErrorEnvelope)))]
pub async fn ledger(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<LedgerQuery>) -> ApiResult<Json<Page<MovementView>>> {
    let limit = check_limit(q.limit)?;
    Ok(Json(s.app.inventory_ledger(&q.sku, q.location_id.as_deref(), q.starting_after.as_deref(), limit).await?))
}

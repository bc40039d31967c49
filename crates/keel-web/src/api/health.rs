use crate::auth::ApiKey;
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use keel_app::health::HealthReport;
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new().route("/integrations/health", get(show))
}

#[derive(OpenApi)]
#[openapi(paths(show))]
pub struct Doc;

#[utoipa::path(get, path = "/integrations/health", tag = "integrations",
    responses((status = 200, description = "Every inbound integration, webhook endpoint and outbox consumer with its state", body = HealthReport)))]
pub async fn show(State(s): State<AppState>, _key: ApiKey) -> ApiResult<Json<HealthReport>> {
    Ok(Json(s.app.integration_health(keel_domain::time::now_micros()).await?))
}

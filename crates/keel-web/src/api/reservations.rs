use super::check_limit;
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_app::reservations::ReservationInput;
use keel_app::views::{Page, ReservationView};
use serde::Deserialize;
use utoipa::IntoParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reservations", post(create).get(list))
        .route("/reservations/{id}", get(show))
        .route("/reservations/{id}/release", post(release))
        .route("/reservations/{id}/commit", post(commit))
}

#[utoipa::path(post, path = "/reservations", tag = "inventory", request_body = ReservationInput,
    responses((status = 201, body = ReservationView),
              (status = 409, description = "insufficient_stock: nothing was reserved", body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<ReservationInput>) -> ApiResult<(StatusCode, Json<ReservationView>)> {
    Ok((StatusCode::CREATED, Json(s.app.reserve(&key.actor(), input).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReservationListQuery {
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
    /// active, committed, released or expired.
    pub status: Option<String>,
}

#[utoipa::path(get, path = "/reservations", tag = "inventory", params(ReservationListQuery),
    responses((status = 200, body = Page<ReservationView>)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<ReservationListQuery>) -> ApiResult<Json<Page<ReservationView>>> {
    Ok(Json(s.app.list_reservations(q.status.as_deref(), q.starting_after.as_deref(), check_limit(q.limit)?).await?))
}

#[utoipa::path(get, path = "/reservations/{id}", tag = "inventory", params(("id" = String, Path)),
    responses((status = 200, body = ReservationView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<ReservationView>> {
    Ok(Json(s.app.get_reservation(&id).await?))
}

#[utoipa::path(post, path = "/reservations/{id}/release", tag = "inventory", params(("id" = String, Path)),
    responses((status = 200, body = ReservationView), (status = 409, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn release(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<ReservationView>> {
    Ok(Json(s.app.release_reservation(&key.actor(), &id).await?))
}

#[utoipa::path(post, path = "/reservations/{id}/commit", tag = "inventory", params(("id" = String, Path)),
    responses((status = 200, body = ReservationView), (status = 409, description = "reservation_expired or reservation_not_active", body = ErrorEnvelope),
              (status = 404, body = ErrorEnvelope)))]
pub async fn commit(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<ReservationView>> {
    Ok(Json(s.app.commit_reservation(&key.actor(), &id).await?))
}

use super::{check_limit, ListQuery};
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_app::locations::{LocationChanges, NewLocation};
use keel_app::views::{LocationView, Page};

pub fn router() -> Router<AppState> {
    Router::new().route("/locations", post(create).get(list)).route("/locations/{id}", get(show).post(update))
}

#[utoipa::path(post, path = "/locations", tag = "inventory", request_body = NewLocation,
    responses((status = 201, body = LocationView), (status = 422, body = ErrorEnvelope)))]
pub async fn create(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<NewLocation>) -> ApiResult<(StatusCode, Json<LocationView>)> {
    Ok((StatusCode::CREATED, Json(s.app.create_location(&key.actor(), input).await?)))
}

#[utoipa::path(get, path = "/locations", tag = "inventory", params(ListQuery), responses((status = 200, body = Page<LocationView>)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<ListQuery>) -> ApiResult<Json<Page<LocationView>>> {
    Ok(Json(s.app.list_locations(q.starting_after.as_deref(), check_limit(q.limit)?).await?))
}

#[utoipa::path(get, path = "/locations/{id}", tag = "inventory", params(("id" = String, Path)),
    responses((status = 200, body = LocationView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<LocationView>> {
    Ok(Json(s.app.get_location(&id).await?))
}

#[utoipa::path(post, path = "/locations/{id}", tag = "inventory", params(("id" = String, Path)), request_body = LocationChanges,
    responses((status = 200, body = LocationView), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<LocationChanges>,
) -> ApiResult<Json<LocationView>> {
    Ok(Json(s.app.update_location(&key.actor(), &id, input).await?))
}

use super::{check_limit, ListQuery};
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_app::catalog::{ChannelChanges, NewChannel};
use keel_app::views::{ChannelView, Page};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sales-channels", post(create).get(list))
        .route("/sales-channels/{id}", get(show).post(update))
}

#[utoipa::path(post, path = "/sales-channels", tag = "catalog", request_body = NewChannel,
    responses((status = 201, body = ChannelView), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<NewChannel>) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    Ok((StatusCode::CREATED, Json(s.app.create_channel(&key.actor(), input).await?)))
}

#[utoipa::path(get, path = "/sales-channels", tag = "catalog", params(ListQuery), responses((status = 200, body = Page<ChannelView>)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<ListQuery>) -> ApiResult<Json<Page<ChannelView>>> {
    Ok(Json(s.app.list_channels(q.starting_after.as_deref(), check_limit(q.limit)?).await?))
}

#[utoipa::path(get, path = "/sales-channels/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = ChannelView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<ChannelView>> {
    Ok(Json(s.app.get_channel(&id).await?))
}

#[utoipa::path(post, path = "/sales-channels/{id}", tag = "catalog", params(("id" = String, Path)), request_body = ChannelChanges,
    responses((status = 200, body = ChannelView), (status = 404, body = ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ChannelChanges>,
) -> ApiResult<Json<ChannelView>> {
    Ok(Json(s.app.update_channel(&key.actor(), &id, input).await?))
}

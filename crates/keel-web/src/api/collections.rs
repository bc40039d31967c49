use super::{check_limit, ListQuery};
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_app::collections::{CollectionChanges, CollectionProducts, CollectionView, NewCollection};
use keel_app::views::Page;
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/collections", post(create).get(list))
        .route("/collections/{id}", get(show).post(update))
        .route("/collections/{id}/products", post(set_products))
}

#[derive(OpenApi)]
#[openapi(paths(create, list, show, update, set_products))]
pub struct Doc;

#[utoipa::path(post, path = "/collections", tag = "catalog", request_body = NewCollection,
    responses((status = 201, body = CollectionView), (status = 404, description = "unknown product", body = ErrorEnvelope),
              (status = 409, description = "duplicate_handle", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<NewCollection>) -> ApiResult<(StatusCode, Json<CollectionView>)> {
    Ok((StatusCode::CREATED, Json(s.app.create_collection(&key.actor(), input).await?)))
}

#[utoipa::path(get, path = "/collections", tag = "catalog", params(ListQuery),
    responses((status = 200, body = Page<CollectionView>)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<ListQuery>) -> ApiResult<Json<Page<CollectionView>>> {
    Ok(Json(s.app.list_collections(q.starting_after.as_deref(), check_limit(q.limit)?).await?))
}

#[utoipa::path(get, path = "/collections/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = CollectionView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<CollectionView>> {
    Ok(Json(s.app.get_collection(&id).await?))
}

#[utoipa::path(post, path = "/collections/{id}", tag = "catalog", params(("id" = String, Path)), request_body = CollectionChanges,
    responses((status = 200, body = CollectionView), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<CollectionChanges>,
) -> ApiResult<Json<CollectionView>> {
    Ok(Json(s.app.update_collection(&key.actor(), &id, input).await?))
}

#[utoipa::path(post, path = "/collections/{id}/products", tag = "catalog", params(("id" = String, Path)),
    request_body = CollectionProducts,
    responses((status = 200, body = CollectionView), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn set_products(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<CollectionProducts>,
) -> ApiResult<Json<CollectionView>> {
    Ok(Json(s.app.set_collection_products(&key.actor(), &id, input).await?))
}

use super::check_limit;
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_app::catalog::{NewProduct, ProductChanges, VariantChanges, VariantInput};
use keel_app::views::{Page, ProductView};
use keel_domain::catalog::ProductStatus;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", post(create).get(list))
        .route("/products/{id}", get(show).post(update))
        .route("/products/{id}/archive", post(archive))
        .route("/products/{id}/variants", post(add_variant))
        .route("/products/{id}/variants/{variant_id}", post(update_variant))
}

#[utoipa::path(post, path = "/products", tag = "catalog", request_body = NewProduct,
    responses((status = 201, body = ProductView), (status = 409, description = "duplicate_sku or duplicate_handle", body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
pub async fn create(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<NewProduct>) -> ApiResult<(StatusCode, Json<ProductView>)> {
    Ok((StatusCode::CREATED, Json(s.app.create_product(&key.actor(), input).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProductListQuery {
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
    /// draft, active or archived.
    #[param(value_type = Option<String>)]
    pub status: Option<ProductStatus>,
}

#[utoipa::path(get, path = "/products", tag = "catalog", params(ProductListQuery),
    responses((status = 200, body = Page<ProductView>)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<ProductListQuery>) -> ApiResult<Json<Page<ProductView>>> {
    Ok(Json(s.app.list_products(q.status, q.starting_after.as_deref(), check_limit(q.limit)?).await?))
}

#[utoipa::path(get, path = "/products/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = ProductView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<ProductView>> {
    Ok(Json(s.app.get_product(&id).await?))
}

#[utoipa::path(post, path = "/products/{id}", tag = "catalog", params(("id" = String, Path)), request_body = ProductChanges,
    responses((status = 200, body = ProductView), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ProductChanges>,
) -> ApiResult<Json<ProductView>> {
    Ok(Json(s.app.update_product(&key.actor(), &id, input).await?))
}

#[utoipa::path(post, path = "/products/{id}/archive", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = ProductView), (status = 404, body = ErrorEnvelope)))]
pub async fn archive(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<ProductView>> {
    Ok(Json(s.app.archive_product(&key.actor(), &id).await?))
}

#[utoipa::path(post, path = "/products/{id}/variants", tag = "catalog", params(("id" = String, Path)), request_body = VariantInput,
    responses((status = 201, body = ProductView), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn add_variant(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<VariantInput>,
) -> ApiResult<(StatusCode, Json<ProductView>)> {
    Ok((StatusCode::CREATED, Json(s.app.add_variant(&key.actor(), &id, input).await?)))
}

#[utoipa::path(post, path = "/products/{id}/variants/{variant_id}", tag = "catalog",
    params(("id" = String, Path), ("variant_id" = String, Path)), request_body = VariantChanges,
    responses((status = 200, body = ProductView), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update_variant(
    State(s): State<AppState>,
    key: ApiKey,
    Path((id, variant_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<VariantChanges>,
) -> ApiResult<Json<ProductView>> {
    Ok(Json(s.app.update_variant(&key.actor(), &id, &variant_id, input).await?))
}

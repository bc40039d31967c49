use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::JsonBody;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use keel_app::shipping::{NewShippingMethod, ShippingMethodChanges, ShippingMethodView, TaxRateInput, TaxRateView};
use keel_app::views::Page;
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/shipping-methods", post(create_method).get(list_methods))
        .route("/shipping-methods/{id}", post(update_method))
        .route("/tax-rates", post(set_rate).get(list_rates))
}

#[derive(OpenApi)]
#[openapi(paths(create_method, list_methods, update_method, set_rate, list_rates))]
pub struct Doc;

#[utoipa::path(post, path = "/shipping-methods", tag = "checkout", request_body = NewShippingMethod,
    responses((status = 201, body = ShippingMethodView), (status = 422, body = ErrorEnvelope)))]
pub async fn create_method(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<NewShippingMethod>) -> ApiResult<(StatusCode, Json<ShippingMethodView>)> {
    Ok((StatusCode::CREATED, Json(s.app.create_shipping_method(&key.actor(), input).await?)))
}

#[utoipa::path(get, path = "/shipping-methods", tag = "checkout", responses((status = 200, body = Page<ShippingMethodView>)))]
pub async fn list_methods(State(s): State<AppState>, _key: ApiKey) -> ApiResult<Json<Page<ShippingMethodView>>> {
    Ok(Json(Page { object: "list", data: s.app.list_shipping_methods().await?, has_more: false }))
}

#[utoipa::path(post, path = "/shipping-methods/{id}", tag = "checkout", params(("id" = String, Path)), request_body = ShippingMethodChanges,
    responses((status = 200, body = ShippingMethodView), (status = 404, body = ErrorEnvelope)))]
pub async fn update_method(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ShippingMethodChanges>,
) -> ApiResult<Json<ShippingMethodView>> {
    Ok(Json(s.app.update_shipping_method(&key.actor(), &id, input).await?))
}

#[utoipa::path(post, path = "/tax-rates", tag = "checkout", request_body = TaxRateInput,
    responses((status = 201, description = "Created or replaced the rate for the country/region", body = TaxRateView), (status = 422, body = ErrorEnvelope)))]
pub async fn set_rate(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<TaxRateInput>) -> ApiResult<(StatusCode, Json<TaxRateView>)> {
    Ok((StatusCode::CREATED, Json(s.app.set_tax_rate(&key.actor(), input).await?)))
}

#[utoipa::path(get, path = "/tax-rates", tag = "checkout", responses((status = 200, body = Page<TaxRateView>)))]
pub async fn list_rates(State(s): State<AppState>, _key: ApiKey) -> ApiResult<Json<Page<TaxRateView>>> {
    Ok(Json(Page { object: "list", data: s.app.list_tax_rates().await?, has_more: false }))
}

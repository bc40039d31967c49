use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::JsonBody;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use keel_app::carts::{CartChanges, CartLineChanges, CartLineInput, CartView, NewCart};
use keel_app::checkout::CompleteInput;
use keel_app::idempotency::RequestKey;
use keel_app::orders::OrderView;
use keel_app::shipping::ShippingMethodView;
use keel_app::views::Page;
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/carts", post(create))
        .route("/carts/{id}", get(show).post(update))
        .route("/carts/{id}/lines", post(add_line))
        .route("/carts/{id}/lines/{line_id}", post(update_line).delete(remove_line))
        .route("/carts/{id}/shipping-methods", get(shipping_methods))
        .route("/carts/{id}/complete", post(complete))
}

#[derive(OpenApi)]
#[openapi(paths(create, show, update, add_line, update_line, remove_line, shipping_methods, complete))]
pub struct Doc;

#[utoipa::path(post, path = "/carts", tag = "checkout", request_body = NewCart,
    responses((status = 201, body = CartView), (status = 422, body = ErrorEnvelope)))]
pub async fn create(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<NewCart>) -> ApiResult<(StatusCode, Json<CartView>)> {
    Ok((StatusCode::CREATED, Json(key.viewer().show(s.app.create_cart(&key.actor(), input).await?))))
}

#[utoipa::path(get, path = "/carts/{id}", tag = "checkout", params(("id" = String, Path)),
    responses((status = 200, body = CartView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<CartView>> {
    Ok(Json(key.viewer().show(s.app.get_cart(&id).await?)))
}

#[utoipa::path(post, path = "/carts/{id}", tag = "checkout", params(("id" = String, Path)), request_body = CartChanges,
    responses((status = 200, body = CartView), (status = 409, description = "cart_not_open", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>, JsonBody(input): JsonBody<CartChanges>) -> ApiResult<Json<CartView>> {
    Ok(Json(key.viewer().show(s.app.update_cart(&key.actor(), &id, input).await?)))
}

#[utoipa::path(post, path = "/carts/{id}/lines", tag = "checkout", params(("id" = String, Path)), request_body = CartLineInput,
    responses((status = 201, body = CartView), (status = 404, body = ErrorEnvelope), (status = 422, description = "no_price: the variant has no price in the cart's currency", body = ErrorEnvelope)))]
pub async fn add_line(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>, JsonBody(input): JsonBody<CartLineInput>) -> ApiResult<(StatusCode, Json<CartView>)> {
    Ok((StatusCode::CREATED, Json(key.viewer().show(s.app.add_cart_line(&key.actor(), &id, input).await?))))
}

#[utoipa::path(post, path = "/carts/{id}/lines/{line_id}", tag = "checkout", params(("id" = String, Path), ("line_id" = String, Path)),
    request_body = CartLineChanges, responses((status = 200, body = CartView), (status = 404, body = ErrorEnvelope)))]
pub async fn update_line(
    State(s): State<AppState>,
    key: ApiKey,
    Path((id, line_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<CartLineChanges>,
) -> ApiResult<Json<CartView>> {
    Ok(Json(key.viewer().show(s.app.update_cart_line(&key.actor(), &id, &line_id, input).await?)))
}

#[utoipa::path(delete, path = "/carts/{id}/lines/{line_id}", tag = "checkout", params(("id" = String, Path), ("line_id" = String, Path)),
    responses((status = 200, body = CartView), (status = 404, body = ErrorEnvelope)))]
pub async fn remove_line(State(s): State<AppState>, key: ApiKey, Path((id, line_id)): Path<(String, String)>) -> ApiResult<Json<CartView>> {
    Ok(Json(key.viewer().show(s.app.remove_cart_line(&key.actor(), &id, &line_id).await?)))
}

#[utoipa::path(get, path = "/carts/{id}/shipping-methods", tag = "checkout", params(("id" = String, Path)),
    responses((status = 200, description = "Methods for the cart's currency and destination", body = Page<ShippingMethodView>)))]
pub async fn shipping_methods(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<Page<ShippingMethodView>>> {
    let data = s.app.cart_shipping_methods(&id).await?;
    Ok(Json(Page { object: "list", data, has_more: false }))
}

#[utoipa::path(post, path = "/carts/{id}/complete", tag = "checkout", params(("id" = String, Path)), request_body = CompleteInput,
    responses((status = 201, description = "The order", body = OrderView),
              (status = 402, description = "card_declined (with decline_code) or payment_method_invalid; the stock is released", body = ErrorEnvelope),
              (status = 409, description = "insufficient_stock, cart_not_open, cart_completed, cart_changed, payment_unavailable; with the Idempotency-Key of an earlier attempt whose process stopped: checkout_in_progress (retry shortly) or checkout_failed", body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
pub async fn complete(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    request: Option<Extension<RequestKey>>,
    JsonBody(input): JsonBody<CompleteInput>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let request = request.map(|Extension(r)| r);
    Ok((StatusCode::CREATED, Json(key.viewer().show(s.app.complete_cart(&key.actor(), &id, input, request.as_ref()).await?))))
}

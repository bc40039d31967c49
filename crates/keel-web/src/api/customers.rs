//! Customers (accounts and guests) and their addresses.

use super::check_limit;
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_app::customers::{
    AddressChanges, AddressView, CustomerChanges, CustomerView, DeletedAddressView, NewAddress, NewCustomer,
};
use keel_app::views::Page;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers", post(create).get(list))
        .route("/customers/{id}", get(show).post(update))
        .route("/customers/{id}/addresses", post(create_address).get(list_addresses))
        .route("/customers/{id}/addresses/{address_id}", get(show_address).post(update_address).delete(delete_address))
        .route("/customers/{id}/addresses/{address_id}/delete", post(delete_address_action))
}

#[derive(OpenApi)]
#[openapi(paths(
    create,
    list,
    show,
    update,
    create_address,
    list_addresses,
    show_address,
    update_address,
    delete_address,
    delete_address_action
))]
pub struct Doc;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerListQuery {
    /// Exact email (case-insensitive): the account and any guests with it.
    pub email: Option<String>,
    /// 1–100, default 10.
    pub limit: Option<i64>,
    /// A customer id: the page starts after it.
    pub starting_after: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AddressListQuery {
    /// 1–100, default 10.
    pub limit: Option<i64>,
    /// An address id: the page starts after it.
    pub starting_after: Option<String>,
}

#[utoipa::path(post, path = "/customers", tag = "customers", request_body = NewCustomer,
    responses((status = 201, body = CustomerView), (status = 409, description = "`email_taken`: an account has this email", body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
pub async fn create(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<NewCustomer>) -> ApiResult<(StatusCode, Json<CustomerView>)> {
    Ok((StatusCode::CREATED, Json(s.app.create_customer(&key.actor(), input).await?)))
}

#[utoipa::path(get, path = "/customers", tag = "customers", params(CustomerListQuery),
    responses((status = 200, description = "Customers, newest first", body = Page<CustomerView>), (status = 422, body = ErrorEnvelope)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<CustomerListQuery>) -> ApiResult<Json<Page<CustomerView>>> {
    Ok(Json(s.app.list_customers(q.email.as_deref(), q.starting_after.as_deref(), check_limit(q.limit)?).await?))
}

#[utoipa::path(get, path = "/customers/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<CustomerView>> {
    Ok(Json(s.app.get_customer(&id).await?))
}

#[utoipa::path(post, path = "/customers/{id}", tag = "customers", params(("id" = String, Path)), request_body = CustomerChanges,
    responses((status = 200, body = CustomerView), (status = 404, body = ErrorEnvelope),
              (status = 409, description = "`email_taken`: an account has this email", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<CustomerChanges>,
) -> ApiResult<Json<CustomerView>> {
    Ok(Json(s.app.update_customer(&key.actor(), &id, input).await?))
}

#[utoipa::path(post, path = "/customers/{id}/addresses", tag = "customers", params(("id" = String, Path)), request_body = NewAddress,
    responses((status = 201, body = AddressView), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_address(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<NewAddress>,
) -> ApiResult<(StatusCode, Json<AddressView>)> {
    Ok((StatusCode::CREATED, Json(s.app.create_customer_address(&key.actor(), &id, input).await?)))
}

#[utoipa::path(get, path = "/customers/{id}/addresses", tag = "customers", params(("id" = String, Path), AddressListQuery),
    responses((status = 200, description = "Addresses, newest first", body = Page<AddressView>), (status = 404, body = ErrorEnvelope)))]
pub async fn list_addresses(
    State(s): State<AppState>,
    _key: ApiKey,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<AddressListQuery>,
) -> ApiResult<Json<Page<AddressView>>> {
    Ok(Json(s.app.list_customer_addresses(&id, q.starting_after.as_deref(), check_limit(q.limit)?).await?))
}

#[utoipa::path(get, path = "/customers/{id}/addresses/{address_id}", tag = "customers",
    params(("id" = String, Path), ("address_id" = String, Path)),
    responses((status = 200, body = AddressView), (status = 404, body = ErrorEnvelope)))]
pub async fn show_address(State(s): State<AppState>, _key: ApiKey, Path((id, address_id)): Path<(String, String)>) -> ApiResult<Json<AddressView>> {
    Ok(Json(s.app.get_customer_address(&id, &address_id).await?))
}

#[utoipa::path(post, path = "/customers/{id}/addresses/{address_id}", tag = "customers",
    params(("id" = String, Path), ("address_id" = String, Path)), request_body = AddressChanges,
    responses((status = 200, body = AddressView), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update_address(
    State(s): State<AppState>,
    key: ApiKey,
    Path((id, address_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<AddressChanges>,
) -> ApiResult<Json<AddressView>> {
    Ok(Json(s.app.update_customer_address(&key.actor(), &id, &address_id, input).await?))
}

#[utoipa::path(delete, path = "/customers/{id}/addresses/{address_id}", tag = "customers",
    params(("id" = String, Path), ("address_id" = String, Path)),
    responses((status = 200, body = DeletedAddressView), (status = 404, body = ErrorEnvelope)))]
pub async fn delete_address(
    State(s): State<AppState>,
    key: ApiKey,
    Path((id, address_id)): Path<(String, String)>,
) -> ApiResult<Json<DeletedAddressView>> {
    Ok(Json(s.app.delete_customer_address(&key.actor(), &id, &address_id).await?))
}

/// The same as `DELETE /customers/{id}/addresses/{address_id}`, as a POST
/// action (so it can carry an `Idempotency-Key`).
#[utoipa::path(post, path = "/customers/{id}/addresses/{address_id}/delete", tag = "customers",
    params(("id" = String, Path), ("address_id" = String, Path)),
    responses((status = 200, body = DeletedAddressView), (status = 404, body = ErrorEnvelope)))]
pub async fn delete_address_action(
    State(s): State<AppState>,
    key: ApiKey,
    Path((id, address_id)): Path<(String, String)>,
) -> ApiResult<Json<DeletedAddressView>> {
    Ok(Json(s.app.delete_customer_address(&key.actor(), &id, &address_id).await?))
}

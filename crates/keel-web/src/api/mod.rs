//! The JSON API under `/api/v1`, one module per resource.

pub mod apikeys;
pub mod audit;
pub mod carts;
pub mod channels;
pub mod collections;
pub mod customers;
pub mod events;
pub mod health;
pub mod images;
pub mod integrations;
pub mod inventory;
pub mod locations;
pub mod openapi;
pub mod orders;
pub mod products;
pub mod reservations;
pub mod shipping;
pub mod webhooks;

use crate::error::ApiError;
use crate::AppState;
use axum::http::StatusCode;
use axum::Router;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(products::router())
        .merge(images::router())
        .merge(channels::router())
        .merge(collections::router())
        .merge(locations::router())
        .merge(inventory::router())
        .merge(reservations::router())
        .merge(events::router())
        .merge(health::router())
        .merge(customers::router())
        .merge(carts::router())
        .merge(orders::router())
        .merge(shipping::router())
        .merge(webhooks::router())
        .merge(integrations::router())
        .merge(apikeys::router())
        .merge(audit::router())
}

/// Cursor pagination shared by every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1–100, default 10.
    pub limit: Option<i64>,
    /// An object id: the page starts after it.
    pub starting_after: Option<String>,
}

pub fn check_limit(limit: Option<i64>) -> Result<Option<i64>, ApiError> {
    match limit {
        Some(l) if !(1..=100).contains(&l) => Err(ApiError::invalid(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
            "limit must be between 1 and 100",
            Some("limit".into()),
        )),
        l => Ok(l),
    }
}

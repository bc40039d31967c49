//! Inventory: levels per location, adjustments with a reason, the ledger per SKU, transfers.

use crate::access::AdminRoute;
use crate::AppState;
use axum::Router;

pub const ROUTES: &[AdminRoute] = &[];

pub fn router() -> Router<AppState> {
    Router::new()
}

//! Orders: filter, detail with timeline, cancel, refund.

use crate::access::AdminRoute;
use crate::AppState;
use axum::Router;

pub const ROUTES: &[AdminRoute] = &[];

pub fn router() -> Router<AppState> {
    Router::new()
}

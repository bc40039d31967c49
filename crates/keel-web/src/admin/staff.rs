//! Staff users and roles, API keys, the audit log.

use crate::access::AdminRoute;
use crate::AppState;
use axum::Router;

pub const ROUTES: &[AdminRoute] = &[];

pub fn router() -> Router<AppState> {
    Router::new()
}

//! Integrations: webhook endpoints with their delivery attempts and replay; inbound integrations with health, sync batches and rollback.

use crate::access::AdminRoute;
use crate::AppState;
use axum::Router;

pub const ROUTES: &[AdminRoute] = &[];

pub fn router() -> Router<AppState> {
    Router::new()
}

//! Products: list, search, edit variants, prices and images.

use crate::access::AdminRoute;
use crate::AppState;
use axum::Router;

pub const ROUTES: &[AdminRoute] = &[];

pub fn router() -> Router<AppState> {
    Router::new()
}

//! `/admin`: the first page after sign-in.

use super::{html, Layout, StaffUser};
use crate::access::{Access, AdminRoute};
use crate::AppState;
use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub const ROUTES: &[AdminRoute] = &[("GET", "/admin", Access::SignedIn)];

pub fn router() -> Router<AppState> {
    Router::new().route("/admin", get(dashboard))
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    layout: Layout,
    two_factor: bool,
}

async fn dashboard(staff: StaffUser) -> Response {
    html(StatusCode::OK, &DashboardPage { layout: staff.layout("Dashboard"), two_factor: staff.user().two_factor_enabled })
}

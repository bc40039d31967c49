//! `/admin`: what needs attention, for the sections the user's role may
//! read — sales of the last day and week, orders to fulfil, stock running
//! out, integrations that are not healthy — and their own account.

use super::integrations::health_words;
use super::{error_page, html, Layout, StaffUser};
use crate::access::{Access, AdminRoute, Permission};
use crate::storefront::format_money;
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use keel_app::dashboard::{OrderFigures, StockFigures};
use keel_app::health::ComponentHealth;
use keel_app::AppError;
use keel_domain::health::HealthState;
use keel_domain::time::now_micros;

pub const ROUTES: &[AdminRoute] = &[("GET", "/admin", Access::SignedIn)];

pub fn router() -> Router<AppState> {
    Router::new().route("/admin", get(dashboard))
}

/// Available units at or below which a level counts as low (the inventory
/// list's default filter).
const LOW_STOCK_AT: i64 = 5;
const DAY: i64 = 24 * 3600 * 1_000_000;

/// One currency's sales over one period, formatted.
struct SalesRow {
    period: &'static str,
    currency: String,
    orders: i64,
    gross: String,
    cancelled: i64,
    cancellation_rate: String,
    refunded: String,
}

impl SalesRow {
    fn new(period: &'static str, f: &OrderFigures) -> SalesRow {
        SalesRow {
            period,
            currency: f.currency.clone(),
            orders: f.orders,
            gross: format_money(f.gross, &f.currency),
            cancelled: f.cancelled,
            cancellation_rate: percent(f.cancelled, f.orders),
            refunded: format_money(f.refunded, &f.currency),
        }
    }
}

fn plural(n: i64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "0%".into();
    }
    let tenths = (part * 1000 + whole / 2) / whole;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// A component that is not healthy, with where to look.
struct HealthRow {
    name: String,
    kind: &'static str,
    state: &'static str,
    state_class: &'static str,
    detail: String,
    href: String,
}

impl HealthRow {
    fn new(c: &ComponentHealth) -> HealthRow {
        let (kind, href) = match c.kind {
            "integration" => ("Inbound integration", format!("/admin/integrations/{}", c.id)),
            "webhook_endpoint" => ("Webhook endpoint", format!("/admin/webhook-endpoints/{}", c.id)),
            _ => ("Event consumer", "/admin/integrations".to_owned()),
        };
        let (state, state_class) = health_words(c.state);
        HealthRow {
            name: c.name.clone(),
            kind,
            state,
            state_class,
            detail: c.detail.clone().unwrap_or_default(),
            href,
        }
    }
}

struct Health {
    overall: &'static str,
    overall_class: &'static str,
    /// "3 components".
    components: String,
    attention: Vec<HealthRow>,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    layout: Layout,
    two_factor: bool,
    sales: Option<Vec<SalesRow>>,
    /// "3 orders".
    to_fulfil: Option<String>,
    stock: Option<StockFigures>,
    low_at: i64,
    health: Option<Health>,
}

async fn dashboard(State(state): State<AppState>, staff: StaffUser) -> Response {
    match build(&state, &staff).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(e) => error_page(&e),
    }
}

async fn build(state: &AppState, staff: &StaffUser) -> Result<DashboardPage, AppError> {
    let app = &state.app;
    let now = now_micros();
    let (mut sales, mut to_fulfil, mut stock, mut health) = (None, None, None, None);
    if staff.can(Permission::OrdersRead) {
        let mut rows: Vec<SalesRow> = app.order_figures(now - DAY).await?.iter().map(|f| SalesRow::new("Last 24 hours", f)).collect();
        rows.extend(app.order_figures(now - 7 * DAY).await?.iter().map(|f| SalesRow::new("Last 7 days", f)));
        sales = Some(rows);
        to_fulfil = Some(plural(app.orders_to_fulfil().await?, "order"));
    }
    if staff.can(Permission::InventoryRead) {
        stock = Some(app.stock_figures(LOW_STOCK_AT).await?);
    }
    if staff.can(Permission::IntegrationsRead) {
        let report = app.integration_health(now).await?;
        let mut attention: Vec<&ComponentHealth> = report.components.iter().filter(|c| c.state != HealthState::Healthy).collect();
        attention.sort_by_key(|c| std::cmp::Reverse(c.state));
        let (overall, overall_class) = health_words(report.status);
        health = Some(Health {
            overall,
            overall_class,
            components: plural(report.components.len() as i64, "component"),
            attention: attention.into_iter().map(HealthRow::new).collect(),
        });
    }
    Ok(DashboardPage {
        layout: staff.layout("Dashboard"),
        two_factor: staff.user().two_factor_enabled,
        sales,
        to_fulfil,
        stock,
        low_at: LOW_STOCK_AT,
        health,
    })
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percentages_round_to_one_decimal() {
        assert_eq!(percent(0, 0), "0%");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(2, 3), "66.7%");
        assert_eq!(percent(5, 5), "100.0%");
    }
}

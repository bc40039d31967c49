//! Inventory: levels per location, adjustments with a reason, the ledger per
//! SKU, transfers.
//!
//! Pages address an inventory item by its id (`iitem_…`), not its SKU: SKUs
//! may contain `/`. `/admin/inventory/lookup?sku=` finds the page for a SKU.

mod item;
mod transfers;

use super::paging::{page_number, Pager, PER_PAGE};
use super::{error_page, html, not_found, query, see_other, Layout, StaffUser};
use crate::access::{Access, AdminRoute, Permission};
use crate::storefront::form::Field;
use crate::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keel_app::AppError;
use keel_store::inventory::{StockFilter, StockLine};

pub const ROUTES: &[AdminRoute] = &[
    ("GET", "/admin/inventory", Access::Needs(Permission::InventoryRead)),
    ("GET", "/admin/inventory/lookup", Access::Needs(Permission::InventoryRead)),
    ("GET", "/admin/inventory/items/{item_id}", Access::Needs(Permission::InventoryRead)),
    ("POST", "/admin/inventory/items/{item_id}/adjust", Access::Needs(Permission::InventoryWrite)),
    ("GET", "/admin/inventory/transfers", Access::Needs(Permission::InventoryRead)),
    ("POST", "/admin/inventory/transfers", Access::Needs(Permission::InventoryWrite)),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/inventory", get(levels))
        .route("/admin/inventory/lookup", get(lookup))
        .route("/admin/inventory/items/{item_id}", get(item::show))
        .route("/admin/inventory/items/{item_id}/adjust", post(item::adjust))
        .route("/admin/inventory/transfers", get(transfers::list).post(transfers::create))
}

/// Low stock unless told otherwise: at most this many available.
const LOW_STOCK_DEFAULT: i64 = 5;

/// The page of one inventory item.
pub fn item_path(item_id: &str) -> String {
    format!("/admin/inventory/items/{item_id}")
}

/// "Out of stock" / "Low stock" / "In stock", with its badge class; words,
/// not colour, carry the meaning.
fn stock_status(available: i64, low_at: i64) -> (&'static str, &'static str) {
    if available <= 0 {
        ("Out of stock", "bad")
    } else if available <= low_at {
        ("Low stock", "warn")
    } else {
        ("In stock", "ok")
    }
}

/// A level as the tables show it.
pub struct LevelRowView {
    pub item_href: String,
    pub sku: String,
    pub title: String,
    pub location: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    pub incoming: i64,
    pub damaged: i64,
    pub quality_control: i64,
    pub available: i64,
    pub status: &'static str,
    pub status_class: &'static str,
}

impl LevelRowView {
    fn new(l: &StockLine, low_at: i64) -> LevelRowView {
        let v = &l.level.levels;
        let available = v.available();
        let (status, status_class) = stock_status(available, low_at);
        let title = match (&l.product_title, &l.variant_title) {
            (Some(p), Some(v)) if !v.is_empty() && v != p => format!("{p} — {v}"),
            (Some(p), _) => p.clone(),
            _ => String::new(),
        };
        let mut location = l.location_name.clone();
        if l.location_archived {
            location.push_str(" (archived)");
        }
        LevelRowView {
            item_href: item_path(&l.level.inventory_item_id),
            sku: l.sku.clone(),
            title,
            location,
            on_hand: v.on_hand,
            reserved: v.reserved,
            safety_stock: v.safety_stock,
            incoming: v.incoming,
            damaged: v.damaged,
            quality_control: v.quality_control,
            available,
            status,
            status_class,
        }
    }
}

/// (id, name) of every location for a select; archived ones only when
/// `archived` (filters), marked.
async fn location_options(state: &AppState, archived: bool) -> Result<Vec<(String, String)>, AppError> {
    Ok(state
        .app
        .all_locations()
        .await?
        .into_iter()
        .filter(|l| archived || l.archived_at.is_none())
        .map(|l| {
            let name = if l.archived_at.is_some() { format!("{} (archived)", l.name) } else { l.name };
            (l.id, name)
        })
        .collect())
}

// ---------------------------------------------------------------- levels ---

#[derive(Template)]
#[template(path = "admin/inventory_levels.html")]
struct LevelsPage {
    layout: Layout,
    location: Field,
    search: Field,
    low: bool,
    threshold: Field,
    rows: Vec<LevelRowView>,
    filtered: bool,
    pager: Pager,
}

async fn levels(State(state): State<AppState>, staff: StaffUser, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw);
    let page = page_number(Some(q.get("page")));
    let locations = match location_options(&state, true).await {
        Ok(l) => l,
        Err(e) => return error_page(&e),
    };
    // Unknown or malformed filter values are ignored, not errors.
    let location_id = Some(q.get("location")).filter(|l| locations.iter().any(|(id, _)| id == l));
    let search: String = q.get("q").chars().take(100).collect();
    let low = q.get("low") == "1";
    let threshold_raw = q.get("threshold");
    let threshold = threshold_raw.parse::<i64>().ok().filter(|n| (0..=1_000_000_000).contains(n));
    let low_at = threshold.unwrap_or(LOW_STOCK_DEFAULT);
    let filter = StockFilter {
        location_id,
        search: Some(search.as_str()).filter(|s| !s.is_empty()),
        available_at_most: low.then_some(low_at),
        ..Default::default()
    };
    let lines = match state.app.stock_lines(&filter, Pager::offset(page), PER_PAGE + 1).await {
        Ok(l) => l,
        Err(e) => return error_page(&e),
    };
    let has_next = lines.len() as i64 > PER_PAGE;
    let rows = lines.iter().take(PER_PAGE as usize).map(|l| LevelRowView::new(l, low_at)).collect();
    let threshold_text = threshold.map(|n| n.to_string()).unwrap_or_default();
    let pager = Pager::new(
        "/admin/inventory",
        &[
            ("location", location_id.unwrap_or("")),
            ("q", &search),
            ("low", if low { "1" } else { "" }),
            ("threshold", &threshold_text),
        ],
        page,
        has_next,
    );
    let mut all = vec![(String::new(), "All locations".to_owned())];
    all.extend(locations);
    let location = Field::new("location", "Location", "select", "off").value(location_id.unwrap_or("")).options(all).optional();
    let search_field = Field::new("q", "SKU or title", "search", "off").value(search.clone()).optional();
    let threshold_field = Field::new("threshold", "Low stock at or below", "number", "off")
        .value(if threshold_raw.is_empty() { LOW_STOCK_DEFAULT.to_string() } else { threshold_text.clone() })
        .inputmode("numeric")
        .optional();
    let page = LevelsPage {
        layout: staff.layout("Inventory"),
        location,
        search: search_field,
        low,
        threshold: threshold_field,
        rows,
        filtered: location_id.is_some() || !search.is_empty() || low,
        pager,
    };
    html(StatusCode::OK, &page)
}

/// `?sku=` → the page of the inventory item with that SKU.
async fn lookup(State(state): State<AppState>, _staff: StaffUser, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw);
    match state.app.inventory_item_id(q.get("sku")).await {
        Ok(id) => see_other(&item_path(&id)),
        Err(AppError::NotFound { .. } | AppError::Invalid(_)) => not_found("SKU"),
        Err(e) => error_page(&e),
    }
}

// --------------------------------------------------------------- helpers ---

/// A human name for a movement kind.
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "receive" => "Received",
        "adjust" => "Adjusted",
        "reserve" => "Reserved",
        "release" => "Released",
        "commit" => "Committed",
        "ship" => "Shipped",
        "return" => "Returned",
        "transfer_out" => "Transfer out",
        "transfer_in" => "Transfer in",
        "sync" => "Feed sync",
        "damage" => "Marked damaged",
        "damage_release" => "Damage released",
        "write_off" => "Written off",
        "qc_hold" => "Held for QC",
        "qc_release" => "Released from QC",
        "safety_stock" => "Safety stock",
        "incoming" => "Incoming",
        _ => "Other",
    }
}

/// Who made a change: the staff user's email, or the actor as recorded.
pub fn actor_label(actor: &str, staff_email: Option<&str>) -> String {
    match staff_email {
        Some(e) => e.to_owned(),
        None => actor.to_owned(),
    }
}

/// `+3` / `−2` (a real minus sign) / `0`.
pub fn signed(n: i64) -> String {
    match n {
        n if n > 0 => format!("+{n}"),
        n if n < 0 => format!("\u{2212}{}", -n),
        _ => "0".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_signs_are_words_and_real_minus_signs() {
        assert_eq!(stock_status(0, 5).0, "Out of stock");
        assert_eq!(stock_status(5, 5).0, "Low stock");
        assert_eq!(stock_status(6, 5).0, "In stock");
        assert_eq!((signed(3), signed(-2), signed(0)), ("+3".into(), "\u{2212}2".into(), "0".into()));
        assert_eq!(kind_label("transfer_in"), "Transfer in");
    }
}

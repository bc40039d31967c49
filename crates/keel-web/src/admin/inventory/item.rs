//! One inventory item: its levels, the adjust form and its ledger.
//!
//! The adjust form carries, per location, the on_hand it was rendered with
//! (`expected_on_hand.{location_id}`); the adjustment is guarded by the one
//! of the chosen location, so an edit made against stale figures is refused
//! (409) and changes nothing.

use super::{actor_label, item_path, kind_label, location_options, query, signed, LevelRowView, LOW_STOCK_DEFAULT};
use crate::admin::paging::{page_number, Pager, PER_PAGE};
use crate::admin::{error_page, flash, html, not_found, when, Layout, StaffForm, StaffUser};
use crate::storefront::form::{Errors, Field, FormData, Problem};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use keel_app::inventory::{AdjustmentInput, ItemOverview};
use keel_app::AppError;
use keel_store::inventory::LedgerLine;

/// Why stock is adjusted, and what the quantity then means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// Units added (movement `receive`).
    Received,
    /// Units added back (movement `return`).
    Returned,
    /// The quantity is the new on-hand count (`adjust` with `set_on_hand`).
    Count,
    /// Units removed as damaged (`adjust`, negative).
    Damaged,
    /// A signed change (`adjust`).
    Correction,
}

const REASONS: &[(Reason, &str, &str)] = &[
    (Reason::Count, "count", "Stock count (quantity is the new on-hand figure)"),
    (Reason::Received, "received", "Received (units added)"),
    (Reason::Returned, "returned", "Returned by a customer (units added)"),
    (Reason::Damaged, "damaged", "Damaged (units removed)"),
    (Reason::Correction, "correction", "Correction (a change such as -2 or 3)"),
];

impl Reason {
    fn parse(s: &str) -> Option<Reason> {
        REASONS.iter().find(|(_, v, _)| *v == s).map(|(r, _, _)| *r)
    }

    /// The words recorded in the ledger.
    fn words(self) -> &'static str {
        match self {
            Reason::Received => "Received",
            Reason::Returned => "Returned",
            Reason::Count => "Stock count",
            Reason::Damaged => "Damaged",
            Reason::Correction => "Correction",
        }
    }
}

/// The adjust form as submitted (or blank).
#[derive(Default)]
struct AdjustValues {
    location_id: String,
    reason: String,
    quantity: String,
    note: String,
}

struct LedgerRowView {
    when: String,
    location: String,
    kind: &'static str,
    change: String,
    on_hand_after: i64,
    reason: String,
    actor: String,
}

impl LedgerRowView {
    fn new(l: &LedgerLine) -> LedgerRowView {
        let m = &l.movement;
        let d = &m.delta;
        let mut parts = Vec::new();
        for (n, label) in [
            (d.on_hand, "on hand"),
            (d.reserved, "reserved"),
            (d.safety_stock, "safety stock"),
            (d.incoming, "incoming"),
            (d.damaged, "damaged"),
            (d.quality_control, "QC"),
        ] {
            if n != 0 {
                parts.push(if label == "on hand" { signed(n) } else { format!("{label} {}", signed(n)) });
            }
        }
        LedgerRowView {
            when: when(m.recorded_at),
            location: l.location_name.clone(),
            kind: kind_label(&m.kind),
            change: if parts.is_empty() { "none".into() } else { parts.join(", ") },
            on_hand_after: l.on_hand_after,
            reason: m.reason.clone().unwrap_or_default(),
            actor: actor_label(&m.actor, l.staff_email.as_deref()),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/inventory_item.html")]
struct ItemPage {
    layout: Layout,
    item_id: String,
    sku: String,
    sku_query: String,
    product: Option<String>,
    levels: Vec<LevelRowView>,
    /// (location id, on_hand) for the form's guards.
    expected: Vec<(String, i64)>,
    problems: Vec<Problem>,
    location: Field,
    reason: Field,
    quantity: Field,
    note: Field,
    can_adjust: bool,
    ledger: Vec<LedgerRowView>,
    pager: Pager,
}

// Renders both the plain page and the page re-shown after a refused
// adjust (values, errors, status); grouping them is the next tidy-up.
#[allow(clippy::too_many_arguments)]
async fn render(
    state: &AppState,
    staff: &StaffUser,
    o: ItemOverview,
    values: AdjustValues,
    errors: &Errors,
    problems_first: Vec<Problem>,
    page: i64,
    status: StatusCode,
) -> Response {
    let locations = match location_options(state, false).await {
        Ok(l) => l,
        Err(e) => return error_page(&e),
    };
    let lines = match state.app.ledger_lines(&o.item.id, None, Pager::offset(page), PER_PAGE + 1).await {
        Ok(l) => l,
        Err(e) => return error_page(&e),
    };
    let has_next = lines.len() as i64 > PER_PAGE;
    let ledger = lines.iter().take(PER_PAGE as usize).map(LedgerRowView::new).collect();
    let on_hand_at = |loc: &str| o.levels.iter().find(|l| l.level.location_id == loc).map_or(0, |l| l.level.levels.on_hand);
    let expected = locations.iter().map(|(id, _)| (id.clone(), on_hand_at(id))).collect();
    let default_location = o.levels.iter().find(|l| !l.location_archived).map(|l| l.level.location_id.clone()).unwrap_or_default();
    let location_value = if values.location_id.is_empty() { default_location } else { values.location_id };
    let mut location = Field::new("location_id", "Location", "select", "off").value(location_value).options(locations);
    let mut reason = Field::new("reason", "Reason", "select", "off").value(values.reason).options(
        REASONS.iter().map(|(_, v, l)| ((*v).to_owned(), (*l).to_owned())).collect(),
    );
    let mut quantity = Field::new("quantity", "Quantity", "number", "off")
        .value(values.quantity)
        .hint("For a stock count: the new on-hand figure. Received, returned, damaged: how many units. Correction: the change, such as -2 or 3.");
    let mut note = Field::new("note", "Note", "text", "off").value(values.note).optional();
    let mut problems = problems_first;
    problems.extend(errors.apply(&mut [&mut location, &mut reason, &mut quantity, &mut note]));
    let sku_query = form_urlencoded::byte_serialize(o.item.sku.as_bytes()).collect::<String>();
    let product = o.titles.as_ref().map(|(_, p, v)| if v.is_empty() || v == p { p.clone() } else { format!("{p} — {v}") });
    let pager = Pager::new(&item_path(&o.item.id), &[], page, has_next);
    let page = ItemPage {
        layout: staff.layout(format!("Stock of {}", o.item.sku)),
        item_id: o.item.id.clone(),
        sku: o.item.sku.clone(),
        sku_query,
        product,
        levels: o.levels.iter().map(|l| LevelRowView::new(l, LOW_STOCK_DEFAULT)).collect(),
        expected,
        problems,
        location,
        reason,
        quantity,
        note,
        can_adjust: staff.can(crate::access::Permission::InventoryWrite),
        ledger,
        pager,
    };
    html(status, &page)
}

async fn overview(state: &AppState, item_id: &str) -> Result<ItemOverview, Response> {
    match state.app.inventory_item(item_id).await {
        Ok(o) => Ok(o),
        Err(AppError::NotFound { .. } | AppError::Invalid(_)) => Err(not_found("inventory item")),
        Err(e) => Err(error_page(&e)),
    }
}

pub async fn show(State(state): State<AppState>, staff: StaffUser, Path(item_id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw);
    let o = match overview(&state, &item_id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let values = AdjustValues { location_id: q.get("location").to_owned(), ..Default::default() };
    render(&state, &staff, o, values, &Errors::default(), Vec::new(), page_number(Some(q.get("page"))), StatusCode::OK).await
}

/// The adjustment the form asks for, or the form's errors.
fn adjustment(sku: &str, form: &FormData, values: &AdjustValues) -> Result<AdjustmentInput, Errors> {
    let mut errors = Errors::default();
    if values.location_id.is_empty() {
        errors.add("location_id", "Choose a location");
    }
    let reason = Reason::parse(&values.reason);
    if reason.is_none() {
        errors.add("reason", "Choose a reason");
    }
    let quantity = match values.quantity.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) if values.quantity.is_empty() => {
            errors.add("quantity", "Enter a quantity");
            None
        }
        Err(_) => {
            errors.add("quantity", "Quantity must be a whole number, such as 3 or -2");
            None
        }
    };
    if values.note.chars().count() > 400 {
        errors.add("note", "Note must be at most 400 characters");
    }
    let (Some(reason), Some(q)) = (reason, quantity) else { return Err(errors) };
    match reason {
        Reason::Count if q < 0 => errors.add("quantity", "A stock count cannot be negative"),
        Reason::Received | Reason::Returned | Reason::Damaged if q <= 0 => {
            errors.add("quantity", "Enter how many units, a number above 0")
        }
        Reason::Correction if q == 0 => errors.add("quantity", "A correction must change the stock: enter a number other than 0"),
        _ => {}
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let expected = form.get(&format!("expected_on_hand.{}", values.location_id)).parse::<i64>().ok();
    let reason_text = if values.note.is_empty() { reason.words().to_owned() } else { format!("{}: {}", reason.words(), values.note) };
    let (kind, delta, set) = match reason {
        Reason::Received => ("receive", Some(q), None),
        Reason::Returned => ("return", Some(q), None),
        Reason::Count => ("adjust", None, Some(q)),
        Reason::Damaged => ("adjust", Some(-q), None),
        Reason::Correction => ("adjust", Some(q), None),
    };
    Ok(AdjustmentInput {
        sku: sku.to_owned(),
        location_id: values.location_id.clone(),
        quantity_delta: delta,
        set_on_hand: set,
        kind: Some(kind.to_owned()),
        reason: Some(reason_text),
        expected_on_hand: expected,
        occurred_at: None,
    })
}

/// The form field an API parameter of an adjustment belongs to.
fn field_of(param: &str) -> &'static str {
    match param {
        "location_id" => "location_id",
        "kind" => "reason",
        "reason" => "note",
        _ => "quantity",
    }
}

pub async fn adjust(State(state): State<AppState>, Path(item_id): Path<String>, StaffForm { staff, form }: StaffForm) -> Response {
    let o = match overview(&state, &item_id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let values = AdjustValues {
        location_id: form.get("location_id").to_owned(),
        reason: form.get("reason").to_owned(),
        quantity: form.get("quantity").to_owned(),
        note: form.get("note").to_owned(),
    };
    let input = match adjustment(&o.item.sku, &form, &values) {
        Ok(i) => i,
        Err(errors) => return render(&state, &staff, o, values, &errors, Vec::new(), 1, StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    let location_name = |o: &ItemOverview, id: &str| o.levels.iter().find(|l| l.level.location_id == id).map(|l| l.location_name.clone());
    match state.app.adjust_inventory(&staff.actor(), input).await {
        Ok(done) => {
            let at = location_name(&o, &values.location_id).unwrap_or_else(|| "the location".into());
            let text = format!("Stock adjusted: {} at {at} now has {} on hand.", o.item.sku, done.level.on_hand);
            flash(&state, &item_path(&o.item.id), &text)
        }
        Err(AppError::Conflict { code: "stale_quantity", .. }) => {
            // Re-read, so the form now carries the current figures.
            let o = match overview(&state, &item_id).await {
                Ok(o) => o,
                Err(r) => return r,
            };
            let at = location_name(&o, &values.location_id).unwrap_or_else(|| "this location".into());
            let now = o.levels.iter().find(|l| l.level.location_id == values.location_id).map_or(0, |l| l.level.levels.on_hand);
            let problem = Problem {
                href: "#levels-title".into(),
                message: format!(
                    "Stock at {at} changed while you were editing: on hand is now {now}. Nothing was saved; check the figures and submit again."
                ),
            };
            render(&state, &staff, o, values, &Errors::default(), vec![problem], 1, StatusCode::CONFLICT).await
        }
        Err(e) => {
            let (field, message) = match &e {
                AppError::Invalid(i) => (field_of(&i.field), capitalise(&i.message)),
                AppError::NotFound { param: Some(p), .. } => (field_of(p), "Choose a location that exists".to_owned()),
                AppError::Conflict { param: Some(p), message, .. } => (field_of(p), capitalise(message)),
                _ => return error_page(&e),
            };
            let mut errors = Errors::default();
            errors.add(field, message);
            render(&state, &staff, o, values, &errors, Vec::new(), 1, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

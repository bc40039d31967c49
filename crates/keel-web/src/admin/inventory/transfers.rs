//! Transfers between locations: the list and the form. A transfer moves
//! stock in one transaction (out of one level, into the other); it has no
//! in-transit states in this domain.

use super::{actor_label, item_path, location_options, query};
use crate::admin::paging::{page_number, Pager, PER_PAGE};
use crate::admin::{error_page, flash, html, when, Layout, StaffForm, StaffUser};
use crate::storefront::form::{Errors, Field, Problem};
use crate::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use keel_app::inventory::TransferInput;
use keel_app::AppError;

#[derive(Default)]
struct TransferValues {
    sku: String,
    from: String,
    to: String,
    quantity: String,
    note: String,
}

struct TransferRowView {
    when: String,
    sku: String,
    item_href: String,
    from: String,
    to: String,
    quantity: i64,
    reason: String,
    actor: String,
}

#[derive(Template)]
#[template(path = "admin/inventory_transfers.html")]
struct TransfersPage {
    layout: Layout,
    can_transfer: bool,
    problems: Vec<Problem>,
    sku: Field,
    from: Field,
    to: Field,
    quantity: Field,
    note: Field,
    rows: Vec<TransferRowView>,
    pager: Pager,
}

async fn render(state: &AppState, staff: &StaffUser, values: TransferValues, errors: &Errors, page: i64, status: StatusCode) -> Response {
    let locations = match location_options(state, false).await {
        Ok(l) => l,
        Err(e) => return error_page(&e),
    };
    let lines = match state.app.transfer_lines(Pager::offset(page), PER_PAGE + 1).await {
        Ok(l) => l,
        Err(e) => return error_page(&e),
    };
    let has_next = lines.len() as i64 > PER_PAGE;
    let rows = lines
        .iter()
        .take(PER_PAGE as usize)
        .map(|t| TransferRowView {
            when: when(t.created_at),
            sku: t.sku.clone(),
            item_href: item_path(&t.inventory_item_id),
            from: t.from_location_name.clone(),
            to: t.to_location_name.clone(),
            quantity: t.quantity,
            reason: t.reason.clone().unwrap_or_default(),
            actor: actor_label(&t.actor, t.staff_email.as_deref()),
        })
        .collect();
    let mut sku = Field::new("sku", "SKU", "text", "off").value(values.sku);
    let mut from = Field::new("from_location_id", "From location", "select", "off").value(values.from).options(locations.clone());
    let mut to = Field::new("to_location_id", "To location", "select", "off").value(values.to).options(locations);
    let mut quantity = Field::new("quantity", "Quantity", "number", "off").value(values.quantity).inputmode("numeric").hint("Units to move; at most what the source location has available.");
    let mut note = Field::new("reason", "Reason", "text", "off").value(values.note).optional();
    let problems = errors.apply(&mut [&mut sku, &mut from, &mut to, &mut quantity, &mut note]);
    let page = TransfersPage {
        layout: staff.layout("Transfers"),
        can_transfer: staff.can(crate::access::Permission::InventoryWrite),
        problems,
        sku,
        from,
        to,
        quantity,
        note,
        rows,
        pager: Pager::new("/admin/inventory/transfers", &[], page, has_next),
    };
    html(status, &page)
}

pub async fn list(State(state): State<AppState>, staff: StaffUser, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw);
    let values = TransferValues { sku: q.get("sku").to_owned(), from: q.get("from").to_owned(), ..Default::default() };
    render(&state, &staff, values, &Errors::default(), page_number(Some(q.get("page"))), StatusCode::OK).await
}

pub async fn create(State(state): State<AppState>, StaffForm { staff, form }: StaffForm) -> Response {
    let values = TransferValues {
        sku: form.get("sku").to_owned(),
        from: form.get("from_location_id").to_owned(),
        to: form.get("to_location_id").to_owned(),
        quantity: form.get("quantity").to_owned(),
        note: form.get("reason").to_owned(),
    };
    let mut errors = Errors::default();
    if values.sku.is_empty() {
        errors.add("sku", "Enter a SKU");
    }
    if values.from.is_empty() {
        errors.add("from_location_id", "Choose the location to move stock from");
    }
    if values.to.is_empty() {
        errors.add("to_location_id", "Choose the location to move stock to");
    } else if values.to == values.from {
        errors.add("to_location_id", "Choose a different location from the one stock leaves");
    }
    let quantity = values.quantity.parse::<i64>().ok().filter(|n| *n > 0);
    if quantity.is_none() {
        errors.add("quantity", "Enter how many units to move, a whole number above 0");
    }
    if values.note.chars().count() > 400 {
        errors.add("reason", "Reason must be at most 400 characters");
    }
    let Some(quantity) = quantity.filter(|_| errors.is_empty()) else {
        return render(&state, &staff, values, &errors, 1, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let input = TransferInput {
        sku: values.sku.clone(),
        from_location_id: values.from.clone(),
        to_location_id: values.to.clone(),
        quantity,
        reason: Some(values.note.clone()).filter(|n| !n.is_empty()),
        expected_on_hand: None,
    };
    match state.app.transfer_inventory(&staff.actor(), input).await {
        Ok(t) => flash(&state, "/admin/inventory/transfers", &format!("Transferred {} × {}.", t.quantity, t.sku)),
        Err(e) => {
            let (field, message) = match &e {
                AppError::Invalid(i) => (i.field.clone(), format!("{}: {}", label(&i.field), i.message)),
                AppError::NotFound { param: Some(p), .. } if p == "sku" => (p.clone(), "There is no inventory item with this SKU".to_owned()),
                AppError::NotFound { param: Some(p), .. } => (p.clone(), format!("{}: choose a location that exists", label(p))),
                AppError::Conflict { code: "insufficient_stock", .. } => {
                    ("quantity".to_owned(), format!("Quantity is more than {} has available: {e}", location_name(&state, &values.from).await))
                }
                AppError::Conflict { param: Some(p), message, .. } => (p.clone(), message.clone()),
                _ => return error_page(&e),
            };
            let field = match field.as_str() {
                "sku" | "from_location_id" | "to_location_id" | "reason" => field,
                _ => "quantity".to_owned(),
            };
            errors.add(field, message);
            render(&state, &staff, values, &errors, 1, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

fn label(field: &str) -> &'static str {
    match field {
        "sku" => "SKU",
        "from_location_id" => "From location",
        "to_location_id" => "To location",
        "reason" => "Reason",
        _ => "Quantity",
    }
}

async fn location_name(state: &AppState, id: &str) -> String {
    state.app.get_location(id).await.map(|l| l.name).unwrap_or_else(|_| "the source location".into())
}

//! One sync batch: its summary, the rejected rows by line with their
//! reasons, the movements it applied, and rollback — a refusal (undoing
//! would drive available stock negative) is a 409 page naming each SKU.

use super::{batch_path, batch_status_words, integration_path, query, source_words, when_text};
use crate::admin::inventory::signed;
use crate::admin::{error_page, flash, html, not_found, Layout, StaffForm, StaffUser};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use keel_app::feeds::{RollbackOutcome, SyncBatchRowView};
use keel_app::AppError;
use std::collections::BTreeMap;

/// A count with a real minus sign when negative.
fn minus(n: i64) -> String {
    if n < 0 {
        format!("\u{2212}{}", -n)
    } else {
        n.to_string()
    }
}

/// Rows per table on the batch page.
const ROWS: i64 = 50;

fn outcome_words(outcome: &str) -> &'static str {
    match outcome {
        "unknown_sku" => "Unknown SKU",
        "unknown_location" => "Unknown location",
        "invalid" => "Invalid row",
        "rejected" => "Refused by the stock rules",
        "applied" => "Applied",
        "unchanged" => "Unchanged",
        "superseded" => "Superseded by a newer count",
        "skipped" => "Skipped",
        _ => "Pending",
    }
}

/// Location id → name, for the tables.
async fn location_names(state: &AppState) -> Result<BTreeMap<String, String>, AppError> {
    Ok(state.app.all_locations().await?.into_iter().map(|l| (l.id, l.name)).collect())
}

fn location_label(names: &BTreeMap<String, String>, id: Option<&str>) -> String {
    match id {
        Some(id) => names.get(id).cloned().unwrap_or_else(|| id.to_owned()),
        None => String::new(),
    }
}

fn sku_href(sku: &str) -> String {
    format!("/admin/inventory/lookup?sku={}", form_urlencoded::byte_serialize(sku.as_bytes()).collect::<String>())
}

struct RowView {
    line: i64,
    sku: String,
    sku_href: String,
    location: String,
    on_hand: String,
    counted_at: String,
    outcome: &'static str,
    message: String,
    ledger_on_hand: String,
    change: String,
    movement_id: String,
}

impl RowView {
    fn new(r: &SyncBatchRowView, names: &BTreeMap<String, String>) -> RowView {
        let sku = r.sku.clone().unwrap_or_default();
        RowView {
            line: r.line,
            sku_href: sku_href(&sku),
            sku,
            location: location_label(names, r.location_id.as_deref()),
            on_hand: r.on_hand.map(|n| n.to_string()).unwrap_or_default(),
            counted_at: when_text(r.counted_at.as_deref(), ""),
            outcome: outcome_words(&r.outcome),
            message: r.message.clone().unwrap_or_default(),
            ledger_on_hand: r.ledger_on_hand.map(|n| n.to_string()).unwrap_or_default(),
            change: r.delta.map(signed).unwrap_or_default(),
            movement_id: r.movement_id.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/sync_batch.html")]
struct BatchPage {
    layout: Layout,
    id: String,
    integration_href: String,
    integration: String,
    status: &'static str,
    status_class: &'static str,
    source: &'static str,
    format: String,
    mode: &'static str,
    received: String,
    applied_at: String,
    rolled_back_at: String,
    rolled_back: bool,
    error: String,
    idempotency_key: String,
    bytes: i64,
    total: i64,
    applied: i64,
    unchanged: i64,
    superseded: i64,
    rejected: i64,
    skipped: i64,
    problems: Vec<RowView>,
    problems_first: Option<String>,
    problems_next: Option<String>,
    movements: Vec<RowView>,
    movements_first: Option<String>,
    movements_next: Option<String>,
    can_roll_back: bool,
}

/// Where each table of the page starts (a line number; 0 = the first row).
#[derive(Clone, Copy)]
struct Cursors {
    problems: i64,
    applied: i64,
}

impl Cursors {
    fn href(self, id: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if self.problems > 0 {
            q.append_pair("problems_after", &self.problems.to_string());
        }
        if self.applied > 0 {
            q.append_pair("applied_after", &self.applied.to_string());
        }
        match q.finish() {
            q if q.is_empty() => batch_path(id),
            q => format!("{}?{q}", batch_path(id)),
        }
    }
}

fn line_cursor(raw: &str) -> i64 {
    raw.parse::<i64>().ok().filter(|n| (0..=1_000_000_000).contains(n)).unwrap_or(0)
}

async fn batch_page(state: &AppState, staff: &StaffUser, id: &str, at: Cursors) -> Result<BatchPage, AppError> {
    let b = state.app.get_sync_batch(id).await?;
    let integration = state.app.get_integration(&b.integration_id).await?;
    let names = location_names(state).await?;
    let problems = state.app.sync_batch_rows(&b.id, Some("problems"), Some(at.problems), Some(ROWS)).await?;
    let movements = state.app.sync_batch_rows(&b.id, Some("applied"), Some(at.applied), Some(ROWS)).await?;
    let next = |page: &keel_app::views::Page<SyncBatchRowView>, set: fn(Cursors, i64) -> Cursors| {
        page.data.last().filter(|_| page.has_more).map(|r| set(at, r.line).href(&b.id))
    };
    let problems_next = next(&problems, |c, l| Cursors { problems: l, ..c });
    let movements_next = next(&movements, |c, l| Cursors { applied: l, ..c });
    let (status, status_class) = batch_status_words(&b.status);
    let r = &b.rows;
    Ok(BatchPage {
        layout: staff.layout(format!("Sync batch from {}", integration.name)),
        integration_href: integration_path(&integration.id),
        integration: integration.name,
        status,
        status_class,
        source: source_words(&b.source),
        format: b.format.to_uppercase(),
        mode: super::mode_words(&b.mode),
        received: when_text(Some(&b.created_at), ""),
        applied_at: when_text(b.applied_at.as_deref(), "Not applied"),
        rolled_back_at: when_text(b.rolled_back_at.as_deref(), "No"),
        rolled_back: b.rolled_back_at.is_some(),
        error: b.error.clone().unwrap_or_default(),
        idempotency_key: b.idempotency_key.clone().unwrap_or_default(),
        bytes: b.bytes,
        total: r.total,
        applied: r.applied,
        unchanged: r.unchanged,
        superseded: r.superseded,
        rejected: r.unknown_sku + r.unknown_location + r.invalid + r.rejected,
        skipped: r.skipped,
        problems: problems.data.iter().map(|r| RowView::new(r, &names)).collect(),
        problems_first: (at.problems > 0).then(|| Cursors { problems: 0, ..at }.href(&b.id)),
        problems_next,
        movements: movements.data.iter().map(|r| RowView::new(r, &names)).collect(),
        movements_first: (at.applied > 0).then(|| Cursors { applied: 0, ..at }.href(&b.id)),
        movements_next,
        can_roll_back: staff.can(crate::access::Permission::IntegrationsWrite) && matches!(b.status.as_str(), "applied" | "partially_applied"),
        id: b.id,
    })
}

pub async fn show(State(state): State<AppState>, staff: StaffUser, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw);
    let at = Cursors { problems: line_cursor(q.get("problems_after")), applied: line_cursor(q.get("applied_after")) };
    match batch_page(&state, &staff, &id, at).await {
        Ok(p) => html(StatusCode::OK, &p),
        Err(AppError::NotFound { .. }) => not_found("sync batch"),
        Err(e) => error_page(&e),
    }
}

// -------------------------------------------------------------- rollback ---

struct BlockView {
    line: i64,
    sku: String,
    location: String,
    change: String,
    available: String,
    available_after: String,
    explanation: String,
}

#[derive(Template)]
#[template(path = "admin/rollback_refused.html")]
struct RefusedPage {
    layout: Layout,
    batch_href: String,
    blocks: Vec<BlockView>,
    more: bool,
}

pub async fn rollback(State(state): State<AppState>, Path(id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.rollback_sync_batch(&staff.actor(), &id).await {
        Ok(RollbackOutcome::RolledBack(b)) => {
            let n = b.rows.applied;
            let text = format!(
                "Batch rolled back: {n} change{} undone, stock is back to what it was before this batch.",
                if n == 1 { "" } else { "s" }
            );
            flash(&state, &batch_path(&b.id), &text)
        }
        Ok(RollbackOutcome::Refused { problems, more, .. }) => {
            let names = match location_names(&state).await {
                Ok(n) => n,
                Err(e) => return error_page(&e),
            };
            let blocks = problems
                .iter()
                .map(|p| BlockView {
                    line: p.line,
                    sku: p.sku.clone(),
                    location: location_label(&names, Some(&p.location_id)),
                    change: signed(-p.delta),
                    available: minus(p.available),
                    available_after: minus(p.available_after),
                    explanation: p.explanation.clone(),
                })
                .collect();
            let page = RefusedPage { layout: staff.layout("Rollback refused"), batch_href: batch_path(&id), blocks, more };
            html(StatusCode::CONFLICT, &page)
        }
        Err(AppError::NotFound { .. }) => not_found("sync batch"),
        Err(e) => error_page(&e),
    }
}

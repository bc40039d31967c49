//! Integrations: the health overview (webhook endpoints, inbound
//! integrations, outbox consumers), webhook endpoints with their delivery
//! log, attempts and replay, and inbound integrations with their sync
//! batches and rollback; adding endpoints and integrations and rotating
//! their secrets (`create`).
//!
//! Signing secrets and integration credentials are never read here: the
//! views used carry neither, and pull URLs are shown without their query.
//! A new or rotated one is shown once, in the POST's own response.

mod batches;
mod create;
mod webhooks;

use super::paging::{page_number, Pager, PER_PAGE};
use super::{error_page, html, not_found, query, when, Layout, StaffUser};
use crate::access::{Access, AdminRoute, Permission};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keel_app::feeds::{IntegrationView, SyncBatchView};
use keel_app::health::{ComponentHealth, HealthReport};
use keel_app::AppError;
use keel_domain::health::HealthState;
use keel_domain::time::{now_micros, parse_rfc3339};
use std::collections::BTreeMap;

pub const ROUTES: &[AdminRoute] = &[
    ("GET", "/admin/integrations", Access::Needs(Permission::IntegrationsRead)),
    ("POST", "/admin/integrations", Access::Needs(Permission::IntegrationsWrite)),
    ("POST", "/admin/integrations/{integration_id}/rotate-credential", Access::Needs(Permission::IntegrationsWrite)),
    ("POST", "/admin/webhook-endpoints", Access::Needs(Permission::IntegrationsWrite)),
    ("POST", "/admin/webhook-endpoints/{endpoint_id}/rotate-secret", Access::Needs(Permission::IntegrationsWrite)),
    ("GET", "/admin/integrations/{integration_id}", Access::Needs(Permission::IntegrationsRead)),
    ("GET", "/admin/webhook-endpoints/{endpoint_id}", Access::Needs(Permission::IntegrationsRead)),
    ("POST", "/admin/webhook-endpoints/{endpoint_id}/enable", Access::Needs(Permission::IntegrationsWrite)),
    ("POST", "/admin/webhook-endpoints/{endpoint_id}/disable", Access::Needs(Permission::IntegrationsWrite)),
    ("POST", "/admin/webhook-endpoints/{endpoint_id}/recover", Access::Needs(Permission::IntegrationsWrite)),
    ("GET", "/admin/webhook-messages/{message_id}", Access::Needs(Permission::IntegrationsRead)),
    ("POST", "/admin/webhook-messages/{message_id}/replay", Access::Needs(Permission::IntegrationsWrite)),
    ("GET", "/admin/sync-batches/{batch_id}", Access::Needs(Permission::IntegrationsRead)),
    ("POST", "/admin/sync-batches/{batch_id}/rollback", Access::Needs(Permission::IntegrationsWrite)),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/integrations", get(overview).post(create::create_integration))
        .route("/admin/integrations/{integration_id}", get(integration))
        .route("/admin/integrations/{integration_id}/rotate-credential", post(create::rotate_credential))
        .route("/admin/webhook-endpoints", post(create::create_endpoint))
        .route("/admin/webhook-endpoints/{endpoint_id}/rotate-secret", post(create::rotate_secret))
        .route("/admin/webhook-endpoints/{endpoint_id}", get(webhooks::endpoint))
        .route("/admin/webhook-endpoints/{endpoint_id}/enable", post(webhooks::enable))
        .route("/admin/webhook-endpoints/{endpoint_id}/disable", post(webhooks::disable))
        .route("/admin/webhook-endpoints/{endpoint_id}/recover", post(webhooks::recover))
        .route("/admin/webhook-messages/{message_id}", get(webhooks::message))
        .route("/admin/webhook-messages/{message_id}/replay", post(webhooks::replay))
        .route("/admin/sync-batches/{batch_id}", get(batches::show))
        .route("/admin/sync-batches/{batch_id}/rollback", post(batches::rollback))
}

pub fn endpoint_path(id: &str) -> String {
    format!("/admin/webhook-endpoints/{id}")
}

pub fn message_path(id: &str) -> String {
    format!("/admin/webhook-messages/{id}")
}

pub fn integration_path(id: &str) -> String {
    format!("/admin/integrations/{id}")
}

pub fn batch_path(id: &str) -> String {
    format!("/admin/sync-batches/{id}")
}

// --------------------------------------------------------------- wording ---

/// A health state in words, with its badge class.
pub(super) fn health_words(s: HealthState) -> (&'static str, &'static str) {
    match s {
        HealthState::Healthy => ("Healthy", "ok"),
        HealthState::Degraded => ("Degraded", "warn"),
        HealthState::Stale => ("Stale", "warn"),
        HealthState::Failing => ("Failing", "bad"),
    }
}

/// `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
fn duration_words(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => match (s / 3600, s % 3600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        s => match (s / 86_400, s % 86_400 / 3600) {
            (d, 0) => format!("{d} d"),
            (d, h) => format!("{d} d {h} h"),
        },
    }
}

/// An RFC 3339 time from a view as the tables show it; `fallback` when absent.
fn when_text(t: Option<&str>, fallback: &str) -> String {
    t.and_then(parse_rfc3339).map(when).unwrap_or_else(|| fallback.to_owned())
}

fn kind_words(kind: &str) -> &'static str {
    match kind {
        "3pl" => "3PL (warehouse)",
        "erp" => "ERP",
        "carrier" => "Carrier",
        "payment_provider" => "Payment provider",
        _ => "Other",
    }
}

fn auth_words(auth: &str) -> &'static str {
    if auth == "api_key" {
        "API key (Authorization: Bearer)"
    } else {
        "Signed requests (HMAC, X-Keel-Signature)"
    }
}

/// A batch status in words, with its badge class.
fn batch_status_words(status: &str) -> (&'static str, &'static str) {
    match status {
        "applied" => ("Applied", "ok"),
        "partially_applied" => ("Partly applied", "warn"),
        "failed" => ("Failed", "bad"),
        "rolled_back" => ("Rolled back", "muted"),
        "staged" => ("Staged", "muted"),
        "applying" => ("Applying", "muted"),
        "receiving" => ("Receiving", "muted"),
        "interrupted" => ("Interrupted", "bad"),
        _ => ("Unknown", "muted"),
    }
}

fn source_words(source: &str) -> &'static str {
    if source == "pull" {
        "Pulled"
    } else {
        "Pushed"
    }
}

/// A URL without its user info, query and fragment (where credentials of
/// a pulled feed may sit).
fn without_secrets(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..cut];
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{}{}", &url[..i + 3], &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// "Last feed 12 min ago; expected every 15 min" and whether that is late.
fn freshness_words(since_secs: Option<i64>, sla_secs: i64) -> (String, bool) {
    let sla = duration_words(sla_secs);
    match since_secs {
        Some(s) if s > sla_secs => (format!("Last good feed {} ago — overdue (expected every {sla})", duration_words(s)), true),
        Some(s) => (format!("Last good feed {} ago (expected every {sla})", duration_words(s)), false),
        None => (format!("No good feed yet (expected every {sla})"), true),
    }
}

fn component<'a>(report: &'a HealthReport, kind: &str, id: &str) -> Option<&'a ComponentHealth> {
    report.components.iter().find(|c| c.kind == kind && c.id == id)
}

// -------------------------------------------------------------- overview ---

struct EndpointRowView {
    href: String,
    url: String,
    description: String,
    delivery: &'static str,
    delivery_class: &'static str,
    health: &'static str,
    health_class: &'static str,
    detail: String,
    success: String,
    pending: i64,
    retrying: i64,
    dead: i64,
    last_success: String,
}

struct IntegrationRowView {
    href: String,
    name: String,
    kind: &'static str,
    enabled: bool,
    health: &'static str,
    health_class: &'static str,
    freshness: String,
    late: bool,
    last_batch: Option<(String, String)>,
}

struct ConsumerRowView {
    name: String,
    health: &'static str,
    health_class: &'static str,
    behind: i64,
    lag: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/integrations.html")]
struct OverviewPage {
    layout: Layout,
    overall: &'static str,
    overall_class: &'static str,
    checked_at: String,
    endpoints: Vec<EndpointRowView>,
    integrations: Vec<IntegrationRowView>,
    consumers: Vec<ConsumerRowView>,
    can_write: bool,
    forms: create::Forms,
}

/// "Delivered 75 % of 4 attempts" over the last 24 hours.
fn success_words(attempts: i64, failures: i64) -> String {
    if attempts == 0 {
        return "No attempts in 24 h".into();
    }
    let ok = (attempts - failures) * 100 / attempts;
    format!("{ok} % of {attempts} attempt{}", if attempts == 1 { "" } else { "s" })
}

fn delivery_words(enabled: bool, reason: Option<&str>) -> (&'static str, &'static str) {
    match (enabled, reason) {
        (true, _) => ("Enabled", "ok"),
        (false, Some("failing")) => ("Disabled after failing for days", "bad"),
        (false, _) => ("Disabled", "bad"),
    }
}

async fn overview_page(state: &AppState, staff: &StaffUser, forms: create::Forms) -> Result<OverviewPage, AppError> {
    let now = now_micros();
    let app = &state.app;
    let report = app.integration_health(now).await?;
    let stats = app.webhook_endpoint_stats(now).await?;
    let failures = app.webhook_failure_counts(None).await?;
    let integrations = app.integration_stats(now).await?;
    let latest: BTreeMap<String, SyncBatchView> =
        app.latest_sync_batches().await?.into_iter().map(|b| (b.integration_id.clone(), b)).collect();
    let endpoints = stats
        .iter()
        .map(|e| {
            let c = component(&report, "webhook_endpoint", &e.id);
            let (health, health_class) = health_words(c.map_or(HealthState::Healthy, |c| c.state));
            let (delivery, delivery_class) = delivery_words(e.enabled, e.disabled_reason.as_deref());
            let (retrying, dead) = failures.get(&e.id).copied().unwrap_or_default();
            EndpointRowView {
                href: endpoint_path(&e.id),
                url: e.url.clone(),
                description: e.description.clone().unwrap_or_default(),
                delivery,
                delivery_class,
                health,
                health_class,
                detail: c.and_then(|c| c.detail.clone()).unwrap_or_default(),
                success: success_words(e.attempts_24h, e.failures_24h),
                pending: e.pending,
                retrying,
                dead,
                last_success: e.last_success_at.map(when).unwrap_or_else(|| "Never".into()),
            }
        })
        .collect();
    let integrations = integrations
        .iter()
        .map(|i| {
            let c = component(&report, "integration", &i.id);
            let (health, health_class) = health_words(c.map_or(HealthState::Healthy, |c| c.state));
            let (freshness, late) = freshness_words(i.seconds_since_last_success, i.freshness_sla_seconds);
            let last_batch = latest.get(&i.id).map(|b| {
                let status = batch_status_words(&b.status).0;
                (batch_path(&b.id), format!("{} — {status}", when_text(Some(&b.created_at), "")))
            });
            IntegrationRowView {
                href: integration_path(&i.id),
                name: i.name.clone(),
                kind: kind_words(&i.kind),
                enabled: i.enabled,
                health,
                health_class,
                freshness,
                late,
                last_batch,
            }
        })
        .collect();
    let consumers = report
        .components
        .iter()
        .filter(|c| c.kind == "consumer")
        .map(|c| {
            let (health, health_class) = health_words(c.state);
            ConsumerRowView {
                name: c.name.clone(),
                health,
                health_class,
                behind: c.backlog,
                lag: duration_words(c.freshness_lag_seconds.unwrap_or(0)),
                detail: c.detail.clone().unwrap_or_default(),
            }
        })
        .collect();
    let (overall, overall_class) = health_words(report.status);
    Ok(OverviewPage {
        layout: staff.layout("Integrations"),
        overall,
        overall_class,
        checked_at: when(now),
        endpoints,
        integrations,
        consumers,
        can_write: staff.can(Permission::IntegrationsWrite),
        forms,
    })
}

/// The overview with its add forms (re-rendered with their errors).
async fn render_overview(state: &AppState, staff: &StaffUser, forms: create::Forms, status: StatusCode) -> Response {
    match overview_page(state, staff, forms).await {
        Ok(p) => html(status, &p),
        Err(e) => error_page(&e),
    }
}

async fn overview(State(state): State<AppState>, staff: StaffUser) -> Response {
    let forms = create::Forms::new(create::Values::default(), &crate::storefront::form::Errors::default());
    render_overview(&state, &staff, forms, StatusCode::OK).await
}

// ----------------------------------------------------------- integration ---

/// A sync batch as the tables show it.
pub struct BatchRowView {
    href: String,
    received: String,
    source: &'static str,
    applied: i64,
    rejected: i64,
    status: &'static str,
    status_class: &'static str,
    rolled_back: String,
}

impl BatchRowView {
    fn new(b: &SyncBatchView) -> BatchRowView {
        let (status, status_class) = batch_status_words(&b.status);
        let r = &b.rows;
        BatchRowView {
            href: batch_path(&b.id),
            received: when_text(Some(&b.created_at), ""),
            source: source_words(&b.source),
            applied: r.applied,
            rejected: r.unknown_sku + r.unknown_location + r.invalid + r.rejected,
            status,
            status_class,
            rolled_back: when_text(b.rolled_back_at.as_deref(), "No"),
        }
    }
}

struct PullSettings {
    url: String,
    every: String,
    mode: &'static str,
    next: String,
}

#[derive(Template)]
#[template(path = "admin/integration.html")]
struct IntegrationPage {
    layout: Layout,
    name: String,
    kind: &'static str,
    enabled: bool,
    health: &'static str,
    health_class: &'static str,
    detail: String,
    freshness: String,
    late: bool,
    auth: &'static str,
    push_path: String,
    pull: Option<PullSettings>,
    last_success: String,
    last_failure: String,
    last_error: String,
    created: String,
    batches: Vec<BatchRowView>,
    pager: Pager,
    id: String,
    can_write: bool,
}

fn mode_words(mode: &str) -> &'static str {
    if mode == "apply_valid" {
        "Apply valid rows, report the others"
    } else {
        "All or nothing"
    }
}

async fn integration_page(state: &AppState, staff: &StaffUser, id: &str, page: i64) -> Result<IntegrationPage, AppError> {
    let i: IntegrationView = state.app.get_integration(id).await?;
    let now = now_micros();
    let report = state.app.integration_health(now).await?;
    let c = component(&report, "integration", &i.id);
    let (health, health_class) = health_words(c.map_or(HealthState::Healthy, |c| c.state));
    let since = c.and_then(|c| c.freshness_lag_seconds);
    let (freshness, late) = freshness_words(since, i.freshness_sla_seconds);
    let batches = state.app.sync_batch_page(&i.id, Pager::offset(page), PER_PAGE + 1).await?;
    let has_next = batches.len() as i64 > PER_PAGE;
    let pull = i.pull.as_ref().map(|p| PullSettings {
        url: without_secrets(&p.url),
        every: duration_words(p.every_seconds),
        mode: mode_words(p.mode.as_str()),
        next: when_text(p.next_at.as_deref(), "Not scheduled"),
    });
    Ok(IntegrationPage {
        layout: staff.layout(format!("Integration {}", i.name)),
        kind: kind_words(&i.kind),
        enabled: i.enabled,
        health,
        health_class,
        detail: c.and_then(|c| c.detail.clone()).unwrap_or_default(),
        freshness,
        late,
        auth: auth_words(&i.auth),
        push_path: i.push_path.clone(),
        pull,
        last_success: when_text(i.last_success_at.as_deref(), "Never"),
        last_failure: when_text(i.last_failure_at.as_deref(), "Never"),
        last_error: i.last_error.clone().unwrap_or_default(),
        created: when_text(Some(&i.created_at), ""),
        batches: batches.iter().take(PER_PAGE as usize).map(BatchRowView::new).collect(),
        pager: Pager::new(&integration_path(&i.id), &[], page, has_next),
        can_write: staff.can(Permission::IntegrationsWrite),
        id: i.id,
        name: i.name,
    })
}

async fn integration(State(state): State<AppState>, staff: StaffUser, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let page = page_number(Some(query(raw).get("page")));
    match integration_page(&state, &staff, &id, page).await {
        Ok(p) => html(StatusCode::OK, &p),
        Err(AppError::NotFound { .. } | AppError::Invalid(_)) => not_found("integration"),
        Err(e) => error_page(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_durations_rates_and_urls() {
        assert_eq!(duration_words(45), "45 s");
        assert_eq!(duration_words(900), "15 min");
        assert_eq!(duration_words(3600 * 3 + 300), "3 h 5 min");
        assert_eq!(duration_words(86_400 * 2), "2 d");
        assert_eq!(success_words(4, 1), "75 % of 4 attempts");
        assert_eq!(success_words(0, 0), "No attempts in 24 h");
        assert_eq!(without_secrets("https://u:p@feeds.example.com/stock.csv?token=abc"), "https://feeds.example.com/stock.csv");
        assert_eq!(without_secrets("https://feeds.example.com/a@b"), "https://feeds.example.com/a@b");
        assert!(freshness_words(Some(1000), 900).1);
        assert!(!freshness_words(Some(10), 900).1);
        assert!(freshness_words(None, 900).0.starts_with("No good feed"));
    }
}

//! One webhook endpoint: its settings (never its secret), delivery stats,
//! the delivery log with each message's attempts, replay of one message,
//! "replay failed messages since …" (recovery), enable and disable; one
//! message with its payload and attempts.

use super::{component, duration_words, endpoint_path, health_words, message_path, query, when_text};
use crate::admin::when_seconds;
use crate::admin::paging::{page_number, Pager, PER_PAGE};
use crate::admin::{error_page, flash, html, not_found, when, Layout, StaffForm, StaffUser};
use crate::storefront::form::{Errors, Field, FormData, Problem};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use keel_app::webhooks::{MessageState, RecoverInput, WebhookAttemptView, WebhookEndpointChanges, WebhookMessageView};
use keel_app::AppError;
use keel_domain::health::HealthState;
use keel_domain::time::{now_micros, parse_date_start, parse_rfc3339, to_rfc3339};

/// The delivery log's filters: query value, label, state.
const FILTERS: &[(&str, &str, MessageState)] = &[
    ("pending", "Pending (not attempted yet)", MessageState::Waiting),
    ("failed", "Failed, retry scheduled", MessageState::Retrying),
    ("delivered", "Delivered", MessageState::Succeeded),
    ("dead-lettered", "Dead-lettered (all attempts failed)", MessageState::DeadLettered),
];

fn filter_of(value: &str) -> Option<&'static (&'static str, &'static str, MessageState)> {
    FILTERS.iter().find(|(v, _, _)| *v == value)
}

/// One delivery attempt as the tables show it.
pub struct AttemptRowView {
    when: String,
    ok: bool,
    /// `HTTP 500`, or why no answer came.
    answer: String,
    duration: String,
    response: String,
}

impl AttemptRowView {
    fn new(a: &WebhookAttemptView) -> AttemptRowView {
        let answer = match (a.status_code, &a.error) {
            (Some(code), _) => format!("HTTP {code}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "No answer".into(),
        };
        AttemptRowView {
            when: parse_rfc3339(&a.attempted_at).map(when_seconds).unwrap_or_default(),
            ok: a.status == "succeeded",
            answer,
            duration: if a.latency_ms < 10.0 { format!("{:.1} ms", a.latency_ms) } else { format!("{:.0} ms", a.latency_ms) },
            response: a.response.clone().unwrap_or_default(),
        }
    }
}

/// A message's state in words, with its badge class.
fn message_status(m: &WebhookMessageView) -> (&'static str, &'static str) {
    let last_failed = m.attempts.last().is_some_and(|a| a.status != "succeeded");
    match m.status.as_str() {
        "succeeded" => ("Delivered", "ok"),
        "failed" => ("Dead-lettered", "bad"),
        _ if last_failed => ("Failed, retry scheduled", "warn"),
        _ => ("Pending", "muted"),
    }
}

/// Failed (retry scheduled) or dead-lettered: what a Replay button is for.
fn is_failed(m: &WebhookMessageView) -> bool {
    m.status == "failed" || (m.status == "pending" && m.attempts.last().is_some_and(|a| a.status != "succeeded"))
}

struct MessageRowView {
    href: String,
    id: String,
    event_type: String,
    created: String,
    status: &'static str,
    status_class: &'static str,
    next: String,
    attempts: Vec<AttemptRowView>,
    replayable: bool,
}

impl MessageRowView {
    fn new(m: &WebhookMessageView) -> MessageRowView {
        let (status, status_class) = message_status(m);
        MessageRowView {
            href: message_path(&m.id),
            id: m.id.clone(),
            event_type: m.event_type.clone(),
            created: when_text(Some(&m.created_at), ""),
            status,
            status_class,
            next: when_text(m.next_attempt_at.as_deref(), ""),
            attempts: m.attempts.iter().map(AttemptRowView::new).collect(),
            replayable: is_failed(m),
        }
    }
}

// -------------------------------------------------------------- endpoint ---

#[derive(Template)]
#[template(path = "admin/webhook_endpoint.html")]
struct EndpointPage {
    layout: Layout,
    id: String,
    url: String,
    description: String,
    event_filter: String,
    enabled: bool,
    disabled: String,
    rate_limit: String,
    created: String,
    health: &'static str,
    health_class: &'static str,
    detail: String,
    success_1h: String,
    success_24h: String,
    pending: i64,
    oldest_pending: String,
    retrying: i64,
    dead: i64,
    last_success: String,
    last_failure: String,
    consecutive_failures: i64,
    circuit_open: bool,
    /// (value, label, selected) of the delivery log's filter.
    filters: Vec<(&'static str, &'static str, bool)>,
    filter: &'static str,
    filter_label: &'static str,
    messages: Vec<MessageRowView>,
    pager: Pager,
    can_write: bool,
    problems: Vec<Problem>,
    since: Field,
}

/// Why an endpoint is disabled, in words.
fn disabled_words(reason: Option<&str>, at: Option<&str>) -> String {
    let why = match reason {
        Some("failing") => "automatically, after failing without a success for days",
        _ => "by staff",
    };
    match at {
        Some(t) => format!("Disabled {why} on {}", when_text(Some(t), "")),
        None => format!("Disabled {why}"),
    }
}

fn rate_words(attempts: i64, failures: i64, window: &str) -> String {
    if attempts == 0 {
        return format!("No attempts in the last {window}");
    }
    let plural = if attempts == 1 { "" } else { "s" };
    format!("{} % of {attempts} attempt{plural} succeeded in the last {window}", (attempts - failures) * 100 / attempts)
}

/// The recovery form's field, with `value`.
fn since_field(value: String) -> Field {
    Field::new("since", "Replay failed messages since", "datetime-local", "off")
        .value(value)
        .hint("A time in UTC, such as 2026-12-01T09:00. Every dead-lettered message created since then is sent again, each with its own webhook-id.")
}

/// 24 hours ago, as a `datetime-local` value.
fn default_since(now: i64) -> String {
    let t = now - 24 * 3600 * 1_000_000;
    chrono::DateTime::from_timestamp_micros(t).map(|d| d.format("%Y-%m-%dT%H:%M").to_string()).unwrap_or_default()
}

struct Listing<'a> {
    filter: &'a str,
    page: i64,
}

async fn endpoint_page(
    state: &AppState,
    staff: &StaffUser,
    id: &str,
    listing: Listing<'_>,
    since: Field,
    problems: Vec<Problem>,
) -> Result<EndpointPage, AppError> {
    let e = state.app.get_webhook_endpoint(id).await?;
    let now = now_micros();
    let report = state.app.integration_health(now).await?;
    let stats = state.app.webhook_endpoint_stats(now).await?.into_iter().find(|s| s.id == e.id);
    let (retrying, dead) = state.app.webhook_failure_counts(Some(&e.id)).await?.get(&e.id).copied().unwrap_or_default();
    let c = component(&report, "webhook_endpoint", &e.id);
    let (health, health_class) = health_words(c.map_or(HealthState::Healthy, |c| c.state));
    let filter = filter_of(listing.filter);
    let page = listing.page;
    let messages = state.app.webhook_message_page(&e.id, filter.map(|f| f.2), Pager::offset(page), PER_PAGE + 1).await?;
    let has_next = messages.len() as i64 > PER_PAGE;
    let filter_value = filter.map_or("", |f| f.0);
    let pager = Pager::new(&endpoint_path(&e.id), &[("status", filter_value)], page, has_next);
    let s = stats.as_ref();
    Ok(EndpointPage {
        layout: staff.layout(format!("Webhook endpoint {}", e.url)),
        id: e.id.clone(),
        description: e.description.clone().unwrap_or_default(),
        event_filter: if e.event_types.is_empty() { "Every event".into() } else { e.event_types.join(", ") },
        enabled: e.enabled,
        disabled: disabled_words(e.disabled_reason.as_deref(), e.disabled_at.as_deref()),
        rate_limit: e.rate_limit.map_or_else(|| "No limit".into(), |l| format!("{l} deliveries per second")),
        created: when_text(Some(&e.created_at), ""),
        health,
        health_class,
        detail: c.and_then(|c| c.detail.clone()).unwrap_or_default(),
        success_1h: s.map_or_else(String::new, |s| rate_words(s.attempts_1h, s.failures_1h, "hour")),
        success_24h: s.map_or_else(String::new, |s| rate_words(s.attempts_24h, s.failures_24h, "24 hours")),
        pending: s.map_or(0, |s| s.pending),
        oldest_pending: s.map_or_else(String::new, |s| duration_words(s.oldest_pending_age_micros / 1_000_000)),
        retrying,
        dead,
        last_success: s.and_then(|s| s.last_success_at).map_or_else(|| "Never".into(), when),
        last_failure: s.and_then(|s| s.last_failure_at).map_or_else(|| "Never".into(), when),
        consecutive_failures: s.map_or(0, |s| s.consecutive_failures),
        circuit_open: s.is_some_and(|s| s.circuit_open),
        filters: FILTERS.iter().map(|(v, l, _)| (*v, *l, *v == filter_value)).collect(),
        filter: filter_value,
        filter_label: filter.map_or("All messages", |f| f.1),
        messages: messages.iter().take(PER_PAGE as usize).map(MessageRowView::new).collect(),
        pager,
        can_write: staff.can(crate::access::Permission::IntegrationsWrite),
        problems,
        since,
        url: e.url,
    })
}

async fn render_endpoint(
    state: &AppState,
    staff: &StaffUser,
    id: &str,
    listing: Listing<'_>,
    since: Field,
    problems: Vec<Problem>,
    status: StatusCode,
) -> Response {
    match endpoint_page(state, staff, id, listing, since, problems).await {
        Ok(p) => html(status, &p),
        Err(AppError::NotFound { .. } | AppError::Invalid(_)) => not_found("webhook endpoint"),
        Err(e) => error_page(&e),
    }
}

pub async fn endpoint(State(state): State<AppState>, staff: StaffUser, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw);
    let listing = Listing { filter: q.get("status"), page: page_number(Some(q.get("page"))) };
    let since = since_field(default_since(now_micros()));
    render_endpoint(&state, &staff, &id, listing, since, Vec::new(), StatusCode::OK).await
}

/// A `since` typed into the recovery form: `2026-12-01T09:00` (seconds
/// optional, `T` or a space), a date alone, or RFC 3339; UTC unless the
/// value says otherwise.
fn parse_since(raw: &str, now: i64) -> Result<i64, &'static str> {
    const EXAMPLE: &str = "Enter a date and time such as 2026-12-01T09:00";
    if raw.is_empty() {
        return Err("Enter the date and time from which to replay failed messages");
    }
    if raw.len() > 40 {
        return Err(EXAMPLE);
    }
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(raw, f).ok())
        .map(|d| d.and_utc().timestamp_micros());
    let t = naive.or_else(|| parse_rfc3339(raw)).or_else(|| parse_date_start(raw)).ok_or(EXAMPLE)?;
    if t > now {
        return Err("Choose a time in the past: no message was created after now");
    }
    Ok(t)
}

pub async fn recover(State(state): State<AppState>, Path(id): Path<String>, StaffForm { staff, form }: StaffForm) -> Response {
    let raw = form.get("since");
    let since = match parse_since(raw, now_micros()) {
        Ok(t) => t,
        Err(message) => {
            let mut errors = Errors::default();
            errors.add("since", message);
            let mut field = since_field(raw.chars().take(40).collect());
            let problems = errors.apply(&mut [&mut field]);
            let listing = Listing { filter: "", page: 1 };
            return render_endpoint(&state, &staff, &id, listing, field, problems, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    match state.app.recover_webhook_endpoint(&id, RecoverInput { since: to_rfc3339(since) }).await {
        Ok(r) => {
            let text = match r.messages_scheduled {
                0 => format!("No dead-lettered messages since {}: nothing to replay.", when(since)),
                1 => format!("1 failed message since {} will be sent again now.", when(since)),
                n => format!("{n} failed messages since {} will be sent again now.", when(since)),
            };
            flash(&state, &endpoint_path(&id), &text)
        }
        Err(AppError::NotFound { .. }) => not_found("webhook endpoint"),
        Err(e) => error_page(&e),
    }
}

async fn set_enabled(state: &AppState, staff: &StaffUser, id: &str, enabled: bool) -> Response {
    let changes = WebhookEndpointChanges { enabled: Some(enabled), ..WebhookEndpointChanges::default() };
    match state.app.update_webhook_endpoint(&staff.actor(), id, changes).await {
        Ok(e) => {
            // Not the URL: it may carry a token, and the flash is a cookie.
            let text = if enabled {
                "The endpoint is enabled: new events are delivered to it again."
            } else {
                "The endpoint is disabled: nothing is sent to it, and its pending messages were dead-lettered."
            };
            flash(state, &endpoint_path(&e.id), text)
        }
        Err(AppError::NotFound { .. }) => not_found("webhook endpoint"),
        Err(e) => error_page(&e),
    }
}

pub async fn enable(State(state): State<AppState>, Path(id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    set_enabled(&state, &staff, &id, true).await
}

pub async fn disable(State(state): State<AppState>, Path(id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    set_enabled(&state, &staff, &id, false).await
}

// --------------------------------------------------------------- message ---

#[derive(Template)]
#[template(path = "admin/webhook_message.html")]
struct WebhookMessagePage {
    layout: Layout,
    id: String,
    endpoint_href: String,
    endpoint_url: String,
    endpoint_enabled: bool,
    event_type: String,
    event_id: String,
    status: &'static str,
    status_class: &'static str,
    created: String,
    next_attempt: String,
    attempt_count: i64,
    attempts: Vec<AttemptRowView>,
    payload: String,
    can_replay: bool,
}

async fn message_page(state: &AppState, staff: &StaffUser, id: &str) -> Result<WebhookMessagePage, AppError> {
    let m = staff.viewer().show(state.app.get_webhook_message(id).await?);
    let e = state.app.get_webhook_endpoint(&m.endpoint_id).await?;
    let (status, status_class) = message_status(&m);
    Ok(WebhookMessagePage {
        layout: staff.layout(format!("Webhook message {}", m.event_type)),
        endpoint_href: endpoint_path(&e.id),
        endpoint_url: e.url,
        endpoint_enabled: e.enabled,
        event_id: m.event_id.clone(),
        status,
        status_class,
        created: when_text(Some(&m.created_at), ""),
        next_attempt: when_text(m.next_attempt_at.as_deref(), ""),
        attempt_count: m.attempt_count,
        attempts: m.attempts.iter().map(AttemptRowView::new).collect(),
        payload: serde_json::to_string_pretty(&m.payload).unwrap_or_default(),
        can_replay: staff.can(crate::access::Permission::IntegrationsWrite) && !m.attempts.is_empty(),
        event_type: m.event_type,
        id: m.id,
    })
}

pub async fn message(State(state): State<AppState>, staff: StaffUser, Path(id): Path<String>) -> Response {
    match message_page(&state, &staff, &id).await {
        Ok(p) => html(StatusCode::OK, &p),
        Err(AppError::NotFound { .. } | AppError::Invalid(_)) => not_found("webhook message"),
        Err(e) => error_page(&e),
    }
}

/// Where a replay returns: the endpoint's delivery log (keeping its filter
/// and page) when pressed there, else the message.
fn back_to(form: &FormData, m: &WebhookMessageView) -> String {
    if form.get("back") != "endpoint" {
        return message_path(&m.id);
    }
    let filter = filter_of(form.get("status")).map_or("", |f| f.0);
    let page = page_number(Some(form.get("page")));
    let mut q = form_urlencoded::Serializer::new(String::new());
    if !filter.is_empty() {
        q.append_pair("status", filter);
    }
    if page > 1 {
        q.append_pair("page", &page.to_string());
    }
    match q.finish() {
        q if q.is_empty() => endpoint_path(&m.endpoint_id),
        q => format!("{}?{q}", endpoint_path(&m.endpoint_id)),
    }
}

pub async fn replay(State(state): State<AppState>, Path(id): Path<String>, StaffForm { form, .. }: StaffForm) -> Response {
    match state.app.retry_webhook_message(&id).await {
        Ok(m) => {
            let text = format!("Message {} ({}) replayed: it is sent again now, with the same webhook-id.", m.id, m.event_type);
            flash(&state, &back_to(&form, &m), &text)
        }
        Err(AppError::NotFound { .. }) => not_found("webhook message"),
        Err(e) => error_page(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_the_browsers_format_and_refuses_the_future() {
        let now = parse_rfc3339("2026-12-02T12:00:00Z").unwrap();
        assert_eq!(parse_since("2026-12-01T09:30", now), Ok(parse_rfc3339("2026-12-01T09:30:00Z").unwrap()));
        assert_eq!(parse_since("2026-12-01", now), Ok(parse_rfc3339("2026-12-01T00:00:00Z").unwrap()));
        assert_eq!(parse_since("2026-12-01T09:30:00+01:00", now), Ok(parse_rfc3339("2026-12-01T08:30:00Z").unwrap()));
        assert!(parse_since("", now).is_err());
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("2026-12-03T00:00", now).is_err());
    }
}

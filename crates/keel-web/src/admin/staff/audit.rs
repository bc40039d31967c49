//! The audit log: filters (actor, action, target, a UTC time range) and
//! cursor paging (`starting_after`, "Older entries"). Read only: entries
//! are never changed or removed, and no route here writes.

use super::{is_staff_id, query, user_path};
use crate::admin::when_seconds;
use crate::admin::{error_page, html, Layout, StaffUser};
use crate::storefront::form::{Errors, Field, FormData, Problem};
use crate::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDateTime;
use keel_app::audit::{AuditEntryView, AuditQuery};
use keel_app::AppError;
use keel_domain::ids::AuditId;
use keel_domain::time::{parse_date_start, parse_rfc3339, to_rfc3339, Micros};
use serde_json::Value;
use std::collections::HashMap;

const PER_PAGE: i64 = crate::admin::paging::PER_PAGE;
const DAY_MICROS: i64 = 86_400_000_000;
const MAX_FILTER: usize = 200;
const STAFF_ACTOR: &str = "staff:";

/// A time typed into a filter, UTC: a date (`2026-12-02`), a date and time
/// (`2026-12-02 14:30`, `2026-12-02T14:30:05`) or RFC 3339. A bare date
/// means the start of that day, or with `end_of_day` the start of the next
/// one (so "until 2026-12-02" includes that whole day).
fn parse_time(s: &str, end_of_day: bool) -> Option<Micros> {
    let s = s.trim();
    if let Some(day) = parse_date_start(s) {
        return Some(if end_of_day { day + DAY_MICROS } else { day });
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    parse_rfc3339(s)
}

/// The filters as typed, kept for the form and the paging links.
struct Filters {
    actor: String,
    action: String,
    target: String,
    since: String,
    until: String,
}

impl Filters {
    fn from(q: &FormData) -> Filters {
        let get = |k: &str| q.get(k).to_owned();
        Filters { actor: get("actor"), action: get("action"), target: get("target"), since: get("since"), until: get("until") }
    }

    fn any(&self) -> bool {
        [&self.actor, &self.action, &self.target, &self.since, &self.until].iter().any(|v| !v.is_empty())
    }

    /// The query string of these filters (empty ones left out), then `extra`.
    fn href(&self, extra: Option<(&str, &str)>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("actor", &self.actor), ("action", &self.action), ("target", &self.target), ("since", &self.since), ("until", &self.until)] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some((k, v)) = extra {
            q.append_pair(k, v);
        }
        let q = q.finish();
        if q.is_empty() { "/admin/audit-log".to_owned() } else { format!("/admin/audit-log?{q}") }
    }
}

struct EntryView {
    when: String,
    actor: String,
    action: String,
    target: String,
    target_href: Option<String>,
    summary: String,
    ip: String,
    status: String,
    status_class: &'static str,
}

#[derive(Template)]
#[template(path = "admin/audit_log.html")]
struct AuditPage {
    layout: Layout,
    problems: Vec<Problem>,
    actor: Field,
    action: Field,
    target: Field,
    since: Field,
    until: Field,
    filtered: bool,
    rows: Vec<EntryView>,
    newest: Option<String>,
    older: Option<String>,
}

/// "Succeeded (303)", "Refused (403)", "Failed (500)".
fn status_words(status: i64) -> (String, &'static str) {
    match status {
        200..=399 => (format!("Succeeded ({status})"), "ok"),
        400..=499 => (format!("Refused ({status})"), "warn"),
        _ => (format!("Failed ({status})"), "bad"),
    }
}

/// The summary's facts in words: field names, the resulting id, the error
/// code, a replay; anything else as `key: value`.
fn summary_words(summary: &Value) -> String {
    let Some(map) = summary.as_object() else { return String::new() };
    let mut parts = Vec::new();
    for (k, v) in map {
        let text = match (k.as_str(), v) {
            ("fields", Value::Array(names)) if names.is_empty() => continue,
            ("fields", Value::Array(names)) => {
                format!("Fields: {}", names.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
            }
            ("result_id", Value::String(id)) => format!("Result: {id}"),
            ("error_code", Value::String(code)) => format!("Error: {code}"),
            ("replayed", Value::Bool(true)) => "Replayed".to_owned(),
            (_, Value::String(s)) => format!("{k}: {s}"),
            (_, other) => format!("{k}: {other}"),
        };
        parts.push(text);
    }
    parts.join("; ")
}

/// Who acted: a staff user's email, else the actor as recorded.
fn actor_words(actor: &str, emails: &HashMap<String, String>) -> String {
    actor.strip_prefix(STAFF_ACTOR).and_then(|id| emails.get(id)).cloned().unwrap_or_else(|| actor.to_owned())
}

fn entry_view(e: &AuditEntryView, emails: &HashMap<String, String>) -> EntryView {
    let (status, status_class) = status_words(e.status);
    let target = e.target.clone().unwrap_or_default();
    let staff_target = is_staff_id(&target);
    let target_text = match emails.get(&target) {
        Some(email) => format!("{email} ({target})"),
        None => target.clone(),
    };
    EntryView {
        when: parse_rfc3339(&e.occurred_at).map(when_seconds).unwrap_or_else(|| e.occurred_at.clone()),
        actor: actor_words(&e.actor, emails),
        action: e.action.clone(),
        target_href: staff_target.then(|| user_path(&target)),
        target: target_text,
        summary: summary_words(&e.summary),
        ip: e.ip.clone().unwrap_or_default(),
        status,
        status_class,
    }
}

pub async fn list(State(state): State<AppState>, staff: StaffUser, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw);
    let f = Filters::from(&q);
    let mut errors = Errors::default();
    for (name, label, value) in [("actor", "Actor", &f.actor), ("action", "Action", &f.action), ("target", "Target", &f.target)] {
        if value.chars().count() > MAX_FILTER {
            errors.add(name, format!("{label} must be at most {MAX_FILTER} characters."));
        }
    }
    let since = Some(f.since.as_str()).filter(|s| !s.is_empty()).map(|s| parse_time(s, false));
    let until = Some(f.until.as_str()).filter(|s| !s.is_empty()).map(|s| parse_time(s, true));
    if since == Some(None) {
        errors.add("since", "From must be a date like 2026-12-02 or a date and time like 2026-12-02 14:30 (UTC).");
    }
    if until == Some(None) {
        errors.add("until", "Until must be a date like 2026-12-02 or a date and time like 2026-12-02 14:30 (UTC).");
    }
    if let (Some(Some(s)), Some(Some(u))) = (since, until) {
        if u <= s {
            errors.add("until", "Until must be later than From.");
        }
    }
    // An email names a staff user; anything else is an actor as recorded
    // (`staff:usr_…`, `api_key:key_…`, `system:cli`).
    let mut actor = Some(f.actor.clone()).filter(|a| !a.is_empty());
    if errors.is_empty() && f.actor.contains('@') {
        match state.app.staff_id_by_email(&f.actor).await {
            Ok(id) => actor = Some(format!("{STAFF_ACTOR}{id}")),
            Err(AppError::NotFound { .. } | AppError::Invalid(_)) => errors.add("actor", "No staff user has this email."),
            Err(e) => return error_page(&e),
        }
    }
    // A cursor that is not an entry id starts from the newest entry.
    let after = Some(q.get("starting_after").to_owned()).filter(|a| AuditId::parse("starting_after", a).is_ok());
    let (rows, has_more) = if errors.is_empty() {
        let audit_query = AuditQuery {
            actor,
            action: None,
            target: Some(f.target.clone()).filter(|t| !t.is_empty()),
            action_contains: Some(f.action.clone()).filter(|a| !a.is_empty()),
            since: since.flatten().map(to_rfc3339),
            until: until.flatten().map(to_rfc3339),
            starting_after: after.clone(),
            limit: Some(PER_PAGE),
        };
        let page = match state.app.list_audit_log(&audit_query).await {
            Ok(p) => p,
            Err(e) => return error_page(&e),
        };
        let mut ids: Vec<String> = page.data.iter().filter_map(|e| e.actor.strip_prefix(STAFF_ACTOR).map(str::to_owned)).collect();
        ids.extend(page.data.iter().filter_map(|e| e.target.clone()).filter(|t| is_staff_id(t)));
        let emails = match state.app.staff_emails(&ids).await {
            Ok(m) => m,
            Err(e) => return error_page(&e),
        };
        let older = page.has_more.then(|| page.data.last().map(|e| e.id.clone())).flatten();
        (page.data.iter().map(|e| entry_view(e, &emails)).collect(), older)
    } else {
        (Vec::new(), None)
    };
    let hint_time = "UTC. A date (2026-12-02) or a date and time (2026-12-02 14:30).";
    let mut actor_field = Field::new("actor", "Actor", "text", "off")
        .value(f.actor.clone())
        .hint("A staff user's email, or an actor such as api_key:key_… or system:cli.")
        .optional();
    let mut action_field = Field::new("action", "Action contains", "search", "off").value(f.action.clone()).hint("Such as users or POST.").optional();
    let mut target_field = Field::new("target", "Target id", "text", "off").value(f.target.clone()).optional();
    let mut since_field = Field::new("since", "From", "text", "off").value(f.since.clone()).hint(hint_time).optional();
    let mut until_field = Field::new("until", "Until", "text", "off").value(f.until.clone()).hint("UTC, before this time. A date includes that whole day.").optional();
    let problems = errors.apply(&mut [&mut actor_field, &mut action_field, &mut target_field, &mut since_field, &mut until_field]);
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = AuditPage {
        layout: staff.layout("Audit log"),
        problems,
        actor: actor_field,
        action: action_field,
        target: target_field,
        since: since_field,
        until: until_field,
        filtered: f.any(),
        rows,
        newest: after.as_ref().map(|_| f.href(None)),
        older: has_more.map(|id| f.href(Some(("starting_after", &id)))),
    };
    html(status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_dates_or_date_times_in_utc() {
        let day = parse_rfc3339("2026-12-02T00:00:00Z").unwrap();
        assert_eq!(parse_time("2026-12-02", false), Some(day));
        assert_eq!(parse_time("2026-12-02", true), Some(day + DAY_MICROS));
        assert_eq!(parse_time("2026-12-02T14:30", false), parse_rfc3339("2026-12-02T14:30:00Z"));
        assert_eq!(parse_time("2026-12-02 14:30:05", true), parse_rfc3339("2026-12-02T14:30:05Z"));
        assert_eq!(parse_time("2026-12-02T14:30:00+01:00", false), parse_rfc3339("2026-12-02T13:30:00Z"));
        assert_eq!(parse_time("yesterday", false), None);
        assert_eq!(when_seconds(parse_rfc3339("2026-12-02T07:51:09.5Z").unwrap()), "2026-12-02 07:51:09 UTC");
    }

    #[test]
    fn summaries_and_statuses_read_as_words() {
        let s = serde_json::json!({"fields": ["email", "role"], "result_id": "usr_1", "error_code": "last_owner"});
        let words = summary_words(&s);
        for part in ["Error: last_owner", "Fields: email, role", "Result: usr_1"] {
            assert!(words.contains(part), "{words}");
        }
        assert_eq!(status_words(303).0, "Succeeded (303)");
        assert_eq!(status_words(403).0, "Refused (403)");
        let emails = HashMap::from([("usr_1".to_owned(), "a@example.com".to_owned())]);
        assert_eq!(actor_words("staff:usr_1", &emails), "a@example.com");
        assert_eq!(actor_words("system:cli", &emails), "system:cli");
    }
}

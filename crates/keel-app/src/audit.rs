//! The audit log: one entry per admin or API write (who, what, which
//! resource, which fields, from where, with what outcome). Entries are only
//! ever appended; there is no use case that changes or removes one.

use crate::views::Page;
use crate::{in_tx, page_limit, App, Result};
use keel_domain::ids::AuditId;
use keel_domain::time::{now_micros, parse_rfc3339, to_rfc3339};
use keel_domain::Invalid;
use keel_store::audit::{self as db, AuditFilter, AuditRow};
use serde::Serialize;
use utoipa::ToSchema;

/// What the HTTP edge saw of one write. `summary` must hold field names and
/// ids only, never submitted values (security events, `crate::security`,
/// add the email tried or a key's public prefix — never a secret).
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub summary: serde_json::Value,
    pub ip: Option<String>,
    pub status: u16,
}

impl NewAuditEntry {
    /// The row to insert, for use cases that append their entry in their
    /// own transaction (the stale-accounts job).
    pub(crate) fn into_row(self, occurred_at: i64) -> AuditRow {
        AuditRow {
            id: AuditId::generate().to_string(),
            actor: self.actor,
            action: self.action,
            target: self.target,
            summary: self.summary.to_string(),
            ip: self.ip,
            status: i64::from(self.status),
            occurred_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: String,
    #[schema(example = "audit_entry")]
    pub object: &'static str,
    /// `api_key:key_…`, `staff:…`, `system:…`, or `anonymous` for security
    /// events (`security.*` actions: failed sign-ins, refused API keys).
    pub actor: String,
    /// Method and route, e.g. `POST /api/v1/products/{id}`.
    pub action: String,
    /// The resource acted on: the first id in the path, else the id in the response.
    pub target: Option<String>,
    /// Field names of the request and the resulting id; never values.
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
    pub ip: Option<String>,
    /// The HTTP status of the response.
    pub status: i64,
    pub occurred_at: String,
}

impl From<AuditRow> for AuditEntryView {
    fn from(r: AuditRow) -> Self {
        AuditEntryView {
            id: r.id,
            object: "audit_entry",
            actor: r.actor,
            action: r.action,
            target: r.target,
            summary: serde_json::from_str(&r.summary).unwrap_or(serde_json::Value::Null),
            ip: r.ip,
            status: r.status,
            occurred_at: to_rfc3339(r.occurred_at),
        }
    }
}

/// Filters of `GET /audit-log`.
#[derive(Debug, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// Actions containing this text, ignoring ASCII case.
    pub action_contains: Option<String>,
    /// RFC 3339: entries at or after this time.
    pub since: Option<String>,
    /// RFC 3339: entries before this time.
    pub until: Option<String>,
    pub starting_after: Option<String>,
    pub limit: Option<i64>,
}

impl App {
    /// Appends one entry in its own short transaction.
    pub async fn record_audit(&self, entry: NewAuditEntry) -> Result<String> {
        let row = entry.into_row(now_micros());
        in_tx!(self, |tx| {
            db::insert(&mut tx, &row).await?;
            Ok(())
        })?;
        Ok(row.id)
    }

    pub async fn list_audit_log(&self, q: &AuditQuery) -> Result<Page<AuditEntryView>> {
        if let Some(c) = &q.starting_after {
            AuditId::parse("starting_after", c)?;
        }
        let time = |field: &str, v: &Option<String>| match v {
            Some(s) => parse_rfc3339(s).map(Some).ok_or_else(|| Invalid::new(field, "invalid_time", format!("{field} must be an RFC 3339 time"))),
            None => Ok(None),
        };
        let since = time("since", &q.since)?;
        let until = time("until", &q.until)?;
        if q.action_contains.as_ref().is_some_and(|a| a.chars().count() > 200) {
            return Err(Invalid::new("action_contains", "too_long", "action_contains must be at most 200 characters").into());
        }
        let limit = page_limit(q.limit);
        let filter = AuditFilter {
            actor: q.actor.as_deref(),
            action: q.action.as_deref(),
            target: q.target.as_deref(),
            action_contains: q.action_contains.as_deref().filter(|a| !a.is_empty()),
            since,
            until,
            before: q.starting_after.as_deref(),
        };
        let mut conn = self.store.reader().await?;
        let rows = db::list(&mut conn, &filter, limit + 1).await?;
        Ok(Page::from_overfetch(rows.into_iter().map(AuditEntryView::from).collect(), limit))
    }
}

//! The audit log: insert and read, nothing else. There is deliberately no
//! update or delete here, and the migration's triggers refuse both.

use crate::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    /// A JSON object (field names and ids only).
    pub summary: String,
    pub ip: Option<String>,
    pub status: i64,
    pub occurred_at: i64,
}

const COLUMNS: &str = "id, actor, action, target, summary, ip, status, occurred_at";

fn from_row(r: &AnyRow) -> Result<AuditRow> {
    Ok(AuditRow {
        id: r.try_get("id")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        summary: r.try_get("summary")?,
        ip: r.try_get("ip")?,
        status: r.try_get("status")?,
        occurred_at: r.try_get("occurred_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, row: &AuditRow) -> Result<()> {
    sqlx::query(&format!("INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
        .bind(&row.id)
        .bind(&row.actor)
        .bind(&row.action)
        .bind(&row.target)
        .bind(&row.summary)
        .bind(&row.ip)
        .bind(row.status)
        .bind(row.occurred_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Filters for [`list`]; every one is optional.
#[derive(Debug, Default)]
pub struct AuditFilter<'a> {
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
    pub target: Option<&'a str>,
    /// Actions containing this text, ignoring ASCII case.
    pub action_contains: Option<&'a str>,
    /// Entries at or after this time (microseconds).
    pub since: Option<i64>,
    /// Entries before this time (microseconds).
    pub until: Option<i64>,
    /// Cursor: entries older than this id.
    pub before: Option<&'a str>,
}

/// `%text%` in lower case, with LIKE's wildcards in `text` escaped.
fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_ascii_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Newest first.
pub async fn list(conn: &mut AnyConnection, f: &AuditFilter<'_>, limit: i64) -> Result<Vec<AuditRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR action = $2) \
         AND ($3 IS NULL OR target = $3) AND ($4 IS NULL OR occurred_at >= $4) AND ($5 IS NULL OR id < $5) \
         AND ($7 IS NULL OR LOWER(action) LIKE $7 ESCAPE '\\') AND ($8 IS NULL OR occurred_at < $8) \
         ORDER BY id DESC LIMIT $6"
    ))
    .bind(f.actor)
    .bind(f.action)
    .bind(f.target)
    .bind(f.since)
    .bind(f.before)
    .bind(limit)
    .bind(f.action_contains.map(like_pattern))
    .bind(f.until)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

//! The audit log: insert and read, nothing else. There is deliberately no
//! update or delete here, and the migration's triggers refuse both. Every
//! insert extends the hash chain (`keel_domain::audit`): the head row is
//! locked, the entry takes the next place and the head moves to its hash,
//! in the caller's transaction.

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
    // One chain for all writers: on PostgreSQL the head row's lock orders
    // concurrent inserts; SQLite has one writer.
    let lock = if crate::Backend::of(conn) == crate::Backend::Postgres { " FOR UPDATE" } else { "" };
    let head = sqlx::query(&format!("SELECT seq, head FROM audit_chain WHERE id = 1{lock}")).fetch_one(&mut *conn).await?;
    let (seq, prev): (i64, String) = (head.try_get::<i64, _>("seq")? + 1, head.try_get("head")?);
    let hash = keel_domain::audit::entry_hash(&prev, &chain_entry(row, seq));
    sqlx::query(&format!(
        "INSERT INTO audit_log ({COLUMNS}, chain_seq, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&row.id)
    .bind(&row.actor)
    .bind(&row.action)
    .bind(&row.target)
    .bind(&row.summary)
    .bind(&row.ip)
    .bind(row.status)
    .bind(row.occurred_at)
    .bind(seq)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_chain SET seq = $1, head = $2 WHERE id = 1").bind(seq).bind(&hash).execute(conn).await?;
    Ok(())
}

/// How many entries with one of `actions` occurred at or after `since`
/// (the security spike alert; index `audit_log_action_time`).
pub async fn count_actions_since(conn: &mut AnyConnection, actions: &[&str], since: i64) -> Result<i64> {
    let marks: Vec<String> = (0..actions.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!("SELECT COUNT(*) AS n FROM audit_log WHERE occurred_at >= $1 AND action IN ({})", marks.join(", "));
    let mut q = sqlx::query(&sql).bind(since);
    for a in actions {
        q = q.bind(*a);
    }
    Ok(q.fetch_one(conn).await?.try_get("n")?)
}

fn chain_entry(row: &AuditRow, seq: i64) -> keel_domain::audit::Entry<'_> {
    keel_domain::audit::Entry {
        seq,
        id: &row.id,
        actor: &row.actor,
        action: &row.action,
        target: row.target.as_deref(),
        summary: &row.summary,
        ip: row.ip.as_deref(),
        status: row.status,
        occurred_at: row.occurred_at,
    }
}

/// Walks the chain from its first entry and returns the first entry that
/// does not hold (its id and why), or `None` when every hash and the head
/// agree.
pub async fn verify_chain(conn: &mut AnyConnection) -> Result<Option<(String, &'static str)>> {
    use futures_util::TryStreamExt;
    let mut prev = keel_domain::audit::GENESIS.to_owned();
    let mut expected_seq = 1;
    let mut last_id = None;
    {
        let sql = format!("SELECT {COLUMNS}, chain_seq, prev_hash, hash FROM audit_log WHERE chain_seq IS NOT NULL ORDER BY chain_seq");
        let mut rows = sqlx::query(&sql).fetch(&mut *conn);
        while let Some(r) = rows.try_next().await? {
            let row = from_row(&r)?;
            let seq: i64 = r.try_get("chain_seq")?;
            let stored_prev: String = r.try_get("prev_hash")?;
            let stored: String = r.try_get("hash")?;
            if seq != expected_seq {
                return Ok(Some((row.id, "an entry before it is missing from the chain")));
            }
            if stored_prev != prev {
                return Ok(Some((row.id, "its link to the previous entry is broken")));
            }
            if keel_domain::audit::entry_hash(&prev, &chain_entry(&row, seq)) != stored {
                return Ok(Some((row.id, "its contents were changed after it was written")));
            }
            prev = stored;
            expected_seq += 1;
            last_id = Some(row.id);
        }
    }
    let head = sqlx::query("SELECT seq, head FROM audit_chain WHERE id = 1").fetch_one(conn).await?;
    let (seq, hash): (i64, String) = (head.try_get("seq")?, head.try_get("head")?);
    if seq != expected_seq - 1 || hash != prev {
        return Ok(Some((last_id.unwrap_or_else(|| "(start)".into()), "entries after it were removed")));
    }
    Ok(None)
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

//! The transactional outbox: events are appended in the same transaction as
//! the writes they describe, then read in commit order by consumers.
//!
//! Commit order on PostgreSQL is not id order: a transaction that started
//! earlier may commit later. Each event therefore records its transaction id
//! (`tx_order`), and readers only see events of transactions older than the
//! oldest one still running (`pg_snapshot_xmin`), so a cursor never skips an
//! event that commits late. On SQLite the single writer commits in order.

use crate::batch::Batch;
use crate::{Backend, Result};
use keel_domain::ids::EventId;
use keel_domain::time::now_micros;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    /// The aggregate's version after this change: a per-aggregate sequence.
    pub aggregate_seq: i64,
    pub payload: Value,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_seq: i64,
    pub occurred_at: i64,
    pub payload: Value,
    #[serde(skip)]
    pub cursor: Cursor,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub tx_order: i64,
    pub position: i64,
}

pub async fn append(conn: &mut AnyConnection, e: NewEvent<'_>) -> Result<EventId> {
    let mut batch = Batch::new();
    let id = push(&mut batch, Backend::of(conn), e);
    batch.run(conn).await?;
    Ok(id)
}

/// Queues the event's insert in `batch`, to be sent with other writes.
pub fn push(batch: &mut Batch, backend: Backend, e: NewEvent<'_>) -> EventId {
    let id = EventId::generate();
    let tx_order = match backend {
        Backend::Postgres => "pg_current_xact_id()::text::bigint",
        Backend::Sqlite => "0",
    };
    batch.push(
        format!(
            "INSERT INTO events (id, tx_order, type, aggregate_type, aggregate_id, aggregate_seq, occurred_at, payload) \
             VALUES ($1, {tx_order}, $2, $3, $4, $5, $6, $7)"
        ),
        vec![
            id.as_str().into(),
            e.kind.into(),
            e.aggregate_type.into(),
            e.aggregate_id.into(),
            e.aggregate_seq.into(),
            now_micros().into(),
            e.payload.to_string().into(),
        ],
    );
    id
}

/// Which events a reader wants: exact types, or a family such as `product.*`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub types: Vec<String>,
    pub aggregate_id: Option<String>,
}

const COLUMNS: &str = "id, type, aggregate_type, aggregate_id, aggregate_seq, occurred_at, payload, tx_order, position";

/// Committed events after `after`, in commit order.
pub async fn read(conn: &mut AnyConnection, after: Cursor, filter: &Filter, limit: i64) -> Result<Vec<Event>> {
    let mut sql = format!("SELECT {COLUMNS} FROM events WHERE (tx_order, position) > ($1, $2)");
    let mut n = 2;
    let mut binds: Vec<String> = Vec::new();
    if !filter.types.is_empty() {
        let mut parts = Vec::new();
        for t in &filter.types {
            n += 1;
            match t.strip_suffix('*') {
                Some(prefix) => {
                    parts.push(format!("type LIKE ${n}"));
                    binds.push(format!("{}%", prefix.replace('%', "").replace('_', "\\_")));
                }
                None => {
                    parts.push(format!("type = ${n}"));
                    binds.push(t.clone());
                }
            }
        }
        sql.push_str(&format!(" AND ({})", parts.join(" OR ")));
    }
    if let Some(agg) = &filter.aggregate_id {
        n += 1;
        sql.push_str(&format!(" AND aggregate_id = ${n}"));
        binds.push(agg.clone());
    }
    if Backend::of(conn) == Backend::Postgres {
        sql.push_str(" AND tx_order < pg_snapshot_xmin(pg_current_snapshot())::text::bigint");
    }
    sql.push_str(&format!(" ORDER BY tx_order, position LIMIT {}", limit.clamp(1, 1000)));
    // LIKE needs an explicit escape character for `_` on both backends.
    let sql = add_like_escape(&sql);
    let mut q = sqlx::query(&sql).bind(after.tx_order).bind(after.position);
    for b in &binds {
        q = q.bind(b.as_str());
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(event_from_row).collect()
}

fn add_like_escape(sql: &str) -> String {
    // `type LIKE $3` → `type LIKE $3 ESCAPE '\'`
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(i) = rest.find("LIKE $") {
        let (head, tail) = rest.split_at(i + "LIKE $".len());
        out.push_str(head);
        let digits: String = tail.chars().take_while(|c| c.is_ascii_digit()).collect();
        out.push_str(&digits);
        out.push_str(" ESCAPE '\\'");
        rest = &tail[digits.len()..];
    }
    out.push_str(rest);
    out
}

fn event_from_row(row: &sqlx::any::AnyRow) -> Result<Event> {
    let payload: String = row.try_get("payload")?;
    Ok(Event {
        id: row.try_get("id")?,
        kind: row.try_get("type")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        aggregate_seq: row.try_get("aggregate_seq")?,
        occurred_at: row.try_get("occurred_at")?,
        payload: serde_json::from_str(&payload).map_err(crate::StoreError::corrupt)?,
        cursor: Cursor { tx_order: row.try_get("tx_order")?, position: row.try_get("position")? },
    })
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<Event>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM events WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(event_from_row).transpose()
}

/// Every event of one aggregate, in sequence; for timelines. Reads its own
/// writes, unlike consumers (no commit-order horizon needed for one aggregate).
pub async fn of_aggregate(conn: &mut AnyConnection, aggregate_id: &str) -> Result<Vec<Event>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM events WHERE aggregate_id = $1 ORDER BY aggregate_seq, position"))
        .bind(aggregate_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(event_from_row).collect()
}

pub async fn load_cursor(conn: &mut AnyConnection, consumer: &str) -> Result<Cursor> {
    let row = sqlx::query("SELECT tx_order, position FROM consumer_cursors WHERE name = $1")
        .bind(consumer)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => Cursor { tx_order: r.try_get("tx_order")?, position: r.try_get("position")? },
        None => Cursor::default(),
    })
}

pub async fn save_cursor(conn: &mut AnyConnection, consumer: &str, c: Cursor) -> Result<()> {
    sqlx::query(
        "INSERT INTO consumer_cursors (name, tx_order, position, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET tx_order = excluded.tx_order, position = excluded.position, \
         updated_at = excluded.updated_at",
    )
    .bind(consumer)
    .bind(c.tx_order)
    .bind(c.position)
    .bind(now_micros())
    .execute(conn)
    .await?;
    Ok(())
}

/// How far a consumer is behind: events not yet consumed, and the age of the
/// oldest of them in microseconds (0 when caught up).
pub async fn lag(conn: &mut AnyConnection, consumer: &str) -> Result<(i64, i64)> {
    let c = load_cursor(conn, consumer).await?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(occurred_at) AS oldest FROM events WHERE (tx_order, position) > ($1, $2)",
    )
    .bind(c.tx_order)
    .bind(c.position)
    .fetch_one(conn)
    .await?;
    let n: i64 = row.try_get("n")?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    Ok((n, oldest.map(|t| (now_micros() - t).max(0)).unwrap_or(0)))
}

//! Judging rows again at the moment they are applied.
//!
//! A batch is judged (as-of on_hand, delta) in one transaction and applied
//! in others. Whatever committed in between — above all another feed that
//! corrected the same count while this batch lay interrupted by a crash —
//! makes the judged delta stale, and applying it would correct the same
//! discrepancy twice. So each page of rows is judged once more inside the
//! transaction that applies it, with its levels locked, and only that delta
//! is applied.

use super::{ledger_judgement, LevelCursor, LevelRowRef};
use crate::{Backend, Result, StoreError};
use sqlx::{AnyConnection, Row};

/// Pending rows after `after` up to and including `through`.
const RANGE: &str = " AND (inventory_item_id, location_id, line) > ($2, $3, $4) \
     AND (inventory_item_id, location_id, line) <= ($5, $6, $7)";

/// Judges the pending rows in (`after`, `through`] against the ledger as it
/// is now (superseded by a newer applied count, as-of on_hand, delta,
/// unchanged) and returns those still to apply, in level-lock order.
pub async fn recheck_pending(
    conn: &mut AnyConnection,
    batch_id: &str,
    after: &LevelCursor,
    through: &LevelCursor,
) -> Result<Vec<LevelRowRef>> {
    let backend = Backend::of(conn);
    if backend == Backend::Postgres {
        // SQLite has one writer, so nothing can commit between this
        // judgement and the movements; PostgreSQL writers can, unless the
        // levels are held first.
        lock_levels(conn, batch_id, after, through).await?;
    }
    for sql in ledger_judgement(backend, RANGE) {
        bind_range(sqlx::query(&sql), batch_id, after, through).execute(&mut *conn).await?;
    }
    let sql = format!(
        "SELECT line, sku, inventory_item_id, location_id, delta, counted_at FROM sync_batch_rows \
         WHERE batch_id = $1 AND outcome = 'pending' AND inventory_item_id IS NOT NULL{RANGE} \
         ORDER BY inventory_item_id, location_id, line"
    );
    let rows = bind_range(sqlx::query(&sql), batch_id, after, through).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(LevelRowRef {
                line: r.try_get("line")?,
                sku: r.try_get("sku")?,
                inventory_item_id: r.try_get("inventory_item_id")?,
                location_id: r.try_get("location_id")?,
                delta: r.try_get("delta")?,
                counted_at: r.try_get("counted_at")?,
            })
        })
        .collect()
}

fn bind_range<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    batch_id: &'q str,
    after: &'q LevelCursor,
    through: &'q LevelCursor,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    q.bind(batch_id)
        .bind(&after.inventory_item_id)
        .bind(&after.location_id)
        .bind(after.line)
        .bind(&through.inventory_item_id)
        .bind(&through.location_id)
        .bind(through.line)
}

/// Locks the levels of the range's pending rows in (item, location) order,
/// creating the missing ones a non-zero count will need (a level created by
/// a concurrent writer is then waited for, not raced).
async fn lock_levels(conn: &mut AnyConnection, batch_id: &str, after: &LevelCursor, through: &LevelCursor) -> Result<()> {
    let sql = format!(
        "SELECT inventory_item_id, location_id, on_hand FROM sync_batch_rows \
         WHERE batch_id = $1 AND outcome = 'pending' AND inventory_item_id IS NOT NULL{RANGE} \
         ORDER BY inventory_item_id, location_id, line"
    );
    let rows = bind_range(sqlx::query(&sql), batch_id, after, through).fetch_all(&mut *conn).await?;
    let mut all = Vec::with_capacity(rows.len());
    let mut counted = Vec::new();
    for r in &rows {
        let pair = serde_json::json!([r.try_get::<String, _>("inventory_item_id")?, r.try_get::<String, _>("location_id")?]);
        if all.last() != Some(&pair) {
            all.push(pair.clone());
        }
        if r.try_get::<i64, _>("on_hand")? != 0 && counted.last() != Some(&pair) {
            counted.push(pair);
        }
    }
    if all.is_empty() {
        return Ok(());
    }
    let list = |v: Vec<serde_json::Value>| serde_json::to_string(&v).map_err(StoreError::corrupt);
    if !counted.is_empty() {
        sqlx::query(
            "INSERT INTO inventory_levels (inventory_item_id, location_id, on_hand, reserved, safety_stock, incoming, \
             damaged, quality_control, version, updated_at) \
             SELECT v ->> 0, v ->> 1, 0, 0, 0, 0, 0, 0, 0, $2 FROM json_array_elements(CAST($1 AS json)) AS v \
             ON CONFLICT (inventory_item_id, location_id) DO NOTHING",
        )
        .bind(list(counted)?)
        .bind(keel_domain::time::now_micros())
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "SELECT l.inventory_item_id FROM inventory_levels l \
         WHERE (l.inventory_item_id, l.location_id) IN (SELECT v ->> 0, v ->> 1 FROM json_array_elements(CAST($1 AS json)) AS v) \
         ORDER BY l.inventory_item_id, l.location_id FOR UPDATE",
    )
    .bind(list(all)?)
    .fetch_all(&mut *conn)
    .await?;
    Ok(())
}

/// Rows found `unchanged` before an interruption go back to `pending`, so
/// the resumed batch judges them against the ledger of its own time too.
pub async fn reopen_unchanged(conn: &mut AnyConnection, batch_id: &str) -> Result<()> {
    sqlx::query("UPDATE sync_batch_rows SET outcome = 'pending', message = NULL WHERE batch_id = $1 AND outcome = 'unchanged'")
        .bind(batch_id)
        .execute(conn)
        .await?;
    Ok(())
}

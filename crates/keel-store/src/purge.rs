//! Reads behind cache purging: which products an inventory item feeds
//! (bundles included), the outbox head, and monotonic consumer cursors.

use crate::outbox::Cursor;
use crate::{Backend, Result};
use keel_domain::time::now_micros;
use sqlx::{AnyConnection, Row};

/// Products with a variant that consumes any of `item_ids`: the plain
/// product of each item and every bundle or kit containing it. Sorted.
pub async fn products_of_items(conn: &mut AnyConnection, item_ids: &[String]) -> Result<Vec<String>> {
    if item_ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = (1..=item_ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT DISTINCT v.product_id FROM variant_components c JOIN variants v ON v.id = c.variant_id \
         WHERE c.inventory_item_id IN ({list}) ORDER BY v.product_id"
    );
    let mut q = sqlx::query(&sql);
    for id in item_ids {
        q = q.bind(id.as_str());
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(|r| Ok(r.try_get("product_id")?)).collect()
}

/// The cursor of the newest event consumers can see (see `outbox::read`):
/// every event a reader will ever see after it is ordered after it.
pub async fn horizon(conn: &mut AnyConnection) -> Result<Cursor> {
    let visible = match Backend::of(conn) {
        Backend::Postgres => " WHERE tx_order < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        Backend::Sqlite => "",
    };
    let row = sqlx::query(&format!(
        "SELECT tx_order, position FROM events{visible} ORDER BY tx_order DESC, position DESC LIMIT 1"
    ))
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(r) => Cursor { tx_order: r.try_get("tx_order")?, position: r.try_get("position")? },
        None => Cursor::default(),
    })
}

/// Creates the consumer's cursor at the start of the outbox if it has none,
/// so its lag is monitored before its first batch.
pub async fn register(conn: &mut AnyConnection, consumer: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO consumer_cursors (name, tx_order, position, updated_at) VALUES ($1, 0, 0, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(consumer)
    .bind(now_micros())
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the cursor forward to `to`, never back: two nodes finishing the
/// same batches in a different order leave it at the furthest.
pub async fn advance_cursor(conn: &mut AnyConnection, consumer: &str, to: Cursor) -> Result<()> {
    sqlx::query(
        "INSERT INTO consumer_cursors (name, tx_order, position, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET tx_order = excluded.tx_order, position = excluded.position, \
         updated_at = excluded.updated_at \
         WHERE (consumer_cursors.tx_order, consumer_cursors.position) < (excluded.tx_order, excluded.position)",
    )
    .bind(consumer)
    .bind(to.tx_order)
    .bind(to.position)
    .bind(now_micros())
    .execute(conn)
    .await?;
    Ok(())
}

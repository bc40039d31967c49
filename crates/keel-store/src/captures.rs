//! Captures owed: orders whose payment is to be captured at order time,
//! until the capture is done (see `keel_app::orders::capture`).

use crate::Result;
use sqlx::{AnyConnection, Row};

pub async fn insert_due(conn: &mut AnyConnection, order_id: &str, due_at: i64) -> Result<()> {
    sqlx::query("INSERT INTO capture_due (order_id, due_at, attempts) VALUES ($1, $2, 0)")
        .bind(order_id)
        .bind(due_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Owed captures due by `now`, oldest first: (order id, attempts so far).
pub async fn due(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT order_id, attempts FROM capture_due WHERE due_at <= $1 ORDER BY due_at LIMIT $2")
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok((r.try_get("order_id")?, r.try_get("attempts")?))).collect()
}

pub async fn reschedule(conn: &mut AnyConnection, order_id: &str, due_at: i64, error: &str) -> Result<()> {
    sqlx::query("UPDATE capture_due SET due_at = $2, attempts = attempts + 1, last_error = $3 WHERE order_id = $1")
        .bind(order_id)
        .bind(due_at)
        .bind(error)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn remove(conn: &mut AnyConnection, order_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM capture_due WHERE order_id = $1").bind(order_id).execute(conn).await?;
    Ok(())
}

/// Orders whose payment Keel records as `authorized` or `captured`, changed
/// since `since`, for comparing with the provider (newest first, bounded).
pub async fn payments_to_compare(conn: &mut AnyConnection, since: i64, limit: i64) -> Result<Vec<PaymentRecord>> {
    let rows = sqlx::query(
        "SELECT id, checkout_id, payment_status, amount_captured, updated_at FROM orders \
         WHERE payment_status IN ('authorized', 'captured') AND updated_at >= $1 ORDER BY updated_at DESC LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PaymentRecord {
                order_id: r.try_get("id")?,
                checkout_id: r.try_get("checkout_id")?,
                payment_status: r.try_get("payment_status")?,
                amount_captured: r.try_get("amount_captured")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct PaymentRecord {
    pub order_id: String,
    pub checkout_id: String,
    pub payment_status: String,
    pub amount_captured: i64,
    pub updated_at: i64,
}

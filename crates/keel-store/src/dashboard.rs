//! The admin dashboard's figures: a few aggregate queries, each one round
//! trip, never a scan per row shown.

use crate::Result;
use sqlx::{AnyConnection, Row};

/// Orders placed since a time, per currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFigures {
    pub currency: String,
    pub orders: i64,
    pub cancelled: i64,
    /// Sum of order totals, cancelled orders left out.
    pub gross: i64,
    pub refunded: i64,
}

/// Per currency, orders created at or after `since` (µs).
pub async fn order_figures(conn: &mut AnyConnection, since: i64) -> Result<Vec<OrderFigures>> {
    let rows = sqlx::query(
        "SELECT currency, COUNT(*) AS orders, \
         CAST(COALESCE(SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), 0) AS BIGINT) AS cancelled, \
         CAST(COALESCE(SUM(CASE WHEN status = 'cancelled' THEN 0 ELSE total END), 0) AS BIGINT) AS gross, \
         CAST(COALESCE(SUM(amount_refunded), 0) AS BIGINT) AS refunded \
         FROM orders WHERE created_at >= $1 GROUP BY currency ORDER BY currency",
    )
    .bind(since)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OrderFigures {
                currency: r.try_get("currency")?,
                orders: r.try_get("orders")?,
                cancelled: r.try_get("cancelled")?,
                gross: r.try_get("gross")?,
                refunded: r.try_get("refunded")?,
            })
        })
        .collect()
}

/// Orders paid or authorized and not yet fully fulfilled: the work queue.
pub async fn orders_to_fulfil(conn: &mut AnyConnection) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM orders WHERE status IN ('authorized', 'paid', 'partially_fulfilled')")
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("n")?)
}

/// Stock levels at active locations with nothing available, and with at
/// most `low_at` available (those out of stock included, as in the
/// inventory list's low-stock filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StockFigures {
    pub out_of_stock: i64,
    pub low: i64,
}

pub async fn stock_figures(conn: &mut AnyConnection, low_at: i64) -> Result<StockFigures> {
    let row = sqlx::query(
        "SELECT \
         CAST(COALESCE(SUM(CASE WHEN a <= 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS out_of_stock, \
         CAST(COALESCE(SUM(CASE WHEN a <= $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS low \
         FROM (SELECT l.on_hand - l.reserved - l.safety_stock - l.damaged - l.quality_control AS a \
               FROM inventory_levels l JOIN locations loc ON loc.id = l.location_id \
               WHERE loc.archived_at IS NULL) levels",
    )
    .bind(low_at)
    .fetch_one(conn)
    .await?;
    Ok(StockFigures { out_of_stock: row.try_get("out_of_stock")?, low: row.try_get("low")? })
}

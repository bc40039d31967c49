//! The admin dashboard's figures, read from the record (never cached).

use crate::{App, Result};
pub use keel_store::dashboard::{OrderFigures, StockFigures};
use keel_store::dashboard as db;

impl App {
    /// Orders placed at or after `since` (µs), per currency.
    pub async fn order_figures(&self, since: i64) -> Result<Vec<OrderFigures>> {
        let mut conn = self.store.reader().await?;
        Ok(db::order_figures(&mut conn, since).await?)
    }

    /// Orders waiting to be fulfilled.
    pub async fn orders_to_fulfil(&self) -> Result<i64> {
        let mut conn = self.store.reader().await?;
        Ok(db::orders_to_fulfil(&mut conn).await?)
    }

    /// Levels at active locations out of stock, and at or below `low_at`.
    pub async fn stock_figures(&self, low_at: i64) -> Result<StockFigures> {
        let mut conn = self.store.reader().await?;
        Ok(db::stock_figures(&mut conn, low_at).await?)
    }
}

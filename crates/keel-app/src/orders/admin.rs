//! What the admin console reads about orders: a filtered, paged list that
//! costs one query per page, and an order with its timeline as people read
//! it (staff actors by email, event payload figures kept).

use crate::{App, AppError, Result};
use keel_domain::orders::{OrderStatus, PaymentStatus};
use keel_domain::Invalid;
use keel_store::orders::{self as db, OrderFilter};
use std::collections::HashMap;

use super::OrderView;

/// The list's filters as typed; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    pub status: Option<String>,
    pub payment_status: Option<String>,
    pub number: Option<i64>,
    /// An exact customer email, found through its blind index.
    pub email: Option<String>,
    /// Placed at or after (µs).
    pub placed_from: Option<i64>,
    /// Placed before (µs).
    pub placed_before: Option<i64>,
}

/// One order of the list.
#[derive(Debug, Clone)]
pub struct OrderSummary {
    pub id: String,
    pub number: i64,
    pub email: Option<String>,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub currency: String,
    pub total: i64,
    pub item_count: i64,
    pub created_at: i64,
}

/// One event of an order's timeline.
#[derive(Debug, Clone)]
pub struct TimelineLine {
    pub kind: String,
    pub occurred_at: i64,
    /// As recorded (`staff:…`, `key:…`, `provider:…`, `system:…`).
    pub actor: Option<String>,
    /// When the actor is a staff user who still exists.
    pub staff_email: Option<String>,
    /// The event's payload (ids, statuses and money; never personal data).
    pub payload: serde_json::Value,
}

/// An order as the admin console shows it.
#[derive(Debug, Clone)]
pub struct OrderDetail {
    pub order: OrderView,
    pub timeline: Vec<TimelineLine>,
}

impl App {
    /// A page of orders, newest first, with each order's email decrypted.
    pub async fn order_summaries(&self, q: &OrderQuery, offset: i64, limit: i64) -> Result<Vec<OrderSummary>> {
        let status = q.status.as_deref().map(|s| OrderStatus::parse("status", s)).transpose()?;
        let payment = q.payment_status.as_deref().map(|s| PaymentStatus::parse("payment_status", s)).transpose()?;
        let index = q.email.as_deref().map(|e| crate::carts::normalise_email("email", e)).transpose()?.map(|e| self.secrets.blind_index(&e));
        if !(0..=10_000_000).contains(&offset) || !(1..=1000).contains(&limit) {
            return Err(Invalid::new("page", "invalid_page", "out of range").into());
        }
        let filter = OrderFilter {
            status: status.map(OrderStatus::as_str),
            payment_status: payment.map(PaymentStatus::as_str),
            number: q.number,
            email_index: index.as_deref(),
            placed_from: q.placed_from,
            placed_before: q.placed_before,
        };
        let mut conn = self.store.reader().await?;
        let rows = db::order_summaries(&mut conn, &filter, offset, limit).await?;
        let corrupt = |e: crate::secrets::SecretsError| AppError::from(keel_store::StoreError::corrupt(e));
        rows.into_iter()
            .map(|r| {
                Ok(OrderSummary {
                    email: self.secrets.decrypt_opt(r.email_enc.as_deref()).map_err(corrupt)?,
                    status: OrderStatus::parse("status", &r.status).map_err(keel_store::StoreError::corrupt)?,
                    payment_status: PaymentStatus::parse("payment_status", &r.payment_status).map_err(keel_store::StoreError::corrupt)?,
                    id: r.id,
                    number: r.number,
                    currency: r.currency,
                    total: r.total,
                    item_count: r.item_count,
                    created_at: r.created_at,
                })
            })
            .collect()
    }

    /// An order with its timeline; staff actors resolved to their emails in
    /// one batch read.
    pub async fn order_detail(&self, id: &str) -> Result<OrderDetail> {
        keel_domain::ids::OrderId::parse("id", id).map_err(|_| AppError::not_found("order", id))?;
        let mut conn = self.store.reader().await?;
        let row = db::get_order(&mut conn, id).await?.ok_or_else(|| AppError::not_found("order", id))?;
        let order = self.order_view(&mut conn, row).await?;
        let events = db::timeline(&mut conn, id).await?;
        let mut staff_ids: Vec<String> = events
            .iter()
            .filter_map(|e| e.payload.get("actor").and_then(|a| a.as_str())?.strip_prefix("staff:").map(str::to_owned))
            .collect();
        staff_ids.sort_unstable();
        staff_ids.dedup();
        let emails: HashMap<String, String> = keel_store::staff::emails_by_ids(&mut conn, &staff_ids).await?.into_iter().collect();
        let timeline = events
            .into_iter()
            .map(|e| {
                let actor = e.payload.get("actor").and_then(|a| a.as_str()).map(str::to_owned);
                TimelineLine {
                    staff_email: actor.as_deref().and_then(|a| emails.get(a.strip_prefix("staff:")?).cloned()),
                    actor,
                    kind: e.kind,
                    occurred_at: e.occurred_at,
                    payload: e.payload,
                }
            })
            .collect();
        Ok(OrderDetail { order, timeline })
    }
}

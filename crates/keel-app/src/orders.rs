//! Orders: created by checkout, then captured, cancelled or refunded. Status
//! changes follow `keel_domain::orders::apply`; every change is an event on
//! the order's aggregate, which is also its timeline.

pub mod admin;
pub mod capture;

use crate::carts::{Address, TotalsView};
use crate::reservations::{commit_in_tx, release_in_tx};
use crate::{in_tx, page_limit, Actor, App, AppError, Result};
use keel_domain::ids::{OrderId, RefundId};
use keel_domain::orders::{apply, OrderEvent, OrderState, OrderStatus, PaymentStatus};
use keel_domain::time::{now_micros, to_rfc3339};
use keel_domain::Invalid;
use keel_payments::{Payment, PaymentError, PaymentState, WebhookEvent};
use keel_store::orders::{self as db, CheckoutRow, OrderLineRow, OrderRow, RefundRow};
use keel_store::{carts as carts_db, outbox, Conn};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderLineView {
    pub sku: String,
    pub variant_id: String,
    pub title: String,
    pub unit_amount: i64,
    pub quantity: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundView {
    pub id: String,
    #[schema(example = "refund")]
    pub object: &'static str,
    pub amount: i64,
    pub reason: Option<String>,
    pub status: String,
    pub provider_refund_id: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub actor: Option<String>,
    pub occurred_at: String,
    pub event_id: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentView {
    pub provider: String,
    pub id: Option<String>,
    pub amount_captured: i64,
    pub amount_refunded: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    #[schema(example = "order")]
    pub object: &'static str,
    /// Human order number, from 1001.
    pub number: i64,
    pub status: String,
    pub payment_status: String,
    pub currency: String,
    pub customer_id: Option<String>,
    /// Personal data: `null` unless the caller's role holds `customers.read`.
    pub email: Option<String>,
    /// Personal data: `null` unless the caller's role holds `customers.read`.
    pub shipping_address: Option<Address>,
    pub shipping_method_id: Option<String>,
    pub lines: Vec<OrderLineView>,
    pub totals: TotalsView,
    pub payment: PaymentView,
    pub reservation_id: Option<String>,
    pub refunds: Vec<RefundView>,
    pub timeline: Vec<TimelineEntry>,
    pub cart_id: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    /// Minor units; the whole refundable amount when omitted.
    pub amount: Option<i64>,
    pub reason: Option<String>,
    /// The order's `amount_refunded` the caller last saw. When given, the
    /// refund is refused (409 `stale_refund`) if it has changed since, and
    /// a repeated request (a form sent twice) refunds once: the provider's
    /// idempotency key is derived from it.
    pub expected_amount_refunded: Option<i64>,
}

fn state(o: &OrderRow) -> Result<OrderState> {
    Ok(OrderState {
        status: OrderStatus::parse("status", &o.status).map_err(keel_store::StoreError::corrupt)?,
        payment: PaymentStatus::parse("payment_status", &o.payment_status).map_err(keel_store::StoreError::corrupt)?,
    })
}

fn transition(o: &OrderRow, ev: OrderEvent) -> Result<OrderState> {
    apply(state(o)?, ev).map_err(|r| AppError::conflict("invalid_order_state", r.to_string(), None))
}

impl App {
    async fn order_view(&self, conn: &mut Conn, o: OrderRow) -> Result<OrderView> {
        let lines = db::order_lines(conn, &o.id).await?;
        let refunds = db::refunds_of(conn, &o.id).await?;
        let timeline = db::timeline(conn, &o.id).await?;
        let corrupt = |e: crate::secrets::SecretsError| keel_store::StoreError::corrupt(e);
        let email = self.secrets.decrypt_opt(o.email_enc.as_deref()).map_err(corrupt)?;
        let address = match self.secrets.decrypt_opt(o.shipping_address_enc.as_deref()).map_err(corrupt)? {
            Some(json) => Some(serde_json::from_str(&json).map_err(keel_store::StoreError::corrupt)?),
            None => None,
        };
        Ok(OrderView {
            id: o.id.clone(),
            object: "order",
            number: o.number,
            status: o.status,
            payment_status: o.payment_status,
            currency: o.currency,
            customer_id: o.customer_id,
            email,
            shipping_address: address,
            shipping_method_id: o.shipping_method_id,
            lines: lines
                .into_iter()
                .map(|l| OrderLineView {
                    total: l.unit_amount.saturating_mul(l.quantity),
                    sku: l.sku,
                    variant_id: l.variant_id,
                    title: l.title,
                    unit_amount: l.unit_amount,
                    quantity: l.quantity,
                })
                .collect(),
            totals: TotalsView {
                subtotal: o.subtotal,
                discount_total: o.discount_total,
                shipping_total: o.shipping_total,
                tax_total: o.tax_total,
                total: o.total,
                tax_inclusive: o.tax_inclusive,
            },
            payment: PaymentView {
                provider: o.payment_provider,
                id: o.payment_id,
                amount_captured: o.amount_captured,
                amount_refunded: o.amount_refunded,
            },
            reservation_id: o.reservation_id,
            refunds: refunds
                .into_iter()
                .map(|r| RefundView {
                    id: r.id,
                    object: "refund",
                    amount: r.amount,
                    reason: r.reason,
                    status: r.status,
                    provider_refund_id: r.provider_refund_id,
                    created_at: to_rfc3339(r.created_at),
                })
                .collect(),
            timeline: timeline
                .into_iter()
                .map(|e| TimelineEntry {
                    actor: e.payload.get("actor").and_then(|a| a.as_str()).map(str::to_owned),
                    kind: e.kind,
                    occurred_at: to_rfc3339(e.occurred_at),
                    event_id: e.id,
                })
                .collect(),
            cart_id: o.cart_id,
            version: o.version,
            created_at: to_rfc3339(o.created_at),
            updated_at: to_rfc3339(o.updated_at),
        })
    }

    pub async fn get_order(&self, id: &str) -> Result<OrderView> {
        OrderId::parse("id", id).map_err(|_| AppError::not_found("order", id))?;
        let mut conn = self.store.reader().await?;
        let o = db::get_order(&mut conn, id).await?.ok_or_else(|| AppError::not_found("order", id))?;
        self.order_view(&mut conn, o).await
    }

    /// An order by number, only if `email` matches (storefront order status).
    pub async fn find_order_for_email(&self, number: i64, email: &str) -> Result<Option<OrderView>> {
        let email = crate::carts::normalise_email("email", email)?;
        let mut conn = self.store.reader().await?;
        match db::order_by_number(&mut conn, number).await? {
            Some(o) if o.email_index.as_deref() == Some(self.secrets.blind_index(&email).as_str()) => {
                Ok(Some(self.order_view(&mut conn, o).await?))
            }
            _ => Ok(None),
        }
    }

    pub async fn list_orders(
        &self,
        status: Option<&str>,
        customer_id: Option<&str>,
        email: Option<&str>,
        starting_after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<crate::views::Page<OrderView>> {
        if let Some(s) = status {
            OrderStatus::parse("status", s)?;
        }
        if let Some(c) = starting_after {
            OrderId::parse("starting_after", c)?;
        }
        let index = email.map(|e| crate::carts::normalise_email("email", e)).transpose()?.map(|e| self.secrets.blind_index(&e));
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let rows = db::list_orders(&mut conn, status, customer_id, index.as_deref(), starting_after, limit + 1).await?;
        let mut views = Vec::with_capacity(rows.len());
        for o in rows {
            views.push(self.order_view(&mut conn, o).await?);
        }
        Ok(crate::views::Page::from_overfetch(views, limit))
    }

    /// Captures an authorized order's payment (all of it by default).
    pub async fn capture_order(&self, actor: &Actor, id: &str, amount: Option<i64>) -> Result<OrderView> {
        OrderId::parse("id", id).map_err(|_| AppError::not_found("order", id))?;
        let o = self.load_order(id).await?;
        transition(&o, OrderEvent::Capture)?;
        if let Some(a) = amount {
            if a <= 0 || a > o.total {
                return Err(Invalid::new("amount", "invalid_amount", format!("between 1 and {}", o.total)).into());
            }
        }
        let payment_id = o.payment_id.clone().ok_or_else(|| AppError::conflict("no_payment", "the order has no payment", None))?;
        let payment = self.payments.capture(&payment_id, amount, &format!("{id}-capture")).await.map_err(provider_error)?;
        self.change_order(id, actor, "order.paid", |o| {
            let next = transition(o, OrderEvent::Capture)?;
            o.status = next.status.as_str().into();
            o.payment_status = next.payment.as_str().into();
            o.amount_captured = payment.amount_captured;
            Ok(())
        })
        .await
    }

    /// Cancels an unfulfilled order: voids or refunds its payment, then
    /// releases its stock through the ledger.
    pub async fn cancel_order(&self, actor: &Actor, id: &str) -> Result<OrderView> {
        OrderId::parse("id", id).map_err(|_| AppError::not_found("order", id))?;
        let o = self.load_order(id).await?;
        transition(&o, OrderEvent::Cancel)?;
        // The provider first, with a stable key: if the database step below
        // fails, a retry repeats the same void or refund, never a second one.
        let mut refund: Option<(i64, keel_payments::Refund)> = None;
        if let Some(pid) = &o.payment_id {
            match state(&o)?.payment {
                PaymentStatus::Authorized => {
                    self.payments.void(pid, &format!("{id}-cancel")).await.map_err(provider_error)?;
                }
                PaymentStatus::Captured | PaymentStatus::PartiallyRefunded => {
                    let left = o.amount_captured - o.amount_refunded;
                    if left > 0 {
                        let r = self.payments.refund(pid, left, &format!("{id}-cancel-refund")).await.map_err(provider_error)?;
                        refund = Some((left, r));
                    }
                }
                _ => {}
            }
        }
        let refund_ref = &refund;
        let view = in_tx!(self, |tx| {
            let mut o = db::get_order(&mut tx, id).await?.ok_or_else(|| AppError::not_found("order", id))?;
            let expected = o.version;
            let mut next = transition(&o, OrderEvent::Cancel)?;
            if let Some(res) = &o.reservation_id {
                match release_in_tx(&mut tx, res, Some("order cancelled"), actor).await {
                    Ok(_) | Err(AppError::Conflict { code: "reservation_not_active", .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if let Some((amount, r)) = refund_ref {
                next = apply(next, OrderEvent::Refund { full: true }).map_err(|e| AppError::conflict("invalid_order_state", e.to_string(), None))?;
                o.amount_refunded += amount;
                record_refund(&mut tx, &o, *amount, Some("order cancelled"), r, actor).await?;
            }
            o.status = next.status.as_str().into();
            o.payment_status = next.payment.as_str().into();
            o.updated_at = now_micros();
            o.version = db::update_order(&mut tx, &o, expected).await?.ok_or(AppError::Contended)?;
            emit(&mut tx, "order.cancelled", &o, actor, json!({})).await?;
            self.order_view(&mut tx, o).await
        })?;
        Ok(view)
    }

    /// Refunds part or all of what was captured.
    pub async fn refund_order(&self, actor: &Actor, id: &str, input: RefundInput) -> Result<OrderView> {
        OrderId::parse("id", id).map_err(|_| AppError::not_found("order", id))?;
        let reason = keel_domain::catalog::optional_text("reason", input.reason.as_deref(), 500)?;
        let o = self.load_order(id).await?;
        let stale = |refunded: i64| {
            AppError::conflict(
                "stale_refund",
                format!("the order's refunds changed since they were read: {refunded} is refunded now"),
                Some("expected_amount_refunded"),
            )
        };
        if input.expected_amount_refunded.is_some_and(|e| e != o.amount_refunded) {
            return Err(stale(o.amount_refunded));
        }
        let refundable = o.amount_captured - o.amount_refunded;
        if !state(&o)?.payment.was_captured() || refundable <= 0 {
            return Err(AppError::conflict("nothing_to_refund", "the order has no captured amount left to refund", None));
        }
        let amount = input.amount.unwrap_or(refundable);
        if amount <= 0 || amount > refundable {
            return Err(Invalid::new("amount", "invalid_amount", format!("must be between 1 and {refundable}")).into());
        }
        let pid = o.payment_id.clone().ok_or_else(|| AppError::conflict("no_payment", "the order has no payment", None))?;
        let provider_key = match input.expected_amount_refunded {
            Some(e) => format!("{id}:refund-after:{e}"),
            None => RefundId::generate().to_string(),
        };
        let r = self.payments.refund(&pid, amount, &provider_key).await.map_err(provider_error)?;
        in_tx!(self, |tx| {
            let mut o = db::get_order(&mut tx, id).await?.ok_or_else(|| AppError::not_found("order", id))?;
            // A concurrent twin of this request got the same provider refund
            // (same key) and recorded it first.
            if input.expected_amount_refunded.is_some_and(|e| e != o.amount_refunded) {
                return Err(stale(o.amount_refunded));
            }
            let expected = o.version;
            o.amount_refunded += amount;
            let full = o.amount_refunded >= o.amount_captured;
            let next = transition(&o, OrderEvent::Refund { full })?;
            o.payment_status = next.payment.as_str().into();
            o.status = next.status.as_str().into();
            o.updated_at = now_micros();
            let refund_row = record_refund(&mut tx, &o, amount, reason.as_deref(), &r, actor).await?;
            o.version = db::update_order(&mut tx, &o, expected).await?.ok_or(AppError::Contended)?;
            emit(&mut tx, "refund.created", &o, actor, json!({ "refund_id": refund_row, "amount": amount })).await?;
            self.order_view(&mut tx, o).await
        })
    }

    /// Applies a verified provider webhook. Idempotent: an event that
    /// changes nothing is accepted and ignored.
    pub async fn handle_payment_webhook(&self, event: WebhookEvent) -> Result<()> {
        let actor = Actor(format!("provider:{}", self.payments.name()));
        let Some(pid) = event.payment_id.clone() else { return Ok(()) };
        let order = {
            let mut conn = self.store.reader().await?;
            db::order_by_payment(&mut conn, &pid).await?
        };
        let Some(order) = order else {
            tracing::info!(kind = %event.kind, payment = %pid, "webhook for a payment without an order; nothing to do");
            return Ok(());
        };
        match event.kind.as_str() {
            "payment_intent.succeeded" if state(&order)?.payment == PaymentStatus::Authorized => {
                let amount = event.raw.pointer("/data/object/amount_received").and_then(|v| v.as_i64()).unwrap_or(order.total);
                self.change_order(&order.id, &actor, "order.paid", |o| {
                    let next = transition(o, OrderEvent::Capture)?;
                    o.status = next.status.as_str().into();
                    o.payment_status = next.payment.as_str().into();
                    o.amount_captured = amount;
                    Ok(())
                })
                .await?;
            }
            "charge.refunded" => {
                let total = event.amount_refunded.unwrap_or(0);
                if total > order.amount_refunded && state(&order)?.payment.was_captured() {
                    let delta = total - order.amount_refunded;
                    self.change_order(&order.id, &actor, "refund.created", |o| {
                        o.amount_refunded = total;
                        let next = transition(o, OrderEvent::Refund { full: total >= o.amount_captured })?;
                        o.status = next.status.as_str().into();
                        o.payment_status = next.payment.as_str().into();
                        Ok(())
                    })
                    .await?;
                    tracing::info!(order = %order.id, delta, "refund recorded from provider webhook");
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn load_order(&self, id: &str) -> Result<OrderRow> {
        let mut conn = self.store.reader().await?;
        db::get_order(&mut conn, id).await?.ok_or_else(|| AppError::not_found("order", id))
    }

    /// Applies `change` to the order in one transaction and records `kind`.
    async fn change_order<F>(&self, id: &str, actor: &Actor, kind: &str, change: F) -> Result<OrderView>
    where
        F: Fn(&mut OrderRow) -> Result<()>,
    {
        in_tx!(self, |tx| {
            let mut o = db::get_order(&mut tx, id).await?.ok_or_else(|| AppError::not_found("order", id))?;
            let expected = o.version;
            change(&mut o)?;
            o.updated_at = now_micros();
            o.version = db::update_order(&mut tx, &o, expected).await?.ok_or(AppError::Contended)?;
            emit(&mut tx, kind, &o, actor, json!({})).await?;
            self.order_view(&mut tx, o).await
        })
    }
}

async fn record_refund(
    tx: &mut Conn,
    o: &OrderRow,
    amount: i64,
    reason: Option<&str>,
    r: &keel_payments::Refund,
    actor: &Actor,
) -> Result<String> {
    let row = RefundRow {
        id: RefundId::generate().to_string(),
        order_id: o.id.clone(),
        provider_refund_id: Some(r.id.clone()),
        amount,
        reason: reason.map(str::to_owned),
        status: format!("{:?}", r.status).to_ascii_lowercase(),
        actor: actor.0.clone(),
        created_at: now_micros(),
    };
    db::insert_refund(tx, &row).await?;
    Ok(row.id)
}

fn provider_error(e: PaymentError) -> AppError {
    match e {
        PaymentError::Declined { code, decline_code, message } => AppError::PaymentDeclined { code, decline_code, message },
        PaymentError::InvalidRequest { message } => AppError::conflict("payment_refused", message, None),
        PaymentError::NotFound => AppError::conflict("payment_missing", "the provider does not know this payment", None),
        other => AppError::conflict("payment_unavailable", other.to_string(), None),
    }
}

/// Order events carry ids, states and money, never the email or address.
async fn emit(tx: &mut Conn, kind: &str, o: &OrderRow, actor: &Actor, extra: serde_json::Value) -> Result<()> {
    outbox::append(
        tx,
        outbox::NewEvent {
            kind,
            aggregate_type: "order",
            aggregate_id: &o.id,
            aggregate_seq: o.version,
            payload: json!({
                "id": o.id,
                "number": o.number,
                "status": o.status,
                "payment_status": o.payment_status,
                "currency": o.currency,
                "total": o.total,
                "amount_captured": o.amount_captured,
                "amount_refunded": o.amount_refunded,
                "customer_id": o.customer_id,
                "cart_id": o.cart_id,
                "actor": actor.0,
                "detail": extra,
            }),
        },
    )
    .await?;
    Ok(())
}

/// Creates the order for an authorized checkout in the caller's transaction:
/// copies the cart, commits the reservation, closes the cart.
pub(crate) async fn create_order_in_tx(
    app: &App,
    tx: &mut Conn,
    checkout: &CheckoutRow,
    payment: &Payment,
    actor: &Actor,
) -> Result<OrderView> {
    let cart = app.priced_cart(tx, &checkout.cart_id).await?;
    let res = checkout.reservation_id.as_deref().ok_or_else(|| AppError::conflict("reservation_not_active", "no reservation", None))?;
    commit_in_tx(tx, res, actor).await?;
    let now = now_micros();
    let mut st = apply(OrderState::new(), OrderEvent::Authorize).map_err(|e| AppError::conflict("invalid_order_state", e.to_string(), None))?;
    let mut captured = 0;
    if payment.status == PaymentState::Captured {
        st = apply(st, OrderEvent::Capture).map_err(|e| AppError::conflict("invalid_order_state", e.to_string(), None))?;
        captured = payment.amount_captured;
    }
    let r = &cart.row;
    let order = OrderRow {
        id: OrderId::generate().to_string(),
        number: db::next_order_number(tx).await?,
        cart_id: r.id.clone(),
        checkout_id: checkout.id.clone(),
        customer_id: r.customer_id.clone(),
        email_enc: r.email_enc.clone(),
        email_index: r.email_index.clone(),
        status: st.status.as_str().into(),
        payment_status: st.payment.as_str().into(),
        currency: r.currency.clone(),
        subtotal: cart.totals.subtotal,
        discount_total: cart.totals.discount_total,
        shipping_total: cart.totals.shipping_total,
        tax_total: cart.totals.tax_total,
        total: cart.totals.total,
        tax_inclusive: cart.totals.tax_inclusive,
        amount_captured: captured,
        amount_refunded: 0,
        shipping_address_enc: r.shipping_address_enc.clone(),
        shipping_country: r.shipping_country.clone(),
        shipping_method_id: r.shipping_method_id.clone(),
        reservation_id: Some(res.to_owned()),
        payment_provider: checkout.payment_provider.clone(),
        payment_id: Some(payment.id.clone()),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let lines: Vec<OrderLineRow> = cart
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| OrderLineRow {
            position: i as i64,
            variant_id: l.variant_id.clone(),
            sku: l.sku.clone(),
            title: l.title.clone(),
            unit_amount: l.unit_amount,
            quantity: l.quantity,
        })
        .collect();
    db::insert_order(tx, &order, &lines).await?;
    if app.checkout.capture == crate::checkout::CaptureMode::Order && order.payment_status == "authorized" {
        keel_store::captures::insert_due(tx, &order.id, now + capture::CAPTURE_GRACE_MICROS).await?;
    }
    let mut closed = r.clone();
    closed.status = "completed".into();
    closed.order_id = Some(order.id.clone());
    closed.updated_at = now;
    carts_db::update(tx, &closed, "completing").await?.ok_or(AppError::Contended)?;
    emit(tx, "order.created", &order, actor, json!({ "checkout_id": checkout.id })).await?;
    app.order_view(tx, order).await
}

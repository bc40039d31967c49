//! Checkout: turn a cart into an order without ever holding a database
//! transaction across a call to the payment provider.
//!
//! Steps, each its own short transaction with a recorded state:
//! 1. claim the cart (`open` → `completing`), record the checkout as
//!    `authorizing` with a lease, and reserve every line all-or-nothing;
//! 2. authorize the payment (idempotency key = checkout id), outside any
//!    transaction;
//! 3. on success create the order and commit the reservation; on a decline
//!    release the stock and reopen the cart;
//! 4. capture now or at fulfilment, per configuration.
//!
//! A process that dies mid-way leaves a checkout whose lease runs out; the
//! recovery worker then asks the provider what happened (by the same
//! idempotency key) and either finishes the order or voids the payment and
//! gives the stock back. So: no order without stock, no charge without an
//! order, no stock held by a checkout that died.

use crate::carts::PricedCart;
use crate::orders::{create_order_in_tx, OrderView};
use crate::reservations::{release_in_tx, write_reservation, ReservationInput, LineInput};
use crate::idempotency::RequestKey;
use crate::{in_tx, Actor, App, AppError, Result};
use keel_domain::ids::{CartId, CheckoutId};
use keel_domain::time::now_micros;
use keel_domain::Invalid;
use keel_payments::{AuthorizeRequest, Payment, PaymentError, PaymentState};
use keel_store::carts as carts_db;
use keel_store::orders::{self as db, CheckoutRow};
use keel_store::{outbox, shipping};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMode {
    /// Capture as soon as the order exists (the usual for goods in stock).
    Order,
    /// Keep the authorization; capture when the order is fulfilled.
    Fulfillment,
}

/// Test-only crash points (`KEEL_FAULT`), used to prove recovery works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    AfterReserve,
    AfterAuthorize,
    /// The order committed, its capture and the response not yet sent.
    AfterOrder,
}

#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    pub capture: CaptureMode,
    /// How long a checkout may stay mid-way before recovery takes it over.
    pub lease_micros: i64,
    /// Reservations taken by checkout expire after this, as a last resort.
    pub reservation_ttl_seconds: i64,
    pub fault: Option<Fault>,
}

impl Default for CheckoutConfig {
    fn default() -> Self {
        CheckoutConfig { capture: CaptureMode::Order, lease_micros: 60_000_000, reservation_ttl_seconds: 900, fault: None }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteInput {
    /// A provider token (`tok_visa` with the test provider; a `pm_…` id with
    /// Stripe). Card numbers are never sent to Keel.
    pub payment_method: String,
}

fn check_payment_method(pm: &str) -> Result<(), Invalid> {
    let ok = (1..=255).contains(&pm.len()) && pm.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Invalid::new("payment_method", "invalid_payment_method", "a provider token such as tok_visa"))
    }
}

fn crash_if(config: &CheckoutConfig, at: Fault) {
    if config.fault == Some(at) {
        tracing::error!(?at, "KEEL_FAULT: terminating the process on purpose");
        std::process::exit(86);
    }
}

/// Why checkout refuses a cart, checked before anything is written.
fn check_ready(cart: &PricedCart, has_methods: bool) -> Result<()> {
    let r = &cart.row;
    if r.status != "open" {
        let code = if r.status == "completed" { "cart_completed" } else { "cart_not_open" };
        return Err(AppError::conflict(code, format!("cart {} is {}", r.id, r.status), None));
    }
    if cart.lines.is_empty() {
        return Err(Invalid::new("lines", "cart_empty", "the cart has no lines").into());
    }
    if cart.email.is_none() {
        return Err(Invalid::new("email", "required", "set the cart's email before checkout").into());
    }
    if cart.address.is_none() {
        return Err(Invalid::new("shipping_address", "required", "set a shipping address before checkout").into());
    }
    if has_methods && r.shipping_method_id.is_none() {
        return Err(Invalid::new("shipping_method_id", "required", "choose a shipping method before checkout").into());
    }
    if cart.totals.total <= 0 {
        return Err(Invalid::new("lines", "nothing_to_pay", "the cart total must be positive").into());
    }
    Ok(())
}

impl App {
    /// Checkout. `request_key` names the API request (its Idempotency-Key), so
    /// the same request retried after a crash — the cart already completed
    /// by it — gets its order back instead of `cart_completed`.
    pub async fn complete_cart(
        &self,
        actor: &Actor,
        cart_id: &str,
        input: CompleteInput,
        request_key: Option<&RequestKey>,
    ) -> Result<OrderView> {
        CartId::parse("id", cart_id).map_err(|_| AppError::not_found("cart", cart_id))?;
        check_payment_method(&input.payment_method)?;
        let (cart, has_methods) = {
            let mut conn = self.store.reader().await?;
            let cart = self.priced_cart(&mut conn, cart_id).await?;
            if let (Some(asked), true) = (request_key, cart.row.status != "open") {
                if let Some(earlier) = db::checkout_for_request(&mut conn, cart_id, &asked.0).await? {
                    drop(conn);
                    return self.earlier_checkout(&earlier).await;
                }
            }
            let has_methods = shipping::list_methods(&mut conn)
                .await?
                .iter()
                .any(|m| m.archived_at.is_none() && m.currency == cart.row.currency && cart.row.shipping_country.as_deref().is_some_and(|c| m.serves(c)));
            (cart, has_methods)
        };
        check_ready(&cart, has_methods)?;
        let lines: Vec<LineInput> = cart.lines.iter().map(|l| LineInput { sku: l.sku.clone(), quantity: l.quantity }).collect();
        let request = self
            .prepare_reservation(&ReservationInput {
                sku: None,
                quantity: None,
                lines: Some(lines),
                location_id: None,
                ttl_seconds: Some(self.checkout.reservation_ttl_seconds),
                reference: None,
            })
            .await?;

        // 1. Claim the cart, record the checkout, reserve — all or nothing.
        let checkout_id = CheckoutId::generate();
        let mut attempt = 0;
        let checkout = loop {
            let plan = self.plan_reservation(&request).await?;
            let outcome = in_tx!(self, |tx| {
                let mut row = carts_db::get(&mut tx, cart_id).await?.ok_or_else(|| AppError::not_found("cart", cart_id))?;
                if row.status != "open" {
                    let code = if row.status == "completed" { "cart_completed" } else { "cart_not_open" };
                    return Err(AppError::conflict(code, format!("cart {cart_id} is {}", row.status), None));
                }
                if row.version != cart.row.version {
                    // Changed since it was priced: the customer must see the new total.
                    return Err(AppError::conflict("cart_changed", "the cart changed during checkout; review it and retry", None));
                }
                let now = now_micros();
                row.status = "completing".into();
                row.updated_at = now;
                carts_db::update(&mut tx, &row, "open").await?.ok_or(AppError::Contended)?;
                let reservation = write_reservation(&mut tx, &request, &plan, actor).await?;
                let checkout = CheckoutRow {
                    id: checkout_id.to_string(),
                    cart_id: cart_id.to_owned(),
                    status: "authorizing".into(),
                    reservation_id: Some(reservation.id.clone()),
                    payment_provider: self.payments.name().to_owned(),
                    payment_method: input.payment_method.clone(),
                    payment_id: None,
                    amount: cart.totals.total,
                    currency: cart.row.currency.clone(),
                    order_id: None,
                    failure_code: None,
                    failure_message: None,
                    lease_until: now + self.checkout.lease_micros,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    request_key: request_key.map(|r| r.0.clone()),
                };
                db::insert_checkout(&mut tx, &checkout).await?;
                Ok(checkout)
            });
            match outcome {
                Err(e) if request.replannable(&e) && attempt < 5 => attempt += 1,
                other => break other?,
            }
        };
        crash_if(&self.checkout, Fault::AfterReserve);

        // 2. Authorize, outside any transaction.
        let authorized = self
            .payments
            .authorize(AuthorizeRequest {
                amount: checkout.amount,
                currency: checkout.currency.clone(),
                payment_method: input.payment_method.clone(),
                idempotency_key: checkout.id.clone(),
                description: Some(format!("Keel cart {cart_id}")),
                metadata: BTreeMap::from([("cart_id".to_owned(), cart_id.to_owned()), ("checkout_id".to_owned(), checkout.id.clone())]),
            })
            .await;
        let payment = match authorized {
            Ok(p) => p,
            Err(e @ (PaymentError::Declined { .. } | PaymentError::InvalidRequest { .. })) => {
                self.abandon_checkout(&checkout, &e, actor).await?;
                return Err(payment_refused(e));
            }
            Err(e) => {
                // The outcome is unknown: recovery settles it once the lease ends.
                tracing::warn!(checkout = %checkout.id, error = %e, "payment provider unavailable during checkout");
                return Err(AppError::InProgress {
                    code: "payment_unavailable",
                    message: "the payment provider did not answer; the checkout will be settled automatically, retry later".into(),
                    param: Some("payment_method".into()),
                });
            }
        };
        crash_if(&self.checkout, Fault::AfterAuthorize);

        // 3. The order.
        let order = self.finish_checkout(&checkout, &payment, actor).await?;
        crash_if(&self.checkout, Fault::AfterOrder);
        // 4. Capture now, if configured; a failure leaves the order authorized.
        if self.checkout.capture == CaptureMode::Order {
            match self.capture_order(actor, &order.id, None).await {
                Ok(paid) => return Ok(paid),
                Err(e) => tracing::warn!(order = %order.id, error = %e, "capture after checkout failed; order stays authorized"),
            }
        }
        Ok(order)
    }

    /// The answer to a checkout request seen before: its order once there
    /// is one; while it is still being settled, a 409 to retry shortly.
    async fn earlier_checkout(&self, earlier: &CheckoutRow) -> Result<OrderView> {
        match (&earlier.order_id, earlier.status.as_str()) {
            (Some(order_id), _) => self.get_order(order_id).await,
            (None, "failed") => Err(AppError::conflict(
                "checkout_failed",
                format!("this request's checkout failed ({}); the cart is open again", earlier.failure_code.as_deref().unwrap_or("payment")),
                None,
            )),
            (None, _) => Err(AppError::InProgress {
                code: "checkout_in_progress",
                message: "this request's checkout is still being settled; retry shortly".into(),
                param: None,
            }),
        }
    }

    /// Creates the order for an authorized checkout, or, if its reservation
    /// no longer holds, voids the payment and reopens the cart.
    async fn finish_checkout(&self, checkout: &CheckoutRow, payment: &Payment, actor: &Actor) -> Result<OrderView> {
        let outcome = in_tx!(self, |tx| {
            let current = db::get_checkout(&mut tx, &checkout.id).await?.ok_or_else(|| AppError::not_found("checkout", &checkout.id))?;
            if current.status != "authorizing" {
                return Err(AppError::conflict("checkout_settled", format!("checkout {} is {}", current.id, current.status), None));
            }
            let order = create_order_in_tx(self, &mut tx, &current, payment, actor).await?;
            let mut done = current.clone();
            done.status = "completed".into();
            done.payment_id = Some(payment.id.clone());
            done.order_id = Some(order.id.clone());
            done.updated_at = now_micros();
            db::advance_checkout(&mut tx, &done, "authorizing").await?.then_some(()).ok_or(AppError::Contended)?;
            Ok(order)
        });
        match outcome {
            Err(AppError::Conflict { code: "reservation_expired" | "reservation_not_active", .. }) => {
                // The stock is gone: give the money back rather than sell it twice.
                self.payments
                    .void(&payment.id, &format!("{}-void", checkout.id))
                    .await
                    .map_err(|e| AppError::conflict("payment_unavailable", format!("could not void the payment: {e}"), None))?;
                let e = PaymentError::InvalidRequest { message: "the reservation expired before the order was created".into() };
                self.abandon_checkout(checkout, &e, actor).await?;
                Err(AppError::conflict("insufficient_stock", "the reserved stock expired during checkout; nothing was charged", None))
            }
            other => other,
        }
    }

    /// Gives back the stock of a checkout that will not become an order and
    /// reopens its cart.
    async fn abandon_checkout(&self, checkout: &CheckoutRow, why: &PaymentError, actor: &Actor) -> Result<()> {
        let (code, decline) = match why {
            PaymentError::Declined { code, decline_code, .. } => (code.clone(), decline_code.clone()),
            PaymentError::InvalidRequest { .. } => ("payment_invalid".to_owned(), None),
            _ => ("payment_unavailable".to_owned(), None),
        };
        in_tx!(self, |tx| {
            let Some(current) = db::get_checkout(&mut tx, &checkout.id).await? else { return Ok(()) };
            if !matches!(current.status.as_str(), "authorizing") {
                return Ok(());
            }
            if let Some(res) = &current.reservation_id {
                match release_in_tx(&mut tx, res, Some("checkout abandoned"), actor).await {
                    Ok(_) | Err(AppError::Conflict { code: "reservation_not_active", .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            let mut failed = current.clone();
            failed.status = "failed".into();
            failed.failure_code = Some(decline.clone().unwrap_or_else(|| code.clone()));
            failed.failure_message = Some(why.to_string());
            failed.updated_at = now_micros();
            db::advance_checkout(&mut tx, &failed, "authorizing").await?;
            if let Some(mut cart) = carts_db::get(&mut tx, &current.cart_id).await? {
                if cart.status == "completing" {
                    cart.status = "open".into();
                    cart.updated_at = now_micros();
                    carts_db::update(&mut tx, &cart, "completing").await?;
                }
            }
            outbox::append(
                &mut tx,
                outbox::NewEvent {
                    kind: "payment.failed",
                    aggregate_type: "checkout",
                    aggregate_id: &current.id,
                    aggregate_seq: current.version + 1,
                    payload: json!({
                        "checkout_id": current.id,
                        "cart_id": current.cart_id,
                        "amount": current.amount,
                        "currency": current.currency,
                        "code": code,
                        "decline_code": decline,
                        "actor": actor.0,
                    }),
                },
            )
            .await?;
            Ok(())
        })
    }

    /// Settles checkouts whose process died mid-way (their lease ran out):
    /// finishes the order if the payment was authorized and the stock is
    /// still held, otherwise voids any authorization and releases the stock.
    /// Returns how many were settled.
    pub async fn recover_checkouts(&self, now: i64) -> Result<u64> {
        let actor = Actor::system("checkout-recovery");
        let ids = {
            let mut conn = self.store.reader().await?;
            db::stalled_checkouts(&mut conn, now, 100).await?
        };
        let mut settled = 0;
        for id in ids {
            let taken = in_tx!(self, |tx| Ok(db::take_lease(&mut tx, &id, now, now + self.checkout.lease_micros).await?))?;
            if !taken {
                continue;
            }
            let checkout = {
                let mut conn = self.store.reader().await?;
                db::get_checkout(&mut conn, &id).await?.ok_or_else(|| AppError::not_found("checkout", &id))?
            };
            let found = match self.payments.find_by_idempotency_key(&checkout.id).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(checkout = %id, error = %e, "recovery: provider unavailable; will retry");
                    continue;
                }
            };
            if found.is_none() && now - checkout.created_at < self.payments.lookup_lag_secs() * 1_000_000 {
                // Too young to trust "not found" from this provider; look again later.
                continue;
            }
            let result = match found {
                Some(p) if matches!(p.status, PaymentState::Authorized | PaymentState::Captured) => {
                    match self.finish_checkout(&checkout, &p, &actor).await {
                        Ok(order) => {
                            tracing::info!(checkout = %id, order = %order.id, "recovery: order created for an authorized payment");
                            if self.checkout.capture == CaptureMode::Order && p.status == PaymentState::Authorized {
                                if let Err(e) = self.capture_order(&actor, &order.id, None).await {
                                    tracing::warn!(order = %order.id, error = %e, "recovery: capture failed; order stays authorized");
                                }
                            }
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                other => {
                    let why = match other {
                        Some(p) => PaymentError::Declined { code: "card_declined".into(), decline_code: p.decline_code, message: "declined before a crash".into() },
                        None => PaymentError::InvalidRequest { message: "no authorization was made before the checkout stopped".into() },
                    };
                    tracing::info!(checkout = %id, "recovery: releasing stock of an unpaid checkout");
                    self.abandon_checkout(&checkout, &why, &actor).await
                }
            };
            match result {
                Ok(()) => settled += 1,
                Err(e) => tracing::warn!(checkout = %id, error = %e, "recovery could not settle a checkout"),
            }
        }
        Ok(settled)
    }
}

/// A refused payment as the API reports it: 402 with the provider's codes.
fn payment_refused(e: PaymentError) -> AppError {
    match e {
        PaymentError::Declined { code, decline_code, message } => AppError::PaymentDeclined { code, decline_code, message },
        PaymentError::InvalidRequest { message } => {
            AppError::PaymentDeclined { code: "payment_method_invalid".into(), decline_code: None, message }
        }
        other => AppError::conflict("payment_unavailable", other.to_string(), Some("payment_method")),
    }
}


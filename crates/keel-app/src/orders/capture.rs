//! Capture as a durable step, and payment reconciliation with the provider.
//!
//! With capture at order time, the order's transaction also records the
//! capture it owes (`capture_due`). The request captures at once; if its
//! process dies first, the `payment-capture` job does it after a short grace
//! (the provider call carries the same idempotency key, `{order}-capture`,
//! so two attempts never capture twice). The `payment-reconciliation` job
//! compares what Keel records with what the provider holds: a capture the
//! provider made but Keel never recorded is recorded; any other
//! disagreement raises `alert.raised` for a person to look at.

use crate::{in_tx, Actor, App, AppError, Result};
use keel_domain::orders::OrderEvent;
use keel_payments::PaymentState;
use keel_store::captures::{self as db, PaymentRecord};
use keel_store::check::Problem;
use serde_json::json;

/// How long the request that created the order has to capture before the
/// job steps in.
pub const CAPTURE_GRACE_MICROS: i64 = 5_000_000;
/// Orders changed this recently may still be mid-way (a capture in flight):
/// reconciliation leaves them alone.
const SETTLING_MICROS: i64 = 30_000_000;
const RECONCILE_WINDOW_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// How Keel's payment state compares with the provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    Agrees,
    /// The provider captured; Keel still says authorized (the crash case).
    CaptureNotRecorded,
    Disagrees,
}

pub fn compare(keel: &str, provider: PaymentState) -> Agreement {
    use PaymentState::*;
    match (keel, provider) {
        ("authorized", Authorized) => Agreement::Agrees,
        ("authorized", Captured | PartiallyRefunded | Refunded) => Agreement::CaptureNotRecorded,
        ("captured", Captured | PartiallyRefunded | Refunded) => Agreement::Agrees,
        _ => Agreement::Disagrees,
    }
}

impl App {
    /// Captures owed at order time that their request did not finish.
    pub async fn run_due_captures(&self, now: i64) -> Result<u64> {
        let due = {
            let mut conn = self.store.reader().await?;
            db::due(&mut conn, now, 50).await?
        };
        let actor = Actor::system("payment-capture");
        let mut done = 0;
        for (order_id, attempts) in due {
            let order = self.load_order(&order_id).await?;
            let outcome =
                if order.payment_status == "authorized" { self.capture_order(&actor, &order_id, None).await.map(|_| ()) } else { Ok(()) };
            match outcome {
                Ok(()) => {}
                Err(AppError::Conflict { code: "invalid_order_state", .. }) => {}
                Err(AppError::PaymentDeclined { code, .. }) => {
                    tracing::error!(order = %order_id, code, "the provider refused the capture; the order stays authorized");
                }
                Err(e) => {
                    let wait = 1_000_000i64 << attempts.clamp(0, 12);
                    tracing::warn!(order = %order_id, attempts, error = %e, "capture failed; retrying later");
                    let text = e.to_string();
                    in_tx!(self, |tx| Ok(db::reschedule(&mut tx, &order_id, now + wait, &text).await?))?;
                    continue;
                }
            }
            in_tx!(self, |tx| Ok(db::remove(&mut tx, &order_id).await?))?;
            done += 1;
        }
        Ok(done)
    }

    /// Compares recent orders' payment states with the provider's, records
    /// captures the provider made that Keel missed, and raises an alert for
    /// any other disagreement. Returns how many orders it repaired or
    /// flagged.
    pub async fn reconcile_payments(&self, now: i64) -> Result<u64> {
        let actor = Actor::system("payment-reconciliation");
        let mut changed = 0;
        for (record, provider, agreement) in self.compare_payments(now, 200).await? {
            match agreement {
                Agreement::Agrees => {}
                Agreement::CaptureNotRecorded => {
                    let captured = provider.amount_captured;
                    self.change_order(&record.order_id, &actor, "order.paid", |o| {
                        let next = super::transition(o, OrderEvent::Capture)?;
                        o.status = next.status.as_str().into();
                        o.payment_status = next.payment.as_str().into();
                        o.amount_captured = captured;
                        Ok(())
                    })
                    .await?;
                    in_tx!(self, |tx| Ok(db::remove(&mut tx, &record.order_id).await?))?;
                    tracing::warn!(order = %record.order_id, "reconciliation: recorded a capture the provider had made");
                    changed += 1;
                }
                Agreement::Disagrees => {
                    if self.flag_payment(&record, &provider, now).await? {
                        changed += 1;
                    }
                }
            }
        }
        Ok(changed)
    }

    /// `alert.raised` once per order whose payment disagrees; `true` when
    /// newly raised.
    async fn flag_payment(&self, r: &PaymentRecord, p: &keel_payments::Payment, now: i64) -> Result<bool> {
        let component = format!("payment:{}", r.order_id);
        let provider_state = format!("{:?}", p.status).to_ascii_lowercase();
        let known = {
            let mut conn = self.store.reader().await?;
            keel_store::health::states(&mut conn).await?.into_iter().any(|s| s.component == component)
        };
        if known {
            return Ok(false);
        }
        tracing::error!(order = %r.order_id, keel = %r.payment_status, provider = %provider_state, "payment state disagrees with the provider");
        in_tx!(self, |tx| {
            let version = keel_store::health::set_state(&mut tx, &component, "payment", "failing", now).await?;
            keel_store::outbox::append(
                &mut tx,
                keel_store::outbox::NewEvent {
                    kind: "alert.raised",
                    aggregate_type: "health",
                    aggregate_id: &component,
                    aggregate_seq: version,
                    payload: json!({
                        "component": { "kind": "payment", "id": r.order_id, "name": format!("Payment of order {}", r.order_id) },
                        "from": "healthy",
                        "to": "failing",
                        "detail": format!("Keel records the payment as {}, the provider as {provider_state}", r.payment_status),
                    }),
                },
            )
            .await?;
            Ok(true)
        })
    }

    /// Recent orders with the provider's view of their payment, for the
    /// reconciliation job and `keel check`. Orders the provider cannot be
    /// asked about right now are skipped (logged).
    async fn compare_payments(&self, now: i64, limit: i64) -> Result<Vec<(PaymentRecord, keel_payments::Payment, Agreement)>> {
        let records = {
            let mut conn = self.store.reader().await?;
            db::payments_to_compare(&mut conn, now - RECONCILE_WINDOW_MICROS, limit).await?
        };
        let mut out = Vec::new();
        for r in records.into_iter().filter(|r| now - r.updated_at >= SETTLING_MICROS) {
            match self.payments.find_by_idempotency_key(&r.checkout_id).await {
                Ok(Some(p)) => {
                    let agreement = compare(&r.payment_status, p.status);
                    out.push((r, p, agreement));
                }
                Ok(None) => tracing::warn!(order = %r.order_id, "the provider knows no payment for this order"),
                Err(e) => tracing::warn!(order = %r.order_id, error = %e, "could not ask the provider about a payment"),
            }
        }
        Ok(out)
    }

    /// `keel check`'s payment part: recent orders whose payment state
    /// disagrees with the provider's ledger.
    pub async fn check_payments(&self, now: i64) -> Result<Vec<Problem>> {
        Ok(self
            .compare_payments(now, 1000)
            .await?
            .into_iter()
            .filter(|(_, _, a)| *a != Agreement::Agrees)
            .map(|(r, p, _)| Problem {
                check: "payment_state",
                subject: r.order_id.clone(),
                detail: format!(
                    "Keel records the payment as {} ({} captured), the provider as {:?} ({} captured)",
                    r.payment_status, r.amount_captured, p.status, p.amount_captured
                ),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentState::*;

    #[test]
    fn a_capture_the_provider_made_but_keel_missed_is_recorded_not_flagged() {
        assert_eq!(compare("authorized", Captured), Agreement::CaptureNotRecorded);
        // Refunded since (at the provider's dashboard): still captured first.
        assert_eq!(compare("authorized", PartiallyRefunded), Agreement::CaptureNotRecorded);
    }

    #[test]
    fn states_that_cannot_both_be_true_are_flagged() {
        assert_eq!(compare("captured", Authorized), Agreement::Disagrees, "Keel claims money it does not have");
        assert_eq!(compare("authorized", Voided), Agreement::Disagrees, "the hold is gone");
        assert_eq!(compare("authorized", Failed), Agreement::Disagrees);
        assert_eq!(compare("captured", Voided), Agreement::Disagrees);
    }

    #[test]
    fn matching_states_agree() {
        assert_eq!(compare("authorized", Authorized), Agreement::Agrees);
        assert_eq!(compare("captured", Captured), Agreement::Agrees);
        assert_eq!(compare("captured", Refunded), Agreement::Agrees, "refunds are tracked by the refund records");
    }
}

//! The built-in test provider: Stripe's test tokens without a network, so a
//! Keel install can take "payments" before it has a Stripe account, and Keel's
//! own tests are deterministic.
//!
//! State lives in a [`TestLedger`] that Keel's app layer implements over its
//! database, so payments survive a restart exactly as they would at a real
//! provider (crash-recovery tests kill the process between steps).
//!
//! Key scheme: one entry per payment, `payment:{id}`, holding the payment,
//! the authorization request and every capture/void/refund applied to it with
//! its idempotency key. The payment id is derived from the authorization's
//! idempotency key (`pi_test_` + 24 hex digits of SHA-256), which makes that
//! derivation the idempotency index: every operation is a single `save`, so a
//! crash can never leave a payment without its index or a refund without its
//! payment. Capture, void and refund keys are therefore scoped to their
//! payment.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::webhook::{parse_signed_event, SIGNATURE_HEADER};
use crate::{
    sign_stripe_payload, validate_idempotency_key, AuthorizeRequest, BoxFuture, Payment, PaymentError, PaymentProvider,
    PaymentState, Refund, RefundState, WebhookEvent,
};

/// Durable key-value storage for the [`TestProvider`]: values are JSON
/// documents the provider writes; the implementation only stores them.
/// `save` must be durable when it returns (Keel commits it in its own
/// transaction).
pub trait TestLedger: Send + Sync {
    fn load(&self, key: &str) -> BoxFuture<'_, Result<Option<String>, PaymentError>>;
    fn save(&self, key: &str, json: String) -> BoxFuture<'_, Result<(), PaymentError>>;
}

/// A [`TestLedger`] in memory, for unit tests. Sharing one (`Arc`) between
/// two `TestProvider`s stands in for a restart over the same database.
#[derive(Debug, Default)]
pub struct InMemoryLedger {
    entries: Mutex<HashMap<String, String>>,
}

impl InMemoryLedger {
    pub fn new() -> InMemoryLedger {
        InMemoryLedger::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TestLedger for InMemoryLedger {
    fn load(&self, key: &str) -> BoxFuture<'_, Result<Option<String>, PaymentError>> {
        let value = self.entries().get(key).cloned();
        Box::pin(async move { Ok(value) })
    }

    fn save(&self, key: &str, json: String) -> BoxFuture<'_, Result<(), PaymentError>> {
        self.entries().insert(key.to_owned(), json);
        Box::pin(async { Ok(()) })
    }
}

/// What a Stripe test token does when authorized.
pub(crate) enum CardOutcome {
    Approve,
    /// Declined with code "card_declined" and this decline code.
    Decline(&'static str),
}

/// Stripe's test tokens and test PaymentMethods that Keel supports.
pub(crate) fn test_card(payment_method: &str) -> Option<CardOutcome> {
    Some(match payment_method {
        "tok_visa" | "tok_mastercard" | "pm_card_visa" | "pm_card_mastercard" => CardOutcome::Approve,
        "tok_chargeDeclined" | "pm_card_chargeDeclined" => CardOutcome::Decline("generic_decline"),
        "tok_chargeDeclinedInsufficientFunds" | "pm_card_chargeDeclinedInsufficientFunds" => {
            CardOutcome::Decline("insufficient_funds")
        }
        _ => return None,
    })
}

/// Stripe's message for a decline code.
pub(crate) fn decline_message(decline_code: &str) -> &'static str {
    match decline_code {
        "insufficient_funds" => "Your card has insufficient funds.",
        _ => "Your card was declined.",
    }
}

/// The deterministic provider. Construct with [`TestProvider::new`].
pub struct TestProvider {
    ledger: Arc<dyn TestLedger>,
    webhook_secret: String,
    /// Serializes read-modify-write cycles on one payment's ledger entry
    /// within this process; striped by payment id so different payments
    /// proceed in parallel. (Two processes sharing one ledger could still
    /// race on one payment; Keel's checkout never does that.)
    locks: Vec<tokio::sync::Mutex<()>>,
}

const LOCK_STRIPES: usize = 64;

impl fmt::Debug for TestProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestProvider").field("webhook_secret", &"<redacted>").finish_non_exhaustive()
    }
}

/// The ledger document for one payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    payment: Payment,
    /// The authorization's parameters, to refuse a key reused for another one.
    authorization: Fingerprint,
    #[serde(default)]
    operations: Vec<Operation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint {
    idempotency_key: String,
    amount: i64,
    currency: String,
    payment_method: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Operation {
    idempotency_key: String,
    #[serde(flatten)]
    action: Action,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Action {
    Capture { amount: Option<i64> },
    Void,
    Refund { refund: Refund },
}

impl Record {
    fn applied(&self, key: &str) -> Option<&Action> {
        self.operations.iter().find(|op| op.idempotency_key == key).map(|op| &op.action)
    }

    fn declined(&self) -> PaymentError {
        let decline_code = self.payment.decline_code.clone();
        let message = decline_message(decline_code.as_deref().unwrap_or_default()).to_owned();
        PaymentError::Declined { code: "card_declined".into(), decline_code, message }
    }
}

fn key_reused() -> PaymentError {
    PaymentError::invalid("idempotency key already used for a different request")
}

/// `prefix` + 24 hex digits of SHA-256 over length-prefixed parts.
fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    format!("{prefix}{}", &hex::encode(hash.finalize())[..24])
}

fn payment_id_for(idempotency_key: &str) -> String {
    derived_id("pi_test_", &["authorize", idempotency_key])
}

fn ledger_key(payment_id: &str) -> String {
    format!("payment:{payment_id}")
}

/// Stripe's PaymentIntent status for a state, for Stripe-shaped events.
fn stripe_status(state: PaymentState) -> &'static str {
    match state {
        PaymentState::Authorized => "requires_capture",
        PaymentState::Captured | PaymentState::PartiallyRefunded | PaymentState::Refunded => "succeeded",
        PaymentState::Voided => "canceled",
        PaymentState::Failed => "requires_payment_method",
    }
}

impl TestProvider {
    /// `webhook_secret` signs and verifies this provider's webhook events.
    pub fn new(ledger: Arc<dyn TestLedger>, webhook_secret: impl Into<String>) -> TestProvider {
        TestProvider {
            ledger,
            webhook_secret: webhook_secret.into(),
            locks: (0..LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// A webhook delivery for `payment` as Stripe would shape it (`kind`
    /// "charge.*" carries a charge object, anything else a PaymentIntent),
    /// signed with this provider's secret at `now_unix`: the headers and body
    /// to post to Keel's webhook endpoint in tests.
    pub fn signed_event(&self, kind: &str, payment: &Payment, now_unix: i64) -> (Vec<(String, String)>, Vec<u8>) {
        let currency = payment.currency.to_ascii_lowercase();
        let object = if kind.starts_with("charge.") {
            // Stripe counts the hold released by a partial capture as refunded.
            let captured = payment.amount_captured > 0;
            let released = if captured { payment.amount - payment.amount_captured } else { 0 };
            json!({
                "id": payment.id.replacen("pi_", "ch_", 1),
                "object": "charge",
                "payment_intent": payment.id,
                "amount": payment.amount,
                "amount_captured": payment.amount_captured,
                "amount_refunded": payment.amount_refunded + released,
                "captured": captured,
                "refunded": payment.status == PaymentState::Refunded,
                "currency": currency,
            })
        } else {
            json!({
                "id": payment.id,
                "object": "payment_intent",
                "amount": payment.amount,
                "amount_received": payment.amount_captured,
                "currency": currency,
                "status": stripe_status(payment.status),
            })
        };
        let object_text = object.to_string();
        let event_id = derived_id("evt_test_", &[kind, &object_text, &now_unix.to_string()]);
        let body = json!({
            "id": event_id,
            "object": "event",
            "type": kind,
            "created": now_unix,
            "livemode": false,
            "data": { "object": object },
        })
        .to_string()
        .into_bytes();
        let header = sign_stripe_payload(&body, &self.webhook_secret, now_unix);
        (vec![(SIGNATURE_HEADER.to_owned(), header)], body)
    }

    async fn load(&self, payment_id: &str) -> Result<Option<Record>, PaymentError> {
        match self.ledger.load(&ledger_key(payment_id)).await? {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| PaymentError::unavailable(format!("test ledger entry for {payment_id} unreadable: {e}"))),
        }
    }

    async fn save(&self, record: &Record) -> Result<(), PaymentError> {
        let json = serde_json::to_string(record).expect("records serialize");
        self.ledger.save(&ledger_key(&record.payment.id), json).await
    }

    fn lock_for(&self, payment_id: &str) -> &tokio::sync::Mutex<()> {
        let h = payment_id.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.locks[h % LOCK_STRIPES]
    }

    async fn do_authorize(&self, req: AuthorizeRequest) -> Result<Payment, PaymentError> {
        req.validate()?;
        let fingerprint = Fingerprint {
            idempotency_key: req.idempotency_key.clone(),
            amount: req.amount,
            currency: req.currency.clone(),
            payment_method: req.payment_method.clone(),
        };
        let id = payment_id_for(&req.idempotency_key);
        let _guard = self.lock_for(&id).lock().await;
        if let Some(record) = self.load(&id).await? {
            // A retry: answer what the first call answered.
            if record.authorization != fingerprint {
                return Err(key_reused());
            }
            return match record.payment.status {
                PaymentState::Failed => Err(record.declined()),
                _ => Ok(record.payment),
            };
        }
        let outcome = test_card(&req.payment_method)
            .ok_or_else(|| PaymentError::invalid(format!("No such token: '{}'", req.payment_method)))?;
        let (status, decline_code) = match outcome {
            CardOutcome::Approve => (PaymentState::Authorized, None),
            CardOutcome::Decline(code) => (PaymentState::Failed, Some(code.to_owned())),
        };
        let record = Record {
            payment: Payment {
                id,
                status,
                amount: req.amount,
                amount_captured: 0,
                amount_refunded: 0,
                currency: req.currency,
                decline_code,
            },
            authorization: fingerprint,
            operations: Vec::new(),
        };
        // Declines are recorded too, as Stripe keeps the failed PaymentIntent.
        self.save(&record).await?;
        match status {
            PaymentState::Failed => Err(record.declined()),
            _ => Ok(record.payment),
        }
    }

    async fn do_capture(&self, payment_id: &str, amount: Option<i64>, key: &str) -> Result<Payment, PaymentError> {
        validate_idempotency_key(key)?;
        let _guard = self.lock_for(payment_id).lock().await;
        let mut record = self.load(payment_id).await?.ok_or(PaymentError::NotFound)?;
        match record.applied(key) {
            Some(Action::Capture { amount: first }) if *first == amount => return Ok(record.payment),
            Some(_) => return Err(key_reused()),
            None => {}
        }
        let payment = &mut record.payment;
        if payment.status != PaymentState::Authorized {
            return Err(PaymentError::invalid(format!(
                "payment {} cannot be captured: it is {:?}",
                payment.id, payment.status
            )));
        }
        let captured = amount.unwrap_or(payment.amount);
        if captured <= 0 || captured > payment.amount {
            return Err(PaymentError::invalid(format!(
                "capture amount must be between 1 and the authorized {}",
                payment.amount
            )));
        }
        payment.status = PaymentState::Captured;
        payment.amount_captured = captured;
        record.operations.push(Operation { idempotency_key: key.to_owned(), action: Action::Capture { amount } });
        self.save(&record).await?;
        Ok(record.payment)
    }

    async fn do_void(&self, payment_id: &str, key: &str) -> Result<Payment, PaymentError> {
        validate_idempotency_key(key)?;
        let _guard = self.lock_for(payment_id).lock().await;
        let mut record = self.load(payment_id).await?.ok_or(PaymentError::NotFound)?;
        match record.applied(key) {
            Some(Action::Void) => return Ok(record.payment),
            Some(_) => return Err(key_reused()),
            None => {}
        }
        // As Stripe: an uncaptured authorization, or a declined attempt, can
        // be canceled; a captured or canceled one cannot.
        if !matches!(record.payment.status, PaymentState::Authorized | PaymentState::Failed) {
            return Err(PaymentError::invalid(format!(
                "payment {} cannot be voided: it is {:?}",
                record.payment.id, record.payment.status
            )));
        }
        record.payment.status = PaymentState::Voided;
        record.operations.push(Operation { idempotency_key: key.to_owned(), action: Action::Void });
        self.save(&record).await?;
        Ok(record.payment)
    }

    async fn do_refund(&self, payment_id: &str, amount: i64, key: &str) -> Result<Refund, PaymentError> {
        validate_idempotency_key(key)?;
        let _guard = self.lock_for(payment_id).lock().await;
        let mut record = self.load(payment_id).await?.ok_or(PaymentError::NotFound)?;
        match record.applied(key) {
            Some(Action::Refund { refund }) if refund.amount == amount => return Ok(refund.clone()),
            Some(_) => return Err(key_reused()),
            None => {}
        }
        let payment = &mut record.payment;
        if !matches!(payment.status, PaymentState::Captured | PaymentState::PartiallyRefunded) {
            return Err(PaymentError::invalid(format!(
                "payment {} has no captured funds to refund: it is {:?}",
                payment.id, payment.status
            )));
        }
        let refundable = payment.amount_captured - payment.amount_refunded;
        if amount <= 0 || amount > refundable {
            return Err(PaymentError::invalid(format!(
                "refund amount must be between 1 and the refundable {refundable}"
            )));
        }
        payment.amount_refunded += amount;
        payment.status = if payment.amount_refunded == payment.amount_captured {
            PaymentState::Refunded
        } else {
            PaymentState::PartiallyRefunded
        };
        let refund = Refund {
            id: derived_id("re_test_", &["refund", payment_id, key]),
            payment_id: payment.id.clone(),
            amount,
            status: RefundState::Succeeded,
        };
        record
            .operations
            .push(Operation { idempotency_key: key.to_owned(), action: Action::Refund { refund: refund.clone() } });
        self.save(&record).await?;
        Ok(refund)
    }

    async fn do_find(&self, key: &str) -> Result<Option<Payment>, PaymentError> {
        validate_idempotency_key(key)?;
        Ok(self.load(&payment_id_for(key)).await?.map(|record| record.payment))
    }
}

impl PaymentProvider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }

    fn authorize(&self, req: AuthorizeRequest) -> BoxFuture<'_, Result<Payment, PaymentError>> {
        Box::pin(self.do_authorize(req))
    }

    fn capture<'a>(
        &'a self,
        payment_id: &'a str,
        amount: Option<i64>,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Payment, PaymentError>> {
        Box::pin(self.do_capture(payment_id, amount, idempotency_key))
    }

    fn void<'a>(
        &'a self,
        payment_id: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Payment, PaymentError>> {
        Box::pin(self.do_void(payment_id, idempotency_key))
    }

    fn refund<'a>(
        &'a self,
        payment_id: &'a str,
        amount: i64,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Refund, PaymentError>> {
        Box::pin(self.do_refund(payment_id, amount, idempotency_key))
    }

    fn find_by_idempotency_key<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Payment>, PaymentError>> {
        Box::pin(self.do_find(key))
    }

    fn parse_webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        now_unix: i64,
    ) -> Result<WebhookEvent, PaymentError> {
        parse_signed_event(headers, body, &self.webhook_secret, now_unix)
    }
}

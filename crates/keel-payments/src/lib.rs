//! Payment providers. Keel never sees card data: a storefront tokenizes the
//! card with the provider and Keel only handles the resulting token
//! (`tok_…`, `pm_…`) and the provider's payment ids.
//!
//! - [`PaymentProvider`] is what Keel's use cases call; it is object safe so
//!   the app holds an `Arc<dyn PaymentProvider>` chosen by configuration.
//! - [`TestProvider`] is the built-in deterministic provider (Stripe's test
//!   tokens, no network), persisted through a [`TestLedger`] so its state
//!   survives a restart like a real provider's would.
//! - [`StripeProvider`] talks to Stripe's PaymentIntents API.
//! - [`verify_stripe_signature`] checks webhook signatures (both providers use
//!   Stripe's scheme).
//! - `stripe_double` (feature `test-double`) is a local HTTP stand-in for
//!   Stripe, for tests only.

mod signature;
mod stripe;
#[cfg(feature = "test-double")]
pub mod stripe_double;
mod test_provider;
mod webhook;

pub use signature::{sign_stripe_payload, verify_stripe_signature, DEFAULT_TOLERANCE_SECS};
pub use stripe::{StripeProvider, STRIPE_API_VERSION};
pub use test_provider::{InMemoryLedger, TestLedger, TestProvider};

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// A boxed `Send` future: what keeps [`PaymentProvider`] and [`TestLedger`]
/// object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The metadata key under which every authorization records Keel's
/// idempotency key, so that [`PaymentProvider::find_by_idempotency_key`] can
/// find an authorization whose response was lost.
pub const IDEMPOTENCY_METADATA_KEY: &str = "keel_idempotency_key";

/// A payment provider. Every write takes an idempotency key: retrying a call
/// with the same key after a timeout or crash never charges twice, it returns
/// the outcome of the first call.
pub trait PaymentProvider: Send + Sync {
    /// A stable short name ("test", "stripe"), stored beside payment ids.
    fn name(&self) -> &'static str;

    /// Authorizes `req.amount` on the payment method without capturing it.
    /// A decline is `Err(PaymentError::Declined)`; the provider still records
    /// the failed attempt (see [`PaymentProvider::find_by_idempotency_key`]).
    fn authorize(&self, req: AuthorizeRequest) -> BoxFuture<'_, Result<Payment, PaymentError>>;

    /// Captures an authorized payment: all of it (`None`) or part of it
    /// (the rest of the authorization is released).
    fn capture<'a>(
        &'a self,
        payment_id: &'a str,
        amount: Option<i64>,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Payment, PaymentError>>;

    /// Releases an authorization that was not captured.
    fn void<'a>(
        &'a self,
        payment_id: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Payment, PaymentError>>;

    /// Refunds part or all of what was captured.
    fn refund<'a>(
        &'a self,
        payment_id: &'a str,
        amount: i64,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Refund, PaymentError>>;

    /// The payment that `authorize` created with this idempotency key, if any
    /// (including a declined one, as `PaymentState::Failed`). Crash recovery
    /// uses it to learn whether an authorization whose response was lost
    /// actually happened. Retrying `authorize` with the same key is the other,
    /// equally safe, way to learn it.
    fn find_by_idempotency_key<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Payment>, PaymentError>>;

    /// Verifies a webhook delivery's signature (header names compared
    /// case-insensitively) and parses the event. `now_unix` is the current
    /// time, passed in so that replayed deliveries can be refused and tests
    /// can pin the clock.
    fn parse_webhook(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        now_unix: i64,
    ) -> Result<WebhookEvent, PaymentError>;

    /// How long after `authorize` a payment may still be missing from
    /// [`PaymentProvider::find_by_idempotency_key`] (Stripe's search index
    /// lags by up to about a minute). Recovery does not trust "not found"
    /// for a younger attempt.
    fn lookup_lag_secs(&self) -> i64 {
        0
    }
}

/// What to authorize. `payment_method` is a provider token, never card data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    /// Minor units (cents), positive.
    pub amount: i64,
    /// ISO 4217, upper case ("EUR").
    pub currency: String,
    /// A token such as `tok_visa` or a Stripe `pm_…` id.
    pub payment_method: String,
    /// Keel's key for this authorization; at most 255 characters.
    pub idempotency_key: String,
    pub description: Option<String>,
    /// Passed to the provider as-is; the key `keel_idempotency_key` is
    /// reserved.
    pub metadata: BTreeMap<String, String>,
}

impl AuthorizeRequest {
    /// The checks every provider makes before calling out, so that a bad
    /// request fails the same way whichever provider is configured.
    fn validate(&self) -> Result<(), PaymentError> {
        if self.amount <= 0 {
            return Err(PaymentError::invalid("amount must be a positive number of minor units"));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(PaymentError::invalid("currency must be an upper-case ISO 4217 code"));
        }
        if self.payment_method.is_empty() {
            return Err(PaymentError::invalid("payment_method is required"));
        }
        if self.metadata.contains_key(IDEMPOTENCY_METADATA_KEY) {
            return Err(PaymentError::invalid("metadata key keel_idempotency_key is reserved"));
        }
        validate_idempotency_key(&self.idempotency_key)
    }
}

/// Stripe accepts idempotency keys of up to 255 characters; the test provider
/// holds itself to the same rule.
fn validate_idempotency_key(key: &str) -> Result<(), PaymentError> {
    if key.is_empty() || key.len() > 255 {
        return Err(PaymentError::invalid("idempotency key must be 1 to 255 characters"));
    }
    Ok(())
}

/// Where a payment stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Funds held, nothing captured yet.
    Authorized,
    /// Captured (fully or partly; the rest of the hold was released).
    Captured,
    /// The authorization was released.
    Voided,
    /// The authorization was declined; `decline_code` says why.
    Failed,
    PartiallyRefunded,
    Refunded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The provider's id (`pi_…`).
    pub id: String,
    pub status: PaymentState,
    /// What was authorized, in minor units.
    pub amount: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    /// Upper case, as Keel writes currencies.
    pub currency: String,
    /// Set on failed authorizations ("insufficient_funds", …).
    pub decline_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    /// Accepted; the provider settles it later (a webhook tells the outcome).
    Pending,
    Succeeded,
    Failed,
    Canceled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The provider's id (`re_…`).
    pub id: String,
    pub payment_id: String,
    pub amount: i64,
    pub status: RefundState,
}

/// A verified webhook event. `kind` is the provider's event type, e.g.
/// "payment_intent.succeeded", "payment_intent.payment_failed",
/// "charge.refunded"; events Keel does not act on still parse.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub id: String,
    pub kind: String,
    /// The PaymentIntent the event is about, when it is about one.
    pub payment_id: Option<String>,
    /// Total refunded so far, on charge events (not counting the remainder
    /// that a partial capture released).
    pub amount_refunded: Option<i64>,
    /// The whole event, for anything else the caller needs.
    pub raw: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The card or issuer refused. `code` is the provider's error code
    /// ("card_declined"), `decline_code` the issuer's reason when given
    /// ("insufficient_funds").
    #[error("payment declined ({code}): {message}")]
    Declined { code: String, decline_code: Option<String>, message: String },
    /// The request cannot succeed as made (bad amount, wrong state, unknown
    /// token, idempotency key reused with other parameters, rejected
    /// credentials). Retrying it unchanged will fail again.
    #[error("invalid payment request: {message}")]
    InvalidRequest { message: String },
    #[error("no such payment")]
    NotFound,
    /// The provider could not be reached or failed (network, timeout, 429,
    /// 5xx). The request may or may not have taken effect: retry it with the
    /// same idempotency key.
    #[error("payment provider unavailable: {message}")]
    Unavailable { message: String },
    #[error("invalid webhook signature: {reason}")]
    InvalidSignature { reason: &'static str },
}

impl PaymentError {
    /// Whether the same call, with the same idempotency key, may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PaymentError::Unavailable { .. })
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        PaymentError::InvalidRequest { message: message.into() }
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        PaymentError::Unavailable { message: message.into() }
    }
}

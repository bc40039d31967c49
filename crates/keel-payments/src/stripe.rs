//! Stripe's PaymentIntents API: an authorization is a PaymentIntent created
//! with `confirm=true` and `capture_method=manual`; capture, cancel (void) and
//! refunds act on it. Requests are form-encoded with Stripe's bracket syntax,
//! carry `Idempotency-Key` on every write, and pin the API version so that
//! response shapes do not change under Keel when the account is upgraded.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::webhook::{parse_signed_event, refunded_by_merchant};
use crate::{
    validate_idempotency_key, AuthorizeRequest, BoxFuture, Payment, PaymentError, PaymentProvider, PaymentState,
    Refund, RefundState, WebhookEvent, IDEMPOTENCY_METADATA_KEY,
};

/// The Stripe API version every request asks for.
pub const STRIPE_API_VERSION: &str = "2024-06-20";

const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// Talks to Stripe. Construct with [`StripeProvider::new`]; point it at the
/// test double with [`StripeProvider::with_base_url`].
pub struct StripeProvider {
    secret_key: String,
    webhook_secret: String,
    base_url: String,
    http: reqwest::Client,
}

/// By hand, so that the keys can never reach a log line.
impl fmt::Debug for StripeProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeProvider")
            .field("secret_key", &"<redacted>")
            .field("webhook_secret", &"<redacted>")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

type Params = Vec<(String, String)>;

fn param(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

impl StripeProvider {
    /// `secret_key` is the API key (`sk_live_…`, `sk_test_…`, or a restricted
    /// `rk_…`); `webhook_secret` the endpoint's signing secret (`whsec_…`).
    /// The HTTP client connects within 5 s, gives up on a call after 30 s and
    /// never follows redirects (Stripe does not send any; following one would
    /// carry the key elsewhere).
    pub fn new(
        secret_key: impl Into<String>,
        webhook_secret: impl Into<String>,
    ) -> Result<StripeProvider, PaymentError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keel-payments/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PaymentError::invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(StripeProvider {
            secret_key: secret_key.into(),
            webhook_secret: webhook_secret.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            http,
        })
    }

    /// Replaces `https://api.stripe.com` (tests use the Stripe double).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> StripeProvider {
        self.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// One API call: the parsed JSON of a 2xx answer, or the mapped error.
    async fn call(
        &self,
        method: Method,
        path: &str,
        params: Params,
        idempotency_key: Option<&str>,
    ) -> Result<Value, PaymentError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .bearer_auth(&self.secret_key)
            .header("Stripe-Version", STRIPE_API_VERSION);
        request = if method == Method::GET { request.query(&params) } else { request.form(&params) };
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(|e| {
            tracing::warn!(%method, path, error = %e, "stripe request failed");
            PaymentError::unavailable(format!("Stripe request failed: {e}"))
        })?;
        let status = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let request_id = header("request-id").unwrap_or_default();
        let should_retry = header("stripe-should-retry").as_deref() == Some("true");
        let body =
            response.bytes().await.map_err(|e| PaymentError::unavailable(format!("Stripe response cut short: {e}")))?;
        tracing::debug!(%method, path, status = status.as_u16(), request_id, "stripe call");
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| PaymentError::unavailable(format!("unreadable Stripe response: {e}")));
        }
        let error = map_error(status, should_retry, &body);
        if error.is_retryable() {
            tracing::warn!(%method, path, status = status.as_u16(), request_id, "stripe unavailable");
        }
        Err(error)
    }

    async fn do_authorize(&self, req: AuthorizeRequest) -> Result<Payment, PaymentError> {
        req.validate()?;
        if req.metadata.keys().any(|k| k.contains(['[', ']'])) {
            return Err(PaymentError::invalid("metadata keys cannot contain square brackets"));
        }
        let mut params = vec![
            param("amount", req.amount.to_string()),
            param("currency", req.currency.to_ascii_lowercase()),
            param("confirm", "true"),
            param("capture_method", "manual"),
            // Cards only: without this, API versions since 2023-08-16 enable
            // redirecting payment methods and then demand a return_url.
            param("payment_method_types[]", "card"),
            // Keel cannot run 3-D Secure with a customer; fail instead of
            // leaving the intent waiting in `requires_action`.
            param("error_on_requires_action", "true"),
            param(&format!("metadata[{IDEMPOTENCY_METADATA_KEY}]"), req.idempotency_key.clone()),
            param("expand[]", "latest_charge"),
        ];
        if req.payment_method.starts_with("tok_") {
            // Card tokens are not PaymentMethods; Stripe converts them this way.
            params.push(param("payment_method_data[type]", "card"));
            params.push(param("payment_method_data[card][token]", req.payment_method));
        } else {
            params.push(param("payment_method", req.payment_method));
        }
        if let Some(description) = req.description {
            params.push(param("description", description));
        }
        for (key, value) in req.metadata {
            params.push((format!("metadata[{key}]"), value));
        }
        let value = self.call(Method::POST, "/v1/payment_intents", params, Some(&req.idempotency_key)).await?;
        let intent = Intent::parse(value)?;
        let payment = intent.to_payment()?;
        if payment.status == PaymentState::Failed {
            return Err(intent.declined());
        }
        Ok(payment)
    }

    async fn do_capture(&self, payment_id: &str, amount: Option<i64>, key: &str) -> Result<Payment, PaymentError> {
        validate_idempotency_key(key)?;
        let mut params = vec![param("expand[]", "latest_charge")];
        if let Some(amount) = amount {
            params.push(param("amount_to_capture", amount.to_string()));
        }
        let path = format!("/v1/payment_intents/{}/capture", path_id(payment_id)?);
        Intent::parse(self.call(Method::POST, &path, params, Some(key)).await?)?.to_payment()
    }

    async fn do_void(&self, payment_id: &str, key: &str) -> Result<Payment, PaymentError> {
        validate_idempotency_key(key)?;
        let params = vec![param("expand[]", "latest_charge")];
        let path = format!("/v1/payment_intents/{}/cancel", path_id(payment_id)?);
        Intent::parse(self.call(Method::POST, &path, params, Some(key)).await?)?.to_payment()
    }

    async fn do_refund(&self, payment_id: &str, amount: i64, key: &str) -> Result<Refund, PaymentError> {
        validate_idempotency_key(key)?;
        if amount <= 0 {
            return Err(PaymentError::invalid("refund amount must be positive"));
        }
        let params = vec![param("payment_intent", path_id(payment_id)?), param("amount", amount.to_string())];
        let value = self.call(Method::POST, "/v1/refunds", params, Some(key)).await?;
        parse_refund(value)
    }

    async fn do_find(&self, key: &str) -> Result<Option<Payment>, PaymentError> {
        validate_idempotency_key(key)?;
        // Stripe's search is eventually consistent (an intent is searchable
        // within about a minute of its creation): callers recovering a lost
        // response should wait that long before trusting a `None`.
        let query = format!("metadata['{IDEMPOTENCY_METADATA_KEY}']:'{}'", escape_search(key));
        let params = vec![param("query", query), param("expand[]", "data.latest_charge"), param("limit", "10")];
        let value = self.call(Method::GET, "/v1/payment_intents/search", params, None).await?;
        let Some(first) = value["data"].as_array().and_then(|data| data.first()) else {
            return Ok(None);
        };
        Intent::parse(first.clone())?.to_payment().map(Some)
    }
}

impl PaymentProvider for StripeProvider {
    fn lookup_lag_secs(&self) -> i64 {
        90
    }

    fn name(&self) -> &'static str {
        "stripe"
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

/// Ids go into URL paths; anything but Stripe's id alphabet could change
/// which resource the request reaches.
fn path_id(id: &str) -> Result<&str, PaymentError> {
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(PaymentError::invalid("malformed payment id"));
    }
    Ok(id)
}

/// Search query strings are single-quoted; quotes and backslashes inside are
/// escaped with a backslash.
fn escape_search(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

#[derive(Debug, Default, Deserialize)]
struct ApiError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
    param: Option<String>,
}

/// Stripe's error answers: `{"error": {"type", "code", "decline_code",
/// "message", "param"}}`.
fn map_error(status: StatusCode, should_retry: bool, body: &[u8]) -> PaymentError {
    #[derive(Deserialize)]
    struct Envelope {
        error: ApiError,
    }
    let error = serde_json::from_slice::<Envelope>(body).map(|e| e.error).unwrap_or_default();
    let message = error.message.unwrap_or_else(|| format!("Stripe answered {status}"));
    // 409: another request with the same idempotency key is still running.
    if should_retry
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::CONFLICT
        || status.is_server_error()
    {
        return PaymentError::Unavailable { message };
    }
    if status == StatusCode::PAYMENT_REQUIRED || error.kind.as_deref() == Some("card_error") {
        return PaymentError::Declined {
            code: error.code.unwrap_or_else(|| "card_declined".into()),
            decline_code: error.decline_code,
            message,
        };
    }
    // NotFound means "no such payment"; a missing token or PaymentMethod
    // (also `resource_missing`) is an invalid request, and so is an
    // unrecognized URL (a wrong base URL).
    let resource_missing = error.code.as_deref() == Some("resource_missing");
    let names_payment = match error.param.as_deref() {
        Some(param) => matches!(param, "payment_intent" | "intent" | "id"),
        None => resource_missing,
    };
    if (status == StatusCode::NOT_FOUND || resource_missing) && names_payment {
        return PaymentError::NotFound;
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return PaymentError::invalid(format!("Stripe refused the API key: {message}"));
    }
    PaymentError::InvalidRequest { message }
}

/// The fields of a PaymentIntent that Keel reads.
#[derive(Debug, Deserialize)]
struct Intent {
    id: String,
    amount: i64,
    #[serde(default)]
    amount_received: i64,
    currency: String,
    status: String,
    /// An id, or the Charge object when expanded (which is where the
    /// refunded amount lives).
    #[serde(default)]
    latest_charge: Option<Value>,
    #[serde(default)]
    last_payment_error: Option<ApiError>,
}

impl Intent {
    fn parse(value: Value) -> Result<Intent, PaymentError> {
        serde_json::from_value(value)
            .map_err(|e| PaymentError::unavailable(format!("unexpected PaymentIntent from Stripe: {e}")))
    }

    fn to_payment(&self) -> Result<Payment, PaymentError> {
        // Only a succeeded intent has collected money that can be refunded
        // (canceling an authorization shows as a refund of its charge).
        let refunded = match self.status.as_str() {
            "succeeded" => self.latest_charge.as_ref().and_then(refunded_by_merchant).unwrap_or(0),
            _ => 0,
        };
        let status = match self.status.as_str() {
            "requires_capture" => PaymentState::Authorized,
            "succeeded" if refunded == 0 => PaymentState::Captured,
            "succeeded" if refunded < self.amount_received => PaymentState::PartiallyRefunded,
            "succeeded" => PaymentState::Refunded,
            "canceled" => PaymentState::Voided,
            // Confirmed and back to needing a payment method: declined. The
            // other two cannot follow `confirm=true, error_on_requires_action`.
            "requires_payment_method" | "requires_action" | "requires_confirmation" => PaymentState::Failed,
            "processing" => return Err(PaymentError::unavailable(format!("payment {} is still processing", self.id))),
            other => return Err(PaymentError::invalid(format!("unexpected PaymentIntent status {other:?}"))),
        };
        let decline_code = match status {
            PaymentState::Failed => {
                self.last_payment_error.as_ref().and_then(|e| e.decline_code.clone().or_else(|| e.code.clone()))
            }
            _ => None,
        };
        Ok(Payment {
            id: self.id.clone(),
            status,
            amount: self.amount,
            amount_captured: self.amount_received,
            amount_refunded: refunded,
            currency: self.currency.to_ascii_uppercase(),
            decline_code,
        })
    }

    fn declined(&self) -> PaymentError {
        let error = self.last_payment_error.as_ref();
        PaymentError::Declined {
            code: error.and_then(|e| e.code.clone()).unwrap_or_else(|| "card_declined".into()),
            decline_code: error.and_then(|e| e.decline_code.clone()),
            message: error.and_then(|e| e.message.clone()).unwrap_or_else(|| "The payment was declined.".into()),
        }
    }
}

fn parse_refund(value: Value) -> Result<Refund, PaymentError> {
    #[derive(Deserialize)]
    struct StripeRefund {
        id: String,
        amount: i64,
        payment_intent: Option<String>,
        status: String,
    }
    let refund: StripeRefund = serde_json::from_value(value)
        .map_err(|e| PaymentError::unavailable(format!("unexpected Refund from Stripe: {e}")))?;
    let status = match refund.status.as_str() {
        "succeeded" => RefundState::Succeeded,
        "failed" => RefundState::Failed,
        "canceled" => RefundState::Canceled,
        // "pending", "requires_action": not settled yet.
        _ => RefundState::Pending,
    };
    Ok(Refund { id: refund.id, payment_id: refund.payment_intent.unwrap_or_default(), amount: refund.amount, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, should_retry: bool, body: &str) -> PaymentError {
        map_error(StatusCode::from_u16(status).unwrap(), should_retry, body.as_bytes())
    }

    #[test]
    fn errors_map_by_status_and_type() {
        let card = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}"#;
        assert_eq!(
            map(402, false, card),
            PaymentError::Declined {
                code: "card_declined".into(),
                decline_code: Some("insufficient_funds".into()),
                message: "Your card has insufficient funds.".into(),
            }
        );
        let expired = r#"{"error":{"type":"card_error","code":"expired_card","message":"Your card has expired."}}"#;
        assert!(
            matches!(map(402, false, expired), PaymentError::Declined { code, decline_code: None, .. } if code == "expired_card")
        );
        let bad = r#"{"error":{"type":"invalid_request_error","code":"parameter_missing","message":"Missing required param: amount.","param":"amount"}}"#;
        assert_eq!(map(400, false, bad), PaymentError::invalid("Missing required param: amount."));
        let missing = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such payment_intent: 'pi_x'","param":"intent"}}"#;
        assert_eq!(map(404, false, missing), PaymentError::NotFound);
        let missing_pm = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such PaymentMethod: 'pm_x'","param":"payment_method"}}"#;
        assert!(matches!(map(404, false, missing_pm), PaymentError::InvalidRequest { .. }));
        assert!(matches!(
            map(404, false, r#"{"error":{"type":"invalid_request_error","message":"Unrecognized request URL"}}"#),
            PaymentError::InvalidRequest { .. }
        ));
        assert!(matches!(
            map(
                401,
                false,
                r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****1234"}}"#
            ),
            PaymentError::InvalidRequest { .. }
        ));
        for status in [409, 429, 500, 502, 503] {
            assert!(map(status, false, "").is_retryable(), "{status}");
        }
        // Stripe-Should-Retry overrides the status.
        assert!(map(400, true, r#"{"error":{"type":"invalid_request_error","code":"lock_timeout","message":"busy"}}"#)
            .is_retryable());
        // A body that is not Stripe's shape still maps.
        assert_eq!(map(400, false, "<html>"), PaymentError::invalid("Stripe answered 400 Bad Request"));
    }

    #[test]
    fn intents_map_to_payment_states() {
        let intent = |status: &str, received: i64, charge: Value| {
            Intent::parse(serde_json::json!({
                "id": "pi_1", "amount": 1000, "amount_received": received, "currency": "usd",
                "status": status, "latest_charge": charge,
                "last_payment_error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline"},
            }))
            .unwrap()
            .to_payment()
        };
        let charge = |captured: bool, amount_captured: i64, refunded: i64| {
            serde_json::json!({"object": "charge", "amount": 1000, "captured": captured,
                               "amount_captured": amount_captured, "amount_refunded": refunded})
        };
        let p = intent("requires_capture", 0, Value::String("ch_1".into())).unwrap();
        assert_eq!((p.status, p.currency.as_str(), p.decline_code), (PaymentState::Authorized, "USD", None));
        let p = intent("succeeded", 1000, charge(true, 1000, 0)).unwrap();
        assert_eq!((p.status, p.amount_captured), (PaymentState::Captured, 1000));
        let p = intent("succeeded", 600, charge(true, 600, 400 + 100)).unwrap();
        assert_eq!((p.status, p.amount_refunded), (PaymentState::PartiallyRefunded, 100));
        let p = intent("succeeded", 600, charge(true, 600, 1000)).unwrap();
        assert_eq!((p.status, p.amount_refunded), (PaymentState::Refunded, 600));
        let p = intent("canceled", 0, charge(false, 0, 1000)).unwrap();
        assert_eq!((p.status, p.amount_refunded), (PaymentState::Voided, 0));
        let p = intent("requires_payment_method", 0, Value::Null).unwrap();
        assert_eq!((p.status, p.decline_code.as_deref()), (PaymentState::Failed, Some("generic_decline")));
        assert!(intent("processing", 0, Value::Null).unwrap_err().is_retryable());
    }

    #[test]
    fn search_values_are_escaped() {
        assert_eq!(escape_search(r"a'b\c"), r"a\'b\\c");
    }
}

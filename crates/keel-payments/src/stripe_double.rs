//! A **test double** for Stripe's API (feature `test-double`): a small HTTP
//! server on 127.0.0.1 that answers the subset of the PaymentIntents and
//! Refunds API that [`StripeProvider`](crate::StripeProvider) uses, in
//! Stripe's published formats (form-encoded requests, JSON objects and error
//! envelopes), so that Keel's tests exercise the real adapter end to end
//! without a network. It is not Stripe: only the endpoints, parameters and
//! test cards below exist, and state lives in memory.
//!
//! - `POST /v1/payment_intents` (`amount`, `currency`, `capture_method`,
//!   `confirm`, `payment_method` or `payment_method_data[card][token]`,
//!   `metadata[…]`, `description`, `expand[]`), `GET /v1/payment_intents/{id}`,
//!   `POST /v1/payment_intents/{id}/capture` (`amount_to_capture`),
//!   `POST /v1/payment_intents/{id}/cancel`, `POST /v1/refunds`
//!   (`payment_intent` or `charge`, `amount`), and
//!   `GET /v1/payment_intents/search` (clauses `metadata['k']:'v'`,
//!   `status:'…'`, `currency:'…'` joined by `AND`).
//! - Cards: `pm_card_visa`/`tok_visa` and the Mastercard ones succeed;
//!   `…chargeDeclined` declines with `generic_decline`,
//!   `…chargeDeclinedInsufficientFunds` with `insufficient_funds` (HTTP 402).
//! - `Authorization: Bearer sk_test_…` is required (401 otherwise).
//! - Idempotency as Stripe: a POST's `Idempotency-Key` replays the first
//!   result (with `Idempotent-Replayed: true`) for the same parameters, and
//!   is refused for different ones; results are saved when the endpoint ran
//!   (2xx and declines), not for validation errors.
//! - Every request is recorded for assertions; the webhook events Stripe
//!   would have sent are kept (sign them with
//!   [`sign_stripe_payload`](crate::sign_stripe_payload) to deliver them);
//!   [`Fault`]s simulate outages and lost responses.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use rand::Rng;
use serde_json::{json, Value};

use crate::test_provider::{decline_message, test_card, CardOutcome};
use crate::STRIPE_API_VERSION;

/// A running double. The server stops when this is dropped.
pub struct StripeDouble {
    base_url: String,
    account: Arc<Mutex<Account>>,
    server: tokio::task::JoinHandle<()>,
}

/// One request the double received, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Decoded query string pairs, in order.
    pub query: Vec<(String, String)>,
    /// Decoded form body pairs, in order (bracketed names as sent).
    pub params: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
    /// The status the double answered.
    pub status: u16,
    /// Whether the answer was an idempotent replay.
    pub replayed: bool,
}

impl RecordedRequest {
    /// The last value of a form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        Form(&self.params).get(name)
    }
}

/// A failure to inject into the next request (after authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 500 without doing anything; nothing is saved for the
    /// idempotency key, so a retry runs the request.
    Unavailable,
    /// Do the work and save its result for the idempotency key, but answer
    /// 500, as when the response is lost on the way back: a retry with the
    /// same key replays the saved result.
    LoseResponse,
}

impl StripeDouble {
    /// Starts the double on an ephemeral port of 127.0.0.1.
    pub async fn start() -> std::io::Result<StripeDouble> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let account = Arc::new(Mutex::new(Account::default()));
        let app = Router::new().fallback(handle).with_state(account.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StripeDouble { base_url: format!("http://{addr}"), account, server })
    }

    /// `http://127.0.0.1:PORT`, for [`StripeProvider::with_base_url`](crate::StripeProvider::with_base_url).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.account().requests.clone()
    }

    /// The PaymentIntent as `GET` would return it, with `latest_charge`
    /// expanded.
    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        let account = self.account();
        account.intents.iter().find(|i| i.id == id).map(|i| account.intent_json(i, true))
    }

    /// The Stripe event objects (`{"id","object":"event","type","data":{"object"}}`)
    /// that Stripe would have sent to a webhook endpoint, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.account().events.clone()
    }

    /// Queues a fault for the next authenticated request.
    pub fn fail_next(&self, fault: Fault) {
        self.account().faults.push_back(fault);
    }

    fn account(&self) -> MutexGuard<'_, Account> {
        lock(&self.account)
    }
}

impl Drop for StripeDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(account: &Mutex<Account>) -> MutexGuard<'_, Account> {
    account.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn handle(
    State(account): State<Arc<Mutex<Account>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let decode = |bytes: &[u8]| form_urlencoded::parse(bytes).into_owned().collect::<Vec<_>>();
    let request = RecordedRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: decode(uri.query().unwrap_or_default().as_bytes()),
        params: decode(&body),
        authorization: header("authorization"),
        idempotency_key: header("idempotency-key"),
        stripe_version: header("stripe-version"),
        status: 0,
        replayed: false,
    };
    let (status, body, replayed) = lock(&account).answer(request.clone());
    let mut response = (StatusCode::from_u16(status).expect("valid status"), Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("request-id", HeaderValue::from_str(&new_id("req")).expect("ascii id"));
    headers.insert("stripe-version", HeaderValue::from_static(STRIPE_API_VERSION));
    if let Some(key) = request.idempotency_key.as_deref().and_then(|k| HeaderValue::from_str(k).ok()) {
        headers.insert("idempotency-key", key);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// The form or query pairs of a request, with Stripe's bracket conventions.
struct Form<'a>(&'a [(String, String)]);

impl<'a> Form<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// `expand[]=x` or `expand[0]=x`.
    fn expands(&self, field: &str) -> bool {
        self.0.iter().any(|(k, v)| k.starts_with("expand[") && k.ends_with(']') && v == field)
    }

    /// `metadata[key]=value`; an empty value unsets, as in Stripe.
    fn metadata(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?.to_owned(), v.clone())))
            .collect()
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// Stripe-style ids: a prefix and 24 alphanumerics.
fn new_id(prefix: &str) -> String {
    let tail: String =
        rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(24).map(char::from).collect();
    format!("{prefix}_{tail}")
}

type Answer = (u16, Value);

/// Stripe's error envelope.
fn error(kind: &str, code: Option<&str>, message: impl Into<String>, param: Option<&str>) -> Value {
    let mut error = json!({ "type": kind, "message": message.into() });
    if let Some(code) = code {
        error["code"] = code.into();
        error["doc_url"] = format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")).into();
    }
    if let Some(param) = param {
        error["param"] = param.into();
    }
    json!({ "error": error })
}

fn invalid(code: &str, message: impl Into<String>, param: Option<&str>) -> Answer {
    (400, error("invalid_request_error", Some(code), message, param))
}

fn no_such_intent(id: &str, param: &str) -> Answer {
    (
        404,
        error(
            "invalid_request_error",
            Some("resource_missing"),
            format!("No such payment_intent: '{id}'"),
            Some(param),
        ),
    )
}

fn parse_amount(form: &Form, name: &str) -> Result<Option<i64>, Answer> {
    match form.get(name) {
        None => Ok(None),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(invalid("parameter_invalid_integer", format!("Invalid integer: {text}"), Some(name))),
        },
    }
}

#[derive(Debug)]
struct Intent {
    id: String,
    created: i64,
    amount: i64,
    currency: String,
    status: &'static str,
    capture_method: String,
    amount_capturable: i64,
    amount_received: i64,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    payment_method: Option<String>,
    latest_charge: Option<String>,
    last_payment_error: Option<Value>,
    cancellation_reason: Option<String>,
    canceled_at: Option<i64>,
}

#[derive(Debug)]
struct Charge {
    id: String,
    created: i64,
    payment_intent: String,
    payment_method: String,
    amount: i64,
    amount_captured: i64,
    amount_refunded: i64,
    captured: bool,
    status: &'static str,
    currency: String,
    failure_code: Option<&'static str>,
    failure_message: Option<&'static str>,
}

impl Charge {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount_captured,
            "amount_refunded": self.amount_refunded,
            "captured": self.captured,
            "created": self.created,
            "currency": self.currency,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "livemode": false,
            "paid": self.status == "succeeded",
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "refunded": self.amount_refunded == self.amount,
            "status": self.status,
        })
    }

    /// Refundable: captured and not yet refunded (the hold released by a
    /// partial capture counts in `amount_refunded`, as at Stripe).
    fn refundable(&self) -> i64 {
        let released = self.amount - self.amount_captured;
        self.amount_captured - (self.amount_refunded - released)
    }
}

/// A saved idempotent result.
struct Saved {
    fingerprint: (String, String, Vec<(String, String)>),
    status: u16,
    body: Value,
}

#[derive(Default)]
struct Account {
    intents: Vec<Intent>,
    charges: HashMap<String, Charge>,
    idempotent: HashMap<String, Saved>,
    requests: Vec<RecordedRequest>,
    events: Vec<Value>,
    faults: VecDeque<Fault>,
}

fn authenticated(authorization: Option<&str>) -> Result<(), Answer> {
    let message = match authorization.map(|h| h.strip_prefix("Bearer ")) {
        None => "You did not provide an API key. You need to provide your API key in the Authorization header, \
                 using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
            .to_owned(),
        Some(Some(key)) if key.len() > "sk_test_".len() && key.starts_with("sk_test_") => return Ok(()),
        Some(Some(key)) => {
            let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            format!("Invalid API Key provided: {}****{tail}", key.get(..8).unwrap_or_default())
        }
        Some(None) => "Invalid authorization header; use Bearer auth.".to_owned(),
    };
    Err((401, error("invalid_request_error", None, message, None)))
}

impl Account {
    /// Authentication, faults, idempotency, then the endpoint; records the
    /// request. Returns (status, body, replayed).
    fn answer(&mut self, mut request: RecordedRequest) -> (u16, Value, bool) {
        let (status, body, replayed) = self.process(&request);
        request.status = status;
        request.replayed = replayed;
        self.requests.push(request);
        (status, body, replayed)
    }

    fn process(&mut self, request: &RecordedRequest) -> (u16, Value, bool) {
        if let Err((status, body)) = authenticated(request.authorization.as_deref()) {
            return (status, body, false);
        }
        let lost = || {
            (500, error("api_error", None, "An unknown error occurred (injected by the Stripe double).", None), false)
        };
        let fault = self.faults.pop_front();
        if fault == Some(Fault::Unavailable) {
            return lost();
        }
        let key = request.idempotency_key.clone().filter(|_| request.method == "POST");
        let mut sorted = request.params.clone();
        sorted.sort();
        let fingerprint = (request.method.clone(), request.path.clone(), sorted);
        if let Some(saved) = key.as_ref().and_then(|k| self.idempotent.get(k)) {
            if saved.fingerprint != fingerprint {
                let message = format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                     Try using a key other than '{}' if you meant to execute a different request.",
                    key.as_deref().unwrap_or_default()
                );
                return (400, error("idempotency_error", None, message, None), false);
            }
            if fault == Some(Fault::LoseResponse) {
                return lost();
            }
            return (saved.status, saved.body.clone(), true);
        }
        let (status, body) = self.route(request);
        if let Some(key) = key {
            // Saved when the endpoint ran: successes and declines.
            if (200..300).contains(&status) || status == 402 {
                self.idempotent.insert(key, Saved { fingerprint, status, body: body.clone() });
            }
        }
        if fault == Some(Fault::LoseResponse) {
            return lost();
        }
        (status, body, false)
    }

    fn route(&mut self, request: &RecordedRequest) -> Answer {
        let form = Form(&request.params);
        let query = Form(&request.query);
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("POST", ["v1", "payment_intents"]) => self.create_intent(&form),
            ("GET", ["v1", "payment_intents", "search"]) => self.search(&query),
            ("GET", ["v1", "payment_intents", id]) => match self.intent_index(id) {
                Some(i) => (200, self.intent_json(&self.intents[i], query.expands("latest_charge"))),
                None => no_such_intent(id, "intent"),
            },
            ("POST", ["v1", "payment_intents", id, "capture"]) => self.capture(id, &form),
            ("POST", ["v1", "payment_intents", id, "cancel"]) => self.cancel(id, &form),
            ("POST", ["v1", "refunds"]) => self.create_refund(&form),
            _ => (
                404,
                error(
                    "invalid_request_error",
                    None,
                    format!("Unrecognized request URL ({}: {}).", request.method, request.path),
                    None,
                ),
            ),
        }
    }

    fn intent_index(&self, id: &str) -> Option<usize> {
        self.intents.iter().position(|i| i.id == id)
    }

    fn intent_json(&self, intent: &Intent, expand_charge: bool) -> Value {
        let latest_charge = match (&intent.latest_charge, expand_charge) {
            (Some(id), true) => self.charges.get(id).map(Charge::json).unwrap_or(Value::Null),
            (Some(id), false) => Value::String(id.clone()),
            (None, _) => Value::Null,
        };
        json!({
            "id": intent.id,
            "object": "payment_intent",
            "amount": intent.amount,
            "amount_capturable": intent.amount_capturable,
            "amount_received": intent.amount_received,
            "canceled_at": intent.canceled_at,
            "cancellation_reason": intent.cancellation_reason,
            "capture_method": intent.capture_method,
            "client_secret": format!("{}_secret_double", intent.id),
            "confirmation_method": "automatic",
            "created": intent.created,
            "currency": intent.currency,
            "description": intent.description,
            "last_payment_error": intent.last_payment_error,
            "latest_charge": latest_charge,
            "livemode": false,
            "metadata": intent.metadata,
            "payment_method": intent.payment_method,
            "payment_method_types": ["card"],
            "status": intent.status,
        })
    }

    fn emit(&mut self, kind: &str, object: Value) {
        self.events.push(json!({
            "id": new_id("evt"),
            "object": "event",
            "api_version": STRIPE_API_VERSION,
            "created": now(),
            "livemode": false,
            "type": kind,
            "data": { "object": object },
        }));
    }

    fn emit_intent(&mut self, kind: &str, index: usize) {
        let object = self.intent_json(&self.intents[index], false);
        self.emit(kind, object);
    }

    fn create_intent(&mut self, form: &Form) -> Answer {
        let amount = match parse_amount(form, "amount") {
            Ok(Some(amount)) => amount,
            Ok(None) => return invalid("parameter_missing", "Missing required param: amount.", Some("amount")),
            Err(answer) => return answer,
        };
        let currency = match form.get("currency") {
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => c.to_ascii_lowercase(),
            Some(c) => return invalid("parameter_invalid_string", format!("Invalid currency: {c}."), Some("currency")),
            None => return invalid("parameter_missing", "Missing required param: currency.", Some("currency")),
        };
        let capture_method = form.get("capture_method").unwrap_or("automatic");
        if !matches!(capture_method, "automatic" | "automatic_async" | "manual") {
            return invalid("parameter_invalid_string", "Invalid capture_method.", Some("capture_method"));
        }
        let confirm = match form.get("confirm") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return invalid("parameter_invalid_boolean", "Invalid boolean.", Some("confirm")),
        };
        let source = match (form.get("payment_method"), form.get("payment_method_data[card][token]")) {
            (Some(_), Some(_)) => {
                return invalid(
                    "parameter_unknown",
                    "You cannot provide both payment_method and payment_method_data.",
                    Some("payment_method_data"),
                )
            }
            (Some(pm), None) => Some((pm, "payment_method", "PaymentMethod")),
            (None, Some(token)) if form.get("payment_method_data[type]") == Some("card") => {
                Some((token, "payment_method_data[card][token]", "token"))
            }
            (None, Some(_)) => {
                return invalid(
                    "parameter_missing",
                    "Missing required param: payment_method_data[type].",
                    Some("payment_method_data[type]"),
                )
            }
            (None, None) => None,
        };
        let outcome = match source {
            Some((value, param, what)) => match test_card(value) {
                Some(outcome) => Some(outcome),
                None => {
                    let message = format!("No such {what}: '{value}'");
                    return (404, error("invalid_request_error", Some("resource_missing"), message, Some(param)));
                }
            },
            None if confirm => {
                return invalid(
                    "payment_intent_unexpected_state",
                    "You cannot confirm this PaymentIntent because it's missing a payment method.",
                    Some("payment_method"),
                )
            }
            None => None,
        };
        let created = now();
        let payment_method = source.map(|_| new_id("pm"));
        let mut intent = Intent {
            id: new_id("pi"),
            created,
            amount,
            currency: currency.clone(),
            status: if source.is_some() { "requires_confirmation" } else { "requires_payment_method" },
            capture_method: capture_method.to_owned(),
            amount_capturable: 0,
            amount_received: 0,
            description: form.get("description").map(str::to_owned),
            metadata: form.metadata(),
            payment_method: payment_method.clone(),
            latest_charge: None,
            last_payment_error: None,
            cancellation_reason: None,
            canceled_at: None,
        };
        let mut decline = None;
        if let (true, Some(outcome), Some(pm)) = (confirm, outcome, payment_method) {
            let mut charge = Charge {
                id: new_id("ch"),
                created,
                payment_intent: intent.id.clone(),
                payment_method: pm.clone(),
                amount,
                amount_captured: 0,
                amount_refunded: 0,
                captured: false,
                status: "succeeded",
                currency,
                failure_code: None,
                failure_message: None,
            };
            match outcome {
                CardOutcome::Approve if capture_method == "manual" => {
                    intent.status = "requires_capture";
                    intent.amount_capturable = amount;
                }
                CardOutcome::Approve => {
                    intent.status = "succeeded";
                    intent.amount_received = amount;
                    charge.captured = true;
                    charge.amount_captured = amount;
                }
                CardOutcome::Decline(decline_code) => {
                    let message = decline_message(decline_code);
                    charge.status = "failed";
                    charge.failure_code = Some("card_declined");
                    charge.failure_message = Some(message);
                    intent.status = "requires_payment_method";
                    intent.payment_method = None;
                    let last_error = json!({
                        "type": "card_error",
                        "code": "card_declined",
                        "decline_code": decline_code,
                        "message": message,
                        "charge": charge.id,
                        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                        "payment_method": { "id": pm, "object": "payment_method", "type": "card" },
                    });
                    intent.last_payment_error = Some(last_error.clone());
                    decline = Some(last_error);
                }
            }
            intent.latest_charge = Some(charge.id.clone());
            self.charges.insert(charge.id.clone(), charge);
        }
        self.intents.push(intent);
        let index = self.intents.len() - 1;
        self.emit_intent("payment_intent.created", index);
        let expand = form.expands("latest_charge");
        match (decline, self.intents[index].status) {
            (Some(mut error), _) => {
                self.emit_intent("payment_intent.payment_failed", index);
                error["payment_intent"] = self.intent_json(&self.intents[index], expand);
                (402, json!({ "error": error }))
            }
            (None, status) => {
                match status {
                    "requires_capture" => self.emit_intent("payment_intent.amount_capturable_updated", index),
                    "succeeded" => self.emit_intent("payment_intent.succeeded", index),
                    _ => {}
                }
                (200, self.intent_json(&self.intents[index], expand))
            }
        }
    }

    fn capture(&mut self, id: &str, form: &Form) -> Answer {
        let Some(index) = self.intent_index(id) else {
            return no_such_intent(id, "intent");
        };
        let requested = match parse_amount(form, "amount_to_capture") {
            Ok(amount) => amount,
            Err(answer) => return answer,
        };
        let intent = &mut self.intents[index];
        if intent.status != "requires_capture" {
            let message = format!(
                "This PaymentIntent could not be captured because it has a status of {}. \
                 Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                intent.status
            );
            return invalid("payment_intent_unexpected_state", message, None);
        }
        let amount = requested.unwrap_or(intent.amount_capturable);
        if amount > intent.amount_capturable {
            let message = format!(
                "The amount to capture must be less than or equal to the amount capturable ({}).",
                intent.amount_capturable
            );
            return invalid("amount_too_large", message, Some("amount_to_capture"));
        }
        intent.status = "succeeded";
        intent.amount_received = amount;
        intent.amount_capturable = 0;
        if let Some(charge) = intent.latest_charge.as_ref().and_then(|c| self.charges.get_mut(c)) {
            // Stripe refunds the uncaptured rest of a partial capture.
            charge.captured = true;
            charge.amount_captured = amount;
            charge.amount_refunded = charge.amount - amount;
        }
        self.emit_intent("payment_intent.succeeded", index);
        (200, self.intent_json(&self.intents[index], form.expands("latest_charge")))
    }

    fn cancel(&mut self, id: &str, form: &Form) -> Answer {
        let Some(index) = self.intent_index(id) else {
            return no_such_intent(id, "intent");
        };
        let reason = form.get("cancellation_reason");
        if !matches!(reason, None | Some("duplicate" | "fraudulent" | "requested_by_customer" | "abandoned")) {
            return invalid("parameter_invalid_string", "Invalid cancellation_reason.", Some("cancellation_reason"));
        }
        let intent = &mut self.intents[index];
        if matches!(intent.status, "succeeded" | "canceled") {
            let message = format!(
                "You cannot cancel this PaymentIntent because it has a status of {}. Only a PaymentIntent with one of \
                 the following statuses may be canceled: requires_payment_method, requires_capture, \
                 requires_confirmation, requires_action, processing.",
                intent.status
            );
            return invalid("payment_intent_unexpected_state", message, None);
        }
        intent.status = "canceled";
        intent.cancellation_reason = reason.map(str::to_owned);
        intent.canceled_at = Some(now());
        intent.amount_capturable = 0;
        if let Some(charge) = intent.latest_charge.as_ref().and_then(|c| self.charges.get_mut(c)) {
            // Canceling releases the hold, which Stripe records as a refund.
            if charge.status == "succeeded" && !charge.captured {
                charge.amount_refunded = charge.amount;
            }
        }
        self.emit_intent("payment_intent.canceled", index);
        (200, self.intent_json(&self.intents[index], form.expands("latest_charge")))
    }

    fn create_refund(&mut self, form: &Form) -> Answer {
        let index = match (form.get("payment_intent"), form.get("charge")) {
            (Some(pi), _) => match self.intent_index(pi) {
                Some(index) => index,
                None => return no_such_intent(pi, "payment_intent"),
            },
            (None, Some(ch)) => match self.charges.get(ch).and_then(|c| self.intent_index(&c.payment_intent)) {
                Some(index) => index,
                None => {
                    let message = format!("No such charge: '{ch}'");
                    return (404, error("invalid_request_error", Some("resource_missing"), message, Some("charge")));
                }
            },
            (None, None) => {
                return invalid(
                    "parameter_missing",
                    "One of the following params should be provided for this request: payment_intent or charge.",
                    None,
                )
            }
        };
        let requested = match parse_amount(form, "amount") {
            Ok(amount) => amount,
            Err(answer) => return answer,
        };
        let intent = &self.intents[index];
        let charge = match intent.latest_charge.as_ref().and_then(|c| self.charges.get_mut(c)) {
            Some(charge) if intent.status == "succeeded" => charge,
            _ => {
                let message =
                    format!("This PaymentIntent ({}) does not have a successful charge to refund.", intent.id);
                return invalid("charge_not_refundable", message, Some("payment_intent"));
            }
        };
        let refundable = charge.refundable();
        if refundable == 0 {
            return invalid(
                "charge_already_refunded",
                format!("Charge {} has already been refunded.", charge.id),
                None,
            );
        }
        let amount = requested.unwrap_or(refundable);
        if amount > refundable {
            let message =
                format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable})");
            return invalid("amount_too_large", message, Some("amount"));
        }
        charge.amount_refunded += amount;
        let refund = json!({
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge.id,
            "created": now(),
            "currency": charge.currency,
            "metadata": form.metadata(),
            "payment_intent": charge.payment_intent,
            "reason": form.get("reason"),
            "status": "succeeded",
        });
        let charge_json = charge.json();
        self.emit("charge.refunded", charge_json);
        self.emit("refund.created", refund.clone());
        (200, refund)
    }

    fn search(&self, query: &Form) -> Answer {
        let Some(text) = query.get("query") else {
            return invalid("parameter_missing", "Missing required param: query.", Some("query"));
        };
        let clauses = match parse_search(text) {
            Ok(clauses) => clauses,
            Err(message) => return (400, error("invalid_request_error", None, message, Some("query"))),
        };
        let limit = query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(10).clamp(1, 100);
        let expand = query.expands("data.latest_charge");
        let matching: Vec<&Intent> = self
            .intents
            .iter()
            .rev()
            .filter(|intent| {
                clauses.iter().all(|(field, value)| match field {
                    Field::Metadata(key) => intent.metadata.get(key) == Some(value),
                    Field::Status => intent.status == value,
                    Field::Currency => intent.currency == value.to_ascii_lowercase(),
                })
            })
            .collect();
        let data: Vec<Value> = matching.iter().take(limit).map(|intent| self.intent_json(intent, expand)).collect();
        (
            200,
            json!({
                "object": "search_result",
                "data": data,
                "has_more": matching.len() > limit,
                "next_page": null,
                "url": "/v1/payment_intents/search",
            }),
        )
    }
}

enum Field {
    Metadata(String),
    Status,
    Currency,
}

/// The subset of Stripe's search language the double understands:
/// `field:'value'` clauses joined by ` AND `, where field is
/// `metadata['key']`, `status` or `currency`, and values are single- or
/// double-quoted with backslash escapes.
fn parse_search(query: &str) -> Result<Vec<(Field, String)>, String> {
    let unsupported = || format!("The Stripe double cannot parse this search query: {query}");
    let mut rest = query.trim();
    let mut clauses = Vec::new();
    loop {
        let field = if let Some(after) = rest.strip_prefix("metadata[") {
            let (key, after) = quoted(after).ok_or_else(unsupported)?;
            rest = after.strip_prefix(']').ok_or_else(unsupported)?;
            Field::Metadata(key)
        } else if let Some(after) = rest.strip_prefix("status") {
            rest = after;
            Field::Status
        } else if let Some(after) = rest.strip_prefix("currency") {
            rest = after;
            Field::Currency
        } else {
            return Err(unsupported());
        };
        rest = rest.strip_prefix(':').ok_or_else(unsupported)?;
        let (value, after) = quoted(rest).ok_or_else(unsupported)?;
        clauses.push((field, value));
        rest = after.trim_start();
        if rest.is_empty() {
            return Ok(clauses);
        }
        rest = rest.strip_prefix("AND ").ok_or_else(unsupported)?.trim_start();
    }
}

/// A quoted string at the start of `text`: its unescaped value and the rest.
fn quoted(text: &str) -> Option<(String, &str)> {
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            c if c == quote => return Some((value, &text[i + 1..])),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_queries_parse_like_stripe() {
        let clauses = parse_search(r#"metadata['keel_idempotency_key']:'it\'s' AND status:"requires_capture""#).unwrap();
        assert!(matches!(&clauses[0], (Field::Metadata(k), v) if k == "keel_idempotency_key" && v == "it's"));
        assert!(matches!(&clauses[1], (Field::Status, v) if v == "requires_capture"));
        for bad in ["", "amount>100", "metadata['k']:'unterminated", "status:'a' OR status:'b'", "metadata[k]:'v'"] {
            assert!(parse_search(bad).is_err(), "{bad}");
        }
    }
}

//! Stripe-shaped webhook events, shared by both providers: the test provider
//! signs and shapes its events like Stripe so that Keel has one webhook path.

use serde_json::Value;

use crate::{verify_stripe_signature, PaymentError, WebhookEvent, DEFAULT_TOLERANCE_SECS};

pub(crate) const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Verifies the `Stripe-Signature` header, then parses the event.
pub(crate) fn parse_signed_event(
    headers: &[(String, String)],
    body: &[u8],
    secret: &str,
    now_unix: i64,
) -> Result<WebhookEvent, PaymentError> {
    let header = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(SIGNATURE_HEADER))
        .map(|(_, value)| value.as_str())
        .ok_or(PaymentError::InvalidSignature { reason: "missing Stripe-Signature header" })?;
    verify_stripe_signature(header, body, secret, now_unix, DEFAULT_TOLERANCE_SECS)?;
    parse_event(body)
}

/// `{"id", "type", "data": {"object": {…}}}`. The payment id is the object's
/// own id for PaymentIntents and its `payment_intent` field for charges and
/// refunds.
fn parse_event(body: &[u8]) -> Result<WebhookEvent, PaymentError> {
    let raw: Value =
        serde_json::from_slice(body).map_err(|e| PaymentError::invalid(format!("webhook body is not JSON: {e}")))?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let id = text(&raw["id"]).ok_or_else(|| PaymentError::invalid("webhook event has no id"))?;
    let kind = text(&raw["type"]).ok_or_else(|| PaymentError::invalid("webhook event has no type"))?;
    let object = &raw["data"]["object"];
    let payment_id = match object["object"].as_str() {
        Some("payment_intent") => text(&object["id"]),
        _ => text(&object["payment_intent"]),
    };
    let amount_refunded = match object["object"].as_str() {
        Some("charge") => refunded_by_merchant(object),
        _ => None,
    };
    Ok(WebhookEvent { id, kind, payment_id, amount_refunded, raw })
}

/// What the merchant refunded on a Stripe Charge object. Stripe records a
/// released hold as a refund: all of an uncaptured charge when its
/// PaymentIntent is canceled, and the uncaptured rest of a partial capture.
/// That money was never collected, so it is not counted here.
pub(crate) fn refunded_by_merchant(charge: &Value) -> Option<i64> {
    let refunded = charge["amount_refunded"].as_i64()?;
    let released = match (charge["captured"].as_bool(), charge["amount"].as_i64(), charge["amount_captured"].as_i64()) {
        (Some(false), _, _) => return Some(0),
        (Some(true), Some(amount), Some(captured)) => amount - captured,
        _ => 0,
    };
    Some((refunded - released).max(0))
}

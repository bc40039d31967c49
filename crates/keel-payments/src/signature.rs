//! Stripe's webhook signature scheme: `Stripe-Signature: t=<unix>,v1=<hex>`,
//! where v1 is HMAC-SHA256 over `"{t}.{body}"` keyed with the endpoint secret
//! (`whsec_…`, used as raw bytes, not decoded). Several v1 values appear while
//! a secret is being rolled; any one matching is enough. The timestamp is
//! signed too, which is what makes refusing old deliveries a replay defence.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::PaymentError;

/// Stripe's libraries default to five minutes.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn refuse(reason: &'static str) -> PaymentError {
    PaymentError::InvalidSignature { reason }
}

fn mac_over(secret: &str, t: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Verifies a `Stripe-Signature` header value against the raw request body.
///
/// Refuses a malformed header, a header without a v1 signature, a signature
/// that matches no v1 value (compared in constant time), and a timestamp more
/// than `tolerance_secs` away from `now_unix` in either direction (Stripe only
/// refuses old ones; a timestamp from the future means a wrong clock or a
/// forged retry, and is refused too). Other schemes (`v0`) are ignored.
pub fn verify_stripe_signature(
    header: &str,
    body: &[u8],
    secret: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), PaymentError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(refuse("malformed header"))?;
        match key {
            "t" => {
                let t = value.parse::<i64>().map_err(|_| refuse("malformed header"))?;
                if timestamp.replace(t).is_some() {
                    return Err(refuse("malformed header"));
                }
            }
            "v1" => candidates.push(value),
            _ => {}
        }
    }
    let t = timestamp.ok_or(refuse("malformed header"))?;
    if candidates.is_empty() {
        return Err(refuse("no v1 signature"));
    }
    let mac = mac_over(secret, t, body);
    let matched = candidates
        .iter()
        .filter_map(|c| hex::decode(c).ok())
        .any(|candidate| mac.clone().verify_slice(&candidate).is_ok());
    if !matched {
        return Err(refuse("signature mismatch"));
    }
    if now_unix.abs_diff(t) > tolerance_secs.max(0) as u64 {
        return Err(refuse("timestamp outside tolerance"));
    }
    Ok(())
}

/// A valid `Stripe-Signature` header value for `body` at time `t`: what
/// Stripe sends, for tests and the test double.
pub fn sign_stripe_payload(body: &[u8], secret: &str, t: i64) -> String {
    let signature = mac_over(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(signature))
}

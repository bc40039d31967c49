//! Stripe webhook signatures: `sign_stripe_payload` against independently
//! computed HMACs, and every way `verify_stripe_signature` must refuse.

use hmac::{Hmac, Mac};
use keel_payments::{sign_stripe_payload, verify_stripe_signature, PaymentError, DEFAULT_TOLERANCE_SECS};
use sha2::Sha256;

const SECRET: &str = "whsec_keel_test_vector";
const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
const T: i64 = 1_700_000_000;

/// HMAC-SHA256 over "{t}.{body}", written out here rather than through the
/// crate, keyed with the secret's bytes as Stripe does.
fn reference_v1(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn verify(header: &str, body: &[u8], secret: &str, now: i64) -> Result<(), PaymentError> {
    verify_stripe_signature(header, body, secret, now, DEFAULT_TOLERANCE_SECS)
}

fn refused(reason: &'static str) -> Result<(), PaymentError> {
    Err(PaymentError::InvalidSignature { reason })
}

#[test]
fn signing_matches_an_independent_computation() {
    // Computed outside Rust (Python's hmac module) for this exact input.
    let fixed = "4b6721320134bffdc34fbdd344ce0113552b3578e6af513eaaebc8a17b73a74f";
    assert_eq!(reference_v1(SECRET, T, BODY), fixed);
    assert_eq!(sign_stripe_payload(BODY, SECRET, T), format!("t={T},v1={fixed}"));
    // And for other inputs, against the hmac crate directly.
    for (secret, t, body) in [("whsec_other", 1, &b""[..]), ("whsec_x", 1_800_000_123, &b"\x00\xff binary"[..])] {
        assert_eq!(sign_stripe_payload(body, secret, t), format!("t={t},v1={}", reference_v1(secret, t, body)));
    }
}

#[test]
fn a_valid_signature_passes_within_tolerance() {
    let header = sign_stripe_payload(BODY, SECRET, T);
    assert_eq!(verify(&header, BODY, SECRET, T), Ok(()));
    assert_eq!(verify(&header, BODY, SECRET, T + 300), Ok(()));
    assert_eq!(verify(&header, BODY, SECRET, T - 300), Ok(()));
    // Whitespace after commas, as some proxies reformat headers.
    let spaced = header.replace(',', ", ");
    assert_eq!(verify(&spaced, BODY, SECRET, T), Ok(()));
}

#[test]
fn wrong_secret_is_refused() {
    let header = sign_stripe_payload(BODY, "whsec_someone_else", T);
    assert_eq!(verify(&header, BODY, SECRET, T), refused("signature mismatch"));
}

#[test]
fn stale_and_future_timestamps_are_refused() {
    let header = sign_stripe_payload(BODY, SECRET, T);
    assert_eq!(verify(&header, BODY, SECRET, T + 301), refused("timestamp outside tolerance"));
    assert_eq!(verify(&header, BODY, SECRET, T + 86_400), refused("timestamp outside tolerance"));
    assert_eq!(verify(&header, BODY, SECRET, T - 301), refused("timestamp outside tolerance"));
    // Extreme values do not overflow.
    let ancient = sign_stripe_payload(BODY, SECRET, i64::MIN);
    assert_eq!(verify(&ancient, BODY, SECRET, i64::MAX), refused("timestamp outside tolerance"));
    // A zero tolerance accepts only the exact second.
    assert_eq!(verify_stripe_signature(&header, BODY, SECRET, T, 0), Ok(()));
    assert_eq!(verify_stripe_signature(&header, BODY, SECRET, T + 1, 0), refused("timestamp outside tolerance"));
}

#[test]
fn a_timestamp_changed_in_the_header_breaks_the_signature() {
    // Moving t forward to dodge the tolerance check invalidates the MAC.
    let header = sign_stripe_payload(BODY, SECRET, T).replace(&format!("t={T}"), &format!("t={}", T + 1000));
    assert_eq!(verify(&header, BODY, SECRET, T + 1000), refused("signature mismatch"));
}

#[test]
fn modified_body_is_refused() {
    let header = sign_stripe_payload(BODY, SECRET, T);
    let tampered = br#"{"id":"evt_1","type":"payment_intent.succeedeD"}"#;
    assert_eq!(verify(&header, tampered, SECRET, T), refused("signature mismatch"));
    assert_eq!(verify(&header, &BODY[..BODY.len() - 1], SECRET, T), refused("signature mismatch"));
}

#[test]
fn malformed_headers_are_refused() {
    let v1 = reference_v1(SECRET, T, BODY);
    for header in ["", "garbage", "t", &format!("v1={v1}"), &format!("t=abc,v1={v1}"), &format!("t=,v1={v1}")] {
        assert_eq!(verify(header, BODY, SECRET, T), refused("malformed header"), "header {header:?}");
    }
    let twice = format!("t={T},t={T},v1={v1}");
    assert_eq!(verify(&twice, BODY, SECRET, T), refused("malformed header"));
    assert_eq!(verify(&format!("t={T}"), BODY, SECRET, T), refused("no v1 signature"));
    // v0 is not a signature Keel accepts, even if it is the right HMAC.
    assert_eq!(verify(&format!("t={T},v0={v1}"), BODY, SECRET, T), refused("no v1 signature"));
    // Not hex, wrong length, upper-case hex of the wrong value.
    for bad in ["zz", "00", &v1[..62], &"A".repeat(64)] {
        assert_eq!(verify(&format!("t={T},v1={bad}"), BODY, SECRET, T), refused("signature mismatch"));
    }
}

#[test]
fn any_one_valid_v1_among_several_passes() {
    let good = reference_v1(SECRET, T, BODY);
    let old_secret = reference_v1("whsec_rolled_out", T, BODY);
    for header in [
        format!("t={T},v1={old_secret},v1={good}"),
        format!("t={T},v1={good},v1={old_secret}"),
        format!("t={T},v1=not-hex,v1={good},v0={old_secret}"),
        format!("v1={old_secret},t={T},v1={good}"),
    ] {
        assert_eq!(verify(&header, BODY, SECRET, T), Ok(()), "header {header}");
    }
    let none_valid = format!("t={T},v1={old_secret},v1={}", reference_v1("whsec_third", T, BODY));
    assert_eq!(verify(&none_valid, BODY, SECRET, T), refused("signature mismatch"));
}

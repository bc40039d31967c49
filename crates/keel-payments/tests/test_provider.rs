//! The built-in test provider: token behaviours, idempotency, the
//! capture/void/refund rules, persistence across a "restart", webhooks.

use std::collections::BTreeMap;
use std::sync::Arc;

use keel_payments::{
    AuthorizeRequest, InMemoryLedger, Payment, PaymentError, PaymentProvider, PaymentState, RefundState, TestLedger,
    TestProvider,
};

const SECRET: &str = "whsec_test_provider";

fn provider(ledger: &Arc<InMemoryLedger>) -> TestProvider {
    TestProvider::new(ledger.clone(), SECRET)
}

fn fresh() -> (Arc<InMemoryLedger>, TestProvider) {
    let ledger = Arc::new(InMemoryLedger::new());
    let provider = provider(&ledger);
    (ledger, provider)
}

fn request(token: &str, amount: i64, key: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        amount,
        currency: "EUR".into(),
        payment_method: token.into(),
        idempotency_key: key.into(),
        description: Some("order ord_1".into()),
        metadata: BTreeMap::from([("order_id".to_owned(), "ord_1".to_owned())]),
    }
}

async fn authorized(p: &TestProvider, amount: i64, key: &str) -> Payment {
    p.authorize(request("tok_visa", amount, key)).await.unwrap()
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, PaymentError>) {
    assert!(matches!(result, Err(PaymentError::InvalidRequest { .. })), "expected InvalidRequest, got {result:?}");
}

#[tokio::test]
async fn approving_tokens_authorize() {
    let (_, p) = fresh();
    for (i, token) in ["tok_visa", "tok_mastercard", "pm_card_visa", "pm_card_mastercard"].iter().enumerate() {
        let payment = p.authorize(request(token, 1250, &format!("k{i}"))).await.unwrap();
        assert!(payment.id.starts_with("pi_test_"), "{}", payment.id);
        assert_eq!(payment.id.len(), "pi_test_".len() + 24);
        assert!(payment.id["pi_test_".len()..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(payment.status, PaymentState::Authorized);
        assert_eq!((payment.amount, payment.amount_captured, payment.amount_refunded), (1250, 0, 0));
        assert_eq!(payment.currency, "EUR");
        assert_eq!(payment.decline_code, None);
    }
    assert_eq!(p.name(), "test");
}

#[tokio::test]
async fn declining_tokens_decline_with_stripe_codes() {
    let (_, p) = fresh();
    let cases = [
        ("tok_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclined", "generic_decline"),
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ];
    for (token, expected) in cases {
        let key = format!("decline-{token}");
        match p.authorize(request(token, 500, &key)).await {
            Err(PaymentError::Declined { code, decline_code, message }) => {
                assert_eq!(code, "card_declined");
                assert_eq!(decline_code.as_deref(), Some(expected));
                assert!(!message.is_empty());
            }
            other => panic!("{token}: expected a decline, got {other:?}"),
        }
        // The failed attempt is on record, as a declined PaymentIntent is.
        let found = p.find_by_idempotency_key(&key).await.unwrap().expect("recorded");
        assert_eq!(found.status, PaymentState::Failed);
        assert_eq!(found.decline_code.as_deref(), Some(expected));
        // A retry with the same key answers the same decline.
        let again = p.authorize(request(token, 500, &key)).await.unwrap_err();
        assert!(matches!(again, PaymentError::Declined { decline_code: Some(ref d), .. } if d == expected));
        assert!(!again.is_retryable());
    }
}

#[tokio::test]
async fn unknown_tokens_and_bad_requests_are_invalid_and_leave_no_trace() {
    let (_, p) = fresh();
    assert_invalid(p.authorize(request("tok_unknown", 500, "u1")).await);
    assert_eq!(p.find_by_idempotency_key("u1").await.unwrap(), None);
    assert_invalid(p.authorize(request("4242424242424242", 500, "u2")).await);
    assert_invalid(p.authorize(request("tok_visa", 0, "u3")).await);
    assert_invalid(p.authorize(request("tok_visa", -5, "u4")).await);
    let mut lower = request("tok_visa", 500, "u5");
    lower.currency = "eur".into();
    assert_invalid(p.authorize(lower).await);
    assert_invalid(p.authorize(request("tok_visa", 500, "")).await);
    assert_invalid(p.authorize(request("tok_visa", 500, &"k".repeat(256))).await);
    let mut reserved = request("tok_visa", 500, "u6");
    reserved.metadata.insert("keel_idempotency_key".into(), "other".into());
    assert_invalid(p.authorize(reserved).await);
    // A valid request with one of those keys still works afterwards.
    authorized(&p, 500, "u1").await;
}

#[tokio::test]
async fn same_key_returns_the_same_payment_without_a_second_authorization() {
    let (ledger, p) = fresh();
    let first = authorized(&p, 700, "order-1-auth").await;
    let second = authorized(&p, 700, "order-1-auth").await;
    assert_eq!(first, second);
    let other = authorized(&p, 700, "order-2-auth").await;
    assert_ne!(first.id, other.id);
    // One ledger entry per payment, nothing else.
    let entry = ledger.load(&format!("payment:{}", first.id)).await.unwrap();
    assert!(entry.is_some());
    // The same key with different parameters is refused, as Stripe does.
    assert_invalid(p.authorize(request("tok_visa", 701, "order-1-auth")).await);
    assert_invalid(p.authorize(request("tok_mastercard", 700, "order-1-auth")).await);
    // Still authorized once, and still findable.
    assert_eq!(p.find_by_idempotency_key("order-1-auth").await.unwrap(), Some(first));
    assert_eq!(p.find_by_idempotency_key("never-used").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_authorize_once() {
    let (_, p) = fresh();
    let p = Arc::new(p);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.authorize(request("tok_visa", 900, "race")).await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn capture_rules() {
    let (_, p) = fresh();
    // Full capture.
    let full = authorized(&p, 1000, "a1").await;
    let captured = p.capture(&full.id, None, "c1").await.unwrap();
    assert_eq!((captured.status, captured.amount_captured), (PaymentState::Captured, 1000));
    // Retrying the capture with its key answers the same; a second capture does not.
    assert_eq!(p.capture(&full.id, None, "c1").await.unwrap(), captured);
    assert_invalid(p.capture(&full.id, None, "c1-again").await);
    // The same key with another amount is a different request.
    assert_invalid(p.capture(&full.id, Some(10), "c1").await);

    // Partial capture releases the rest.
    let partial = authorized(&p, 1000, "a2").await;
    let captured = p.capture(&partial.id, Some(600), "c2").await.unwrap();
    assert_eq!((captured.status, captured.amount, captured.amount_captured), (PaymentState::Captured, 1000, 600));

    // More than authorized, zero, negative.
    let p3 = authorized(&p, 1000, "a3").await;
    assert_invalid(p.capture(&p3.id, Some(1001), "c3").await);
    assert_invalid(p.capture(&p3.id, Some(0), "c3b").await);
    assert_invalid(p.capture(&p3.id, Some(-1), "c3c").await);
    // Still capturable after those refusals.
    p.capture(&p3.id, Some(1000), "c3d").await.unwrap();

    // Not found, declined.
    assert_eq!(p.capture("pi_test_000000000000000000000000", None, "c4").await, Err(PaymentError::NotFound));
    let _ = p.authorize(request("tok_chargeDeclined", 100, "a5")).await;
    let failed = p.find_by_idempotency_key("a5").await.unwrap().unwrap();
    assert_invalid(p.capture(&failed.id, None, "c5").await);
}

#[tokio::test]
async fn void_rules() {
    let (_, p) = fresh();
    let payment = authorized(&p, 1000, "a1").await;
    let voided = p.void(&payment.id, "v1").await.unwrap();
    assert_eq!(voided.status, PaymentState::Voided);
    assert_eq!(p.void(&payment.id, "v1").await.unwrap(), voided);
    assert_invalid(p.void(&payment.id, "v1-again").await);
    assert_invalid(p.capture(&payment.id, None, "c-after-void").await);
    assert_invalid(p.refund(&payment.id, 100, "r-after-void").await);

    let captured = authorized(&p, 1000, "a2").await;
    p.capture(&captured.id, None, "c2").await.unwrap();
    assert_invalid(p.void(&captured.id, "v2").await);

    // A declined attempt can be canceled, as at Stripe.
    let _ = p.authorize(request("tok_chargeDeclined", 100, "a3")).await;
    let failed = p.find_by_idempotency_key("a3").await.unwrap().unwrap();
    assert_eq!(p.void(&failed.id, "v3").await.unwrap().status, PaymentState::Voided);

    assert_eq!(p.void("pi_test_nope", "v4").await, Err(PaymentError::NotFound));
}

#[tokio::test]
async fn refund_rules() {
    let (_, p) = fresh();
    let payment = authorized(&p, 1000, "a1").await;
    assert_invalid(p.refund(&payment.id, 100, "r0").await); // not captured yet
    p.capture(&payment.id, Some(800), "c1").await.unwrap();

    assert_invalid(p.refund(&payment.id, 801, "r1").await); // more than captured
    assert_invalid(p.refund(&payment.id, 0, "r1").await);

    let first = p.refund(&payment.id, 300, "r2").await.unwrap();
    assert!(first.id.starts_with("re_test_"));
    assert_eq!(
        (first.payment_id.as_str(), first.amount, first.status),
        (payment.id.as_str(), 300, RefundState::Succeeded)
    );
    // Retrying the refund does not refund twice.
    assert_eq!(p.refund(&payment.id, 300, "r2").await.unwrap(), first);
    assert_invalid(p.refund(&payment.id, 301, "r2").await);
    let after = p.find_by_idempotency_key("a1").await.unwrap().unwrap();
    assert_eq!((after.status, after.amount_refunded), (PaymentState::PartiallyRefunded, 300));

    assert_invalid(p.refund(&payment.id, 501, "r3").await); // only 500 left
    let rest = p.refund(&payment.id, 500, "r3").await.unwrap();
    assert_ne!(rest.id, first.id);
    let after = p.find_by_idempotency_key("a1").await.unwrap().unwrap();
    assert_eq!((after.status, after.amount_captured, after.amount_refunded), (PaymentState::Refunded, 800, 800));
    assert_invalid(p.refund(&payment.id, 1, "r4").await);
    assert_eq!(p.refund("pi_test_nope", 1, "r5").await, Err(PaymentError::NotFound));
}

#[tokio::test]
async fn state_survives_a_restart_over_the_same_ledger() {
    let ledger = Arc::new(InMemoryLedger::new());
    let before = provider(&ledger);
    let payment = authorized(&before, 2000, "crash-auth").await;
    before.capture(&payment.id, Some(1500), "crash-capture").await.unwrap();
    drop(before);

    let after = provider(&ledger);
    let found = after.find_by_idempotency_key("crash-auth").await.unwrap().expect("survived");
    assert_eq!(
        (found.id.as_str(), found.status, found.amount_captured),
        (payment.id.as_str(), PaymentState::Captured, 1500)
    );
    // Retries of the pre-restart calls replay; nothing is done twice.
    assert_eq!(authorized(&after, 2000, "crash-auth").await.id, payment.id);
    assert_eq!(after.capture(&payment.id, Some(1500), "crash-capture").await.unwrap().amount_captured, 1500);
    // And the payment carries on.
    after.refund(&payment.id, 1500, "crash-refund").await.unwrap();
    let refunded = provider(&ledger).find_by_idempotency_key("crash-auth").await.unwrap().unwrap();
    assert_eq!(refunded.status, PaymentState::Refunded);

    // A different ledger (another database) knows nothing of it.
    let (_, elsewhere) = fresh();
    assert_eq!(elsewhere.find_by_idempotency_key("crash-auth").await.unwrap(), None);
}

#[tokio::test]
async fn usable_as_a_trait_object() {
    let (_, p) = fresh();
    let provider: Arc<dyn PaymentProvider> = Arc::new(p);
    let payment = provider.authorize(request("tok_visa", 100, "dyn")).await.unwrap();
    let payment = provider.capture(&payment.id, None, "dyn-c").await.unwrap();
    assert_eq!(payment.status, PaymentState::Captured);
    // The future is Send: it can run on another task.
    let moved = provider.clone();
    let found = tokio::spawn(async move { moved.find_by_idempotency_key("dyn").await }).await.unwrap().unwrap();
    assert_eq!(found, Some(payment));
}

#[tokio::test]
async fn webhooks_are_signed_like_stripe_and_verified() {
    let (_, p) = fresh();
    let payment = authorized(&p, 1000, "w1").await;
    let payment = p.capture(&payment.id, Some(600), "wc").await.unwrap();
    let now = 1_700_000_000;

    let (headers, body) = p.signed_event("payment_intent.succeeded", &payment, now);
    let event = p.parse_webhook(&headers, &body, now + 10).unwrap();
    assert_eq!(event.kind, "payment_intent.succeeded");
    assert!(event.id.starts_with("evt_test_"));
    assert_eq!(event.payment_id.as_deref(), Some(payment.id.as_str()));
    assert_eq!(event.amount_refunded, None);
    assert_eq!(event.raw["data"]["object"]["status"], "succeeded");

    p.refund(&payment.id, 250, "wr").await.unwrap();
    let refunded = p.find_by_idempotency_key("w1").await.unwrap().unwrap();
    let (headers, body) = p.signed_event("charge.refunded", &refunded, now);
    let event = p.parse_webhook(&headers, &body, now).unwrap();
    assert_eq!(event.payment_id.as_deref(), Some(payment.id.as_str()));
    // 250 refunded; the 400 released by the partial capture does not count.
    assert_eq!(event.amount_refunded, Some(250));

    // Header names are case-insensitive.
    let lower: Vec<_> = headers.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect();
    assert!(p.parse_webhook(&lower, &body, now).is_ok());
    // Refusals.
    let sig = |reason| Err(PaymentError::InvalidSignature { reason });
    assert_eq!(p.parse_webhook(&[], &body, now), sig("missing Stripe-Signature header"));
    assert_eq!(p.parse_webhook(&headers, &body, now + 301), sig("timestamp outside tolerance"));
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(p.parse_webhook(&headers, &tampered, now), sig("signature mismatch"));
    let other = TestProvider::new(Arc::new(InMemoryLedger::new()), "whsec_other");
    assert_eq!(other.parse_webhook(&headers, &body, now), sig("signature mismatch"));
}

#[test]
fn debug_hides_the_webhook_secret() {
    let (_, p) = fresh();
    assert!(!format!("{p:?}").contains(SECRET));
}

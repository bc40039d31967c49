//! The Stripe adapter end to end against the Stripe double: what it sends,
//! how it maps answers, idempotent retries, lost responses, webhooks.

use std::collections::BTreeMap;

use keel_payments::stripe_double::{Fault, StripeDouble};
use keel_payments::{
    sign_stripe_payload, AuthorizeRequest, PaymentError, PaymentProvider, PaymentState, RefundState, StripeProvider,
    STRIPE_API_VERSION,
};

const API_KEY: &str = "sk_test_51KeelDoubleKey";
const WEBHOOK_SECRET: &str = "whsec_keel_double";

async fn setup() -> (StripeDouble, StripeProvider) {
    let double = StripeDouble::start().await.unwrap();
    let stripe = StripeProvider::new(API_KEY, WEBHOOK_SECRET).unwrap().with_base_url(double.base_url());
    (double, stripe)
}

fn request(token: &str, amount: i64, key: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        amount,
        currency: "USD".into(),
        payment_method: token.into(),
        idempotency_key: key.into(),
        description: Some("Order #1001".into()),
        metadata: BTreeMap::from([("order_id".to_owned(), "ord_123".to_owned())]),
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, PaymentError>) {
    assert!(matches!(result, Err(PaymentError::InvalidRequest { .. })), "expected InvalidRequest, got {result:?}");
}

#[tokio::test]
async fn authorize_sends_a_manual_capture_payment_intent() {
    let (double, stripe) = setup().await;
    let payment = stripe.authorize(request("tok_visa", 1999, "auth-1")).await.unwrap();
    assert!(payment.id.starts_with("pi_"));
    assert_eq!(payment.status, PaymentState::Authorized);
    assert_eq!((payment.amount, payment.amount_captured, payment.amount_refunded), (1999, 0, 0));
    assert_eq!(payment.currency, "USD");
    assert_eq!(payment.decline_code, None);
    assert_eq!(stripe.name(), "stripe");

    let requests = double.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/payment_intents"));
    assert_eq!(sent.authorization.as_deref(), Some(format!("Bearer {API_KEY}").as_str()));
    assert_eq!(sent.idempotency_key.as_deref(), Some("auth-1"));
    assert_eq!(sent.stripe_version.as_deref(), Some(STRIPE_API_VERSION));
    for (name, value) in [
        ("amount", "1999"),
        ("currency", "usd"),
        ("confirm", "true"),
        ("capture_method", "manual"),
        ("payment_method_types[]", "card"),
        ("payment_method_data[type]", "card"),
        ("payment_method_data[card][token]", "tok_visa"),
        ("metadata[keel_idempotency_key]", "auth-1"),
        ("metadata[order_id]", "ord_123"),
        ("description", "Order #1001"),
    ] {
        assert_eq!(sent.param(name), Some(value), "param {name}");
    }
    assert_eq!(sent.param("payment_method"), None);

    let intent = double.payment_intent(&payment.id).unwrap();
    assert_eq!(intent["status"], "requires_capture");
    assert_eq!(intent["capture_method"], "manual");
    assert_eq!(intent["metadata"]["keel_idempotency_key"], "auth-1");
}

#[tokio::test]
async fn payment_method_ids_are_sent_as_payment_method() {
    let (double, stripe) = setup().await;
    let payment = stripe.authorize(request("pm_card_visa", 500, "auth-pm")).await.unwrap();
    assert_eq!(payment.status, PaymentState::Authorized);
    let sent = &double.requests()[0];
    assert_eq!(sent.param("payment_method"), Some("pm_card_visa"));
    assert_eq!(sent.param("payment_method_data[card][token]"), None);
}

#[tokio::test]
async fn declines_map_to_declined_with_stripe_codes() {
    let (_double, stripe) = setup().await;
    for (token, expected) in [
        ("tok_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclined", "generic_decline"),
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ] {
        let key = format!("decline-{token}");
        match stripe.authorize(request(token, 500, &key)).await {
            Err(PaymentError::Declined { code, decline_code, message }) => {
                assert_eq!(code, "card_declined", "{token}");
                assert_eq!(decline_code.as_deref(), Some(expected), "{token}");
                assert!(message.contains("card"), "{message}");
            }
            other => panic!("{token}: expected a decline, got {other:?}"),
        }
        let found = stripe.find_by_idempotency_key(&key).await.unwrap().expect("the failed intent exists");
        assert_eq!(found.status, PaymentState::Failed);
        assert_eq!(found.decline_code.as_deref(), Some(expected));
    }
}

#[tokio::test]
async fn invalid_requests_are_refused() {
    let (double, stripe) = setup().await;
    assert_invalid(stripe.authorize(request("tok_nonsense", 500, "bad-1")).await);
    assert_invalid(stripe.authorize(request("pm_nonsense", 500, "bad-2")).await);
    // Refused locally, before any request.
    let before = double.requests().len();
    assert_invalid(stripe.authorize(request("tok_visa", 0, "bad-3")).await);
    let mut bracket = request("tok_visa", 500, "bad-4");
    bracket.metadata.insert("a]b".into(), "x".into());
    assert_invalid(stripe.authorize(bracket).await);
    assert_invalid(stripe.capture("pi_../../v1/refunds", None, "bad-5").await);
    assert_eq!(double.requests().len(), before);
}

#[tokio::test]
async fn capture_refund_and_void_end_to_end() {
    let (double, stripe) = setup().await;

    // Partial capture, then refunds up to what was captured.
    let payment = stripe.authorize(request("tok_visa", 1000, "order-1")).await.unwrap();
    let captured = stripe.capture(&payment.id, Some(800), "order-1-capture").await.unwrap();
    assert_eq!((captured.status, captured.amount_captured, captured.amount_refunded), (PaymentState::Captured, 800, 0));
    let sent = double.requests().pop().unwrap();
    assert_eq!(sent.path, format!("/v1/payment_intents/{}/capture", payment.id));
    assert_eq!(sent.param("amount_to_capture"), Some("800"));
    assert_eq!(sent.idempotency_key.as_deref(), Some("order-1-capture"));
    assert_invalid(stripe.capture(&payment.id, None, "order-1-capture-again").await);

    let refund = stripe.refund(&payment.id, 300, "order-1-refund-1").await.unwrap();
    assert!(refund.id.starts_with("re_"));
    assert_eq!(
        (refund.payment_id.as_str(), refund.amount, refund.status),
        (payment.id.as_str(), 300, RefundState::Succeeded)
    );
    let sent = double.requests().pop().unwrap();
    assert_eq!(
        (sent.path.as_str(), sent.param("payment_intent"), sent.param("amount")),
        ("/v1/refunds", Some(payment.id.as_str()), Some("300"))
    );

    // The 200 released by the partial capture is not counted as refunded.
    let now = stripe.find_by_idempotency_key("order-1").await.unwrap().unwrap();
    assert_eq!((now.status, now.amount_captured, now.amount_refunded), (PaymentState::PartiallyRefunded, 800, 300));
    assert_invalid(stripe.refund(&payment.id, 501, "order-1-refund-2").await);
    stripe.refund(&payment.id, 500, "order-1-refund-3").await.unwrap();
    let now = stripe.find_by_idempotency_key("order-1").await.unwrap().unwrap();
    assert_eq!((now.status, now.amount_refunded), (PaymentState::Refunded, 800));
    assert_invalid(stripe.refund(&payment.id, 1, "order-1-refund-4").await);

    // Void.
    let payment = stripe.authorize(request("tok_mastercard", 400, "order-2")).await.unwrap();
    assert_invalid(stripe.refund(&payment.id, 100, "order-2-refund").await);
    let voided = stripe.void(&payment.id, "order-2-void").await.unwrap();
    assert_eq!(voided.status, PaymentState::Voided);
    assert_eq!(voided.amount_refunded, 0);
    assert_eq!(double.requests().pop().unwrap().path, format!("/v1/payment_intents/{}/cancel", payment.id));
    assert_invalid(stripe.capture(&payment.id, None, "order-2-capture").await);
    assert_invalid(stripe.void(&payment.id, "order-2-void-again").await);

    // Full capture.
    let payment = stripe.authorize(request("tok_visa", 250, "order-3")).await.unwrap();
    let captured = stripe.capture(&payment.id, None, "order-3-capture").await.unwrap();
    assert_eq!((captured.status, captured.amount_captured), (PaymentState::Captured, 250));
    assert_eq!(double.requests().pop().unwrap().param("amount_to_capture"), None);
    assert_invalid(
        stripe.capture(&stripe.authorize(request("tok_visa", 250, "order-4")).await.unwrap().id, Some(251), "c").await,
    );

    // Unknown ids.
    assert_eq!(stripe.capture("pi_doesnotexist", None, "x1").await, Err(PaymentError::NotFound));
    assert_eq!(stripe.void("pi_doesnotexist", "x2").await, Err(PaymentError::NotFound));
    assert_eq!(stripe.refund("pi_doesnotexist", 1, "x3").await, Err(PaymentError::NotFound));
}

#[tokio::test]
async fn find_by_idempotency_key_uses_search() {
    let (double, stripe) = setup().await;
    assert_eq!(stripe.find_by_idempotency_key("nothing-yet").await.unwrap(), None);
    let a = stripe.authorize(request("tok_visa", 100, "key-a")).await.unwrap();
    stripe.authorize(request("tok_visa", 100, "key-b")).await.unwrap();
    // Quotes in the key are escaped in the query.
    let quoted = stripe.authorize(request("tok_visa", 100, "it's \\ odd")).await.unwrap();

    assert_eq!(stripe.find_by_idempotency_key("key-a").await.unwrap(), Some(a));
    assert_eq!(stripe.find_by_idempotency_key("it's \\ odd").await.unwrap().map(|p| p.id), Some(quoted.id));
    let sent = double.requests().pop().unwrap();
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("GET", "/v1/payment_intents/search"));
    let query: BTreeMap<_, _> = sent.query.iter().cloned().collect();
    assert_eq!(query["query"], r"metadata['keel_idempotency_key']:'it\'s \\ odd'");
    assert_eq!(sent.idempotency_key, None);
}

#[tokio::test]
async fn retries_with_the_same_key_authorize_once() {
    let (double, stripe) = setup().await;
    let first = stripe.authorize(request("tok_visa", 1200, "retry-1")).await.unwrap();
    let second = stripe.authorize(request("tok_visa", 1200, "retry-1")).await.unwrap();
    assert_eq!(first, second);
    let requests = double.requests();
    assert_eq!((requests[0].replayed, requests[1].replayed), (false, true));
    // The same key for a different request is refused, not applied.
    assert_invalid(stripe.authorize(request("tok_visa", 1300, "retry-1")).await);
    let search = double.requests().len();
    let found = stripe.find_by_idempotency_key("retry-1").await.unwrap().unwrap();
    assert_eq!(found.amount, 1200);
    assert_eq!(double.requests()[search].status, 200);

    // Captures and refunds replay too.
    let c1 = stripe.capture(&first.id, None, "retry-1-capture").await.unwrap();
    let c2 = stripe.capture(&first.id, None, "retry-1-capture").await.unwrap();
    assert_eq!(c1, c2);
    let r1 = stripe.refund(&first.id, 200, "retry-1-refund").await.unwrap();
    let r2 = stripe.refund(&first.id, 200, "retry-1-refund").await.unwrap();
    assert_eq!(r1, r2);
    let now = stripe.find_by_idempotency_key("retry-1").await.unwrap().unwrap();
    assert_eq!(now.amount_refunded, 200);
}

#[tokio::test]
async fn a_lost_response_is_retryable_and_recoverable() {
    let (double, stripe) = setup().await;
    // Stripe authorized, but the answer never arrived.
    double.fail_next(Fault::LoseResponse);
    let error = stripe.authorize(request("tok_visa", 4200, "lost-1")).await.unwrap_err();
    assert!(matches!(error, PaymentError::Unavailable { .. }), "{error:?}");
    assert!(error.is_retryable());
    // Recovery learns that it happened …
    let found = stripe.find_by_idempotency_key("lost-1").await.unwrap().expect("authorized");
    assert_eq!(found.status, PaymentState::Authorized);
    // … and a retry with the same key returns it rather than authorizing again.
    assert_eq!(stripe.authorize(request("tok_visa", 4200, "lost-1")).await.unwrap().id, found.id);

    // An outage before anything happened: the retry performs the call.
    double.fail_next(Fault::Unavailable);
    let error = stripe.authorize(request("tok_visa", 100, "down-1")).await.unwrap_err();
    assert!(error.is_retryable());
    assert_eq!(stripe.find_by_idempotency_key("down-1").await.unwrap(), None);
    stripe.authorize(request("tok_visa", 100, "down-1")).await.unwrap();
}

#[tokio::test]
async fn bad_credentials_and_unreachable_hosts() {
    let (double, _) = setup().await;
    let wrong = StripeProvider::new("sk_live_wrong", WEBHOOK_SECRET).unwrap().with_base_url(double.base_url());
    let error = wrong.authorize(request("tok_visa", 100, "k")).await.unwrap_err();
    assert!(matches!(error, PaymentError::InvalidRequest { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(double.requests()[0].status, 401);

    // A port nobody listens on: a network failure, retryable.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let nowhere = StripeProvider::new(API_KEY, WEBHOOK_SECRET).unwrap().with_base_url(format!("http://{addr}/"));
    let error = nowhere.authorize(request("tok_visa", 100, "k")).await.unwrap_err();
    assert!(matches!(error, PaymentError::Unavailable { .. }), "{error:?}");
    assert!(!error.to_string().contains(API_KEY));
}

#[tokio::test]
async fn debug_never_shows_the_keys() {
    let (_double, stripe) = setup().await;
    let shown = format!("{stripe:?}");
    assert!(!shown.contains(API_KEY) && !shown.contains(WEBHOOK_SECRET), "{shown}");
    assert!(shown.contains("redacted"));
}

#[tokio::test]
async fn webhook_events_from_the_double_verify_and_parse() {
    let (double, stripe) = setup().await;
    let payment = stripe.authorize(request("tok_visa", 1000, "hook-1")).await.unwrap();
    stripe.capture(&payment.id, Some(900), "hook-1-capture").await.unwrap();
    stripe.refund(&payment.id, 100, "hook-1-refund").await.unwrap();
    let _ = stripe.authorize(request("tok_chargeDeclinedInsufficientFunds", 1000, "hook-2")).await;

    let events = double.events();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in ["payment_intent.succeeded", "charge.refunded", "payment_intent.payment_failed"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    let now = 1_700_000_000;
    let deliver = |kind: &str| {
        let event = events.iter().find(|e| e["type"] == kind).unwrap();
        let body = serde_json::to_vec(event).unwrap();
        let headers = vec![("Stripe-Signature".to_owned(), sign_stripe_payload(&body, WEBHOOK_SECRET, now))];
        stripe.parse_webhook(&headers, &body, now)
    };
    let succeeded = deliver("payment_intent.succeeded").unwrap();
    assert!(succeeded.id.starts_with("evt_"));
    assert_eq!(succeeded.payment_id.as_deref(), Some(payment.id.as_str()));
    let refunded = deliver("charge.refunded").unwrap();
    assert_eq!(refunded.payment_id.as_deref(), Some(payment.id.as_str()));
    assert_eq!(refunded.amount_refunded, Some(100));
    let failed = deliver("payment_intent.payment_failed").unwrap();
    assert_eq!(failed.raw["data"]["object"]["last_payment_error"]["decline_code"], "insufficient_funds");

    let body = serde_json::to_vec(&events[0]).unwrap();
    let forged = vec![("stripe-signature".to_owned(), sign_stripe_payload(&body, "whsec_attacker", now))];
    assert_eq!(
        stripe.parse_webhook(&forged, &body, now),
        Err(PaymentError::InvalidSignature { reason: "signature mismatch" })
    );
}

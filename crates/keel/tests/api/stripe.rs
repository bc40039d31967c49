//! Checkout through the Stripe adapter against the Stripe test double (built
//! to Stripe's published request and response formats), Stripe webhooks, and
//! signature verification cross-checked with Stripe's official Python library.

use keel_payments::stripe_double::StripeDouble;
use keel_payments::{sign_stripe_payload, verify_stripe_signature, StripeProvider};
use keel_testkit::{json, spawn_with, TestApp};
use reqwest::StatusCode;
use std::sync::Arc;

const WHSEC: &str = "whsec_keel_test_secret";

async fn stripe_shop() -> (TestApp, StripeDouble, String) {
    let double = StripeDouble::start().await.unwrap();
    let provider = StripeProvider::new("sk_test_keel", WHSEC).unwrap().with_base_url(double.base_url());
    let t = spawn_with(|app| app.with_payments(Arc::new(provider))).await;
    let loc = t.location("Main", 1).await;
    t.product("Goods", &["SKU-A"]).await;
    t.receive("SKU-A", &loc, 5).await;
    t.ok("/shipping-methods", json!({"name": "Standard", "currency": "USD", "amount": 500})).await;
    (t, double, loc)
}

async fn cart(t: &TestApp) -> String {
    let c = t.ok("/carts", json!({"currency": "USD", "email": "grace@example.com"})).await;
    let id = c["id"].as_str().unwrap().to_owned();
    t.ok(&format!("/carts/{id}/lines"), json!({"sku": "SKU-A", "quantity": 2})).await;
    let m = t.get(&format!("/carts/{id}/shipping-methods")).await.body["data"][0]["id"].clone();
    let addr = json!({"name": "Grace", "line1": "2 Navy Rd", "city": "Arlington", "postal_code": "22201", "country": "US"});
    t.ok(&format!("/carts/{id}"), json!({"shipping_address": addr, "shipping_method_id": m})).await;
    id
}

#[tokio::test]
async fn checkout_with_stripe_and_its_webhooks() {
    let (t, double, loc) = stripe_shop().await;
    let declined = cart(&t).await;
    let r = t.post(&format!("/carts/{declined}/complete"), json!({"payment_method": "pm_card_chargeDeclinedInsufficientFunds"})).await;
    assert_eq!((r.status, r.body["error"]["decline_code"].as_str()), (StatusCode::PAYMENT_REQUIRED, Some("insufficient_funds")), "{}", r.body);
    assert_eq!(t.level("SKU-A", &loc).await["reserved"], 0);

    let id = cart(&t).await;
    let r = t.post(&format!("/carts/{id}/complete"), json!({"payment_method": "pm_card_visa"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body;
    assert_eq!((order["payment_status"].as_str(), order["payment"]["provider"].as_str()), (Some("captured"), Some("stripe")));
    let pi = order["payment"]["id"].as_str().unwrap();
    assert!(pi.starts_with("pi_"));
    let intent = double.payment_intent(pi).unwrap();
    assert_eq!((intent["status"].as_str(), intent["amount_received"].as_i64()), (Some("succeeded"), Some(2500)));
    // The authorization was manual-capture and carried Keel's idempotency key.
    let create = double
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/payment_intents" && r.params.iter().any(|(_, v)| v == "pm_card_visa"))
        .unwrap();
    let param = |k: &str| create.params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(param("capture_method").as_deref(), Some("manual"));
    assert!(param("metadata[keel_idempotency_key]").is_some_and(|k| k.starts_with("chk_")));
    assert!(create.idempotency_key.is_some());

    // A refund made in Stripe's dashboard reaches Keel through the webhook.
    let refund = reqwest::Client::new()
        .post(format!("{}/v1/refunds", double.base_url()))
        .bearer_auth("sk_test_keel")
        .form(&[("payment_intent", pi), ("amount", "700")])
        .send()
        .await
        .unwrap();
    assert!(refund.status().is_success());
    let event = double.events().into_iter().rev().find(|e| e["type"] == "charge.refunded").expect("a charge.refunded event");
    let body = serde_json::to_vec(&event).unwrap();
    let now = keel_domain::time::now_micros() / 1_000_000;
    let deliver = |sig: String, body: Vec<u8>| {
        t.http.post(format!("{}/hooks/stripe", t.base)).header("Stripe-Signature", sig).header("content-type", "application/json").body(body).send()
    };
    let bad = deliver(sign_stripe_payload(&body, "whsec_wrong", now), body.clone()).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let stale = deliver(sign_stripe_payload(&body, WHSEC, now - 301), body.clone()).await.unwrap();
    assert_eq!(stale.status(), StatusCode::BAD_REQUEST);
    for _ in 0..2 {
        // Delivered twice (Stripe retries): applied once.
        let ok = deliver(sign_stripe_payload(&body, WHSEC, now), body.clone()).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
    }
    let o = t.get(&format!("/orders/{}", order["id"].as_str().unwrap())).await.body;
    assert_eq!((o["payment_status"].as_str(), o["payment"]["amount_refunded"].as_i64()), (Some("partially_refunded"), Some(700)));
    t.assert_consistent().await;
}

/// Keel's signatures verify with Stripe's official library and the other way
/// round; wrong secrets, stale timestamps and modified bodies fail in both.
/// `scripts/test` installs the library (PyPI `stripe`) and requires this.
#[test]
fn stripe_signatures_agree_with_the_official_library() {
    let python = std::process::Command::new("python3").args(["-c", "import stripe"]).output();
    if !python.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("KEEL_REQUIRE_PYTHON_STRIPE").is_err(),
            "KEEL_REQUIRE_PYTHON_STRIPE is set but python3 cannot import stripe"
        );
        eprintln!("skipped: python3 `stripe` package not installed (scripts/test installs it)");
        return;
    }
    let body = br#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1"}}}"#;
    let now = keel_domain::time::now_micros() / 1_000_000;
    let ours = sign_stripe_payload(body, WHSEC, now);
    let script = r#"
import sys, time, stripe
payload, header, secret, now = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def ok(p, h, s):
    try:
        stripe.WebhookSignature.verify_header(p, h, s, tolerance=300)
        return "ok"
    except stripe.error.SignatureVerificationError:
        return "fail"
print(ok(payload, header, secret), ok(payload, header, "whsec_other"), ok(payload + " ", header, secret))
stale = now - 400
sig = stripe.WebhookSignature._compute_signature("%d.%s" % (stale, payload), secret)
print(ok(payload, "t=%d,v1=%s" % (stale, sig), secret))
fresh = stripe.WebhookSignature._compute_signature("%d.%s" % (now, payload), secret)
print("t=%d,v1=%s" % (now, fresh))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, std::str::from_utf8(body).unwrap(), &ours, WHSEC, &now.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "ok fail fail", "the official library on Keel's signature");
    assert_eq!(lines[1], "fail", "the official library refuses a stale timestamp");
    let theirs = lines[2];
    assert!(verify_stripe_signature(theirs, body, WHSEC, now, 300).is_ok(), "Keel accepts the library's signature");
    assert!(verify_stripe_signature(theirs, body, "whsec_other", now, 300).is_err());
    assert!(verify_stripe_signature(theirs, b"{}", WHSEC, now, 300).is_err());
    assert!(verify_stripe_signature(theirs, body, WHSEC, now + 301, 300).is_err());
}

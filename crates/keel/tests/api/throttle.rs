//! The sign-in throttle under load and behind a proxy, and the security
//! event log: attempts are counted before they are checked, the second
//! factor keeps its own count, the client address is the forwarded one when
//! the proxy is trusted, and failures land in the audit log (never a
//! secret) and raise one alert when they spike.

use futures_util::future::join_all;
use keel_app::customers::NewCustomer;
use keel_app::{Actor, AppError};
use keel_testkit::{spawn_app, spawn_with_edge, TestApp};
use keel_web::access::Role;
use keel_web::edge::EdgeSettings;
use reqwest::StatusCode;
use serde_json::Value;

use crate::admin_client::{between, code_at};

const SEC: i64 = 1_000_000;

fn now() -> i64 {
    keel_domain::time::now_micros()
}

/// The admin sign-in form's cookie and token, reusable for many posts.
struct AdminForm {
    http: reqwest::Client,
    pre: String,
    csrf: String,
}

impl AdminForm {
    async fn open(t: &TestApp) -> AdminForm {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let res = http.get(format!("{}/admin/login", t.base)).send().await.unwrap();
        let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
        let pre = cookie.split(';').next().unwrap().to_owned();
        let body = res.text().await.unwrap();
        let csrf = between(&body, "name=\"csrf\" value=\"", "\"").unwrap();
        AdminForm { http, pre, csrf }
    }

    /// Posts a sign-in; returns the status and `Retry-After`.
    async fn post(&self, t: &TestApp, email: &str, password: &str, forwarded: Option<&str>) -> (StatusCode, Option<u64>) {
        let body = serde_urlencoded::to_string([("csrf", self.csrf.as_str()), ("email", email), ("password", password)]).unwrap();
        let mut req = self
            .http
            .post(format!("{}/admin/login", t.base))
            .header("cookie", &self.pre)
            .header("origin", &t.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        let res = req.send().await.unwrap();
        let after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        (res.status(), after)
    }
}

#[tokio::test]
async fn parallel_wrong_passwords_over_http_are_counted_before_they_are_checked() {
    let t = spawn_app().await;
    t.app.create_staff_user("v@example.com", Role::Fulfillment, Some("the right password"), now()).await.unwrap();
    // Nine failures a while ago: the policy (a lock at ten) leaves one.
    let at = now() - 120 * SEC;
    t.db.execute_raw(&format!(
        "INSERT INTO login_failures (scope, key, failures, last_failure_at, locked_until) VALUES ('account', 'v@example.com', 9, {at}, NULL)"
    ))
    .await;
    let form = AdminForm::open(&t).await;
    let before = t.app.passwords.count();
    let answers = join_all((0..32).map(|_| form.post(&t, "v@example.com", "not the password", None))).await;
    let checked = t.app.passwords.count() - before;
    let refused = answers.iter().filter(|(s, _)| *s == StatusCode::UNAUTHORIZED).count() as u64;
    assert!(checked <= 1, "{checked} passwords were checked with one attempt left");
    assert_eq!(refused, checked, "{answers:?}");
    assert!(answers.iter().all(|(s, a)| *s == StatusCode::UNAUTHORIZED || (*s == StatusCode::TOO_MANY_REQUESTS && a.is_some())), "{answers:?}");
    assert_eq!(t.db.scalar("SELECT failures FROM login_failures WHERE scope = 'account'").await, 9 + checked as i64);
    if checked == 1 {
        // Locked: the right password is refused too, for about 15 minutes.
        let (status, after) = form.post(&t, "v@example.com", "the right password", None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(after.unwrap() > 800, "{after:?}");
    }
}

#[tokio::test]
async fn parallel_wrong_passwords_from_a_clean_slate_get_the_free_attempts_only() {
    let t = spawn_app().await;
    let at = now();
    t.app.create_staff_user("w@example.com", Role::Fulfillment, Some("the right password"), at).await.unwrap();
    let before = t.app.passwords.count();
    let outcomes = join_all((0..40).map(|_| t.app.staff_sign_in("w@example.com", "not the password", "192.0.2.9", None, at))).await;
    let bad = outcomes.iter().filter(|o| matches!(o, Err(AppError::BadCredentials))).count();
    let throttled = outcomes.iter().filter(|o| matches!(o, Err(AppError::TooManyAttempts { .. }))).count();
    assert_eq!(bad + throttled, 40);
    assert!(bad <= 3, "three attempts are free, then each waits: {bad} were checked");
    assert_eq!(t.app.passwords.count() - before, bad as u64);
    assert!(matches!(
        t.app.staff_sign_in("w@example.com", "the right password", "192.0.2.9", None, at).await,
        Err(AppError::TooManyAttempts { .. })
    ));
}

#[tokio::test]
async fn wrong_codes_lock_across_right_passwords() {
    let t = spawn_app().await;
    let app = &t.app;
    let mut at = now();
    let user = app.create_staff_user("two@example.com", Role::Fulfillment, Some("the right password"), at).await.unwrap().user;
    let e = app.begin_totp_enrolment(&user.id, at).await.unwrap();
    app.confirm_totp_enrolment(&user.id, &code_at(&e.secret, at), None, at).await.unwrap();
    let wrong = |at: i64| if code_at(&e.secret, at) == "123456" { "654321".to_owned() } else { "123456".to_owned() };
    for _ in 0..10 {
        at += 61 * SEC;
        let pending = app.staff_sign_in("two@example.com", "the right password", "192.0.2.1", None, at).await.unwrap();
        assert!(matches!(app.staff_second_factor(&pending.token, &wrong(at), "192.0.2.1", at).await, Err(AppError::BadCredentials)));
    }
    at += 61 * SEC;
    let pending = app.staff_sign_in("two@example.com", "the right password", "192.0.2.1", None, at).await.unwrap();
    match app.staff_second_factor(&pending.token, &code_at(&e.secret, at), "192.0.2.1", at).await {
        Err(AppError::TooManyAttempts { retry_after_secs }) => assert!(retry_after_secs > 800, "{retry_after_secs}"),
        other => panic!("ten wrong codes lock the second factor, right passwords or not: {:?}", other.map(|s| s.session.state)),
    }
    // Once the lock is served, the right code works and clears the count.
    at += 15 * 60 * SEC;
    let pending = app.staff_sign_in("two@example.com", "the right password", "192.0.2.1", None, at).await.unwrap();
    app.staff_second_factor(&pending.token, &code_at(&e.secret, at), "192.0.2.1", at).await.unwrap();
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM login_failures WHERE scope = 'second_factor'").await, 0);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_count() {
    let t = spawn_with_edge(EdgeSettings { trust_proxy: true, ..EdgeSettings::default() }).await;
    t.app.create_staff_user("s@example.com", Role::SupportAgent, Some("support password"), now()).await.unwrap();
    let form = AdminForm::open(&t).await;
    let (a, b) = ("203.0.113.5", "198.51.100.20");
    assert_eq!(form.post(&t, "s@example.com", "wrong password", Some(a)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM login_failures WHERE scope = 'ip' AND key = '203.0.113.5'").await, 1);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM login_failures WHERE scope = 'ip' AND key = '127.0.0.1'").await, 0, "not the proxy's");
    // IPv6 clients are counted per /64.
    assert_eq!(form.post(&t, "s@example.com", "wrong password", Some("2001:db8:5:5::17")).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM login_failures WHERE scope = 'ip' AND key = '2001:db8:5:5::'").await, 1);
    // Address A locked out (as after 100 failures) does not lock B out.
    let until = now() + 15 * 60 * SEC;
    t.db.execute_raw(&format!("UPDATE login_failures SET failures = 100, locked_until = {until} WHERE scope = 'ip' AND key = '{a}'")).await;
    let (status, after) = form.post(&t, "s@example.com", "support password", Some(a)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(after.unwrap() > 800);
    assert_eq!(form.post(&t, "s@example.com", "support password", Some(b)).await.0, StatusCode::SEE_OTHER);
}

async fn security_log(t: &TestApp, action: &str) -> Vec<Value> {
    let r = t.get(&format!("/audit-log?action=security.{action}&limit=100")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn failures_and_refusals_land_in_the_audit_log_without_secrets() {
    let t = spawn_with_edge(EdgeSettings { trust_proxy: true, ..EdgeSettings::default() }).await;
    let at = now();
    t.app.create_staff_user("s@example.com", Role::SupportAgent, Some("support password"), at).await.unwrap();
    let form = AdminForm::open(&t).await;
    for _ in 0..4 {
        form.post(&t, "s@example.com", "hunter2 wrong", Some("203.0.113.5")).await;
    }
    let failed = security_log(&t, "staff_sign_in_failed").await;
    assert_eq!(failed.len(), 3, "three checked, the fourth throttled");
    assert_eq!(failed[0]["ip"], "203.0.113.5");
    assert_eq!(failed[0]["summary"]["email"], "s@example.com");
    assert_eq!(failed[0]["status"], 401);
    let throttled = security_log(&t, "staff_sign_in_throttled").await;
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0]["status"], 429);
    assert!(throttled[0]["summary"]["retry_after_secs"].as_u64().unwrap() >= 1);

    // Second factor.
    let user = t.app.create_staff_user("two@example.com", Role::Fulfillment, Some("the right password"), at).await.unwrap().user;
    let e = t.app.begin_totp_enrolment(&user.id, at).await.unwrap();
    t.app.confirm_totp_enrolment(&user.id, &code_at(&e.secret, at), None, at).await.unwrap();
    let pending = t.app.staff_sign_in("two@example.com", "the right password", "192.0.2.44", None, at + 61 * SEC).await.unwrap();
    let wrong = if code_at(&e.secret, at + 61 * SEC) == "123456" { "654321" } else { "123456" };
    assert!(t.app.staff_second_factor(&pending.token, wrong, "192.0.2.44", at + 61 * SEC).await.is_err());
    let codes = security_log(&t, "second_factor_failed").await;
    assert_eq!((codes.len(), codes[0]["ip"].as_str(), codes[0]["summary"]["email"].as_str()), (1, Some("192.0.2.44"), Some("two@example.com")));

    // Customers.
    let input = NewCustomer {
        email: "ada@example.com".into(),
        first_name: Some("Ada".into()),
        last_name: None,
        phone: None,
        password: Some("correct horse battery".into()),
        marketing_opt_in: None,
    };
    t.app.create_customer(&Actor("test".into()), input).await.unwrap();
    for _ in 0..4 {
        let _ = t.app.customer_sign_in("Ada@example.com", "hunter2 wrong", "192.0.2.55", at).await;
    }
    let failed = security_log(&t, "customer_sign_in_failed").await;
    assert_eq!(failed.len(), 3);
    assert_eq!((failed[0]["ip"].as_str(), failed[0]["summary"]["email"].as_str()), (Some("192.0.2.55"), Some("ada@example.com")));
    assert_eq!(security_log(&t, "customer_sign_in_throttled").await.len(), 1);

    // API keys: the prefix only, and a bounded number per address.
    let bad = "keel_sk_deadbeefcafe00112233445566778899aabbccddeeff";
    for _ in 0..20 {
        let r = t.http.get(t.url("/products")).bearer_auth(bad).header("x-forwarded-for", "198.51.100.77").send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let keys = security_log(&t, "api_key_rejected").await;
    assert!((1..=5).contains(&keys.len()), "bounded: {}", keys.len());
    assert_eq!(keys[0]["summary"]["key_prefix"], "keel_sk_deadbe");
    assert_eq!(keys[0]["ip"], "198.51.100.77");

    let all = t.get("/audit-log?action_contains=security.&limit=100").await.body.to_string();
    for secret in ["hunter2", "support password", "the right password", "correct horse", bad, wrong] {
        assert!(!all.contains(secret), "{secret} leaked into the audit log");
    }
}

#[tokio::test]
async fn a_spike_of_failures_across_accounts_raises_one_alert_then_resolves() {
    let t = spawn_app().await;
    let at = now();
    // One after another: in parallel, the password-check cap would refuse
    // some of them (not counted, so not failures).
    for i in 0..keel_app::security::SPIKE_FAILURES {
        let r = t.app.staff_sign_in(&format!("user{i}@example.com"), "guess", &format!("198.51.100.{i}"), None, at).await;
        assert!(matches!(r, Err(AppError::BadCredentials)));
    }
    assert_eq!(t.app.record_security_alerts(at).await.unwrap(), 1);
    assert_eq!(t.app.record_security_alerts(at + SEC).await.unwrap(), 0, "raised once");
    let events = t.events("type=alert.raised", 1).await;
    let raised: Vec<&Value> = events["data"].as_array().unwrap().iter().filter(|e| e["data"]["component"]["kind"] == "security").collect();
    assert_eq!(raised.len(), 1, "{events}");
    assert_eq!(raised[0]["data"]["failures_5m"], 50);
    // Five minutes later it has calmed.
    assert_eq!(t.app.record_security_alerts(at + 6 * 60 * SEC).await.unwrap(), 1);
    let resolved = t.events("type=alert.resolved", 1).await;
    assert_eq!(resolved["data"].as_array().unwrap().len(), 1, "{resolved}");
}

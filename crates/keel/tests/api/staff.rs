//! Staff access: the permission table covers every route, API keys are
//! scoped to a role, expire and can be revoked.

use keel_testkit::{json, spawn_app, TestApp};
use keel_web::access::{route_permission, Permission, Role};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Sends a request with another key than the test kit's.
async fn send_as(t: &TestApp, key: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = t.http.request(method, t.url(path)).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn key_with_role(t: &TestApp, role: &str) -> (String, String) {
    let b = t.ok("/api-keys", json!({"name": format!("{role} key"), "role": role})).await;
    (b["id"].as_str().unwrap().to_owned(), b["secret"].as_str().unwrap().to_owned())
}

/// Every route the API serves, from its OpenAPI document plus the
/// few machine routes outside it.
fn all_routes() -> Vec<(Method, String)> {
    let doc = serde_json::to_value(keel_web::api::openapi::document()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if let Ok(m) = method.to_uppercase().parse::<Method>() {
                routes.push((m, format!("/api/v1{path}")));
            }
        }
    }
    // Routes not (yet) described in the document.
    for (m, p) in [
        (Method::POST, "/api/v1/customers/{id}/addresses/{address_id}/delete"),
        (Method::POST, "/api/v1/products/{id}/images/{image_id}/delete"),
        (Method::GET, "/metrics"),
    ] {
        routes.push((m, p.to_owned()));
    }
    routes
}

#[test]
fn every_route_needs_a_permission() {
    let routes = all_routes();
    assert!(routes.len() > 60, "the OpenAPI document lists the routes ({})", routes.len());
    let missing: Vec<_> = routes.iter().filter(|(m, p)| route_permission(m, p).is_none()).collect();
    assert!(missing.is_empty(), "routes without a permission: {missing:?}");
    // Reads need read permissions; a write never gets by with one.
    for (m, p) in &routes {
        let perm = route_permission(m, p).unwrap();
        if *m != Method::GET {
            assert!(!perm.is_read(), "{m} {p} needs only {perm:?}");
        }
    }
    assert_eq!(route_permission(&Method::GET, "/api/v1/webhook-endpoints/{id}/secret"), Some(Permission::IntegrationsWrite));
    assert_eq!(route_permission(&Method::POST, "/api/v1/api-keys"), Some(Permission::ApiKeysManage));
    assert_eq!(route_permission(&Method::GET, "/api/v1/no-such-thing"), None);
}

#[tokio::test]
async fn every_served_route_is_in_the_table() {
    // A route the table does not know would be refused with 403 even for the
    // owner key; walk the document's routes with it and look for that.
    let t = spawn_app().await;
    for (m, p) in all_routes() {
        let Some(path) = p.strip_prefix("/api/v1") else { continue };
        let path = path.replace("{id}", "x").replace("{address_id}", "x").replace("{image_id}", "x").replace("{variant_id}", "x").replace("{line_id}", "x");
        let body = (m != Method::GET).then(|| json!({}));
        let (status, b) = send_as(&t, &t.key, m.clone(), &path, body).await;
        assert_ne!(status, StatusCode::FORBIDDEN, "{m} {p}: {b}");
    }
}

#[tokio::test]
async fn roles_limit_what_a_key_can_do() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Tee", &["TEE-M"]).await;

    let (_, analyst) = key_with_role(&t, "analyst").await;
    let (s, _) = send_as(&t, &analyst, Method::GET, "/products", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = send_as(&t, &analyst, Method::GET, "/inventory/levels?sku=TEE-M", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = send_as(&t, &analyst, Method::POST, "/products", Some(json!({"title": "X"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!((b["error"]["type"].as_str(), b["error"]["code"].as_str()), (Some("permission_error"), Some("forbidden")));
    let (s, _) = send_as(&t, &analyst, Method::POST, "/api-keys", Some(json!({"name": "more", "role": "analyst"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an analyst cannot make keys");

    let (_, catalog) = key_with_role(&t, "catalog_manager").await;
    let (s, b) = send_as(&t, &catalog, Method::POST, "/products", Some(json!({"title": "Cap", "variants": [{"sku": "CAP", "prices": [{"currency": "USD", "amount": 500}]}]}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let adjust = json!({"sku": "TEE-M", "location_id": loc, "kind": "receive", "quantity_delta": 5});
    let (s, _) = send_as(&t, &catalog, Method::POST, "/inventory/adjustments", Some(adjust.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = send_as(&t, &catalog, Method::GET, "/customers", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = send_as(&t, &catalog, Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "/metrics is not under /api/v1");

    let (_, inventory) = key_with_role(&t, "inventory_manager").await;
    let (s, b) = send_as(&t, &inventory, Method::POST, "/inventory/adjustments", Some(adjust)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // Metrics: analysts may read them, catalog managers may not.
    let get = |key: String| {
        let http = t.http.clone();
        let url = format!("{}/metrics", t.base);
        async move { http.get(url).bearer_auth(key).send().await.unwrap().status() }
    };
    assert_eq!(get(analyst.clone()).await, StatusCode::OK);
    assert_eq!(get(catalog.clone()).await, StatusCode::FORBIDDEN);

    // Unknown routes stay 404 for any valid key.
    let (s, _) = send_as(&t, &analyst, Method::GET, "/no-such-thing", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn keys_are_shown_once_listed_without_secrets_and_revocable() {
    let t = spawn_app().await;
    let r = t.post("/api-keys", json!({"name": "ci", "role": "fulfillment", "expires_in_days": 30})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("keel_sk_") && secret.starts_with(r.body["prefix"].as_str().unwrap()));
    assert_eq!(r.body["role"], "fulfillment");
    assert!(r.body["expires_at"].is_string());
    assert!(r.body["created_by"].as_str().unwrap().starts_with("key_"));

    let list = t.get("/api-keys?limit=100").await;
    assert_eq!(list.status, StatusCode::OK);
    let text = list.body.to_string();
    assert!(!text.contains(&secret[8..]), "a list never shows a secret");
    let listed = list.body["data"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap().clone();
    assert!(listed.get("secret").is_none());

    let (s, _) = send_as(&t, &secret, Method::GET, "/orders", None).await;
    assert_eq!(s, StatusCode::OK);
    // Used: last_used_at is recorded (in the background).
    let mut used = false;
    for _ in 0..50 {
        let list = t.get("/api-keys?limit=100").await;
        let k = list.body["data"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap().clone();
        if k["last_used_at"].is_string() {
            used = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(used, "last_used_at is recorded");

    // Revocation takes effect at once, despite the key cache.
    let r = t.post(&format!("/api-keys/{id}/revoke"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["revoked_at"].is_string());
    let (s, b) = send_as(&t, &secret, Method::GET, "/orders", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let r = t.post("/api-keys/key_nope/revoke", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Bad input names the field.
    let r = t.post("/api-keys", json!({"name": "x", "role": "root"})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "role"));
    let r = t.post("/api-keys", json!({"name": "x", "role": "analyst", "expires_in_days": 0})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "expires_in_days"));
}

#[tokio::test]
async fn admins_cannot_grant_owner_and_expired_keys_stop() {
    let t = spawn_app().await;
    let (_, admin) = key_with_role(&t, "admin").await;
    let (s, _) = send_as(&t, &admin, Method::POST, "/api-keys", Some(json!({"name": "up", "role": "owner"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = send_as(&t, &admin, Method::POST, "/api-keys", Some(json!({"name": "ok", "role": "analyst"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // An admin cannot revoke the owner's key.
    let owner_key_id = t.get("/api-keys?limit=100").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = send_as(&t, &admin, Method::POST, &format!("/api-keys/{owner_key_id}/revoke"), Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (id, secret) = key_with_role(&t, "analyst").await;
    t.db.execute_raw(&format!("UPDATE api_keys SET expires_at = 1 WHERE id = '{id}'")).await;
    let (s, _) = send_as(&t, &secret, Method::GET, "/products", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "an expired key is refused");
    assert_eq!(Role::parse("role", "analyst").unwrap(), Role::Analyst);
}

// ------------------------------------------------------------ staff users ---

use keel_app::staff::SessionState;
use keel_app::AppError;
use crate::admin_client::{between, code_at, Browser};

const T0: i64 = 1_800_000_000_000_000;
const SEC: i64 = 1_000_000;


#[tokio::test]
async fn sign_in_with_password_then_totp_and_recovery_codes() {
    let t = spawn_app().await;
    let app = &t.app;
    let created = app.create_staff_user("Ops@Example.com", Role::Analyst, Some("correct horse battery"), T0).await.unwrap();
    assert_eq!(created.user.email, "ops@example.com");
    assert!(created.generated_password.is_none());
    let stored: i64 = t.db.scalar("SELECT COUNT(*) FROM staff_users WHERE password_hash LIKE '$argon2id$%'").await;
    assert_eq!(stored, 1, "argon2id");
    assert!(matches!(
        app.create_staff_user("ops@example.com", Role::Admin, None, T0).await,
        Err(AppError::Conflict { code: "email_taken", .. })
    ));
    assert!(matches!(app.create_staff_user("x@example.com", Role::Admin, Some("short"), T0).await, Err(AppError::Invalid(_))));

    // Password only: signed in (analysts need no second factor).
    let s = app.staff_sign_in("OPS@example.com ", "correct horse battery", "10.0.0.1", None, T0).await.unwrap();
    assert_eq!(s.session.state, SessionState::SignedIn);
    assert_eq!(s.session.user.role, Role::Analyst);
    assert!(matches!(app.staff_sign_in("ops@example.com", "wrong password!!", "10.0.0.1", None, T0).await, Err(AppError::BadCredentials)));
    assert!(matches!(app.staff_sign_in("nobody@example.com", "whatever password", "10.0.0.1", None, T0).await, Err(AppError::BadCredentials)));

    // Enrol: the secret is stored encrypted, the QR is an SVG.
    let uid = created.user.id.clone();
    let e = app.begin_totp_enrolment(&uid, T0).await.unwrap();
    assert!(e.otpauth_url.starts_with("otpauth://totp/Keel:ops%40example.com?") || e.otpauth_url.starts_with("otpauth://totp/Keel:ops@example.com?"), "{}", e.otpauth_url);
    assert!(e.qr_svg.starts_with("<svg"));
    let plain: i64 = t.db.scalar(&format!("SELECT COUNT(*) FROM staff_users WHERE totp_secret LIKE '%{}%'", e.secret)).await;
    assert_eq!(plain, 0, "the TOTP secret is not stored in the clear");
    assert!(matches!(app.confirm_totp_enrolment(&uid, "000000", None, T0).await, Err(AppError::BadCredentials)) || code_at(&e.secret, T0) == "000000");
    let codes = app.confirm_totp_enrolment(&uid, &code_at(&e.secret, T0), None, T0).await.unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(app.unused_recovery_codes(&uid).await.unwrap(), 10);

    // Now the password alone is not enough, and the old session is rotated away.
    let now = T0 + 60 * SEC;
    let pending = app.staff_sign_in("ops@example.com", "correct horse battery", "10.0.0.1", Some(&s.token), now).await.unwrap();
    assert_eq!(pending.session.state, SessionState::SecondFactorDue);
    assert!(app.staff_session(&s.token, now).await.unwrap().is_none(), "sign-in ends the previous session");
    // The code used at enrolment (an older step) cannot be replayed.
    assert!(matches!(app.staff_second_factor(&pending.token, &code_at(&e.secret, T0), "10.0.0.1", now).await, Err(AppError::BadCredentials)));
    let full = app.staff_second_factor(&pending.token, &code_at(&e.secret, now), "10.0.0.1", now).await.unwrap();
    assert_eq!(full.session.state, SessionState::SignedIn);
    assert!(app.staff_session(&pending.token, now).await.unwrap().is_none(), "the pending token is replaced");
    // The same code again (same step): refused.
    let again = app.staff_sign_in("ops@example.com", "correct horse battery", "10.0.0.1", None, now).await.unwrap();
    assert!(app.staff_second_factor(&again.token, &code_at(&e.secret, now), "10.0.0.1", now).await.is_err());

    // A recovery code works once, in any case and with or without the dash.
    let code = codes[0].to_uppercase().replace('-', "");
    let again = app.staff_sign_in("ops@example.com", "correct horse battery", "10.0.0.1", None, now).await.unwrap();
    app.staff_second_factor(&again.token, &code, "10.0.0.1", now).await.unwrap();
    let again = app.staff_sign_in("ops@example.com", "correct horse battery", "10.0.0.1", None, now).await.unwrap();
    assert!(matches!(app.staff_second_factor(&again.token, &code, "10.0.0.1", now).await, Err(AppError::BadCredentials)));
    assert_eq!(app.unused_recovery_codes(&uid).await.unwrap(), 9);

    // Sign out everywhere ends every session.
    assert!(app.staff_session(&full.token, now).await.unwrap().is_some());
    assert!(app.staff_sign_out_everywhere(&uid).await.unwrap() >= 2);
    assert!(app.staff_session(&full.token, now).await.unwrap().is_none());
}

#[tokio::test]
async fn sessions_time_out_idle_and_absolute() {
    let t = spawn_app().await;
    let app = &t.app;
    app.create_staff_user("a@example.com", Role::SupportAgent, Some("a long enough password"), T0).await.unwrap();
    let s = app.staff_sign_in("a@example.com", "a long enough password", "ip", None, T0).await.unwrap();
    let idle = keel_app::staff::SESSION_IDLE_MICROS;
    assert!(app.staff_session(&s.token, T0 + idle - SEC).await.unwrap().is_some(), "activity restarts the idle timeout");
    assert!(app.staff_session(&s.token, T0 + 2 * idle - 2 * SEC).await.unwrap().is_some());
    assert!(app.staff_session(&s.token, T0 + 3 * idle).await.unwrap().is_none(), "idle too long");
    // Absolute: kept active, it still ends 12 hours after sign-in.
    let s = app.staff_sign_in("a@example.com", "a long enough password", "ip", None, T0).await.unwrap();
    let mut now = T0;
    while now < T0 + keel_app::staff::SESSION_ABSOLUTE_MICROS - idle {
        now += idle / 2;
        assert!(app.staff_session(&s.token, now).await.unwrap().is_some());
    }
    assert!(app.staff_session(&s.token, T0 + keel_app::staff::SESSION_ABSOLUTE_MICROS).await.unwrap().is_none());
    // Expired sessions and stale failure counters are purged.
    assert!(app.staff_sign_in("a@example.com", "wrong password here", "ip", None, T0).await.is_err());
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM login_failures").await, 2);
    assert!(t.db.scalar("SELECT COUNT(*) FROM staff_sessions").await >= 1);
    app.purge_sessions(T0 + keel_app::staff::SESSION_ABSOLUTE_MICROS).await.unwrap();
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM staff_sessions").await, 0);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM login_failures").await, 0);
    app.staff_sign_out(&s.token).await.unwrap();
}

#[tokio::test]
async fn owners_must_enrol_two_factor() {
    let t = spawn_app().await;
    let created = t.app.create_staff_user("boss@example.com", Role::Owner, None, T0).await.unwrap();
    let password = created.generated_password.expect("generated");
    let s = t.app.staff_sign_in("boss@example.com", &password, "ip", None, T0).await.unwrap();
    assert_eq!(s.session.state, SessionState::EnrolmentDue);
}

#[tokio::test]
async fn repeated_failures_slow_down_then_lock_and_the_lock_expires() {
    let t = spawn_app().await;
    let app = &t.app;
    app.create_staff_user("v@example.com", Role::Fulfillment, Some("the right password"), T0).await.unwrap();
    let mut now = T0;
    for _ in 0..3 {
        assert!(matches!(app.staff_sign_in("v@example.com", "not the password", "1.1.1.1", None, now).await, Err(AppError::BadCredentials)));
    }
    // After three failures, an immediate retry must wait — even with the right password.
    match app.staff_sign_in("v@example.com", "the right password", "1.1.1.1", None, now).await {
        Err(AppError::TooManyAttempts { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
        other => panic!("expected 429, got {:?}", other.map(|s| s.session)),
    }
    for _ in 3..10 {
        now += 61 * SEC;
        assert!(matches!(app.staff_sign_in("v@example.com", "not the password", "1.1.1.1", None, now).await, Err(AppError::BadCredentials)));
    }
    // Ten failures: locked for 15 minutes, from any address.
    now += 61 * SEC;
    match app.staff_sign_in("v@example.com", "the right password", "2.2.2.2", None, now).await {
        Err(AppError::TooManyAttempts { retry_after_secs }) => assert!(retry_after_secs > 800 && retry_after_secs <= 900, "{retry_after_secs}"),
        other => panic!("expected lock, got {:?}", other.map(|s| s.session)),
    }
    now += 15 * 60 * SEC;
    let s = app.staff_sign_in("v@example.com", "the right password", "2.2.2.2", None, now).await.unwrap();
    assert_eq!(s.session.state, SessionState::SignedIn);
    // Success clears the account's count.
    assert!(matches!(app.staff_sign_in("v@example.com", "not the password", "2.2.2.2", None, now).await, Err(AppError::BadCredentials)));
    assert!(app.staff_sign_in("v@example.com", "the right password", "2.2.2.2", None, now).await.is_ok());
}

// ---------------------------------------------------------- admin sign-in ---

#[tokio::test]
async fn admin_sign_in_enrolment_second_factor_and_sign_out() {
    let t = spawn_app().await;
    t.app.create_staff_user("owner@example.com", Role::Owner, Some("owner password 1"), T0).await.unwrap();
    let mut b = Browser::new(&t);

    let p = b.get("/admin").await;
    assert_eq!((p.status, p.location()), (StatusCode::SEE_OTHER, "/admin/login"));
    let p = b.get("/admin/login").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(p.headers["x-frame-options"], "DENY");
    assert_eq!(p.headers["cache-control"], "no-store");
    assert!(p.body.contains("<label for=\"email\">") && p.body.contains("autocomplete=\"current-password\""));
    let csrf = p.csrf();

    // No token: refused. Wrong password: 401 with the error tied to the fields.
    let r = b.post("/admin/login", &[("email", "owner@example.com"), ("password", "owner password 1")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post("/admin/login", &[("csrf", &csrf), ("email", "owner@example.com"), ("password", "nope nope nope")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("aria-describedby=\"form-error\"") && r.body.contains("role=\"alert\""));

    // Right password: the owner must enrol two-factor first.
    let r = b.post("/admin/login", &[("csrf", &r.csrf()), ("email", "owner@example.com"), ("password", "owner password 1")]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/admin/2fa/setup"), "{}", r.body);
    let set_cookie: Vec<_> = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session = set_cookie.iter().find(|c| c.starts_with("keel_admin=")).expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict") && session.contains("Path=/admin"), "{session}");
    let first_token = b.cookies["keel_admin"].clone();
    assert_eq!(b.get("/admin").await.location(), "/admin/2fa/setup");

    let p = b.get("/admin/2fa/setup").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("<svg") && p.body.contains("aria-label=\"QR code"));
    let secret = between(&p.body, "Key: <code>", "</code>").unwrap();
    let now = now();
    let r = b.post("/admin/2fa/setup", &[("csrf", &p.csrf()), ("code", "12345")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let again = between(&r.body, "Key: <code>", "</code>").unwrap();
    assert_eq!(again, secret, "a wrong code keeps the same secret");
    let r = b.post("/admin/2fa/setup", &[("csrf", &r.csrf()), ("code", &code_at(&secret, now))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let codes: Vec<String> = r.body.split("<li><code>").skip(1).map(|s| s.split("</code>").next().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 10);
    assert_ne!(b.cookies["keel_admin"], first_token, "enabling two-factor issues a new token");
    let mut stale = Browser::new(&t);
    stale.cookies.insert("keel_admin".into(), first_token.clone());
    assert_eq!(stale.get("/admin").await.location(), "/admin/login");
    let enrolled_token = b.cookies["keel_admin"].clone();

    let p = b.get("/admin").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("Signed in as <strong>owner@example.com</strong> (owner)"), "{}", p.body);

    // Sign out needs the token; then the cookie no longer works.
    let r = b.post("/admin/logout", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post("/admin/logout", &[("csrf", &p.csrf())]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/admin/login"));
    assert!(!b.cookies.contains_key("keel_admin"));
    let mut stale = Browser::new(&t);
    stale.cookies.insert("keel_admin".into(), enrolled_token);
    assert_eq!(stale.get("/admin").await.location(), "/admin/login", "signed out");

    // Now the password leads to the second factor; a recovery code works once.
    let p = b.get("/admin/login").await;
    let r = b.post("/admin/login", &[("csrf", &p.csrf()), ("email", "owner@example.com"), ("password", "owner password 1")]).await;
    assert_eq!(r.location(), "/admin/login/2fa");
    assert_eq!(b.get("/admin").await.location(), "/admin/login/2fa", "a password-only session grants nothing");
    let p = b.get("/admin/login/2fa").await;
    assert!(p.body.contains("autocomplete=\"one-time-code\""));
    let r = b.post("/admin/login/2fa", &[("csrf", &p.csrf()), ("code", "000000x")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = b.post("/admin/login/2fa", &[("csrf", &r.csrf()), ("code", &codes[0])]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/admin"));
    let p = b.get("/admin").await;
    assert_eq!(p.status, StatusCode::OK);

    // Sign out everywhere ends this and other sessions.
    let mut other = Browser::new(&t);
    let lp = other.get("/admin/login").await;
    other.post("/admin/login", &[("csrf", &lp.csrf()), ("email", "owner@example.com"), ("password", "owner password 1")]).await;
    let tp = other.get("/admin/login/2fa").await;
    let r = other.post("/admin/login/2fa", &[("csrf", &tp.csrf()), ("code", &codes[1])]).await;
    assert_eq!(r.location(), "/admin");
    let r = b.post("/admin/sessions/revoke-all", &[("csrf", &p.csrf())]).await;
    assert_eq!(r.location(), "/admin/login");
    assert_eq!(other.get("/admin").await.location(), "/admin/login");
}

fn now() -> i64 {
    keel_domain::time::now_micros()
}

#[tokio::test]
async fn admin_sign_in_is_throttled_with_retry_after() {
    let t = spawn_app().await;
    t.app.create_staff_user("s@example.com", Role::SupportAgent, Some("support password"), T0).await.unwrap();
    let mut b = Browser::new(&t);
    let mut p = b.get("/admin/login").await;
    for _ in 0..3 {
        p = b.post("/admin/login", &[("csrf", &p.csrf()), ("email", "s@example.com"), ("password", "wrong password")]).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
    let p = b.get("/admin/login").await;
    let r = b.post("/admin/login", &[("csrf", &p.csrf()), ("email", "s@example.com"), ("password", "support password")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn every_admin_route_is_served_and_has_an_access_rule() {
    use keel_web::access::{admin_access, admin_routes, Access};
    let t = spawn_app().await;
    let mut b = crate::admin_client::signed_in(&t, Role::Analyst).await;
    for (m, path, _) in admin_routes() {
        let method: Method = m.parse().unwrap();
        assert!(admin_access(&method, path).is_some());
        if *path == "/admin/logout" || *path == "/admin/sessions/revoke-all" {
            continue; // would end the session; covered above
        }
        // A well-formed id that names nothing: the handler answers, not the router.
        let concrete = path.split('/').map(|s| if s.starts_with('{') { "x_00000000000000000000000000000000" } else { s }).collect::<Vec<_>>().join("/");
        let p = if method == Method::GET { b.get(&concrete).await } else { b.post(&concrete, &[]).await };
        assert_ne!(p.status, StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
        assert!(p.status != StatusCode::NOT_FOUND || p.body.contains("There is no such"), "{m} {path}: the router does not serve it");
        assert!(!p.body.contains("not open to anyone"), "{m} {path}");
    }
    // A write never rests on a read permission; undeclared routes are refused.
    for (m, path, access) in admin_routes() {
        if let Access::Needs(p) = access {
            assert!(*m == "GET" || !p.is_read(), "{m} {path} needs only {}", p.as_str());
        }
    }
    assert_eq!(admin_access(&Method::GET, "/admin/nothing"), None);
}

#[tokio::test]
async fn every_role_is_refused_every_api_route_it_lacks_the_permission_for() {
    use keel_web::access::allows;
    let t = spawn_app().await;
    let mut refused = 0;
    for role in Role::ALL.into_iter().filter(|r| *r != Role::Owner) {
        let (_, key) = key_with_role(&t, role.as_str()).await;
        for (m, p) in all_routes() {
            let perm = route_permission(&m, &p).unwrap();
            if allows(role, perm) {
                continue;
            }
            let path = p.replace("{id}", "x").replace("{address_id}", "x").replace("{image_id}", "x").replace("{variant_id}", "x").replace("{line_id}", "x");
            let url = match path.strip_prefix("/api/v1") {
                Some(rest) => t.url(rest),
                None => format!("{}{path}", t.base),
            };
            let mut req = t.http.request(m.clone(), url).bearer_auth(&key);
            if m != Method::GET {
                req = req.json(&json!({}));
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{} may not {m} {p} ({})", role.as_str(), perm.as_str());
            refused += 1;
        }
    }
    assert!(refused > 100, "{refused} refusals checked");
}

#[tokio::test]
async fn every_role_is_refused_every_admin_page_it_lacks_the_permission_for() {
    use keel_web::access::{admin_routes, allows, Access};
    let t = spawn_app().await;
    for role in Role::ALL {
        let mut b = crate::admin_client::signed_in(&t, role).await;
        let home = b.get("/admin").await;
        assert_eq!(home.status, StatusCode::OK, "{}", role.as_str());
        let csrf = home.csrf();
        for (m, path, access) in admin_routes() {
            let Access::Needs(perm) = access else { continue };
            if allows(role, *perm) {
                continue;
            }
            let concrete = path.split('/').map(|s| if s.starts_with('{') { "x_00000000000000000000000000000000" } else { s }).collect::<Vec<_>>().join("/");
            // A write is refused even with a valid form: the permission is checked first.
            let p = if *m == "GET" { b.get(&concrete).await } else { b.post(&concrete, &[("csrf", &csrf)]).await };
            assert_eq!(p.status, StatusCode::FORBIDDEN, "{} may not {m} {path} ({})", role.as_str(), perm.as_str());
            assert!(p.body.contains(perm.as_str()), "the refusal names the permission");
        }
    }
}

//! Admin users and roles, API keys and the audit log: adding a user (the
//! password shown once, then used to sign in), role changes, disable /
//! enable, two-factor reset and sign-out everywhere; the grant, self and
//! role refusals; a key made on the page used against the API and revoked;
//! the audit log and its filters; refusals by role and without CSRF; the
//! one-time secrets never leaving the response body.

use crate::admin_client::{between, signed_in, Browser, Page};
use keel_app::audit::NewAuditEntry;
use keel_domain::access::{allows, Permission, Role};
use keel_testkit::{spawn_app, TestApp};
use reqwest::StatusCode;
use serde_json::json;

/// The one-time secret a result page shows.
pub fn secret_of(p: &Page) -> String {
    between(&p.body, "<code class=\"secret-value\">", "</code>").expect("a secret on the page")
}

/// The secret is in the body only: never in a cookie, a redirect or a
/// cacheable response.
pub fn assert_secret_stays_in_body(p: &Page, secret: &str) {
    assert!(p.body.contains(secret));
    for v in p.headers.get_all("set-cookie") {
        assert!(!v.to_str().unwrap().contains(secret), "a cookie carries the secret");
    }
    assert!(!p.location().contains(secret));
    assert!(p.headers.get("location").is_none(), "the result page is not a redirect");
    assert_eq!(p.headers.get("cache-control").unwrap(), "no-store");
}

async fn staff_count(t: &TestApp) -> i64 {
    t.db.scalar("SELECT COUNT(*) FROM staff_users").await
}

async fn role_of(t: &TestApp, id: &str) -> Role {
    t.app.staff_user(id).await.unwrap().unwrap().role
}

/// A fresh browser signing in with a password only.
async fn sign_in(t: &TestApp, email: &str, password: &str) -> (Browser, Page) {
    let mut b = Browser::new(t);
    let p = b.get("/admin/login").await;
    let r = b.post("/admin/login", &[("csrf", &p.csrf()), ("email", email), ("password", password)]).await;
    (b, r)
}

async fn api_as(t: &TestApp, secret: &str, method: reqwest::Method, path: &str) -> StatusCode {
    let mut req = t.http.request(method.clone(), t.url(path)).bearer_auth(secret);
    if method == reqwest::Method::POST {
        req = req.json(&json!({"title": "Cap", "variants": [{"sku": "CAP-1", "prices": [{"currency": "USD", "amount": 500}]}]}));
    }
    req.send().await.unwrap().status()
}

#[tokio::test]
async fn an_owner_adds_a_user_who_signs_in_with_the_password_shown_once() {
    let t = spawn_app().await;
    let mut owner = signed_in(&t, Role::Owner).await;
    let p = owner.get("/admin/users").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("owner@example.com") && p.body.contains("Add user"));
    assert!(p.body.contains("<option value=\"owner\""), "an owner may grant owner");
    let csrf = p.csrf();
    let before = staff_count(&t).await;

    // Without the CSRF token: refused, nothing added.
    let r = owner.post("/admin/users", &[("email", "cat@example.com"), ("role", "catalog_manager")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Bad input: 422 naming the field.
    let r = owner.post("/admin/users", &[("csrf", &csrf), ("email", "not an email"), ("role", "catalog_manager")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("href=\"#f-email\""), "{}", r.body);
    let r = owner.post("/admin/users", &[("csrf", &csrf), ("email", "cat@example.com"), ("role", "root")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("href=\"#f-role\""), "{}", r.body);
    assert_eq!(staff_count(&t).await, before);

    let r = owner.post("/admin/users", &[("csrf", &csrf), ("email", "Cat@Example.com"), ("role", "catalog_manager")]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let password = secret_of(&r);
    assert!(password.len() >= 16, "{password}");
    assert_secret_stays_in_body(&r, &password);
    assert!(r.body.contains("shown only once") && r.body.contains("two-factor"), "{}", r.body);
    assert_eq!(staff_count(&t).await, before + 1);
    // The audit entry names the new user as its target.
    let audit = t.get("/audit-log?action=POST%20/admin/users").await;
    let created = audit.body["data"].as_array().unwrap().iter().find(|e| e["status"] == 201).expect("the add is audited").clone();
    let cat_id = created["target"].as_str().expect("a target").to_owned();
    assert!(r.body.contains(&format!("/admin/users/{cat_id}")), "the target is the user added: {created}");
    // The list does not show it again, and the same email is refused.
    let p = owner.get("/admin/users").await;
    assert!(p.body.contains("cat@example.com") && !p.body.contains(&password));
    let r = owner.post("/admin/users", &[("csrf", &p.csrf()), ("email", "cat@example.com"), ("role", "analyst")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(staff_count(&t).await, before + 1);

    // The new user signs in with it (no second factor required for the role).
    let (mut cat, r) = sign_in(&t, "cat@example.com", &password).await;
    assert_eq!(r.location(), "/admin", "{}", r.body);
    assert_eq!(cat.get("/admin").await.status, StatusCode::OK);
    assert_eq!(cat.get("/admin/users").await.status, StatusCode::FORBIDDEN);

    // The filters: the new user is active, not disabled; the status in words.
    let p = owner.get("/admin/users?status=active").await;
    assert!(p.body.contains("cat@example.com") && p.body.contains(">Active</span>"), "{}", p.body);
    let p = owner.get("/admin/users?status=disabled").await;
    assert!(!p.body.contains("cat@example.com"));
    let p = owner.get("/admin/users?status=stale").await;
    assert!(!p.body.contains("cat@example.com"));
}

#[tokio::test]
async fn an_owner_changes_a_role_disables_enables_resets_and_signs_out() {
    let t = spawn_app().await;
    let mut owner = signed_in(&t, Role::Owner).await;
    let mut analyst = signed_in(&t, Role::Analyst).await;
    let page = format!("/admin/users/{}", analyst.user_id);
    let p = owner.get(&page).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("analyst@example.com") && p.body.contains("Open sessions"));
    let csrf = p.csrf();

    // Without CSRF nothing changes.
    let r = owner.post(&format!("{page}/role"), &[("role", "support_agent")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(role_of(&t, &analyst.user_id).await, Role::Analyst);
    let r = owner.post(&format!("{page}/role"), &[("csrf", &csrf), ("role", "chief")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("href=\"#f-role\""));

    let r = owner.post(&format!("{page}/role"), &[("csrf", &csrf), ("role", "support_agent")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), page);
    assert_eq!(role_of(&t, &analyst.user_id).await, Role::SupportAgent);
    let p = owner.get(&page).await;
    assert!(p.body.contains("is now Support agent"), "the flash shows once");

    // Disabling ends their session at once.
    let r = owner.post(&format!("{page}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(analyst.get("/admin").await.location(), "/admin/login");
    let (_, r) = sign_in(&t, "analyst@example.com", "analyst password 1").await;
    assert_ne!(r.location(), "/admin", "a disabled user cannot sign in");
    let p = owner.get("/admin/users?status=disabled").await;
    assert!(p.body.contains("analyst@example.com") && p.body.contains(">Disabled</span>"));

    let r = owner.post(&format!("{page}/enable"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (mut again, r) = sign_in(&t, "analyst@example.com", "analyst password 1").await;
    assert_eq!(r.location(), "/admin", "{}", r.body);

    // Sign out everywhere ends their sessions.
    let r = owner.post(&format!("{page}/sign-out"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(again.get("/admin").await.location(), "/admin/login");

    // Resetting two-factor turns it off (and ends the sessions).
    let mut admin = signed_in(&t, Role::Admin).await;
    assert!(t.app.staff_user(&admin.user_id).await.unwrap().unwrap().two_factor_enabled);
    let r = owner.post(&format!("/admin/users/{}/reset-two-factor", admin.user_id), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(!t.app.staff_user(&admin.user_id).await.unwrap().unwrap().two_factor_enabled);
    assert_eq!(admin.get("/admin").await.location(), "/admin/login");

    // Unknown users: the handler's 404 page.
    let r = owner.post("/admin/users/usr_00000000000000000000000000000000/disable", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("There is no such staff user"));
}

#[tokio::test]
async fn grant_and_self_refusals_change_nothing() {
    let t = spawn_app().await;
    let mut owner = signed_in(&t, Role::Owner).await;
    let mut admin = signed_in(&t, Role::Admin).await;
    let analyst = signed_in(&t, Role::Analyst).await;
    let csrf = admin.get("/admin/users").await.csrf();

    // An admin cannot make an owner: not offered, and refused if sent.
    let p = admin.get(&format!("/admin/users/{}", analyst.user_id)).await;
    assert!(!p.body.contains("<option value=\"owner\""), "owner is not offered to an admin");
    let r = admin.post(&format!("/admin/users/{}/role", analyst.user_id), &[("csrf", &csrf), ("role", "owner")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("Nothing was changed"), "{}", r.body);
    assert_eq!(role_of(&t, &analyst.user_id).await, Role::Analyst);
    let before = staff_count(&t).await;
    let r = admin.post("/admin/users", &[("csrf", &csrf), ("email", "boss@example.com"), ("role", "owner")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(staff_count(&t).await, before);
    // Nor touch an owner's account.
    let r = admin.post(&format!("/admin/users/{}/disable", owner.user_id), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(t.app.staff_account(&owner.user_id, keel_domain::time::now_micros()).await.unwrap().unwrap().account.is_active());

    // Nobody disables themselves, changes their own role or resets their own two-factor.
    for b in [&mut owner, &mut admin] {
        let me = b.user_id.clone();
        let csrf = b.get(&format!("/admin/users/{me}")).await.csrf();
        let r = b.post(&format!("/admin/users/{me}/disable"), &[("csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert!(r.body.contains("your own account"), "{}", r.body);
        let r = b.post(&format!("/admin/users/{me}/role"), &[("csrf", &csrf), ("role", "analyst")]).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        let r = b.post(&format!("/admin/users/{me}/reset-two-factor"), &[("csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(b.get("/admin").await.status, StatusCode::OK, "still signed in");
    }
    assert_eq!(role_of(&t, &owner.user_id).await, Role::Owner);
    assert_eq!(role_of(&t, &admin.user_id).await, Role::Admin);
    assert!(t.app.staff_user(&admin.user_id).await.unwrap().unwrap().two_factor_enabled);
}

#[tokio::test]
async fn a_key_made_on_the_page_works_with_its_role_until_revoked_on_the_page() {
    let t = spawn_app().await;
    let mut owner = signed_in(&t, Role::Owner).await;
    let p = owner.get("/admin/api-keys").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let csrf = p.csrf();
    let keys_before = t.db.scalar("SELECT COUNT(*) FROM api_keys").await;

    let r = owner.post("/admin/api-keys", &[("name", "Reader"), ("role", "analyst")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    let r = owner.post("/admin/api-keys", &[("csrf", &csrf), ("name", "Reader"), ("role", "analyst"), ("expires_in_days", "0")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("href=\"#f-expires_in_days\""), "{}", r.body);
    let r = owner.post("/admin/api-keys", &[("csrf", &csrf), ("name", ""), ("role", "analyst")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("href=\"#f-name\""));
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM api_keys").await, keys_before);

    let r = owner.post("/admin/api-keys", &[("csrf", &csrf), ("name", "Reader"), ("role", "analyst"), ("expires_in_days", "30")]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let secret = secret_of(&r);
    assert!(secret.starts_with("keel_sk_"), "{secret}");
    assert_secret_stays_in_body(&r, &secret);
    assert!(r.body.contains("shown only once"));

    // The key can do what an analyst can, and no more.
    assert_eq!(api_as(&t, &secret, reqwest::Method::GET, "/products").await, StatusCode::OK);
    assert_eq!(api_as(&t, &secret, reqwest::Method::GET, "/audit-log").await, StatusCode::OK);
    assert_eq!(api_as(&t, &secret, reqwest::Method::POST, "/products").await, StatusCode::FORBIDDEN);

    // Listed with its creator, never with its secret.
    let p = owner.get("/admin/api-keys").await;
    assert!(p.body.contains("Reader") && p.body.contains("owner@example.com") && p.body.contains("Analyst"), "{}", p.body);
    assert!(!p.body.contains(&secret));
    let keys = t.get("/api-keys?limit=100").await;
    let key = keys.body["data"].as_array().unwrap().iter().find(|k| k["name"] == "Reader").unwrap().clone();
    let audit = t.get("/audit-log?action=POST%20/admin/api-keys").await;
    let created = audit.body["data"].as_array().unwrap().iter().find(|e| e["status"] == 201).expect("the creation is audited").clone();
    assert_eq!(created["target"], key["id"], "the audit entry names the key made: {created}");
    assert_eq!(key["role"], "analyst");
    assert_eq!(key["created_by"], owner.user_id.as_str());
    assert!(key["expires_at"].is_string());
    let id = key["id"].as_str().unwrap().to_owned();
    assert!(p.body.contains(&format!("/admin/api-keys/{id}/revoke")));

    // An admin cannot mint an owner key.
    let mut admin = signed_in(&t, Role::Admin).await;
    let acsrf = admin.get("/admin/api-keys").await.csrf();
    let r = admin.post("/admin/api-keys", &[("csrf", &acsrf), ("name", "Root"), ("role", "owner")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM api_keys").await, keys_before + 1);

    // Revoking on the page stops it at once.
    let r = owner.post(&format!("/admin/api-keys/{id}/revoke"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
    assert_eq!(api_as(&t, &secret, reqwest::Method::GET, "/products").await, StatusCode::OK);
    let r = owner.post(&format!("/admin/api-keys/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/admin/api-keys");
    for v in r.headers.get_all("set-cookie") {
        assert!(!v.to_str().unwrap().contains(&secret));
    }
    assert_eq!(api_as(&t, &secret, reqwest::Method::GET, "/products").await, StatusCode::UNAUTHORIZED);
    let p = owner.get("/admin/api-keys").await;
    assert!(p.body.contains("is revoked") && p.body.contains(">Revoked</span>"), "{}", p.body);
    assert!(!p.body.contains(&format!("/admin/api-keys/{id}/revoke")), "no revoke button for a revoked key");
    let r = owner.post("/admin/api-keys/key_00000000000000000000000000000000/revoke", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_audit_log_lists_admin_writes_and_its_filters_narrow_them() {
    let t = spawn_app().await;
    let mut owner = signed_in(&t, Role::Owner).await;
    let csrf = owner.get("/admin/users").await.csrf();
    let r = owner.post("/admin/users", &[("csrf", &csrf), ("email", "pat@example.com"), ("role", "fulfillment")]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let pat = between(&r.body, "href=\"/admin/users/", "\"").unwrap();
    let r = owner.post(&format!("/admin/users/{pat}/role"), &[("csrf", &csrf), ("role", "analyst")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = owner.post("/admin/api-keys", &[("csrf", &csrf), ("name", "Feed"), ("role", "inventory_manager")]).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let secret = secret_of(&r);

    let p = owner.get("/admin/audit-log").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    for action in ["POST /admin/users</code>", "POST /admin/users/{user_id}/role</code>", "POST /admin/api-keys</code>"] {
        assert!(p.body.contains(action), "{action}: {}", p.body);
    }
    assert!(p.body.contains("owner@example.com") && p.body.contains("Succeeded (303)") && p.body.contains("Succeeded (201)"));
    assert!(p.body.contains("Fields: email, role"), "field names, never values");
    assert!(p.body.contains("pat@example.com ("), "a staff target is named");
    assert!(!p.body.contains(&secret));

    // Action substring.
    let p = owner.get("/admin/audit-log?action=role").await;
    assert!(p.body.contains("/role</code>") && !p.body.contains("POST /admin/api-keys</code>"), "{}", p.body);
    // Target.
    let p = owner.get(&format!("/admin/audit-log?target={pat}")).await;
    assert!(p.body.contains("/role</code>") && !p.body.contains("POST /admin/api-keys</code>"));
    // Actor by email, or as recorded.
    let p = owner.get("/admin/audit-log?actor=OWNER%40example.com").await;
    assert!(p.body.contains("POST /admin/api-keys</code>"), "{}", p.body);
    let p = owner.get("/admin/audit-log?actor=system%3Acli").await;
    assert!(p.body.contains("No entries match"));
    let p = owner.get("/admin/audit-log?actor=nobody%40example.com").await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("href=\"#f-actor\""));
    // Time range (UTC dates and date-times).
    let p = owner.get("/admin/audit-log?until=2000-01-01").await;
    assert!(p.body.contains("No entries match"));
    let p = owner.get("/admin/audit-log?since=2000-01-01T00%3A00&until=2999-12-31").await;
    assert!(p.body.contains("POST /admin/api-keys</code>"));
    let p = owner.get("/admin/audit-log?since=last+week").await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("href=\"#f-since\""));

    // Paging by cursor: "Older entries" keeps the filters.
    for i in 0..55 {
        let entry = NewAuditEntry {
            actor: "system:test".into(),
            action: format!("POST /test/{i}"),
            target: None,
            summary: json!({}),
            ip: None,
            status: 200,
        };
        t.app.record_audit(entry).await.unwrap();
    }
    let p = owner.get("/admin/audit-log?action=test").await;
    assert!(p.body.contains("POST /test/54</code>") && !p.body.contains("POST /test/4</code>"));
    let end = p.body.find("\" rel=\"next\">Older entries").expect("an Older entries link");
    let start = p.body[..end].rfind("href=\"").unwrap() + "href=\"".len();
    let older = p.body[start..end].replace("&#38;", "&").replace("&amp;", "&");
    assert!(older.contains("action=test") && older.contains("starting_after=aud_"), "{older}");
    let p = owner.get(&older).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("POST /test/4</code>") && !p.body.contains("POST /test/54</code>") && !p.body.contains("Older entries"), "{}", p.body);
    assert!(p.body.contains("Newest entries"));

    // No write route: a POST is not served.
    let r = owner.post("/admin/audit-log", &[("csrf", &csrf)]).await;
    assert!(r.status == StatusCode::METHOD_NOT_ALLOWED || r.status == StatusCode::FORBIDDEN, "{}", r.status);
}

#[tokio::test]
async fn the_roles_page_is_the_matrix_itself() {
    let t = spawn_app().await;
    let mut admin = signed_in(&t, Role::Admin).await;
    let p = admin.get("/admin/roles").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let held = Role::ALL.iter().flat_map(|r| Permission::ALL.iter().map(move |p| allows(*r, *p))).filter(|h| *h).count();
    assert_eq!(p.body.matches("<td class=\"yes\">Yes</td>").count(), held);
    assert_eq!(p.body.matches("<td class=\"no\">No</td>").count(), Role::ALL.len() * Permission::ALL.len() - held);
    for perm in Permission::ALL {
        assert!(p.body.contains(&format!("<code>{}</code>", perm.as_str())));
    }
    assert!(p.body.contains("Catalog manager") && p.body.contains("<th scope=\"row\">"));
}

#[tokio::test]
async fn roles_without_the_permissions_are_refused_every_page_and_write() {
    let t = spawn_app().await;
    let owner = signed_in(&t, Role::Owner).await;
    let target = owner.user_id.clone();
    let (_, key) = t.app.create_api_key("kept").await.unwrap();
    let key_id = t.get("/api-keys").await.body["data"][0]["id"].as_str().unwrap().to_owned();
    for role in [Role::Analyst, Role::CatalogManager, Role::SupportAgent] {
        let mut b = signed_in(&t, role).await;
        let csrf = b.get("/admin").await.csrf();
        for path in ["/admin/users".to_owned(), format!("/admin/users/{target}"), "/admin/roles".to_owned(), "/admin/api-keys".to_owned()] {
            let p = b.get(&path).await;
            assert_eq!(p.status, StatusCode::FORBIDDEN, "{role:?} GET {path}");
        }
        let audit = b.get("/admin/audit-log").await.status;
        assert_eq!(audit, if allows(role, Permission::AuditRead) { StatusCode::OK } else { StatusCode::FORBIDDEN }, "{role:?}");
        let users = staff_count(&t).await;
        let keys = t.db.scalar("SELECT COUNT(*) FROM api_keys").await;
        let writes: Vec<(String, Vec<(&str, &str)>)> = vec![
            ("/admin/users".into(), vec![("email", "x@example.com"), ("role", "analyst")]),
            (format!("/admin/users/{target}/role"), vec![("role", "analyst")]),
            (format!("/admin/users/{target}/disable"), vec![]),
            (format!("/admin/users/{target}/enable"), vec![]),
            (format!("/admin/users/{target}/reset-two-factor"), vec![]),
            (format!("/admin/users/{target}/sign-out"), vec![]),
            ("/admin/api-keys".into(), vec![("name", "Mine"), ("role", "analyst")]),
            (format!("/admin/api-keys/{key_id}/revoke"), vec![]),
        ];
        for (path, fields) in writes {
            let mut form = vec![("csrf", csrf.as_str())];
            form.extend(fields);
            let r = b.post(&path, &form).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{role:?} POST {path}");
        }
        assert_eq!(staff_count(&t).await, users);
        assert_eq!(t.db.scalar("SELECT COUNT(*) FROM api_keys").await, keys);
        assert_eq!(role_of(&t, &target).await, Role::Owner);
        let owner_now = t.app.staff_user(&target).await.unwrap().unwrap();
        assert!(owner_now.two_factor_enabled);
    }
    // The key survived every attempt.
    let r = t.http.get(t.url("/products")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The refusals are in the audit log.
    let audit = t.get("/audit-log?action_contains=/admin/users&limit=100").await;
    let refused = audit.body["data"].as_array().unwrap().iter().filter(|e| e["status"] == 403).count();
    assert!(refused >= 6 * 3, "{}", audit.body);
}


#[tokio::test]
async fn the_key_list_pages_by_cursor() {
    let t = spawn_app().await;
    for i in 0..55 {
        t.app.create_api_key(&format!("bulk {i}")).await.unwrap();
    }
    let mut owner = signed_in(&t, Role::Owner).await;
    let p = owner.get("/admin/api-keys").await;
    assert!(p.body.contains("<th scope=\"row\">bulk 54</th>") && !p.body.contains("<th scope=\"row\">bulk 4</th>"));
    let end = p.body.find("\" rel=\"next\">Older keys").expect("an Older keys link");
    let start = p.body[..end].rfind("href=\"").unwrap() + "href=\"".len();
    let older = p.body[start..end].to_owned();
    assert!(older.starts_with("/admin/api-keys?starting_after=key_"), "{older}");
    let p = owner.get(&older).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("<th scope=\"row\">bulk 4</th>") && !p.body.contains("<th scope=\"row\">bulk 54</th>") && !p.body.contains("Older keys"));
    assert!(p.body.contains("Newest keys"));
    // A cursor that is not a key id shows the first page.
    let p = owner.get("/admin/api-keys?starting_after=nonsense").await;
    assert!(p.body.contains("<th scope=\"row\">bulk 54</th>"));
}

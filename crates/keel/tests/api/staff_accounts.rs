//! Staff account management: the list and its staleness, role changes,
//! disabling and re-enabling, two-factor resets, the grant rules, and the
//! stale-accounts job. Every call takes a controlled `now`.

use keel_app::audit::AuditQuery;
use keel_app::staff::accounts::{StaffAccount, StaffFilter, STALE_JOB_ACTION, STALE_JOB_ACTOR};
use keel_app::staff::{StaffConfig, StaffUser};
use keel_app::{App, AppError};
use keel_domain::access::Role;
use keel_testkit::{spawn_with, TestApp};

const T: i64 = 1_800_000_000_000_000;
const SEC: i64 = 1_000_000;
const DAY: i64 = 86_400 * SEC;
const PASSWORD: &str = "a long enough password";

fn config(stale_after_days: u32, disable_stale: bool) -> StaffConfig {
    StaffConfig { require_two_factor: false, stale_after_days, disable_stale }
}

async fn spawn(stale_after_days: u32, disable_stale: bool) -> TestApp {
    spawn_with(move |app| app.with_staff_config(config(stale_after_days, disable_stale))).await
}

async fn user(app: &App, email: &str, role: Role, created: i64) -> StaffUser {
    app.create_staff_user(email, role, Some(PASSWORD), created).await.unwrap().user
}

fn emails(list: &[StaffAccount]) -> Vec<&str> {
    list.iter().map(|a| a.user.email.as_str()).collect()
}

async fn list(app: &App, f: StaffFilter, now: i64) -> Vec<String> {
    emails(&app.list_staff_users(f, now).await.unwrap()).into_iter().map(str::to_owned).collect()
}

async fn sessions_of(t: &TestApp, user_id: &str) -> i64 {
    t.db.scalar(&format!("SELECT COUNT(*) FROM staff_sessions WHERE user_id = '{user_id}'")).await
}

fn conflict_code(e: &AppError) -> Option<(&str, Option<&str>)> {
    match e {
        AppError::Conflict { code, param, .. } => Some((code, param.as_deref())),
        _ => None,
    }
}

#[tokio::test]
async fn the_list_shows_status_and_staleness() {
    let t = spawn(90, true).await;
    let app = &t.app;
    let owner = user(app, "owner@example.com", Role::Owner, T - 200 * DAY).await;
    user(app, "never@example.com", Role::Admin, T - 91 * DAY).await;
    user(app, "recent@example.com", Role::Analyst, T - 300 * DAY).await;
    app.staff_sign_in("recent@example.com", PASSWORD, "", None, T - 10 * DAY).await.unwrap();
    user(app, "new@example.com", Role::Fulfillment, T - 89 * DAY).await;
    let gone = user(app, "gone@example.com", Role::SupportAgent, T - 400 * DAY).await;
    app.disable_staff_user(&owner, &gone.id, T - DAY).await.unwrap();
    app.staff_sign_in("owner@example.com", PASSWORD, "", None, T - 5 * DAY).await.unwrap();

    let all = app.list_staff_users(StaffFilter::All, T).await.unwrap();
    assert_eq!(emails(&all), ["gone@example.com", "never@example.com", "new@example.com", "owner@example.com", "recent@example.com"]);
    let never = all.iter().find(|a| a.user.email == "never@example.com").unwrap();
    assert!(never.stale && never.is_active() && never.user.last_login_at.is_none());
    assert_eq!((never.created_at, never.last_used_at), (T - 91 * DAY, T - 91 * DAY));
    assert_eq!(never.user.role, Role::Admin);
    assert!(!never.user.two_factor_enabled);
    let recent = all.iter().find(|a| a.user.email == "recent@example.com").unwrap();
    assert!(!recent.stale, "a sign-in 10 days ago counts, not the creation 300 days ago");
    assert_eq!(recent.user.last_login_at, Some(T - 10 * DAY));
    let disabled = all.iter().find(|a| a.user.email == "gone@example.com").unwrap();
    assert!(!disabled.stale && !disabled.is_active(), "a disabled account is not stale");
    assert_eq!(disabled.disabled_at, Some(T - DAY));

    assert_eq!(list(app, StaffFilter::Active, T).await, ["never@example.com", "new@example.com", "owner@example.com", "recent@example.com"]);
    assert_eq!(list(app, StaffFilter::Stale, T).await, ["never@example.com"]);
    assert_eq!(list(app, StaffFilter::Disabled, T).await, ["gone@example.com"]);
    // Time moves on: the 89-day-old account crosses the threshold.
    assert_eq!(list(app, StaffFilter::Stale, T + 2 * DAY).await, ["never@example.com", "new@example.com"]);
    // Exactly at the threshold is not yet stale.
    assert_eq!(list(app, StaffFilter::Stale, T + DAY).await, ["never@example.com"]);

    let detail = app.staff_account(&owner.id, T).await.unwrap().unwrap();
    assert_eq!(detail.live_sessions, 0, "the owner's sign-in five days ago has timed out");
    assert!(app.staff_account("stf_nope", T).await.unwrap().is_none());

    // Another threshold.
    let t = spawn(7, true).await;
    user(&t.app, "a@example.com", Role::Analyst, T - 8 * DAY).await;
    user(&t.app, "b@example.com", Role::Analyst, T - 6 * DAY).await;
    assert_eq!(list(&t.app, StaffFilter::Stale, T).await, ["a@example.com"]);
}

#[tokio::test]
async fn the_job_disables_stale_accounts_audits_them_and_spares_the_last_owner() {
    let t = spawn(90, true).await;
    let app = &t.app;
    let owner = user(app, "owner@example.com", Role::Owner, T - 200 * DAY).await;
    let admin = user(app, "admin@example.com", Role::Admin, T - 200 * DAY).await;
    // A session row (timed out by now) that the disable deletes.
    let s = app.staff_sign_in("admin@example.com", PASSWORD, "", None, T - 100 * DAY).await.unwrap();
    let analyst = user(app, "analyst@example.com", Role::Analyst, T - 30 * DAY).await;
    assert_eq!(sessions_of(&t, &admin.id).await, 1);

    assert_eq!(app.disable_stale_staff(T).await.unwrap(), 1, "the admin; the only owner stays");
    assert_eq!(list(app, StaffFilter::Disabled, T).await, ["admin@example.com"]);
    assert_eq!(sessions_of(&t, &admin.id).await, 0, "its sessions went with it");
    assert!(app.staff_session(&s.token, T).await.unwrap().is_none());
    assert_eq!(list(app, StaffFilter::Stale, T).await, ["owner@example.com"], "still listed as stale");

    let log = app.list_audit_log(&AuditQuery { actor: Some(STALE_JOB_ACTOR.into()), ..Default::default() }).await.unwrap();
    assert_eq!(log.data.len(), 1);
    let e = &log.data[0];
    assert_eq!((e.action.as_str(), e.target.as_deref()), (STALE_JOB_ACTION, Some(admin.id.as_str())));
    assert_eq!(e.summary["threshold_days"], 90);
    assert_eq!(e.summary["last_used_at"], keel_domain::time::to_rfc3339(T - 100 * DAY));

    // Nothing more to do; a second run changes nothing.
    assert_eq!(app.disable_stale_staff(T + SEC).await.unwrap(), 0);

    // Re-enabled, the admin gets a full threshold before the job acts again.
    let back = app.enable_staff_user(&owner, &admin.id, T + DAY).await.unwrap();
    assert!(back.is_active() && !back.stale && back.reactivated_at == Some(T + DAY));
    assert_eq!(app.disable_stale_staff(T + 2 * DAY).await.unwrap(), 0);
    assert_eq!(app.disable_stale_staff(T + 90 * DAY).await.unwrap(), 1, "the analyst (created 120 days before)");
    assert!(!app.staff_account(&analyst.id, T).await.unwrap().unwrap().account.is_active());
    assert_eq!(app.disable_stale_staff(T + 92 * DAY).await.unwrap(), 1, "the admin, 91 days after re-enabling");

    // Two stale owners: the one used most recently stays.
    let second = user(app, "second@example.com", Role::Owner, T - 150 * DAY).await;
    assert_eq!(app.disable_stale_staff(T + 92 * DAY).await.unwrap(), 1);
    assert!(!app.staff_account(&owner.id, T).await.unwrap().unwrap().account.is_active(), "created first: disabled");
    assert!(app.staff_account(&second.id, T).await.unwrap().unwrap().account.is_active(), "the last active owner");
    let log = app.list_audit_log(&AuditQuery { actor: Some(STALE_JOB_ACTOR.into()), ..Default::default() }).await.unwrap();
    assert_eq!(log.data.len(), 4);
    assert_eq!(log.data[0].target.as_deref(), Some(owner.id.as_str()), "newest first");
}

#[tokio::test]
async fn with_disabling_off_the_job_only_lists() {
    let t = spawn(90, false).await;
    let app = &t.app;
    user(app, "owner@example.com", Role::Owner, T - 200 * DAY).await;
    user(app, "old@example.com", Role::Analyst, T - 200 * DAY).await;
    assert_eq!(app.disable_stale_staff(T).await.unwrap(), 0);
    assert_eq!(list(app, StaffFilter::Stale, T).await, ["old@example.com", "owner@example.com"]);
    assert!(list(app, StaffFilter::Disabled, T).await.is_empty());
    let log = app.list_audit_log(&AuditQuery { actor: Some(STALE_JOB_ACTOR.into()), ..Default::default() }).await.unwrap();
    assert!(log.data.is_empty());
}

#[tokio::test]
async fn disabled_users_cannot_sign_in_and_lose_their_sessions() {
    let t = spawn(90, true).await;
    let app = &t.app;
    let owner = user(app, "owner@example.com", Role::Owner, T).await;
    let u = user(app, "ana@example.com", Role::Analyst, T).await;
    let a = app.staff_sign_in("ana@example.com", PASSWORD, "", None, T).await.unwrap();
    let b = app.staff_sign_in("ana@example.com", PASSWORD, "", None, T).await.unwrap();
    assert!(app.staff_session(&a.token, T).await.unwrap().is_some());

    let off = app.disable_staff_user(&owner, &u.id, T + SEC).await.unwrap();
    assert_eq!(off.disabled_at, Some(T + SEC));
    assert_eq!(sessions_of(&t, &u.id).await, 0, "deleted in the same transaction");
    assert!(app.staff_session(&a.token, T + SEC).await.unwrap().is_none());
    assert!(app.staff_session(&b.token, T + SEC).await.unwrap().is_none());
    assert!(matches!(app.staff_sign_in("ana@example.com", PASSWORD, "", None, T + 2 * SEC).await, Err(AppError::BadCredentials)));
    // Disabling again changes nothing.
    assert_eq!(app.disable_staff_user(&owner, &u.id, T + 3 * SEC).await.unwrap().disabled_at, Some(T + SEC));

    // A session that slipped in past the disable (a racing sign-in) ends at its next use.
    app.enable_staff_user(&owner, &u.id, T + 4 * SEC).await.unwrap();
    let c = app.staff_sign_in("ana@example.com", PASSWORD, "", None, T + 5 * SEC).await.unwrap();
    t.db.execute_raw(&format!("UPDATE staff_users SET disabled_at = 1 WHERE id = '{}'", u.id)).await;
    assert!(app.staff_session(&c.token, T + 6 * SEC).await.unwrap().is_none());
    assert_eq!(sessions_of(&t, &u.id).await, 0);

    // Signing out another account's sessions.
    t.db.execute_raw(&format!("UPDATE staff_users SET disabled_at = NULL WHERE id = '{}'", u.id)).await;
    let d = app.staff_sign_in("ana@example.com", PASSWORD, "", None, T + 7 * SEC).await.unwrap();
    assert_eq!(app.staff_account(&u.id, T + 7 * SEC).await.unwrap().unwrap().live_sessions, 1);
    app.end_staff_sessions(&owner, &u.id, T + 8 * SEC).await.unwrap();
    assert!(app.staff_session(&d.token, T + 8 * SEC).await.unwrap().is_none());
    assert!(app.staff_account(&u.id, T + 8 * SEC).await.unwrap().unwrap().account.is_active(), "still enabled");
}

#[tokio::test]
async fn grant_rules_self_changes_and_the_last_owner() {
    let t = spawn(90, true).await;
    let app = &t.app;
    let owner = user(app, "owner@example.com", Role::Owner, T).await;
    let admin = user(app, "admin@example.com", Role::Admin, T).await;
    let analyst = user(app, "analyst@example.com", Role::Analyst, T).await;
    let forbidden = |r: Result<StaffAccount, AppError>| matches!(r, Err(AppError::Forbidden { .. }));

    // An admin manages anyone but owners, and cannot make one.
    let a = app.change_staff_role(&admin, &analyst.id, Role::CatalogManager, T).await.unwrap();
    assert_eq!(a.user.role, Role::CatalogManager);
    assert!(forbidden(app.change_staff_role(&admin, &analyst.id, Role::Owner, T).await));
    assert!(forbidden(app.change_staff_role(&admin, &owner.id, Role::Admin, T).await));
    assert!(forbidden(app.disable_staff_user(&admin, &owner.id, T).await));
    assert!(forbidden(app.reset_staff_two_factor(&admin, &owner.id, T).await));
    assert!(forbidden(app.end_staff_sessions(&admin, &owner.id, T).await));
    assert!(matches!(app.add_staff_user(&admin, "o2@example.com", Role::Owner, T).await, Err(AppError::Forbidden { .. })));
    let added = app.add_staff_user(&admin, "sup@example.com", Role::SupportAgent, T).await.unwrap();
    assert!(added.generated_password.as_deref().is_some_and(|p| p.len() >= 12), "a password to show once");
    // Roles without staff rights change nothing, not even below them.
    let catalog = app.staff_user(&analyst.id).await.unwrap().unwrap();
    assert!(forbidden(app.change_staff_role(&catalog, &added.user.id, Role::Analyst, T).await));
    assert!(forbidden(app.disable_staff_user(&catalog, &added.user.id, T).await));
    assert_eq!(app.staff_user(&added.user.id).await.unwrap().unwrap().role, Role::SupportAgent);
    assert!(matches!(app.change_staff_role(&admin, "stf_nope", Role::Analyst, T).await, Err(AppError::NotFound { .. })));

    // Nobody demotes or disables themselves.
    for (who, role) in [(&owner, Role::Admin), (&admin, Role::Analyst)] {
        let e = app.change_staff_role(who, &who.id, role, T).await.unwrap_err();
        assert_eq!(conflict_code(&e), Some(("own_account", Some("role"))), "{e}");
        let e = app.disable_staff_user(who, &who.id, T).await.unwrap_err();
        assert_eq!(conflict_code(&e), Some(("own_account", Some("status"))), "{e}");
        let e = app.reset_staff_two_factor(who, &who.id, T).await.unwrap_err();
        assert_eq!(conflict_code(&e), Some(("own_account", Some("two_factor"))), "{e}");
    }

    // The last active owner: a second owner may be demoted or disabled while
    // another remains, never the last one.
    let second = app.change_staff_role(&owner, &admin.id, Role::Owner, T).await.unwrap();
    assert_eq!(second.user.role, Role::Owner);
    let second = app.staff_user(&admin.id).await.unwrap().unwrap();
    app.change_staff_role(&second, &owner.id, Role::Admin, T).await.unwrap();
    let e = app.operator_disable_staff_user("admin@example.com", T).await.unwrap_err();
    assert_eq!(conflict_code(&e), Some(("last_owner", Some("status"))), "{e}");
    // The actor's role is read afresh: the demoted owner's old view grants nothing.
    assert!(forbidden(app.change_staff_role(&owner, &second.id, Role::Admin, T).await));
    assert!(forbidden(app.disable_staff_user(&owner, &second.id, T).await));
    assert_eq!(app.staff_user(&second.id).await.unwrap().unwrap().role, Role::Owner);
    // A disabled owner does not count as one, and changes nothing.
    app.change_staff_role(&second, &owner.id, Role::Owner, T).await.unwrap();
    app.disable_staff_user(&second, &owner.id, T).await.unwrap();
    assert!(forbidden(app.disable_staff_user(&owner, &second.id, T).await), "a disabled actor");
    let e = app.operator_disable_staff_user("admin@example.com", T).await.unwrap_err();
    assert_eq!(conflict_code(&e), Some(("last_owner", Some("status"))), "{e}");
    // The operator can re-enable; then either owner may go.
    app.operator_enable_staff_user("Owner@Example.com", T).await.unwrap();
    app.disable_staff_user(&owner, &second.id, T + SEC).await.unwrap();
    let cli = app.list_audit_log(&AuditQuery { actor: Some("system:cli".into()), ..Default::default() }).await.unwrap();
    assert_eq!(cli.data.len(), 1, "the operator's enable is audited; its refused disables changed nothing");
    assert_eq!((cli.data[0].action.as_str(), cli.data[0].target.as_deref()), ("enable staff user", Some(owner.id.as_str())));
    assert!(matches!(app.operator_disable_staff_user("nobody@example.com", T).await, Err(AppError::NotFound { .. })));
}

#[tokio::test]
async fn resetting_two_factor_makes_the_user_enrol_again() {
    let t = spawn(90, true).await;
    let app = &t.app;
    let owner = user(app, "owner@example.com", Role::Owner, T).await;
    let u = user(app, "ops@example.com", Role::InventoryManager, T).await;
    let e = app.begin_totp_enrolment(&u.id, T).await.unwrap();
    let bytes = totp_rs::Secret::try_from_base32(&e.secret).unwrap();
    let totp = totp_rs::Builder::new().with_secret(bytes.as_ref().to_vec()).build().unwrap();
    app.confirm_totp_enrolment(&u.id, &totp.generate((T / SEC) as u64).to_string(), None, T).await.unwrap();
    let s = app.staff_sign_in("ops@example.com", PASSWORD, "", None, T + 60 * SEC).await.unwrap();
    assert_eq!(s.session.state, keel_app::staff::SessionState::SecondFactorDue);

    let a = app.reset_staff_two_factor(&owner, &u.id, T + 61 * SEC).await.unwrap();
    assert!(!a.user.two_factor_enabled);
    assert_eq!(app.unused_recovery_codes(&u.id).await.unwrap(), 0);
    let secrets: i64 = t.db.scalar(&format!("SELECT COUNT(*) FROM staff_users WHERE id = '{}' AND totp_secret IS NOT NULL", u.id)).await;
    assert_eq!(secrets, 0);
    assert_eq!(sessions_of(&t, &u.id).await, 0);
    let s = app.staff_sign_in("ops@example.com", PASSWORD, "", None, T + 62 * SEC).await.unwrap();
    assert_eq!(s.session.state, keel_app::staff::SessionState::SignedIn, "the password alone again, until enrolment");
    app.begin_totp_enrolment(&u.id, T + 62 * SEC).await.unwrap();
}

fn keel(db: &keel_testkit::TestDb, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keel"));
    cmd.args(db.cli_args()).args(args).env_remove("KEEL_DATABASE_URL").env("KEEL_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run keel");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn user_list_disable_enable_commands_and_settings() {
    let db = keel_testkit::TestDb::fresh().await;
    let app = db.open().await;
    let now = keel_domain::time::now_micros();
    user(&app, "owner@example.com", Role::Owner, now).await;
    user(&app, "old@example.com", Role::Analyst, now - 100 * DAY).await;
    app.store.close().await;

    let (ok, out, err) = keel(&db, &["user", "list"], &[]);
    assert!(ok, "{err}");
    let line = out.lines().find(|l| l.starts_with("old@example.com")).expect("listed");
    assert!(line.contains("analyst") && line.contains("never") && line.contains("stale"), "{out}");
    let (ok, out, _) = keel(&db, &["user", "list", "--status", "stale"], &[("KEEL_STAFF_STALE_DAYS", "365")]);
    assert!(ok && !out.contains("old@example.com"), "a longer threshold: {out}");
    let (ok, _, err) = keel(&db, &["user", "list", "--status", "sleepy"], &[]);
    assert!(!ok && err.contains("status"), "{err}");
    for (name, bad) in [("KEEL_STAFF_STALE_DAYS", "0"), ("KEEL_STAFF_STALE_DAYS", "ninety"), ("KEEL_STAFF_DISABLE_STALE", "maybe")] {
        let (ok, _, err) = keel(&db, &["user", "list"], &[(name, bad)]);
        assert!(!ok && err.contains(name), "{name}={bad}: {err}");
    }

    let (ok, out, err) = keel(&db, &["user", "disable", "--email", "OLD@example.com"], &[]);
    assert!(ok && out.contains("disabled old@example.com"), "{out}{err}");
    let (_, out, _) = keel(&db, &["user", "list", "--status", "disabled"], &[]);
    assert!(out.contains("old@example.com") && !out.contains("owner@example.com"), "{out}");
    let (ok, _, err) = keel(&db, &["user", "disable", "--email", "owner@example.com"], &[]);
    assert!(!ok && err.contains("last active owner"), "{err}");
    let (ok, _, err) = keel(&db, &["user", "enable", "--email", "old@example.com"], &[]);
    assert!(ok, "{err}");
    let (_, out, _) = keel(&db, &["user", "list", "--status", "stale"], &[]);
    assert!(!out.contains("old@example.com"), "re-enabling restarts the clock: {out}");

    let app = db.open().await;
    let log = app.list_audit_log(&AuditQuery { actor: Some("system:cli".into()), ..Default::default() }).await.unwrap();
    let actions: Vec<_> = log.data.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["enable staff user", "disable staff user"]);
    app.store.close().await;
    if matches!(db.location, keel_app::Location::SqliteFile(_)) {
        let _ = std::fs::remove_dir_all(&db.dir);
    }
}

#[tokio::test]
async fn two_owners_disabling_each_other_at_once_leave_one() {
    let t = spawn(90, true).await;
    let app = &t.app;
    for round in 0..5 {
        let a = user(app, &format!("a{round}@example.com"), Role::Owner, T).await;
        let b = user(app, &format!("b{round}@example.com"), Role::Owner, T).await;
        // The owners of earlier rounds are out of the way.
        for old in app.list_staff_users(StaffFilter::Active, T).await.unwrap() {
            if old.user.id != a.id && old.user.id != b.id {
                app.disable_staff_user(&a, &old.user.id, T).await.unwrap();
            }
        }
        let (x, y) = tokio::join!(app.disable_staff_user(&a, &b.id, T), app.disable_staff_user(&b, &a.id, T));
        let refused = [&x, &y].iter().filter(|r| r.is_err()).count();
        assert_eq!(refused, 1, "round {round}: {x:?} {y:?}");
        assert_eq!(list(app, StaffFilter::Active, T).await.len(), 1);
    }
}

#[tokio::test]
async fn the_audit_log_filters_by_action_text_and_time_range() {
    let t = spawn(90, true).await;
    let app = &t.app;
    user(app, "owner@example.com", Role::Owner, T - 200 * DAY).await;
    user(app, "old@example.com", Role::Analyst, T - 200 * DAY).await;
    assert_eq!(app.disable_stale_staff(T).await.unwrap(), 1);
    let r = t.post("/api-keys", keel_testkit::json!({"name": "ci", "role": "analyst"})).await;
    assert_eq!(r.status, reqwest::StatusCode::CREATED);

    let q = |action_contains: &str| AuditQuery { action_contains: Some(action_contains.into()), limit: Some(100), ..Default::default() };
    let hits = app.list_audit_log(&q("STALE staff")).await.unwrap();
    assert_eq!(hits.data.len(), 1);
    assert_eq!(hits.data[0].actor, STALE_JOB_ACTOR);
    assert_eq!(app.list_audit_log(&q("api-keys")).await.unwrap().data.len(), 1);
    assert!(app.list_audit_log(&q("%")).await.unwrap().data.is_empty(), "wildcards are literal");
    assert!(app.list_audit_log(&q("stale_staff")).await.unwrap().data.is_empty(), "_ too");

    // The job's entry is dated by its `now`; the API write by the clock.
    let range = |since: i64, until: i64| AuditQuery {
        since: Some(keel_domain::time::to_rfc3339(since)),
        until: Some(keel_domain::time::to_rfc3339(until)),
        ..Default::default()
    };
    let day = app.list_audit_log(&range(T - SEC, T + SEC)).await.unwrap();
    assert_eq!(day.data.len(), 1);
    assert_eq!(day.data[0].action, STALE_JOB_ACTION);
    assert!(app.list_audit_log(&range(T + SEC, T + DAY)).await.unwrap().data.is_empty(), "until is exclusive of later entries");
    assert!(app.list_audit_log(&range(T - DAY, T)).await.unwrap().data.is_empty(), "until is exclusive");

    // The same filters over the API.
    let r = t.get("/audit-log?action_contains=API-KEYS").await;
    assert_eq!(r.status, reqwest::StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let r = t.get("/audit-log?until=yesterday").await;
    assert_eq!((r.status, r.error_param()), (reqwest::StatusCode::UNPROCESSABLE_ENTITY, "until"));
}

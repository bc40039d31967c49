use keel_testkit::TestDb;
use std::process::Command;

fn keel(db: &TestDb, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
    cmd.args(db.cli_args()).args(args).env_remove("KEEL_DATABASE_URL").env("KEEL_LOG", "warn");
    cmd.output().expect("run keel")
}

#[tokio::test]
async fn migrate_apikey_and_check_commands() {
    let db = TestDb::fresh().await;
    let out = keel(&db, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = keel(&db, &["apikey", "create", "--name", "ci"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.trim();
    assert!(key.starts_with("keel_sk_") && !key.contains('\n'), "only the key is printed: {stdout:?}");
    let app = db.open().await;
    assert!(app.authenticate(key).await.unwrap().is_some(), "the printed key works");

    // Some real activity, then a clean check.
    let actor = keel_app::Actor::system("test");
    let loc = app
        .create_location(&actor, serde_json::from_value(serde_json::json!({"name": "L", "kind": "store", "country": "US"})).unwrap())
        .await
        .unwrap();
    app.create_product(&actor, serde_json::from_value(serde_json::json!({"title": "T", "variants": [{"sku": "CHK"}]})).unwrap())
        .await
        .unwrap();
    app.adjust_inventory(
        &actor,
        serde_json::from_value(serde_json::json!({"sku": "CHK", "location_id": loc.id, "kind": "receive", "quantity_delta": 9})).unwrap(),
    )
    .await
    .unwrap();
    app.store.close().await;
    let out = keel(&db, &["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("ok"), "{stdout}");

    // Break the projection behind the ledger's back: check must say so.
    db.execute_raw("UPDATE inventory_levels SET on_hand = on_hand + 1").await;
    let out = keel(&db, &["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "check must fail: {stdout}");
    assert!(stdout.contains("ledger_equals_levels"), "{stdout}");
}

#[tokio::test]
async fn scoped_apikey_and_user_create_commands() {
    let db = TestDb::fresh().await;
    let out = keel(&db, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = keel(&db, &["apikey", "create", "--name", "bi", "--role", "analyst", "--expires-in-days", "7"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let out = keel(&db, &["apikey", "create", "--name", "bad", "--role", "root"]);
    assert!(!out.status.success(), "an unknown role is refused");

    // A generated password, printed once.
    let out = keel(&db, &["user", "create", "--email", "Owner@Example.com", "--role", "owner"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let password = stdout.lines().find_map(|l| l.strip_prefix("password: ")).expect("password printed").to_owned();
    // Or one from the environment.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keel"));
    cmd.args(db.cli_args()).args(["user", "create", "--email", "ana@example.com", "--role", "analyst"]);
    let out = cmd.env_remove("KEEL_DATABASE_URL").env("KEEL_LOG", "warn").env("KEEL_USER_PASSWORD", "from the environment").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("password:"));
    let out = keel(&db, &["user", "create", "--email", "owner@example.com", "--role", "admin"]);
    assert!(!out.status.success(), "emails are unique");

    let app = db.open().await;
    let p = app.authenticate(&key).await.unwrap().expect("the key works");
    assert_eq!(p.scope, keel_app::apikeys::KeyScope::Role(keel_domain::access::Role::Analyst));
    assert!(p.expires_at.is_some());
    let now = keel_domain::time::now_micros();
    let s = app.staff_sign_in("owner@example.com", &password, "", None, now).await.unwrap();
    assert_eq!(s.session.user.role, keel_domain::access::Role::Owner);
    assert!(app.staff_sign_in("ana@example.com", "from the environment", "", None, now).await.is_ok());
    app.store.close().await;
}

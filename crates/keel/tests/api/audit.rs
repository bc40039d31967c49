//! The audit log: every authenticated write leaves exactly one entry naming
//! actor, action, target, field names (never values), client address and
//! status; entries cannot be changed or removed.

use keel_testkit::{json, spawn_app, TestApp};
use serde_json::Value;

async fn audit(t: &TestApp, query: &str) -> Vec<Value> {
    let r = t.get(&format!("/audit-log{query}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn key_id(t: &TestApp) -> String {
    let p = t.app.authenticate(&t.key).await.unwrap().unwrap();
    p.key_id
}

#[tokio::test]
async fn writes_are_recorded_with_actor_action_target_and_ip_but_no_values() {
    let t = spawn_app().await;
    let actor = format!("api_key:{}", key_id(&t).await);
    let product = t.product("Very Secret Title 7781", &["AUD-1"]).await;
    let pid = product["id"].as_str().unwrap().to_owned();
    t.ok(&format!("/products/{pid}"), json!({"title": "Renamed 7782"})).await;
    let cus = t.ok("/customers", json!({"email": "ada.audit@example.com", "password": "correct horse battery staple"})).await;
    // A refused write is recorded too, with its status and error code.
    let r = t.post("/locations", json!({"name": "", "kind": "warehouse", "country": "US"})).await;
    assert_eq!(r.status, 422);

    let entries = audit(&t, "?limit=100").await;
    assert_eq!(entries.len(), 4, "{entries:#?}");
    let all = serde_json::to_string(&entries).unwrap();
    for secret in ["Very Secret", "Renamed 7782", "ada.audit", "horse battery"] {
        assert!(!all.contains(secret), "the audit log holds no submitted values: {secret} in {all}");
    }
    // Newest first.
    let refused = &entries[0];
    assert_eq!(refused["action"], "POST /api/v1/locations");
    assert_eq!(refused["status"], 422);
    assert_eq!(refused["summary"]["error_code"], "required", "{refused}");
    let created_cus = &entries[1];
    assert_eq!(created_cus["target"], cus["id"]);
    assert_eq!(created_cus["summary"]["fields"], json!(["email", "password"]));
    let updated = &entries[2];
    assert_eq!(updated["action"], "POST /api/v1/products/{id}");
    assert_eq!(updated["target"], pid.as_str());
    assert_eq!(updated["summary"]["fields"], json!(["title"]));
    let created = &entries[3];
    assert_eq!(created["action"], "POST /api/v1/products");
    assert_eq!(created["target"], pid.as_str());
    assert_eq!(created["status"], 201);
    for e in &entries {
        assert_eq!(e["actor"], actor.as_str());
        assert_eq!(e["ip"], "127.0.0.1");
        assert_eq!(e["object"], "audit_entry");
        assert!(e["id"].as_str().unwrap().starts_with("aud_"));
    }

    // Filters and cursor pagination.
    let by_target = audit(&t, &format!("?target={pid}")).await;
    assert_eq!(by_target.len(), 2);
    let by_action = audit(&t, "?action=POST%20/api/v1/products").await;
    assert_eq!(by_action.len(), 1);
    assert_eq!(audit(&t, "?actor=api_key:key_nobody").await.len(), 0);
    assert_eq!(audit(&t, "?since=2999-01-01T00:00:00Z").await.len(), 0);
    let first = t.get("/audit-log?limit=3").await;
    assert_eq!(first.body["has_more"], true);
    let last_id = first.body["data"][2]["id"].as_str().unwrap();
    let rest = audit(&t, &format!("?limit=3&starting_after={last_id}")).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["id"], created["id"]);
    assert_eq!(t.get("/audit-log?starting_after=prod_x").await.status, 422);
    assert_eq!(t.get("/audit-log?since=yesterday").await.status, 422);
    // Reads are not audited.
    assert_eq!(audit(&t, "?limit=100").await.len(), 4);
}

#[tokio::test]
async fn audit_entries_cannot_be_changed_or_deleted() {
    let t = spawn_app().await;
    t.location("Audited", 1).await;
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM audit_log").await, 1);
    let update = t.db.try_execute_raw("UPDATE audit_log SET actor = 'someone else'").await;
    assert!(update.is_err_and(|e| e.contains("append-only")), "UPDATE is refused");
    let delete = t.db.try_execute_raw("DELETE FROM audit_log").await;
    assert!(delete.is_err_and(|e| e.contains("append-only")), "DELETE is refused");
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM audit_log WHERE actor LIKE 'api_key:%'").await, 1);
}

#[tokio::test]
async fn a_walk_over_write_endpoints_leaves_one_entry_each() {
    let t = spawn_app().await;
    let loc = t.location("Walk", 1).await;
    let product = t.product("Walk", &["WALK-1"]).await;
    let pid = product["id"].as_str().unwrap().to_owned();
    let vid = product["variants"][0]["id"].as_str().unwrap().to_owned();
    let before = t.db.scalar("SELECT COUNT(*) FROM audit_log").await;
    assert_eq!(before, 2);
    let writes: Vec<(String, Value)> = vec![
        (format!("/products/{pid}"), json!({"description": "d"})),
        (format!("/products/{pid}/variants"), json!({"sku": "WALK-2", "prices": [{"currency": "USD", "amount": 5}]})),
        (format!("/products/{pid}/variants/{vid}"), json!({"barcode": "123"})),
        (format!("/locations/{loc}"), json!({"name": "Walk 2"})),
        ("/inventory/adjustments".into(), json!({"sku": "WALK-1", "location_id": loc, "kind": "receive", "quantity_delta": 3})),
        ("/sales-channels".into(), json!({"name": "POS"})),
        ("/shipping-methods".into(), json!({"name": "Std", "currency": "USD", "amount": 400})),
        ("/customers".into(), json!({"email": "walk@example.com"})),
        ("/carts".into(), json!({"currency": "USD"})),
        (format!("/products/{pid}/archive"), json!({})),
    ];
    for (path, body) in &writes {
        let r = t.post(path, body.clone()).await;
        assert!(r.status.is_success() || r.status.is_client_error(), "{path}: {} {}", r.status, r.body);
        let n = t.db.scalar("SELECT COUNT(*) FROM audit_log").await;
        assert_eq!(n, before + 1 + writes.iter().position(|(p, _)| p == path).unwrap() as i64, "{path} left one entry");
    }
    // An idempotent replay is recorded as a replay.
    for _ in 0..2 {
        let r = t.send(reqwest::Method::POST, "/sales-channels", Some(json!({"name": "Web"})), &[("Idempotency-Key", "walk-1")]).await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    let latest = audit(&t, "?limit=2").await;
    assert_eq!(latest[0]["summary"]["replayed"], true);
    assert!(latest[1]["summary"].get("replayed").is_none());
}

#[tokio::test]
async fn admin_form_writes_are_recorded_with_the_staff_user_and_field_names() {
    use keel_web::access::Role;
    let t = spawn_app().await;
    let mut b = crate::admin_client::signed_in(&t, Role::Owner).await;
    let p = b.get("/admin").await;
    // Refused (no CSRF token) and accepted writes are both recorded.
    let r = b.post("/admin/logout", &[("nothing", "x")]).await;
    assert_eq!(r.status, 403);
    let r = b.post("/admin/logout", &[("csrf", &p.csrf())]).await;
    assert_eq!(r.status, 303);
    let entries = audit(&t, "?action=POST%20/admin/logout").await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    let user = b.user_id.clone();
    for e in &entries {
        assert_eq!(e["actor"], format!("staff:{user}"));
        assert!(!e.to_string().contains(&p.csrf()), "the token is never stored");
    }
    assert_eq!(entries[0]["status"], 303);
    assert_eq!(entries[1]["status"], 403);
    assert_eq!(entries[1]["summary"]["fields"], json!(["nothing"]));
}

#[tokio::test]
async fn the_ledger_and_the_outbox_refuse_changes_like_the_audit_log() {
    let t = spawn_app().await;
    let loc = t.location("Ledger", 1).await;
    t.product("Ledger", &["LEDGER-1"]).await;
    t.receive("LEDGER-1", &loc, 5).await;
    for sql in [
        "UPDATE inventory_movements SET quantity = quantity + 1",
        "DELETE FROM inventory_movements",
        "UPDATE events SET type = 'x'",
        "DELETE FROM events",
    ] {
        let refused = t.db.try_execute_raw(sql).await;
        assert!(refused.is_err_and(|e| e.contains("append-only")), "{sql} must be refused");
    }
    t.assert_consistent().await;
}

/// Someone with database access lifts the triggers and edits an entry, or
/// drops the newest: `keel check` names the first entry that no longer holds.
#[tokio::test]
async fn keel_check_names_the_first_audit_entry_that_was_tampered_with() {
    let t = spawn_app().await;
    for name in ["A", "B", "C"] {
        t.location(name, 1).await;
    }
    t.assert_consistent().await;
    let ids: Vec<String> = {
        let body = t.get("/audit-log?limit=10").await.body;
        let mut ids: Vec<String> = body["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
        ids.reverse(); // oldest first
        ids
    };
    assert_eq!(ids.len(), 3);
    let lift = match t.app.store.backend() {
        keel_app::Backend::Sqlite => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
        keel_app::Backend::Postgres => "DROP TRIGGER audit_log_no_change ON audit_log;",
    };
    t.db.execute_raw(lift).await;
    t.db.execute_raw(&format!("UPDATE audit_log SET status = 200 WHERE id = '{}'", ids[1])).await;
    let report = t.app.check().await.unwrap();
    let chain: Vec<_> = report.problems.iter().filter(|p| p.check == "audit_chain").collect();
    assert_eq!(chain.len(), 1, "{:?}", report.problems);
    assert_eq!(chain[0].subject, ids[1], "the edited entry is named");
    assert!(chain[0].detail.contains("changed"), "{}", chain[0].detail);

    t.db.execute_raw(&format!("UPDATE audit_log SET status = 201 WHERE id = '{}'", ids[1])).await;
    assert!(t.app.check().await.unwrap().problems.is_empty(), "restored: the chain holds again");
    t.db.execute_raw(&format!("DELETE FROM audit_log WHERE id = '{}'", ids[2])).await;
    let report = t.app.check().await.unwrap();
    let chain: Vec<_> = report.problems.iter().filter(|p| p.check == "audit_chain").collect();
    assert_eq!(chain.len(), 1, "{:?}", report.problems);
    assert!(chain[0].detail.contains("removed"), "{}", chain[0].detail);
}

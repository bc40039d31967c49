//! Admin inventory pages: levels, the per-item page with its adjust form and
//! ledger, refusals by role and without CSRF, and the audit entry.

use crate::admin_client::{between, signed_in};
use keel_testkit::spawn_app;
use keel_web::access::Role;
use reqwest::StatusCode;

#[tokio::test]
async fn an_owner_adjusts_stock_and_sees_the_ledger_entry() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Tee", &["TEE-M"]).await;
    t.receive("TEE-M", &loc, 5).await;
    let mut b = signed_in(&t, Role::Owner).await;
    let p = b.get("/admin/inventory").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("TEE-M"));
    let r = b.get("/admin/inventory/lookup?sku=TEE-M").await;
    let item = r.location().to_owned();
    assert!(item.starts_with("/admin/inventory/items/"), "{}", r.location());
    let p = b.get(&item).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let expected_field = format!("expected_on_hand.{loc}");
    let expected = between(&p.body, &format!("name=\"{expected_field}\" value=\""), "\"").expect("expected on hand field");
    assert_eq!(expected, "5");
    // Without a CSRF token nothing changes.
    let r = b.post(&format!("{item}/adjust"), &[("location_id", &loc), ("reason", "count"), ("quantity", "9")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(t.level("TEE-M", &loc).await["on_hand"], 5);
    // Bad quantity: 422.
    let csrf = p.csrf();
    let r = b.post(&format!("{item}/adjust"), &[("csrf", &csrf), ("location_id", &loc), ("reason", "count"), ("quantity", "lots"), (&expected_field, "5")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = b
        .post(&format!("{item}/adjust"), &[("csrf", &csrf), ("location_id", &loc), ("reason", "count"), ("quantity", "9"), ("note", "shelf count"), (&expected_field, "5")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(t.level("TEE-M", &loc).await["on_hand"], 9);
    let p = b.get(&item).await;
    assert!(p.body.contains("Stock adjusted"), "the flash shows once");
    assert!(p.body.contains("shelf count"), "the ledger shows the movement's reason");
    let ledger = t.get("/inventory/ledger?sku=TEE-M&limit=1").await;
    let newest = &ledger.body["data"][0];
    assert_eq!((newest["source"].as_str(), newest["reason"].as_str()), (Some("admin"), Some("Stock count: shelf count")), "{newest}");
    let first = t.get("/inventory/ledger?sku=TEE-M").await;
    assert_eq!(first.body["data"].as_array().unwrap().last().unwrap()["source"], "api", "the receive came through the API");
    // A stale figure is refused and changes nothing.
    let r = b
        .post(&format!("{item}/adjust"), &[("csrf", &p.csrf()), ("location_id", &loc), ("reason", "count"), ("quantity", "1"), (&expected_field, "5")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(t.level("TEE-M", &loc).await["on_hand"], 9);
    t.assert_consistent().await;
    let audit = t.get("/audit-log?action_contains=adjust").await;
    let entries = audit.body["data"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["status"] == 303 && e["actor"] == format!("staff:{}", b.user_id)), "{entries:?}");
}

#[tokio::test]
async fn an_analyst_may_look_but_not_adjust() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Tee", &["TEE-M"]).await;
    t.receive("TEE-M", &loc, 5).await;
    let mut b = signed_in(&t, Role::Analyst).await;
    let r = b.get("/admin/inventory/lookup?sku=TEE-M").await;
    let item = r.location().to_owned();
    let p = b.get(&item).await;
    assert_eq!(p.status, StatusCode::OK);
    let r = b.post(&format!("{item}/adjust"), &[("csrf", &p.csrf()), ("location_id", &loc), ("reason", "count"), ("quantity", "9")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(t.level("TEE-M", &loc).await["on_hand"], 5);
    let p = b.get("/admin/inventory/transfers").await;
    assert_eq!(p.status, StatusCode::OK);
}

//! Stock feeds that die half way: a batch killed while being applied and
//! resumed later, `keel check` noticing a count applied twice, and an upload
//! killed mid-stream, retried at once under its Idempotency-Key.

use crate::feeds::{csv, integration, now_rfc3339, push, tick};
use keel_app::feeds::{FeedError, FeedFormat, FeedMode, FeedRequest};
use keel_domain::ids::BatchId;
use keel_domain::inventory::MovementKind;
use keel_domain::time::{now_micros, parse_rfc3339};
use keel_store::feeds::{self as db, BatchRow, RowCounts, RowOutcome, StagedRow};
use keel_testkit::{spawn_app, TestApp};
use reqwest::StatusCode;

const MINUTE: i64 = 60 * 1_000_000;

/// Leaves a batch as a process killed mid-apply does: received, staged and
/// judged against the ledger of that moment (status `applying`, rows
/// `pending` with their delta) by the same store steps the feed code runs,
/// while the transaction applying it died with the process.
async fn crash_mid_apply(t: &TestApp, integration_id: &str, key: &str, mode: &str, rows: &[(&str, &str, i64, &str)]) -> String {
    let now = now_micros();
    let mut batch = BatchRow {
        id: BatchId::generate().to_string(),
        integration_id: integration_id.to_owned(),
        idempotency_key: Some(key.to_owned()),
        source: "push".into(),
        format: "csv".into(),
        mode: mode.into(),
        status: "receiving".into(),
        content_sha256: Some("0".repeat(64)),
        bytes: 0,
        counts: RowCounts::default(),
        error: None,
        actor: format!("integration:{integration_id}"),
        version: 1,
        created_at: now,
        updated_at: now,
        applied_at: None,
        rolled_back_at: None,
        lease_owner: Some("a process since killed".into()),
        lease_until: Some(now + 30 * 1_000_000),
    };
    let mut tx = t.app.store.begin().await.unwrap();
    db::insert_batch(&mut tx, &batch).await.unwrap();
    let skus: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let items = db::items_by_sku(&mut tx, &skus).await.unwrap();
    let staged: Vec<StagedRow> = rows
        .iter()
        .enumerate()
        .map(|(n, (sku, loc, on_hand, at))| StagedRow {
            line: n as i64 + 2,
            sku: Some(sku.to_string()),
            location_id: Some(loc.to_string()),
            on_hand: Some(*on_hand),
            counted_at: parse_rfc3339(at),
            inventory_item_id: Some(items[*sku].clone()),
            outcome: db::outcome::PENDING,
            message: None,
        })
        .collect();
    db::insert_rows(&mut tx, &batch.id, &staged).await.unwrap();
    batch.status = "staged".into();
    batch.counts = db::count_rows(&mut tx, &batch.id).await.unwrap();
    db::update_batch(&mut tx, &batch).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = t.app.store.begin().await.unwrap();
    assert!(db::transition_batch(&mut tx, &batch.id, "staged", "applying", now_micros()).await.unwrap());
    db::mark_unknown_locations(&mut tx, &batch.id).await.unwrap();
    db::judge_pending(&mut tx, &batch.id).await.unwrap();
    tx.commit().await.unwrap();
    batch.id
}

async fn on_hand(t: &TestApp, sku: &str, loc: &str) -> i64 {
    t.level(sku, loc).await["on_hand"].as_i64().unwrap()
}

/// Four cells holding 3, counted 9; one unit sold after the count.
async fn four_cells(t: &TestApp) -> (Vec<(String, String)>, String) {
    let a = t.location("Main", 1).await;
    let b = t.location("Annex", 2).await;
    t.product("Tee", &["TEE-S", "TEE-M"]).await;
    let mut cells = Vec::new();
    for sku in ["TEE-S", "TEE-M"] {
        for loc in [&a, &b] {
            t.receive(sku, loc, 3).await;
            cells.push((sku.to_owned(), loc.clone()));
        }
    }
    tick().await;
    let counted_at = now_rfc3339();
    tick().await;
    for (sku, loc) in &cells {
        let r = t.post("/inventory/adjustments", keel_testkit::json!({"sku": sku, "location_id": loc, "quantity_delta": -1, "reason": "sale"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    (cells, counted_at)
}

async fn a_resumed_batch_never_reapplies_a_stale_difference(mode: &str) {
    let t = spawn_app().await;
    let (cells, at) = four_cells(&t).await;
    let i = integration(&t, "Acme 3PL", "hmac").await;
    let rows: Vec<(&str, &str, i64, &str)> = cells.iter().map(|(s, l)| (s.as_str(), l.as_str(), 9, at.as_str())).collect();

    // Killed mid-apply: each row was judged +6 (9 counted, 3 on the ledger then).
    let crashed = crash_mid_apply(&t, &i.id, "recount-1", mode, &rows).await;
    let r = t.get(&format!("/sync-batches/{crashed}/rows")).await;
    assert!(r.body["data"].as_array().unwrap().iter().all(|row| row["delta"] == 6 && row["outcome"] == "pending"), "{}", r.body);

    // The supplier re-pushes the same counts under a new key: applied.
    let r = push(&t, &i, "text/csv", csv(&rows), Some("recount-2"), Some(mode)).await;
    assert_eq!((r.status, r.body["rows"]["applied"].as_i64()), (StatusCode::CREATED, Some(4)), "{}", r.body);
    for (sku, loc) in &cells {
        assert_eq!(on_hand(&t, sku, loc).await, 8, "9 counted, 1 sold since");
    }

    // Ten minutes later the maintenance job resumes the crashed batch: the
    // discrepancy was corrected meanwhile, so there is nothing left to do.
    assert!(t.app.maintain_feeds(now_micros() + 11 * MINUTE).await.unwrap() >= 1);
    let b = t.get(&format!("/sync-batches/{crashed}")).await;
    assert_eq!(b.body["status"], "applied", "{}", b.body);
    assert_eq!((b.body["rows"]["applied"].as_i64(), b.body["rows"]["unchanged"].as_i64()), (Some(0), Some(4)), "{}", b.body);
    for (sku, loc) in &cells {
        assert_eq!(on_hand(&t, sku, loc).await, 8, "{sku}@{loc}: the count is applied once");
    }
    let r = t.get(&format!("/sync-batches/{crashed}/rows")).await;
    assert!(r.body["data"].as_array().unwrap().iter().all(|row| row["delta"] == 0 && row["ledger_on_hand"] == 9), "{}", r.body);
    t.assert_consistent().await;
}

#[tokio::test]
async fn an_all_or_nothing_batch_resumed_after_a_crash_recomputes_its_differences() {
    a_resumed_batch_never_reapplies_a_stale_difference("all_or_nothing").await;
}

#[tokio::test]
async fn an_apply_valid_batch_resumed_after_a_crash_recomputes_its_differences() {
    a_resumed_batch_never_reapplies_a_stale_difference("apply_valid").await;
}

#[tokio::test]
async fn a_resumed_batch_yields_to_a_newer_count_applied_meanwhile() {
    let t = spawn_app().await;
    let (cells, at) = four_cells(&t).await;
    let (sku, loc) = &cells[0];
    let i = integration(&t, "Acme 3PL", "api_key").await;
    let crashed = crash_mid_apply(&t, &i.id, "old", "all_or_nothing", &[(sku.as_str(), loc.as_str(), 9, at.as_str())]).await;
    tick().await;
    let r = push(&t, &i, "text/csv", csv(&[(sku.as_str(), loc.as_str(), 4, now_rfc3339().as_str())]), Some("new"), None).await;
    assert_eq!(r.body["rows"]["applied"], 1, "{}", r.body);
    assert_eq!(on_hand(&t, sku, loc).await, 4);
    t.app.maintain_feeds(now_micros() + 11 * MINUTE).await.unwrap();
    let b = t.get(&format!("/sync-batches/{crashed}")).await;
    assert_eq!((b.body["status"].as_str(), b.body["rows"]["superseded"].as_i64()), (Some("applied"), Some(1)), "{}", b.body);
    assert_eq!(on_hand(&t, sku, loc).await, 4, "the newer count stands");
    t.assert_consistent().await;
}

#[tokio::test]
async fn keel_check_names_batches_that_applied_the_same_count_twice() {
    let t = spawn_app().await;
    let (cells, at) = four_cells(&t).await;
    let (sku, loc) = &cells[0];
    let i = integration(&t, "Acme 3PL", "hmac").await;
    let crashed = crash_mid_apply(&t, &i.id, "recount-1", "all_or_nothing", &[(sku.as_str(), loc.as_str(), 9, at.as_str())]).await;
    let r = push(&t, &i, "text/csv", csv(&[(sku.as_str(), loc.as_str(), 9, at.as_str())]), Some("recount-2"), None).await;
    assert_eq!(r.body["rows"]["applied"], 1, "{}", r.body);
    let second = r.body["id"].as_str().unwrap().to_owned();
    t.assert_consistent().await;

    // The crashed batch applied its stale +6 on top, as a resume once did:
    // the ledger still folds, but the count was corrected twice.
    let mut tx = t.app.store.begin().await.unwrap();
    let item = keel_store::inventory::item_by_sku(&mut tx, sku).await.unwrap().unwrap().id;
    let actor = format!("integration:{}", i.id);
    let mut m = keel_store::inventory::NewMovement::new(&item, loc, MovementKind::Sync, 6, &actor);
    m.source = &i.id;
    m.batch_id = Some(&crashed);
    m.idempotency_key = Some(&crashed);
    m.occurred_at = parse_rfc3339(&at);
    let applied = keel_store::inventory::apply_movement(&mut tx, &m, |_, _, _, _| {}).await.unwrap();
    let keel_store::inventory::Applied::Done { movement_id, .. } = applied else { panic!("refused: {applied:?}") };
    let o = RowOutcome { line: 2, outcome: db::outcome::APPLIED, message: None, movement_id: Some(movement_id.to_string()) };
    db::set_outcomes(&mut tx, &crashed, &[o]).await.unwrap();
    assert!(db::transition_batch(&mut tx, &crashed, "applying", "applied", now_micros()).await.unwrap());
    tx.commit().await.unwrap();

    let report = t.app.check().await.unwrap();
    let found: Vec<_> = report.problems.iter().filter(|p| p.check == "feed_count_applied_once").collect();
    assert_eq!(found.len(), 1, "{:#?}", report.problems);
    assert!(found[0].subject.contains(&crashed) && found[0].subject.contains(&second), "{:?}", found[0]);
    assert!(found[0].detail.contains(sku.as_str()), "{:?}", found[0]);
    assert_eq!(report.problems.len(), 1, "the ledger itself folds: {:#?}", report.problems);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(t.db.cli_args())
        .arg("check")
        .env_remove("KEEL_DATABASE_URL")
        .env("KEEL_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("feed_count_applied_once") && stdout.contains(&crashed) && stdout.contains(&second), "{stdout}");
}

fn api_key_request(i: &crate::feeds::Integration, key: &str) -> FeedRequest {
    FeedRequest {
        format: FeedFormat::Csv,
        mode: FeedMode::AllOrNothing,
        idempotency_key: Some(key.to_owned()),
        bearer: Some(i.credential.clone()),
        signature: None,
    }
}

fn listed_status(page: &serde_json::Value, id: &str) -> Option<String> {
    page["data"].as_array().unwrap().iter().find(|b| b["id"] == id).map(|b| b["status"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_feed_killed_mid_stream_is_listed_as_interrupted_and_retried_at_once() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Tee", &["TEE"]).await;
    let i = integration(&t, "ERP", "api_key").await;
    let at = keel_domain::time::to_rfc3339(now_micros() - 5 * MINUTE);
    let body = csv(&[("TEE", &loc, 7, &at)]);

    // A minute ago an upload got half its body in, then its process was
    // killed: nothing of it ran on, no clean-up either.
    let mut dead = t.app.begin_stock_feed_at(&i.id, api_key_request(&i, "daily"), now_micros() - MINUTE).await.unwrap();
    dead.push(&body.as_bytes()[..body.len() / 2]).await.unwrap();
    std::mem::forget(dead);
    let page = t.get(&format!("/sync-batches?integration_id={}", i.id)).await;
    let dead_id = page.body["data"][0]["id"].as_str().map(str::to_owned);
    assert_eq!(page.body["data"][0]["status"], "interrupted", "{}", page.body);
    let dead_id = dead_id.unwrap();
    assert_eq!(t.get(&format!("/sync-batches/{dead_id}")).await.body["status"], "interrupted");
    let console = t.app.sync_batch_page(&i.id, 0, 10).await.unwrap();
    assert_eq!(console.iter().map(|b| b.status.as_str()).collect::<Vec<_>>(), ["interrupted"]);
    let latest = t.app.latest_sync_batches().await.unwrap();
    assert!(latest.iter().any(|b| b.id == dead_id && b.status == "interrupted"), "{latest:?}");

    // The supplier retries with the same key straight away.
    let r = push(&t, &i, "text/csv", body.clone(), Some("daily"), None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::CREATED, Some("applied")), "{}", r.body);
    assert_eq!(t.level("TEE", &loc).await["on_hand"], 7);
    let page = t.get(&format!("/sync-batches?integration_id={}", i.id)).await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 1, "the dead attempt gave way: {}", page.body);
    assert_eq!(listed_status(&page.body, r.body["id"].as_str().unwrap()).as_deref(), Some("applied"));
    t.assert_consistent().await;
}

#[tokio::test]
async fn a_live_upload_keeps_its_key_and_a_taken_over_one_is_fenced_off() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Tee", &["TEE"]).await;
    let i = integration(&t, "ERP", "api_key").await;
    let at = keel_domain::time::to_rfc3339(now_micros() - 5 * MINUTE);
    let body = csv(&[("TEE", &loc, 7, &at)]);
    let (head, tail) = body.as_bytes().split_at(body.len() / 2);

    // Streaming right now: a retry must wait, and the upload is not listed.
    let mut live = t.app.begin_stock_feed_at(&i.id, api_key_request(&i, "live"), now_micros()).await.unwrap();
    live.push(head).await.unwrap();
    let r = push(&t, &i, "text/csv", body.clone(), Some("live"), None).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "batch_in_progress"), "{}", r.body);
    assert_eq!(t.get(&format!("/sync-batches?integration_id={}", i.id)).await.body["data"].as_array().unwrap().len(), 0);
    live.push(tail).await.unwrap();
    let done = live.finish().await.unwrap();
    assert_eq!(done.batch.status, "applied");

    // An upload silent for longer than its lease is taken over by the retry;
    // if it wakes up after all, it cannot stage or apply anything.
    let mut stalled = t.app.begin_stock_feed_at(&i.id, api_key_request(&i, "stalled"), now_micros() - MINUTE).await.unwrap();
    stalled.push(head).await.unwrap();
    let body2 = csv(&[("TEE", &loc, 5, &keel_domain::time::to_rfc3339(now_micros() - 4 * MINUTE))]);
    let r = push(&t, &i, "text/csv", body2, Some("stalled"), None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::CREATED, Some("applied")), "{}", r.body);
    stalled.push(tail).await.unwrap();
    match stalled.finish().await {
        Err(FeedError::App(keel_app::AppError::Conflict { code, .. })) => assert_eq!(code, "upload_taken_over"),
        other => panic!("expected upload_taken_over, got {other:?}"),
    }
    assert_eq!(t.level("TEE", &loc).await["on_hand"], 5);
    let page = t.get(&format!("/sync-batches?integration_id={}", i.id)).await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 2, "{}", page.body);
    t.assert_consistent().await;
}

//! Inbound integrations and stock feeds: time-aware reconciliation, batch
//! modes, idempotency, rollback, credentials, pulling, and a large feed
//! streamed in bounded memory.

use hmac::{Hmac, Mac};
use keel_domain::time::{now_micros, parse_rfc3339, to_rfc3339};
use keel_testkit::{json, spawn_app, Res, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

pub(crate) struct Integration {
    pub(crate) id: String,
    pub(crate) credential: String,
    pub(crate) hmac: bool,
}

pub(crate) async fn integration(t: &TestApp, name: &str, auth: &str) -> Integration {
    let r = t.post("/integrations", json!({"name": name, "kind": "3pl", "auth": auth, "freshness_sla_seconds": 900})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    Integration {
        id: r.body["id"].as_str().unwrap().to_owned(),
        credential: r.body["credential"].as_str().unwrap().to_owned(),
        hmac: auth == "hmac",
    }
}

/// A timestamp to sign one request with. A client signs every request it
/// sends, but two sends of one body signed with the same time carry the same
/// signature, which Keel refuses as a replay; so every call in this process
/// gets its own second, counting up from four minutes ago (inside the 300 s
/// window as long as a run signs fewer than about 500 requests).
pub(crate) fn signing_time() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let floor = now_micros() / 1_000_000 - 240;
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = (prev + 1).max(floor);
        match LAST.compare_exchange(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) fn feed_url(t: &TestApp, id: &str, mode: Option<&str>) -> String {
    match mode {
        Some(m) => format!("{}/hooks/integrations/{id}/stock-feed?mode={m}", t.base),
        None => format!("{}/hooks/integrations/{id}/stock-feed", t.base),
    }
}

pub(crate) async fn into_res(res: reqwest::Response) -> Res {
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Res { status, headers, body }
}

/// Pushes a feed authenticated as the integration.
pub(crate) async fn push(t: &TestApp, i: &Integration, content_type: &str, body: impl Into<Vec<u8>>, key: Option<&str>, mode: Option<&str>) -> Res {
    let body: Vec<u8> = body.into();
    let mut req = t.http.post(feed_url(t, &i.id, mode)).header("content-type", content_type);
    req = if i.hmac {
        req.header("x-keel-signature", sign(&i.credential, signing_time(), &body))
    } else {
        req.bearer_auth(&i.credential)
    };
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    into_res(req.body(body).send().await.unwrap()).await
}

pub(crate) fn csv(rows: &[(&str, &str, i64, &str)]) -> String {
    let mut s = String::from("sku,location_id,on_hand,counted_at\n");
    for (sku, loc, n, at) in rows {
        s.push_str(&format!("{sku},{loc},{n},{at}\n"));
    }
    s
}

pub(crate) fn now_rfc3339() -> String {
    to_rfc3339(now_micros())
}

pub(crate) async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

fn same_levels(a: &Value, b: &Value) -> bool {
    ["on_hand", "reserved", "safety_stock", "incoming", "damaged", "quality_control", "available"].iter().all(|k| a[k] == b[k])
}

#[tokio::test]
async fn a_count_reconciles_against_the_ledger_as_of_its_time() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Tee", &["TEE"]).await;
    t.receive("TEE", &loc, 10).await;
    tick().await;
    // The 3PL counts 8 on the shelf (2 went missing)…
    let counted_at = now_rfc3339();
    tick().await;
    // …then, before its feed arrives, a sale and a reservation are recorded.
    let r = t.post("/inventory/adjustments", json!({"sku": "TEE", "location_id": loc, "quantity_delta": -3, "reason": "sale"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t.post("/reservations", json!({"sku": "TEE", "quantity": 1})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let before = t.level("TEE", &loc).await;
    assert_eq!((before["on_hand"].as_i64(), before["reserved"].as_i64()), (Some(7), Some(1)));

    let i = integration(&t, "Acme 3PL", "hmac").await;
    let body = csv(&[("TEE", &loc, 8, &counted_at)]);
    let r = push(&t, &i, "text/csv", body.clone(), Some("feed-1"), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["rows"]["applied"].as_i64()), (Some("applied"), Some(1)), "{}", r.body);
    let batch = r.body["id"].as_str().unwrap().to_owned();
    assert!(batch.starts_with("batch_"));

    // delta = 8 − ledger on_hand at the count (10) = −2, applied now: the
    // sale and the reservation recorded after the count are kept.
    let after = t.level("TEE", &loc).await;
    assert_eq!((after["on_hand"].as_i64(), after["reserved"].as_i64(), after["available"].as_i64()), (Some(5), Some(1), Some(4)));
    let ledger = t.get("/inventory/ledger?sku=TEE").await;
    let sync = &ledger.body["data"][0];
    assert_eq!((sync["kind"].as_str(), sync["delta"]["on_hand"].as_i64()), (Some("sync"), Some(-2)), "{}", ledger.body);
    assert_eq!((sync["batch_id"].as_str(), sync["source"].as_str()), (Some(batch.as_str()), Some(i.id.as_str())));
    assert_eq!(parse_rfc3339(sync["occurred_at"].as_str().unwrap()), parse_rfc3339(&counted_at), "dated at the count");
    let rows = t.get(&format!("/sync-batches/{batch}/rows")).await;
    let row = &rows.body["data"][0];
    assert_eq!(
        (row["line"].as_i64(), row["outcome"].as_str(), row["ledger_on_hand"].as_i64(), row["delta"].as_i64()),
        (Some(2), Some("applied"), Some(10), Some(-2)),
        "{}",
        rows.body
    );
    assert_eq!(row["movement_id"], sync["id"]);
    t.assert_consistent().await;

    // The same key again: the stored batch, applied once.
    let again = push(&t, &i, "text/csv", body.clone(), Some("feed-1"), None).await;
    assert_eq!((again.status, again.body["id"].as_str()), (StatusCode::OK, Some(batch.as_str())));
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let other = push(&t, &i, "text/csv", csv(&[("TEE", &loc, 9, &counted_at)]), Some("feed-1"), None).await;
    assert_eq!((other.status, other.error_code()), (StatusCode::CONFLICT, "idempotency_key_reused"));
    // The same count re-sent under a new key finds nothing to correct, and
    // an older count arriving late never overrides the newer one.
    let r = push(&t, &i, "text/csv", body.clone(), Some("feed-2"), None).await;
    assert_eq!(r.body["rows"]["unchanged"], 1, "{}", r.body);
    let older = to_rfc3339(parse_rfc3339(&counted_at).unwrap() - 1_000);
    let r = push(&t, &i, "text/csv", csv(&[("TEE", &loc, 50, &older)]), Some("feed-3"), None).await;
    assert_eq!(r.body["rows"]["superseded"], 1, "{}", r.body);
    assert_eq!(t.level("TEE", &loc).await["on_hand"], 5);
    t.assert_consistent().await;

    // Rollback restores exactly the levels before the batch.
    let r = t.post(&format!("/sync-batches/{batch}/rollback"), json!({})).await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("rolled_back")), "{}", r.body);
    let restored = t.level("TEE", &loc).await;
    assert!(same_levels(&restored, &before), "{restored} vs {before}");
    t.assert_consistent().await;
    let r = t.post(&format!("/sync-batches/{batch}/rollback"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "batch_rolled_back"));

    let events = t.events("type=sync_batch.*", 4).await;
    let kinds: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"sync_batch.applied") && kinds.contains(&"sync_batch.rolled_back"), "{kinds:?}");
    let stats = t.app.integration_stats(now_micros()).await.unwrap();
    let s = stats.iter().find(|s| s.id == i.id).unwrap();
    assert!(s.fresh && s.last_success_at.is_some() && s.batches_last_hour == 3 && s.failures_last_hour == 0, "{s:?}");
}

#[tokio::test]
async fn rollback_is_refused_per_sku_when_stock_was_sold_since() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Mug", &["MUG", "CUP"]).await;
    t.receive("MUG", &loc, 10).await;
    t.receive("CUP", &loc, 4).await;
    tick().await;
    let at = now_rfc3339();
    let i = integration(&t, "ERP", "api_key").await;
    let r = push(&t, &i, "text/csv", csv(&[("MUG", &loc, 15, &at), ("CUP", &loc, 6, &at)]), None, None).await;
    assert_eq!(r.body["rows"]["applied"], 2, "{}", r.body);
    let batch = r.body["id"].as_str().unwrap().to_owned();
    // 12 of the 15 mugs are sold (reserved) after the feed: undoing +5 would
    // leave −2 available.
    let r = t.post("/reservations", json!({"sku": "MUG", "quantity": 12})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let res_id = r.body["id"].as_str().unwrap().to_owned();
    let mug = t.level("MUG", &loc).await;
    let cup = t.level("CUP", &loc).await;
    let r = t.post(&format!("/sync-batches/{batch}/rollback"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "rollback_refused"), "{}", r.body);
    let details = r.body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{}", r.body);
    assert_eq!(
        (details[0]["sku"].as_str(), details[0]["delta"].as_i64(), details[0]["available"].as_i64(), details[0]["available_after"].as_i64()),
        (Some("MUG"), Some(5), Some(3), Some(-2))
    );
    assert!(r.body["error"]["message"].as_str().unwrap().contains("MUG"), "{}", r.body);
    assert!(same_levels(&t.level("MUG", &loc).await, &mug) && same_levels(&t.level("CUP", &loc).await, &cup), "nothing changed");
    assert_eq!(t.get(&format!("/sync-batches/{batch}")).await.body["status"], "applied");
    t.assert_consistent().await;

    // Once the reservation is released the rollback goes through.
    let r = t.post(&format!("/reservations/{res_id}/release"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = t.post(&format!("/sync-batches/{batch}/rollback"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((t.level("MUG", &loc).await["on_hand"].as_i64(), t.level("CUP", &loc).await["on_hand"].as_i64()), (Some(10), Some(4)));
    t.assert_consistent().await;
}

#[tokio::test]
async fn all_or_nothing_and_apply_valid_report_bad_rows_by_line() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    let archived = t.location("Old", 2).await;
    t.ok(&format!("/locations/{archived}"), json!({"archived": true})).await;
    t.product("Kit", &["A", "B", "C"]).await;
    t.receive("C", &loc, 5).await;
    t.post("/reservations", json!({"sku": "C", "quantity": 4})).await;
    tick().await;
    let at = now_rfc3339();
    let body = format!(
        "sku,location_id,on_hand,counted_at\n\
         A,{loc},3,{at}\n\
         NOPE,{loc},1,{at}\n\
         B,{loc},lots,{at}\n\
         B,loc_0193a1b2c3d4e5f60718293a4b5c6d7e,1,{at}\n\
         A,{loc},1\n\
         \n\
         B,{loc},7,{at}\n\
         C,{loc},2,{at}\n\
         A,{archived},1,{at}\n\
         B,{loc},1,not-a-time\n"
    );
    let i = integration(&t, "WMS", "hmac").await;

    // All or nothing (the default): nothing is applied, every problem is
    // reported with its line.
    let r = push(&t, &i, "text/csv", body.clone(), Some("k1"), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "failed", "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("nothing was applied"));
    let lines = |v: &Value| -> Vec<(i64, String)> {
        v.as_array().unwrap().iter().map(|r| (r["line"].as_i64().unwrap(), r["outcome"].as_str().unwrap().to_owned())).collect()
    };
    let expected: Vec<(i64, String)> = [
        (3, "unknown_sku"),
        (4, "invalid"),
        (5, "unknown_location"),
        (6, "invalid"),
        (9, "rejected"),
        (10, "unknown_location"),
        (11, "invalid"),
    ]
    .iter()
    .map(|(l, o)| (*l, o.to_string()))
    .collect();
    assert_eq!(lines(&r.body["problems"]), expected);
    assert_eq!((r.body["rows"]["total"].as_i64(), r.body["rows"]["skipped"].as_i64()), (Some(9), Some(2)));
    assert_eq!(t.level("A", &loc).await["on_hand"], 0, "nothing applied");
    let batch = r.body["id"].as_str().unwrap();
    let page = t.get(&format!("/sync-batches/{batch}/rows?outcome=problems&limit=3")).await;
    assert_eq!((lines(&page.body["data"]).len(), page.body["has_more"].as_bool()), (3, Some(true)));
    let rest = t.get(&format!("/sync-batches/{batch}/rows?outcome=problems&starting_after=5")).await;
    assert_eq!(lines(&rest.body["data"])[0].0, 6);
    let row = t.get(&format!("/sync-batches/{batch}/rows?outcome=invalid")).await;
    assert_eq!(row.body["data"][0]["message"], "on_hand: must be an integer", "{}", row.body);
    assert_eq!(row.body["data"][1]["message"], "expected 4 fields, found 3");
    let rejected = t.get(&format!("/sync-batches/{batch}/rows?outcome=rejected")).await;
    assert!(rejected.body["data"][0]["message"].as_str().unwrap().contains("below reserved 4"), "{}", rejected.body);
    let r = t.get(&format!("/sync-batches/{batch}/rows?outcome=weird")).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "outcome"));

    // Apply valid: the good rows go through.
    let r = push(&t, &i, "text/csv", body.clone(), Some("k2"), Some("apply_valid")).await;
    assert_eq!(r.body["status"], "partially_applied", "{}", r.body);
    assert_eq!((r.body["rows"]["applied"].as_i64(), r.body["rows"]["rejected"].as_i64()), (Some(2), Some(1)), "{}", r.body);
    assert_eq!(lines(&r.body["problems"]), expected);
    assert_eq!((t.level("A", &loc).await["on_hand"].as_i64(), t.level("B", &loc).await["on_hand"].as_i64()), (Some(3), Some(7)));
    assert_eq!(t.level("C", &loc).await["on_hand"], 5, "the rejected count changed nothing");
    t.assert_consistent().await;

    // A body that is not a feed: recorded as failed with the reason.
    let r = push(&t, &i, "text/csv", "sku;location;qty\nA;x;1\n", None, None).await;
    assert_eq!(r.body["status"], "failed", "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("header"), "{}", r.body);
    let r = push(&t, &i, "application/xml", "<feed/>", None, None).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = push(&t, &i, "text/csv", "sku,location_id,on_hand,counted_at\n", None, Some("sometimes")).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "mode"));
    let stats = t.app.integration_stats(now_micros()).await.unwrap();
    let s = stats.iter().find(|s| s.id == i.id).unwrap();
    assert_eq!((s.batches_last_hour, s.failures_last_hour), (3, 2), "{s:?}");
    assert!(s.last_error.as_deref().unwrap().contains("header"));
}

#[tokio::test]
async fn json_and_ndjson_feeds() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Sock", &["SOCK", "SHOE"]).await;
    let at = now_rfc3339();
    let i = integration(&t, "Shop", "api_key").await;
    let row = |sku: &str, n: i64| json!({"sku": sku, "location_id": loc, "on_hand": n, "counted_at": at});
    let doc = json!({"rows": [row("SOCK", 4), row("SHOE", 2)]});
    let r = push(&t, &i, "application/json", serde_json::to_vec_pretty(&doc).unwrap(), None, None).await;
    assert_eq!((r.status, r.body["rows"]["applied"].as_i64()), (StatusCode::CREATED, Some(2)), "{}", r.body);
    assert_eq!(r.body["format"], "json");
    tick().await;
    let at2 = now_rfc3339();
    let nd = format!(
        "{}\n{{\"sku\":\"SOCK\"}}\n{}\n",
        json!({"sku": "SOCK", "location_id": loc, "on_hand": 6, "counted_at": at2}),
        json!({"sku": "SHOE", "location_id": loc, "on_hand": 2, "counted_at": at2})
    );
    let r = push(&t, &i, "application/x-ndjson", nd, None, Some("apply_valid")).await;
    assert_eq!(r.body["status"], "partially_applied", "{}", r.body);
    assert_eq!((r.body["rows"]["applied"].as_i64(), r.body["rows"]["unchanged"].as_i64()), (Some(1), Some(1)));
    assert_eq!((r.body["problems"][0]["line"].as_i64(), r.body["problems"][0]["outcome"].as_str()), (Some(2), Some("invalid")));
    assert_eq!(t.level("SOCK", &loc).await["on_hand"], 6);
    // A level counted twice in one feed: the latest count wins (on a tie,
    // the last line).
    tick().await;
    let (t1, t2) = (now_rfc3339(), {
        tick().await;
        now_rfc3339()
    });
    let body = csv(&[("SOCK", &loc, 10, &t2), ("SOCK", &loc, 11, &t1), ("SHOE", &loc, 3, &t1), ("SOCK", &loc, 12, &t2)]);
    let r = push(&t, &i, "text/csv", body, None, None).await;
    assert_eq!((r.body["rows"]["applied"].as_i64(), r.body["rows"]["superseded"].as_i64()), (Some(2), Some(2)), "{}", r.body);
    let rows = t.get(&format!("/sync-batches/{}/rows?outcome=superseded", r.body["id"].as_str().unwrap())).await;
    let lines: Vec<i64> = rows.body["data"].as_array().unwrap().iter().map(|r| r["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, [2, 3]);
    assert_eq!((t.level("SOCK", &loc).await["on_hand"].as_i64(), t.level("SHOE", &loc).await["on_hand"].as_i64()), (Some(12), Some(3)));
    t.assert_consistent().await;
}

#[tokio::test]
async fn a_signed_feed_is_accepted_once_per_signature() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Cap", &["CAP"]).await;
    let h = integration(&t, "Signed", "hmac").await;
    let send = |signature: String, body: String| {
        let req = t.http.post(feed_url(&t, &h.id, None)).header("content-type", "text/csv").header("x-keel-signature", signature);
        async move { into_res(req.body(body).send().await.unwrap()).await }
    };
    let body = csv(&[("CAP", &loc, 3, &now_rfc3339())]);
    let now = now_micros() / 1_000_000;
    let signature = sign(&h.credential, now, body.as_bytes());
    let first = send(signature.clone(), body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(t.level("CAP", &loc).await["on_hand"], 3);
    // Stock moves on; the same signed request sent again (within the 300 s
    // window, no Idempotency-Key) is refused and changes nothing.
    t.ok("/inventory/adjustments", json!({"sku": "CAP", "location_id": loc, "kind": "adjust", "quantity_delta": -2})).await;
    for _ in 0..2 {
        let again = send(signature.clone(), body.clone()).await;
        assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "signature_replayed"), "{}", again.body);
    }
    // Listing the signature again beside a junk one is the same signature.
    let padded = format!("{signature},v1=00ff");
    assert_eq!(send(padded, body.clone()).await.error_code(), "signature_replayed");
    assert_eq!(t.level("CAP", &loc).await["on_hand"], 1);
    assert_eq!(t.db.scalar(&format!("SELECT COUNT(*) FROM sync_batches WHERE integration_id = '{}'", h.id)).await, 1, "no second batch");
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM sync_batch_rows").await, 1);
    // A fresh signature of the same body is a new upload.
    let fresh = send(sign(&h.credential, now - 1, body.as_bytes()), body.clone()).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);
    assert_eq!(t.db.scalar(&format!("SELECT COUNT(*) FROM sync_batches WHERE integration_id = '{}'", h.id)).await, 2);
    // The count at T was already applied: it corrects nothing a second time.
    assert_eq!(t.level("CAP", &loc).await["on_hand"], 1);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM feed_signatures").await, 2, "both accepted signatures are remembered");
    t.assert_consistent().await;
}

#[tokio::test]
async fn feeds_authenticate_with_the_integrations_own_credential() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    t.product("Cap", &["CAP"]).await;
    let body = csv(&[("CAP", &loc, 3, &now_rfc3339())]);
    let h = integration(&t, "Signed", "hmac").await;
    assert!(h.credential.starts_with("keel_whsec_"));
    let post = |headers: Vec<(&'static str, String)>, body: String| {
        let mut req = t.http.post(feed_url(&t, &h.id, None)).header("content-type", "text/csv");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { into_res(req.body(body).send().await.unwrap()).await }
    };
    let now = now_micros() / 1_000_000;
    for (why, headers) in [
        ("no credential", vec![]),
        ("admin key", vec![("authorization", format!("Bearer {}", t.key))]),
        ("wrong secret", vec![("x-keel-signature", sign("keel_whsec_wrong", now, body.as_bytes()))]),
        ("stale", vec![("x-keel-signature", sign(&h.credential, now - 400, body.as_bytes()))]),
        ("other body", vec![("x-keel-signature", sign(&h.credential, now, b"sku,location_id,on_hand,counted_at\n"))]),
        ("malformed", vec![("x-keel-signature", "v1=zz".to_owned())]),
    ] {
        let r = post(headers, body.clone()).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{why}: {}", r.body);
    }
    assert_eq!(t.level("CAP", &loc).await["on_hand"], 0);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM sync_batches").await, 0, "unverified uploads leave nothing");
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM sync_batch_rows").await, 0);
    let r = post(vec![("x-keel-signature", sign(&h.credential, now, body.as_bytes()))], body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Stored encrypted, never in clear.
    let hex_part = h.credential.trim_start_matches("keel_whsec_");
    assert_eq!(t.db.scalar(&format!("SELECT COUNT(*) FROM integrations WHERE credential_encrypted LIKE '%{hex_part}%'")).await, 0);

    let k = integration(&t, "Keyed", "api_key").await;
    assert!(k.credential.starts_with("keel_ik_"));
    let wrong = Integration { id: k.id.clone(), credential: "keel_ik_nope".into(), hmac: false };
    let r = push(&t, &wrong, "text/csv", body.clone(), None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = push(&t, &k, "text/csv", body.clone(), None, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The integration key is no admin key.
    let r = t.http.get(t.url("/products")).bearer_auth(&k.credential).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Rotation: the old key stops working at once.
    let r = t.post(&format!("/integrations/{}/rotate-credential", k.id), json!({})).await;
    let rotated = Integration { id: k.id.clone(), credential: r.body["credential"].as_str().unwrap().to_owned(), hmac: false };
    assert_eq!(push(&t, &k, "text/csv", body.clone(), None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(push(&t, &rotated, "text/csv", body.clone(), None, None).await.status, StatusCode::CREATED);
    assert!(t.get(&format!("/integrations/{}", k.id)).await.body.get("credential").is_none(), "shown only once");
    // Disabled integrations take no feeds; unknown ones are 404.
    t.ok(&format!("/integrations/{}", k.id), json!({"enabled": false})).await;
    let r = push(&t, &rotated, "text/csv", body.clone(), None, None).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "integration_disabled"));
    let ghost = Integration { id: "intg_0193a1b2c3d4e5f60718293a4b5c6d7e".into(), credential: "x".into(), hmac: false };
    assert_eq!(push(&t, &ghost, "text/csv", body.clone(), None, None).await.status, StatusCode::NOT_FOUND);
    // The registry.
    let list = t.get("/integrations").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    let r = t.post("/integrations", json!({"name": "Signed", "kind": "erp"})).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::CONFLICT, "duplicate_name"));
    let r = t.post("/integrations", json!({"name": "X", "kind": "warehouse"})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "kind"));
    let r = t.post("/integrations", json!({"name": "Y", "kind": "erp", "pull": {"url": "ftp://x", "every_seconds": 60}})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "pull.url"));
    let doc = t.http.get(t.url("/openapi.json")).send().await.unwrap().json::<Value>().await.unwrap();
    assert!(doc["paths"].get("/sync-batches/{id}/rollback").is_some());
}

/// A feed source on an ephemeral port: serves `body` with an ETag and
/// answers `If-None-Match` with 304; counts requests.
struct Source {
    url: String,
    state: std::sync::Arc<std::sync::Mutex<(String, String, u32)>>,
}

async fn source(body: String) -> Source {
    use axum::http::{header, HeaderMap, StatusCode as S};
    use axum::response::IntoResponse;
    let state = std::sync::Arc::new(std::sync::Mutex::new((body, "\"v1\"".to_owned(), 0u32)));
    let s = state.clone();
    let app = axum::Router::new()
        .route(
            "/feed.csv",
            axum::routing::get(move |headers: HeaderMap| {
                let s = s.clone();
                async move {
                    let mut g = s.lock().unwrap();
                    g.2 += 1;
                    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(g.1.as_str()) {
                        return S::NOT_MODIFIED.into_response();
                    }
                    ([(header::CONTENT_TYPE, "text/csv"), (header::ETAG, g.1.as_str())], g.0.clone()).into_response()
                }
            }),
        )
        .route("/broken", axum::routing::get(|| async { S::INTERNAL_SERVER_ERROR }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Source { url: format!("http://{addr}"), state }
}

#[tokio::test]
async fn pulled_feeds_are_polled_on_schedule() {
    // The source is on loopback.
    let t = keel_testkit::spawn_with(keel_testkit::allow_private_targets).await;
    let loc = t.location("Main", 1).await;
    t.product("Pen", &["PEN"]).await;
    t.receive("PEN", &loc, 2).await;
    tick().await;
    let src = source(csv(&[("PEN", &loc, 5, &now_rfc3339())])).await;
    let r = t
        .post(
            "/integrations",
            json!({"name": "Puller", "kind": "erp", "freshness_sla_seconds": 60, "pull": {"url": format!("{}/feed.csv", src.url), "every_seconds": 60}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let now = now_micros();
    assert_eq!(t.app.poll_feeds(now).await.unwrap(), 1);
    assert_eq!(t.level("PEN", &loc).await["on_hand"], 5);
    let batches = t.get(&format!("/sync-batches?integration_id={id}")).await;
    assert_eq!(batches.body["data"][0]["source"], "pull");
    assert_eq!(batches.body["data"][0]["status"], "applied");
    // Not due again before the interval; then a conditional request (304).
    assert_eq!(t.app.poll_feeds(now + 1_000_000).await.unwrap(), 0);
    assert_eq!(t.app.poll_feeds(now + 61_000_000).await.unwrap(), 1);
    assert_eq!(src.state.lock().unwrap().2, 2);
    assert_eq!(t.get(&format!("/sync-batches?integration_id={id}")).await.body["data"].as_array().unwrap().len(), 1);
    // New content, new ETag: a new batch.
    tick().await;
    {
        let mut g = src.state.lock().unwrap();
        g.0 = csv(&[("PEN", &loc, 9, &now_rfc3339())]);
        g.1 = "\"v2\"".into();
    }
    assert_eq!(t.app.poll_feeds(now + 122_000_000).await.unwrap(), 1);
    assert_eq!(t.level("PEN", &loc).await["on_hand"], 9);
    t.assert_consistent().await;
    let stats = t.app.integration_stats(now_micros()).await.unwrap();
    assert!(stats[0].fresh && stats[0].batches_last_hour == 2, "{:?}", stats[0]);

    // A feed that cannot be applied is not "unchanged" when served again.
    {
        let mut g = src.state.lock().unwrap();
        g.0 = csv(&[("NOPE", &loc, 1, &now_rfc3339())]);
        g.1 = "\"v3\"".into();
    }
    assert_eq!(t.app.poll_feeds(now + 183_000_000).await.unwrap(), 1);
    assert_eq!(t.app.poll_feeds(now + 244_000_000).await.unwrap(), 1);
    let stats = t.app.integration_stats(now_micros()).await.unwrap();
    assert_eq!(stats[0].failures_last_hour, 2, "{:?}", stats[0]);
    assert!(stats[0].last_error.as_deref().unwrap().contains("still serves"), "{:?}", stats[0]);
    // A failing source is recorded as a failed batch.
    let r = t.ok(&format!("/integrations/{id}"), json!({"pull": {"url": format!("{}/broken", src.url), "every_seconds": 60}})).await;
    assert!(r["pull"]["next_at"].is_string());
    assert_eq!(t.app.poll_feeds(now_micros()).await.unwrap(), 1);
    let stats = t.app.integration_stats(now_micros()).await.unwrap();
    assert_eq!(stats[0].failures_last_hour, 3, "{:?}", stats[0]);
    assert!(stats[0].last_error.as_deref().unwrap().contains("500"), "{:?}", stats[0]);
    // Pulling stops when the pull is removed.
    t.ok(&format!("/integrations/{id}"), json!({"pull": null})).await;
    assert_eq!(t.app.poll_feeds(now_micros() + 1_000_000_000).await.unwrap(), 0);
}

/// Peak and current resident memory of this process, in MiB.
fn memory_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// `skus` × `locations` CSV rows in chunks of 2,000, generated lazily (the
/// feed is never held whole, by the test or the server).
fn feed_chunks(skus: usize, locs: Vec<String>, at: String, count: fn(usize, usize) -> i64) -> impl Iterator<Item = String> + Send + 'static {
    let total = skus * locs.len();
    (0..=total / 2000).map(move |c| {
        let mut s = String::with_capacity(2000 * 80);
        if c == 0 {
            s.push_str("sku,location_id,on_hand,counted_at\n");
        }
        for n in c * 2000..((c + 1) * 2000).min(total) {
            let (sku, loc) = (n / locs.len(), n % locs.len());
            s.push_str(&format!("BULK-{sku:05},{},{},{at}\n", locs[loc], count(sku, loc)));
        }
        s
    })
}

/// Counts of the first feed: every level new and counted (an initial load,
/// every row moves stock), or mostly zero (1 row in 100 moves stock).
fn initial_count(s: usize, l: usize) -> i64 {
    ((s * 7 + l) % 50) as i64 + 1
}

fn sparse_count(s: usize, l: usize) -> i64 {
    match (s * 31 + l) % 100 {
        0 => initial_count(s, l),
        _ => 0,
    }
}

/// The second feed: an hour's drift, 1 row in 100 changed.
fn drift(s: usize, l: usize) -> bool {
    (s * 17 + l) % 100 == 3
}

fn drifted_initial(s: usize, l: usize) -> i64 {
    initial_count(s, l) + i64::from(drift(s, l))
}

fn drifted_sparse(s: usize, l: usize) -> i64 {
    sparse_count(s, l) + i64::from(drift(s, l))
}

async fn large_feed(skus: usize, locations: usize, initial_load: bool) {
    // Phase timings of the server (`sync batch received`; per judging step
    // with KEEL_LOG=keel_store::feeds=debug) show with --nocapture.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEEL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("keel_app::feeds=info")),
        )
        .with_test_writer()
        .try_init();
    let t = spawn_app().await;
    let mut locs = Vec::new();
    for l in 0..locations {
        locs.push(t.location(&format!("L{l}"), l as i64).await);
    }
    for p in 0..skus.div_ceil(100) {
        let names: Vec<String> = (p * 100..((p + 1) * 100).min(skus)).map(|s| format!("BULK-{s:05}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        t.product(&format!("Bulk {p}"), &refs).await;
    }
    let i = integration(&t, "Bulk 3PL", "hmac").await;
    let rows = skus * locations;
    let cells = || (0..skus).flat_map(move |s| (0..locations).map(move |l| (s, l)));
    let (peak0, rss0) = memory_mib();
    let push_stream = |count: fn(usize, usize) -> i64, key: &'static str| {
        let (i, t, locs) = (&i, &t, locs.clone());
        async move {
            let at = now_rfc3339();
            let mut mac = Hmac::<Sha256>::new_from_slice(i.credential.as_bytes()).unwrap();
            let ts = now_micros() / 1_000_000;
            mac.update(format!("{ts}.").as_bytes());
            let mut bytes = 0usize;
            // The signature covers the whole body, so it is computed from an
            // identical generated stream first; the server sees only a stream.
            for chunk in feed_chunks(skus, locs.clone(), at.clone(), count) {
                bytes += chunk.len();
                mac.update(chunk.as_bytes());
            }
            let sig = format!("t={ts},v1={}", hex::encode(mac.finalize().into_bytes()));
            let started = Instant::now();
            let res = t
                .http
                .post(feed_url(t, &i.id, None))
                .header("content-type", "text/csv")
                .header("x-keel-signature", sig)
                .header("idempotency-key", key)
                .timeout(Duration::from_secs(3600))
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    feed_chunks(skus, locs.clone(), at.clone(), count).map(Ok::<_, std::io::Error>),
                )))
                .send()
                .await
                .unwrap();
            let r = into_res(res).await;
            (r, started.elapsed(), bytes)
        }
    };

    type Count = fn(usize, usize) -> i64;
    let (first, second): (Count, Count) =
        if initial_load { (initial_count, drifted_initial) } else { (sparse_count, drifted_sparse) };
    let (r, took, bytes) = push_stream(first, "first").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let moved = cells().filter(|&(s, l)| first(s, l) != 0).count();
    assert_eq!((r.body["status"].as_str(), r.body["rows"]["applied"].as_u64()), (Some("applied"), Some(moved as u64)), "{}", r.body);
    assert_eq!(r.body["rows"]["unchanged"].as_u64(), Some((rows - moved) as u64));
    let (peak1, rss1) = memory_mib();
    println!(
        "feed of {rows} rows ({:.1} MB), {moved} moving stock into new levels: {:.1} s; process RSS {rss0} → {rss1} MiB, peak {peak0} → {peak1} MiB",
        bytes as f64 / 1e6,
        took.as_secs_f64()
    );

    tick().await;
    let (r, took, _) = push_stream(second, "second").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let changed = cells().filter(|&(s, l)| drift(s, l)).count();
    assert_eq!(r.body["rows"]["applied"].as_u64(), Some(changed as u64), "{}", r.body);
    assert_eq!(r.body["rows"]["unchanged"].as_u64(), Some((rows - changed) as u64), "{}", r.body);
    let (peak2, rss2) = memory_mib();
    println!("feed of {rows} rows, {changed} changed: {:.1} s; process RSS {rss2} MiB, peak {peak2} MiB", took.as_secs_f64());
    // The server never held the body: its memory did not grow with it.
    assert!(peak2.saturating_sub(peak0) < 300, "peak RSS grew by {} MiB", peak2 - peak0);
    let started = Instant::now();
    t.assert_consistent().await;
    println!("keel check over {} levels: {:.1} s", cells().filter(|&(s, l)| first(s, l) != 0 || drift(s, l)).count(), started.elapsed().as_secs_f64());
}

/// 100,000 rows (1,000 SKUs × 100 locations, ~8 MB of CSV), streamed; 1 row
/// in 100 moves stock.
#[tokio::test]
async fn a_large_csv_feed_streams_in_bounded_memory() {
    large_feed(1_000, 100, false).await;
}

/// 100,000 rows that all move stock into new levels (an initial load).
/// Slow in debug builds (~50 s SQLite, ~2 min PostgreSQL):
/// `cargo test --release -p keel --test api feeds_ -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn feeds_100k_rows_initial_load() {
    large_feed(1_000, 100, true).await;
}

/// 1,000,000 rows (10,000 SKUs × 100 locations, ~80 MB of CSV), 1 in 100
/// moving stock.
#[tokio::test]
#[ignore]
async fn feeds_1m_rows() {
    large_feed(10_000, 100, false).await;
}

/// 1,000,000 rows that all move stock into new levels.
#[tokio::test]
#[ignore]
async fn feeds_1m_rows_initial_load() {
    large_feed(10_000, 100, true).await;
}

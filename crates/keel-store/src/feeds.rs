//! Inbound integrations, stock feeds and sync batches.
//!
//! A feed is staged row by row into `sync_batch_rows` while its body streams
//! in, then judged set-wise (unknown locations, superseded counts, the
//! ledger's on_hand as of each row's `counted_at`, rows the level rules would
//! refuse), and finally its changed rows are applied one by one through
//! `inventory::apply_movement` (by the app, in level-lock order).

use crate::{Backend, Result, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

mod lease;
mod recheck;
mod signatures;
pub use lease::{renew_lease, take_over_lapsed, LEGACY_UPLOAD_LEASE_MICROS};
pub use recheck::{recheck_pending, reopen_unchanged};
pub use signatures::{forget_signatures_before, remember_signature};
use lease::listed;

// ---------------------------------------------------------------- integrations

#[derive(Debug, Clone)]
pub struct IntegrationRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub auth: String,
    pub credential_prefix: String,
    pub credential_hash: Option<String>,
    pub credential_encrypted: Option<String>,
    pub freshness_sla_seconds: i64,
    pub enabled: bool,
    pub pull_url: Option<String>,
    pub pull_every_seconds: Option<i64>,
    pub pull_mode: Option<String>,
    pub pull_next_at: Option<i64>,
    pub pull_etag: Option<String>,
    pub pull_last_modified: Option<String>,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    pub last_error: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const INTEGRATION_COLUMNS: &str = "id, name, kind, auth, credential_prefix, credential_hash, credential_encrypted, \
     freshness_sla_seconds, enabled, pull_url, pull_every_seconds, pull_mode, pull_next_at, pull_etag, pull_last_modified, \
     last_success_at, last_failure_at, last_error, version, created_at, updated_at";

fn integration_from_row(r: &AnyRow) -> Result<IntegrationRow> {
    Ok(IntegrationRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        auth: r.try_get("auth")?,
        credential_prefix: r.try_get("credential_prefix")?,
        credential_hash: r.try_get("credential_hash")?,
        credential_encrypted: r.try_get("credential_encrypted")?,
        freshness_sla_seconds: r.try_get("freshness_sla_seconds")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        pull_url: r.try_get("pull_url")?,
        pull_every_seconds: r.try_get("pull_every_seconds")?,
        pull_mode: r.try_get("pull_mode")?,
        pull_next_at: r.try_get("pull_next_at")?,
        pull_etag: r.try_get("pull_etag")?,
        pull_last_modified: r.try_get("pull_last_modified")?,
        last_success_at: r.try_get("last_success_at")?,
        last_failure_at: r.try_get("last_failure_at")?,
        last_error: r.try_get("last_error")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert_integration(conn: &mut AnyConnection, i: &IntegrationRow) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO integrations ({INTEGRATION_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
    ))
    .bind(&i.id)
    .bind(&i.name)
    .bind(&i.kind)
    .bind(&i.auth)
    .bind(&i.credential_prefix)
    .bind(&i.credential_hash)
    .bind(&i.credential_encrypted)
    .bind(i.freshness_sla_seconds)
    .bind(i64::from(i.enabled))
    .bind(&i.pull_url)
    .bind(i.pull_every_seconds)
    .bind(&i.pull_mode)
    .bind(i.pull_next_at)
    .bind(&i.pull_etag)
    .bind(&i.pull_last_modified)
    .bind(i.last_success_at)
    .bind(i.last_failure_at)
    .bind(&i.last_error)
    .bind(i.version)
    .bind(i.created_at)
    .bind(i.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the settings and credential of an integration (not its run
/// history); returns the new version.
pub async fn update_integration(conn: &mut AnyConnection, i: &IntegrationRow) -> Result<Option<i64>> {
    let row = sqlx::query(
        "UPDATE integrations SET name = $2, kind = $3, auth = $4, credential_prefix = $5, credential_hash = $6, \
         credential_encrypted = $7, freshness_sla_seconds = $8, enabled = $9, pull_url = $10, \
         pull_every_seconds = $11, pull_next_at = $12, pull_etag = $13, pull_last_modified = $14, \
         pull_mode = $16, version = version + 1, updated_at = $15 WHERE id = $1 RETURNING version",
    )
    .bind(&i.id)
    .bind(&i.name)
    .bind(&i.kind)
    .bind(&i.auth)
    .bind(&i.credential_prefix)
    .bind(&i.credential_hash)
    .bind(&i.credential_encrypted)
    .bind(i.freshness_sla_seconds)
    .bind(i64::from(i.enabled))
    .bind(&i.pull_url)
    .bind(i.pull_every_seconds)
    .bind(i.pull_next_at)
    .bind(&i.pull_etag)
    .bind(&i.pull_last_modified)
    .bind(i.updated_at)
    .bind(&i.pull_mode)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("version")?),
        None => None,
    })
}

pub async fn get_integration(conn: &mut AnyConnection, id: &str) -> Result<Option<IntegrationRow>> {
    let row = sqlx::query(&format!("SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(integration_from_row).transpose()
}

/// Newest first; `before` continues a previous page.
pub async fn list_integrations(conn: &mut AnyConnection, before: Option<&str>, limit: i64) -> Result<Vec<IntegrationRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(integration_from_row).collect()
}

pub async fn all_integrations(conn: &mut AnyConnection) -> Result<Vec<IntegrationRow>> {
    let rows = sqlx::query(&format!("SELECT {INTEGRATION_COLUMNS} FROM integrations ORDER BY id")).fetch_all(conn).await?;
    rows.iter().map(integration_from_row).collect()
}

/// Enabled integrations with a pull URL whose next poll is due.
pub async fn due_pulls(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<IntegrationRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE enabled = 1 AND pull_url IS NOT NULL \
         AND pull_next_at IS NOT NULL AND pull_next_at <= $1 ORDER BY pull_next_at, id LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(integration_from_row).collect()
}

/// Moves the next poll from `seen` to `next`; false when another poller
/// already did (so each due poll runs once across nodes).
pub async fn claim_pull(conn: &mut AnyConnection, id: &str, seen: i64, next: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE integrations SET pull_next_at = $3 WHERE id = $1 AND pull_next_at = $2")
        .bind(id)
        .bind(seen)
        .bind(next)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_pull_validators(conn: &mut AnyConnection, id: &str, etag: Option<&str>, last_modified: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE integrations SET pull_etag = $2, pull_last_modified = $3 WHERE id = $1")
        .bind(id)
        .bind(etag)
        .bind(last_modified)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn record_success(conn: &mut AnyConnection, id: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE integrations SET last_success_at = $2 WHERE id = $1 AND (last_success_at IS NULL OR last_success_at < $2)")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn record_failure(conn: &mut AnyConnection, id: &str, at: i64, error: &str) -> Result<()> {
    sqlx::query("UPDATE integrations SET last_failure_at = $2, last_error = $3 WHERE id = $1")
        .bind(id)
        .bind(at)
        .bind(error)
        .execute(conn)
        .await?;
    Ok(())
}

// --------------------------------------------------------------------- batches

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCounts {
    pub total: i64,
    pub applied: i64,
    pub unchanged: i64,
    pub superseded: i64,
    pub unknown_sku: i64,
    pub unknown_location: i64,
    pub invalid: i64,
    pub rejected: i64,
    pub skipped: i64,
    /// Rows not yet judged or applied.
    pub pending: i64,
}

impl RowCounts {
    /// Rows that a client must fix: bad, unknown or refused.
    pub fn problems(&self) -> i64 {
        self.unknown_sku + self.unknown_location + self.invalid + self.rejected
    }
}

#[derive(Debug, Clone)]
pub struct BatchRow {
    pub id: String,
    pub integration_id: String,
    pub idempotency_key: Option<String>,
    pub source: String,
    pub format: String,
    pub mode: String,
    pub status: String,
    pub content_sha256: Option<String>,
    pub bytes: i64,
    pub counts: RowCounts,
    pub error: Option<String>,
    pub actor: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub applied_at: Option<i64>,
    pub rolled_back_at: Option<i64>,
    /// The process receiving the upload, and until when its lease runs
    /// (renewed as the body streams in); none once received.
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
}

const BATCH_COLUMNS: &str = "id, integration_id, idempotency_key, source, format, mode, status, content_sha256, bytes, \
     rows_total, rows_applied, rows_unchanged, rows_superseded, rows_unknown_sku, rows_unknown_location, rows_invalid, \
     rows_rejected, rows_skipped, error, actor, version, created_at, updated_at, applied_at, rolled_back_at, \
     lease_owner, lease_until";

fn batch_from_row(r: &AnyRow) -> Result<BatchRow> {
    Ok(BatchRow {
        id: r.try_get("id")?,
        integration_id: r.try_get("integration_id")?,
        idempotency_key: r.try_get("idempotency_key")?,
        source: r.try_get("source")?,
        format: r.try_get("format")?,
        mode: r.try_get("mode")?,
        status: r.try_get("status")?,
        content_sha256: r.try_get("content_sha256")?,
        bytes: r.try_get("bytes")?,
        counts: RowCounts {
            total: r.try_get("rows_total")?,
            applied: r.try_get("rows_applied")?,
            unchanged: r.try_get("rows_unchanged")?,
            superseded: r.try_get("rows_superseded")?,
            unknown_sku: r.try_get("rows_unknown_sku")?,
            unknown_location: r.try_get("rows_unknown_location")?,
            invalid: r.try_get("rows_invalid")?,
            rejected: r.try_get("rows_rejected")?,
            skipped: r.try_get("rows_skipped")?,
            pending: 0,
        },
        error: r.try_get("error")?,
        actor: r.try_get("actor")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        applied_at: r.try_get("applied_at")?,
        rolled_back_at: r.try_get("rolled_back_at")?,
        lease_owner: r.try_get("lease_owner")?,
        lease_until: r.try_get("lease_until")?,
    })
}

pub async fn insert_batch(conn: &mut AnyConnection, b: &BatchRow) -> Result<()> {
    let c = &b.counts;
    sqlx::query(&format!(
        "INSERT INTO sync_batches ({BATCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)"
    ))
    .bind(&b.id)
    .bind(&b.integration_id)
    .bind(&b.idempotency_key)
    .bind(&b.source)
    .bind(&b.format)
    .bind(&b.mode)
    .bind(&b.status)
    .bind(&b.content_sha256)
    .bind(b.bytes)
    .bind(c.total)
    .bind(c.applied)
    .bind(c.unchanged)
    .bind(c.superseded)
    .bind(c.unknown_sku)
    .bind(c.unknown_location)
    .bind(c.invalid)
    .bind(c.rejected)
    .bind(c.skipped)
    .bind(&b.error)
    .bind(&b.actor)
    .bind(b.version)
    .bind(b.created_at)
    .bind(b.updated_at)
    .bind(b.applied_at)
    .bind(b.rolled_back_at)
    .bind(&b.lease_owner)
    .bind(b.lease_until)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes status, counts, key, hash, error and times; returns the new version.
pub async fn update_batch(conn: &mut AnyConnection, b: &BatchRow) -> Result<i64> {
    let c = &b.counts;
    let row = sqlx::query(
        "UPDATE sync_batches SET idempotency_key = $2, status = $3, content_sha256 = $4, bytes = $5, rows_total = $6, \
         rows_applied = $7, rows_unchanged = $8, rows_superseded = $9, rows_unknown_sku = $10, \
         rows_unknown_location = $11, rows_invalid = $12, rows_rejected = $13, rows_skipped = $14, error = $15, \
         updated_at = $16, applied_at = $17, rolled_back_at = $18, version = version + 1 WHERE id = $1 RETURNING version",
    )
    .bind(&b.id)
    .bind(&b.idempotency_key)
    .bind(&b.status)
    .bind(&b.content_sha256)
    .bind(b.bytes)
    .bind(c.total)
    .bind(c.applied)
    .bind(c.unchanged)
    .bind(c.superseded)
    .bind(c.unknown_sku)
    .bind(c.unknown_location)
    .bind(c.invalid)
    .bind(c.rejected)
    .bind(c.skipped)
    .bind(&b.error)
    .bind(b.updated_at)
    .bind(b.applied_at)
    .bind(b.rolled_back_at)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(r) => Ok(r.try_get("version")?),
        None => Err(StoreError::corrupt(format!("sync batch {} vanished", b.id))),
    }
}

/// Claims a batch for a transition: moves `from` → `to` and bumps
/// `updated_at`, taking the row's lock for the rest of the transaction.
/// False when the batch is not in `from` (someone else got there first).
pub async fn transition_batch(conn: &mut AnyConnection, id: &str, from: &str, to: &str, now: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE sync_batches SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2")
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get_batch(conn: &mut AnyConnection, id: &str) -> Result<Option<BatchRow>> {
    let row = sqlx::query(&format!("SELECT {BATCH_COLUMNS} FROM sync_batches WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(batch_from_row).transpose()
}

pub async fn batch_by_key(conn: &mut AnyConnection, integration_id: &str, key: &str) -> Result<Option<BatchRow>> {
    let row = sqlx::query(&format!(
        "SELECT {BATCH_COLUMNS} FROM sync_batches WHERE integration_id = $1 AND idempotency_key = $2"
    ))
    .bind(integration_id)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(batch_from_row).transpose()
}

/// Newest first, optionally of one integration; `before` continues a page.
/// Uploads still being received at `now` are left out.
pub async fn list_batches(
    conn: &mut AnyConnection,
    integration_id: Option<&str>,
    before: Option<&str>,
    limit: i64,
    now: i64,
) -> Result<Vec<BatchRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {BATCH_COLUMNS} FROM sync_batches WHERE ($1 IS NULL OR integration_id = $1) \
         AND ($2 IS NULL OR id < $2) AND {} ORDER BY id DESC LIMIT $3",
        listed("", "$4")
    ))
    .bind(integration_id)
    .bind(before)
    .bind(limit)
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.iter().map(batch_from_row).collect()
}

/// Batches in `status` untouched since `before`: abandoned uploads, or
/// applications interrupted by a crash.
pub async fn stale_batches(conn: &mut AnyConnection, status: &str, before: i64, limit: i64) -> Result<Vec<BatchRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {BATCH_COLUMNS} FROM sync_batches WHERE status = $1 AND updated_at < $2 ORDER BY updated_at LIMIT $3"
    ))
    .bind(status)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(batch_from_row).collect()
}

/// Claims a batch still in `status` and untouched since `before` (taking
/// its lock); false when it moved on meanwhile.
pub async fn claim_stale(conn: &mut AnyConnection, id: &str, status: &str, before: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE sync_batches SET updated_at = updated_at WHERE id = $1 AND status = $2 AND updated_at < $3")
        .bind(id)
        .bind(status)
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets a batch that never became one (bad signature, abandoned upload).
pub async fn delete_batch(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM sync_batch_rows WHERE batch_id = $1").bind(id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM sync_batches WHERE id = $1").bind(id).execute(conn).await?;
    Ok(())
}

/// Deletes up to `limit` row reports of batches created before `cutoff`
/// (the batch summaries stay). Returns how many rows went.
pub async fn purge_rows(conn: &mut AnyConnection, cutoff: i64, limit: i64) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM sync_batch_rows WHERE (batch_id, line) IN (SELECT r.batch_id, r.line FROM sync_batch_rows r \
         JOIN sync_batches b ON b.id = r.batch_id WHERE b.created_at < $1 LIMIT $2)",
    )
    .bind(cutoff)
    .bind(limit)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Per integration: batches created since `since` and how many of them failed.
pub async fn batch_activity(conn: &mut AnyConnection, since: i64) -> Result<HashMap<String, (i64, i64)>> {
    let rows = sqlx::query(
        "SELECT integration_id, CAST(COUNT(*) AS BIGINT) AS n, \
         CAST(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed \
         FROM sync_batches WHERE created_at >= $1 AND status <> 'receiving' GROUP BY integration_id",
    )
    .bind(since)
    .fetch_all(conn)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        out.insert(r.try_get("integration_id")?, (r.try_get("n")?, r.try_get::<Option<i64>, _>("failed")?.unwrap_or(0)));
    }
    Ok(out)
}

// ------------------------------------------------------------------------ rows

/// Row outcomes, as stored and shown.
pub mod outcome {
    pub const PENDING: &str = "pending";
    pub const APPLIED: &str = "applied";
    pub const UNCHANGED: &str = "unchanged";
    pub const SUPERSEDED: &str = "superseded";
    pub const UNKNOWN_SKU: &str = "unknown_sku";
    pub const UNKNOWN_LOCATION: &str = "unknown_location";
    pub const INVALID: &str = "invalid";
    pub const REJECTED: &str = "rejected";
    pub const SKIPPED: &str = "skipped";
    pub const ALL: [&str; 9] = [PENDING, APPLIED, UNCHANGED, SUPERSEDED, UNKNOWN_SKU, UNKNOWN_LOCATION, INVALID, REJECTED, SKIPPED];
}

/// A parsed feed row on its way into staging.
#[derive(Debug, Clone)]
pub struct StagedRow {
    pub line: i64,
    pub sku: Option<String>,
    pub location_id: Option<String>,
    pub on_hand: Option<i64>,
    pub counted_at: Option<i64>,
    pub inventory_item_id: Option<String>,
    pub outcome: &'static str,
    pub message: Option<String>,
}

/// Rows staged (or decided) per statement.
pub const STAGE_CHUNK: usize = 2_000;

/// Inventory item ids of these SKUs (unknown SKUs are absent).
pub async fn items_by_sku(conn: &mut AnyConnection, skus: &[&str]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::with_capacity(skus.len());
    if skus.is_empty() {
        return Ok(out);
    }
    let sql = match Backend::of(conn) {
        Backend::Sqlite => "SELECT id, sku FROM inventory_items WHERE sku IN (SELECT value FROM json_each($1))",
        Backend::Postgres => {
            "SELECT id, sku FROM inventory_items WHERE sku IN (SELECT json_array_elements_text(CAST($1 AS json)))"
        }
    };
    let list = serde_json::to_string(skus).map_err(StoreError::corrupt)?;
    for r in sqlx::query(sql).bind(list).fetch_all(&mut *conn).await? {
        out.insert(r.try_get("sku")?, r.try_get("id")?);
    }
    Ok(out)
}

/// Stages rows. Each chunk travels as one JSON parameter expanded by the
/// database (`json_each` / `json_array_elements`): SQLite looks bind
/// parameters up by name in a list, so thousands of `$n` in one statement
/// would cost quadratic time.
pub async fn insert_rows(conn: &mut AnyConnection, batch_id: &str, rows: &[StagedRow]) -> Result<()> {
    let sql = match Backend::of(conn) {
        Backend::Sqlite => {
            "INSERT INTO sync_batch_rows (batch_id, line, sku, location_id, on_hand, counted_at, inventory_item_id, \
             outcome, message) SELECT $1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
             value ->> 6, value ->> 7 FROM json_each($2)"
        }
        Backend::Postgres => {
            "INSERT INTO sync_batch_rows (batch_id, line, sku, location_id, on_hand, counted_at, inventory_item_id, \
             outcome, message) SELECT $1, CAST(e ->> 0 AS BIGINT), e ->> 1, e ->> 2, CAST(e ->> 3 AS BIGINT), \
             CAST(e ->> 4 AS BIGINT), e ->> 5, e ->> 6, e ->> 7 FROM json_array_elements(CAST($2 AS json)) AS e"
        }
    };
    for part in rows.chunks(STAGE_CHUNK) {
        let list: Vec<serde_json::Value> = part
            .iter()
            .map(|r| {
                serde_json::json!([r.line, r.sku, r.location_id, r.on_hand, r.counted_at, r.inventory_item_id, r.outcome, r.message])
            })
            .collect();
        let list = serde_json::Value::Array(list).to_string();
        sqlx::query(sql).bind(batch_id).bind(list).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Rows naming an unknown or archived location become `unknown_location`.
pub async fn mark_unknown_locations(conn: &mut AnyConnection, batch_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE sync_batch_rows SET outcome = 'unknown_location', message = 'no such location, or it is archived' \
         WHERE batch_id = $1 AND outcome = 'pending' AND NOT EXISTS (SELECT 1 FROM locations l \
         WHERE l.id = sync_batch_rows.location_id AND l.archived_at IS NULL)",
    )
    .bind(batch_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A pending row's level and count time, for finding repeated levels.
#[derive(Debug, Clone)]
pub struct CountRef {
    pub line: i64,
    pub inventory_item_id: String,
    pub location_id: String,
    pub counted_at: i64,
}

/// Pending rows in (item, location, line) order after `cursor`: rows of one
/// level come together. (Read in pages rather than joined in SQL: a
/// self-join over a batch that was just staged has no statistics on
/// PostgreSQL, which then plans it quadratically.)
pub async fn pending_counts(conn: &mut AnyConnection, batch_id: &str, cursor: &LevelCursor, limit: i64) -> Result<Vec<CountRef>> {
    let rows = sqlx::query(
        "SELECT line, inventory_item_id, location_id, counted_at FROM sync_batch_rows \
         WHERE batch_id = $1 AND outcome = 'pending' AND inventory_item_id IS NOT NULL \
         AND (inventory_item_id, location_id, line) > ($2, $3, $4) \
         ORDER BY inventory_item_id, location_id, line LIMIT $5",
    )
    .bind(batch_id)
    .bind(&cursor.inventory_item_id)
    .bind(&cursor.location_id)
    .bind(cursor.line)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CountRef {
                line: r.try_get("line")?,
                inventory_item_id: r.try_get("inventory_item_id")?,
                location_id: r.try_get("location_id")?,
                counted_at: r.try_get("counted_at")?,
            })
        })
        .collect()
}

/// The ledger's on_hand as of counted_at — the level (which `keel check`
/// proves equals the ledger's sum) minus what moved after counted_at — then
/// the delta, and `unchanged` where it is zero. Both are read through index
/// lookups per row.
const AS_OF_EXPR: &str = "CAST(COALESCE((SELECT l.on_hand FROM inventory_levels l \
     WHERE l.inventory_item_id = r.inventory_item_id AND l.location_id = r.location_id), 0) \
     - COALESCE((SELECT SUM(m.d_on_hand) FROM inventory_movements m WHERE m.inventory_item_id = r.inventory_item_id \
     AND m.location_id = r.location_id AND m.occurred_at > r.counted_at), 0) AS BIGINT)";

/// SQLite updates in place: two cheap statements.
const AS_OF_SQLITE: [&str; 2] = [
    "UPDATE sync_batch_rows AS r SET ledger_on_hand = {AS_OF} WHERE batch_id = $1 AND outcome = 'pending'{RANGE}",
    "UPDATE sync_batch_rows SET delta = on_hand - ledger_on_hand, \
     outcome = CASE WHEN on_hand = ledger_on_hand THEN 'unchanged' ELSE 'pending' END \
     WHERE batch_id = $1 AND outcome = 'pending'{RANGE}",
];

/// PostgreSQL writes a new row version (and its index entries) per update:
/// one statement, the value computed once per row.
const AS_OF_POSTGRES: [&str; 2] = [
    "UPDATE sync_batch_rows AS r SET (ledger_on_hand, delta, outcome) = \
     (SELECT s.e, r.on_hand - s.e, CASE WHEN r.on_hand = s.e THEN 'unchanged' ELSE 'pending' END \
      FROM (SELECT {AS_OF} AS e) s) \
     WHERE r.batch_id = $1 AND r.outcome = 'pending'{RANGE}",
    "",
];

/// A count older than one already applied must not override it.
const SUPERSEDED_BY_APPLIED: &str = "UPDATE sync_batch_rows SET outcome = 'superseded', \
     message = 'a newer count of this SKU at this location was already applied' \
     WHERE batch_id = $1 AND outcome = 'pending'{RANGE} AND EXISTS (SELECT 1 FROM sync_batch_rows r2 \
     JOIN sync_batches b2 ON b2.id = r2.batch_id \
     WHERE r2.inventory_item_id = sync_batch_rows.inventory_item_id AND r2.location_id = sync_batch_rows.location_id \
     AND r2.counted_at > sync_batch_rows.counted_at AND r2.batch_id <> sync_batch_rows.batch_id \
     AND r2.outcome IN ('applied', 'unchanged') AND b2.status IN ('applied', 'partially_applied'))";

/// The statements that judge pending rows against the ledger as it is now
/// (superseded, then as-of and delta), each limited by `range` (`""` for the
/// whole batch).
fn ledger_judgement(backend: Backend, range: &str) -> Vec<String> {
    let as_of = match backend {
        Backend::Sqlite => AS_OF_SQLITE,
        Backend::Postgres => AS_OF_POSTGRES,
    };
    [SUPERSEDED_BY_APPLIED, as_of[0], as_of[1]]
        .iter()
        .filter(|sql| !sql.is_empty())
        .map(|sql| sql.replace("{AS_OF}", AS_OF_EXPR).replace("{RANGE}", range))
        .collect()
}

/// Judges the pending rows of a batch set-wise, once locations are checked
/// and repeated levels within the feed are settled: counts superseded by a
/// newer count already applied, the ledger's on_hand as of each count and
/// the delta, unchanged rows, and rows whose delta the level rules would
/// refuse. What stays `pending` has a non-zero delta to apply. Each
/// statement reaches other rows through index lookups only (no join over
/// the batch), so no plan depends on the statistics of a batch that was
/// just staged.
pub async fn judge_pending(conn: &mut AnyConnection, batch_id: &str) -> Result<()> {
    let mut statements = ledger_judgement(Backend::of(conn), "");
    // Applied now, the delta must leave the level valid.
    statements.push(
        "UPDATE sync_batch_rows SET outcome = 'rejected', message = (SELECT 'on_hand would become ' \
         || CAST(l.on_hand + sync_batch_rows.delta AS TEXT) || ' (now ' || CAST(l.on_hand AS TEXT) \
         || ', delta ' || CAST(sync_batch_rows.delta AS TEXT) || '), below reserved ' || CAST(l.reserved AS TEXT) \
         || ' + damaged ' || CAST(l.damaged AS TEXT) || ' + quality_control ' || CAST(l.quality_control AS TEXT) \
         FROM inventory_levels l WHERE l.inventory_item_id = sync_batch_rows.inventory_item_id \
         AND l.location_id = sync_batch_rows.location_id) \
         WHERE batch_id = $1 AND outcome = 'pending' AND delta < 0 AND EXISTS (SELECT 1 FROM inventory_levels l \
         WHERE l.inventory_item_id = sync_batch_rows.inventory_item_id AND l.location_id = sync_batch_rows.location_id \
         AND l.on_hand + sync_batch_rows.delta < l.reserved + l.damaged + l.quality_control)"
            .to_owned(),
    );
    for (i, sql) in statements.iter().enumerate() {
        let started = std::time::Instant::now();
        let done = sqlx::query(sql).bind(batch_id).execute(&mut *conn).await?;
        tracing::debug!(batch = batch_id, step = i, rows = done.rows_affected(), ms = started.elapsed().as_millis() as u64, "judged");
    }
    Ok(())
}

/// Rows per outcome.
pub async fn count_rows(conn: &mut AnyConnection, batch_id: &str) -> Result<RowCounts> {
    let rows = sqlx::query(
        "SELECT outcome, CAST(COUNT(*) AS BIGINT) AS n FROM sync_batch_rows WHERE batch_id = $1 GROUP BY outcome",
    )
    .bind(batch_id)
    .fetch_all(conn)
    .await?;
    let mut c = RowCounts::default();
    for r in rows {
        let o: String = r.try_get("outcome")?;
        let n: i64 = r.try_get("n")?;
        c.total += n;
        match o.as_str() {
            outcome::APPLIED => c.applied = n,
            outcome::UNCHANGED => c.unchanged = n,
            outcome::SUPERSEDED => c.superseded = n,
            outcome::UNKNOWN_SKU => c.unknown_sku = n,
            outcome::UNKNOWN_LOCATION => c.unknown_location = n,
            outcome::INVALID => c.invalid = n,
            outcome::REJECTED => c.rejected = n,
            outcome::SKIPPED => c.skipped = n,
            _ => c.pending += n,
        }
    }
    Ok(c)
}

/// Pending rows become `skipped` (the batch failed as a whole).
pub async fn skip_pending(conn: &mut AnyConnection, batch_id: &str, message: &str) -> Result<()> {
    sqlx::query("UPDATE sync_batch_rows SET outcome = 'skipped', message = $2 WHERE batch_id = $1 AND outcome = 'pending'")
        .bind(batch_id)
        .bind(message)
        .execute(conn)
        .await?;
    Ok(())
}

/// A row to apply (or to roll back), in level-lock order.
#[derive(Debug, Clone)]
pub struct LevelRowRef {
    pub line: i64,
    pub sku: String,
    pub inventory_item_id: String,
    pub location_id: String,
    pub delta: i64,
    pub counted_at: i64,
}

/// Where a walk through a batch's rows in (item, location, line) order is.
#[derive(Debug, Clone, Default)]
pub struct LevelCursor {
    pub inventory_item_id: String,
    pub location_id: String,
    pub line: i64,
}

impl LevelCursor {
    pub fn after(r: &LevelRowRef) -> LevelCursor {
        LevelCursor { inventory_item_id: r.inventory_item_id.clone(), location_id: r.location_id.clone(), line: r.line }
    }
}

/// The next rows with outcome `of` after `cursor`, in the order level rows
/// are locked in (item, location), so a batch never deadlocks other writers.
pub async fn rows_in_level_order(
    conn: &mut AnyConnection,
    batch_id: &str,
    of: &str,
    cursor: &LevelCursor,
    limit: i64,
) -> Result<Vec<LevelRowRef>> {
    let rows = sqlx::query(
        "SELECT line, sku, inventory_item_id, location_id, delta, counted_at FROM sync_batch_rows \
         WHERE batch_id = $1 AND outcome = $2 AND inventory_item_id IS NOT NULL \
         AND (inventory_item_id, location_id, line) > ($3, $4, $5) \
         ORDER BY inventory_item_id, location_id, line LIMIT $6",
    )
    .bind(batch_id)
    .bind(of)
    .bind(&cursor.inventory_item_id)
    .bind(&cursor.location_id)
    .bind(cursor.line)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(LevelRowRef {
                line: r.try_get("line")?,
                sku: r.try_get("sku")?,
                inventory_item_id: r.try_get("inventory_item_id")?,
                location_id: r.try_get("location_id")?,
                delta: r.try_get("delta")?,
                counted_at: r.try_get("counted_at")?,
            })
        })
        .collect()
}

/// A decided row: its outcome, why, and the movement that applied it.
#[derive(Debug, Clone)]
pub struct RowOutcome {
    pub line: i64,
    pub outcome: &'static str,
    pub message: Option<String>,
    pub movement_id: Option<String>,
}

/// Records outcomes of many rows in one statement (one JSON parameter, as
/// in [`insert_rows`]). Written as an upsert on the primary key, which both
/// planners drive from the list, one key lookup per row; the rows exist, so
/// it always updates.
pub async fn set_outcomes(conn: &mut AnyConnection, batch_id: &str, outcomes: &[RowOutcome]) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let sql = match Backend::of(conn) {
        Backend::Sqlite => {
            "INSERT INTO sync_batch_rows (batch_id, line, outcome, message, movement_id) \
             SELECT $1, value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each($2) WHERE true \
             ON CONFLICT (batch_id, line) DO UPDATE SET outcome = excluded.outcome, message = excluded.message, \
             movement_id = excluded.movement_id"
        }
        Backend::Postgres => {
            "INSERT INTO sync_batch_rows (batch_id, line, outcome, message, movement_id) \
             SELECT $1, CAST(v ->> 0 AS BIGINT), v ->> 1, v ->> 2, v ->> 3 FROM json_array_elements(CAST($2 AS json)) AS v \
             ON CONFLICT (batch_id, line) DO UPDATE SET outcome = excluded.outcome, message = excluded.message, \
             movement_id = excluded.movement_id"
        }
    };
    for part in outcomes.chunks(STAGE_CHUNK) {
        let list: Vec<serde_json::Value> =
            part.iter().map(|o| serde_json::json!([o.line, o.outcome, o.message, o.movement_id])).collect();
        sqlx::query(sql).bind(batch_id).bind(serde_json::Value::Array(list).to_string()).execute(&mut *conn).await?;
    }
    Ok(())
}

/// One row of a batch's report.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub line: i64,
    pub sku: Option<String>,
    pub location_id: Option<String>,
    pub on_hand: Option<i64>,
    pub counted_at: Option<i64>,
    pub outcome: String,
    pub message: Option<String>,
    pub ledger_on_hand: Option<i64>,
    pub delta: Option<i64>,
    pub movement_id: Option<String>,
}

/// Rows in line order after line `after`, optionally of some outcomes.
pub async fn report_rows(
    conn: &mut AnyConnection,
    batch_id: &str,
    outcomes: &[&str],
    after: i64,
    limit: i64,
) -> Result<Vec<ReportRow>> {
    let mut sql = String::from(
        "SELECT line, sku, location_id, on_hand, counted_at, outcome, message, ledger_on_hand, delta, movement_id \
         FROM sync_batch_rows WHERE batch_id = $1 AND line > $2",
    );
    if !outcomes.is_empty() {
        let marks = (0..outcomes.len()).map(|i| format!("${}", i + 4)).collect::<Vec<_>>().join(", ");
        sql.push_str(&format!(" AND outcome IN ({marks})"));
    }
    sql.push_str(" ORDER BY line LIMIT $3");
    let mut q = sqlx::query(&sql).bind(batch_id).bind(after).bind(limit);
    for o in outcomes {
        q = q.bind(*o);
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(ReportRow {
                line: r.try_get("line")?,
                sku: r.try_get("sku")?,
                location_id: r.try_get("location_id")?,
                on_hand: r.try_get("on_hand")?,
                counted_at: r.try_get("counted_at")?,
                outcome: r.try_get("outcome")?,
                message: r.try_get("message")?,
                ledger_on_hand: r.try_get("ledger_on_hand")?,
                delta: r.try_get("delta")?,
                movement_id: r.try_get("movement_id")?,
            })
        })
        .collect()
}

/// Why undoing one applied row would break the stock rules.
#[derive(Debug, Clone)]
pub struct RollbackProblem {
    pub line: i64,
    pub sku: String,
    pub location_id: String,
    pub delta: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    pub damaged: i64,
    pub quality_control: i64,
}

/// Applied rows whose compensation (−delta, now) would drive available
/// stock negative or break a level rule; at most `limit`, in line order.
pub async fn rollback_problems(conn: &mut AnyConnection, batch_id: &str, limit: i64) -> Result<Vec<RollbackProblem>> {
    let rows = sqlx::query(
        "SELECT r.line, r.sku, r.location_id, r.delta, l.on_hand, l.reserved, l.safety_stock, l.damaged, \
         l.quality_control FROM sync_batch_rows r JOIN inventory_levels l \
         ON l.inventory_item_id = r.inventory_item_id AND l.location_id = r.location_id \
         WHERE r.batch_id = $1 AND r.outcome = 'applied' AND r.delta > 0 \
         AND (l.on_hand - r.delta - l.reserved - l.safety_stock - l.damaged - l.quality_control < 0 \
              OR l.on_hand - r.delta < l.reserved + l.damaged + l.quality_control) \
         ORDER BY r.line LIMIT $2",
    )
    .bind(batch_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RollbackProblem {
                line: r.try_get("line")?,
                sku: r.try_get("sku")?,
                location_id: r.try_get("location_id")?,
                delta: r.try_get("delta")?,
                on_hand: r.try_get("on_hand")?,
                reserved: r.try_get("reserved")?,
                safety_stock: r.try_get("safety_stock")?,
                damaged: r.try_get("damaged")?,
                quality_control: r.try_get("quality_control")?,
            })
        })
        .collect()
}

/// Whether any row of the batch is still staged (its report was purged otherwise).
pub async fn has_rows(conn: &mut AnyConnection, batch_id: &str) -> Result<bool> {
    let row = sqlx::query("SELECT 1 AS one FROM sync_batch_rows WHERE batch_id = $1 LIMIT 1")
        .bind(batch_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

// ------------------------------------------------------ admin console reads

/// One page of an integration's batches, newest first (uploads still being
/// received at `now` are left out).
pub async fn batch_page(conn: &mut AnyConnection, integration_id: &str, offset: i64, limit: i64, now: i64) -> Result<Vec<BatchRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {BATCH_COLUMNS} FROM sync_batches WHERE integration_id = $1 AND {} \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
        listed("", "$4")
    ))
    .bind(integration_id)
    .bind(limit)
    .bind(offset)
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.iter().map(batch_from_row).collect()
}

/// The newest batch of every integration that has one (uploads still being
/// received at `now` are left out).
pub async fn latest_batches(conn: &mut AnyConnection, now: i64) -> Result<Vec<BatchRow>> {
    let listed = listed("s.", "$1");
    let rows = sqlx::query(&format!(
        "SELECT {BATCH_COLUMNS} FROM sync_batches WHERE id IN (SELECT (SELECT s.id FROM sync_batches s \
         WHERE s.integration_id = i.id AND {listed} ORDER BY s.created_at DESC, s.id DESC LIMIT 1) \
         FROM integrations i)"
    ))
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.iter().map(batch_from_row).collect()
}

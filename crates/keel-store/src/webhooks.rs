//! Outbound webhooks: endpoints (with their encrypted secrets), messages
//! (one event for one endpoint, with the exact body that is signed), the
//! delivery queue, every attempt, and per-minute attempt counts for health.
//!
//! A message is `pending` exactly while it has a row in `webhook_deliveries`.
//! Claiming a delivery leases it: its `next_attempt_at` moves to the lease's
//! end, so a delivery whose worker died becomes due again by itself, and the
//! worker's result is only applied while its lease is still the current one.

use crate::batch::Batch;
use crate::{Backend, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Clone)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// JSON array of types or families; `[]` = every event.
    pub event_types: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    pub rate_limit: Option<i64>,
    pub secret_enc: String,
    pub previous_secret_enc: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub consecutive_failures: i64,
    pub failing_since: Option<i64>,
    pub circuit_open_until: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    pub last_error: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for EndpointRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are encrypted, but stay out of logs all the same.
        f.debug_struct("EndpointRow").field("id", &self.id).field("url", &self.url).field("enabled", &self.enabled).finish_non_exhaustive()
    }
}

const ENDPOINT_COLUMNS: &str = "id, url, description, event_types, enabled, disabled_reason, disabled_at, rate_limit, \
     secret_enc, previous_secret_enc, previous_secret_expires_at, consecutive_failures, failing_since, circuit_open_until, \
     last_success_at, last_failure_at, last_error, version, created_at, updated_at";

fn endpoint_from_row(r: &AnyRow) -> Result<EndpointRow> {
    Ok(EndpointRow {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        description: r.try_get("description")?,
        event_types: r.try_get("event_types")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        disabled_reason: r.try_get("disabled_reason")?,
        disabled_at: r.try_get("disabled_at")?,
        rate_limit: r.try_get("rate_limit")?,
        secret_enc: r.try_get("secret_enc")?,
        previous_secret_enc: r.try_get("previous_secret_enc")?,
        previous_secret_expires_at: r.try_get("previous_secret_expires_at")?,
        consecutive_failures: r.try_get("consecutive_failures")?,
        failing_since: r.try_get("failing_since")?,
        circuit_open_until: r.try_get("circuit_open_until")?,
        last_success_at: r.try_get("last_success_at")?,
        last_failure_at: r.try_get("last_failure_at")?,
        last_error: r.try_get("last_error")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert_endpoint(conn: &mut AnyConnection, e: &EndpointRow) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}, rate_window_start, rate_window_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, 0, 0)"
    ))
    .bind(&e.id)
    .bind(&e.url)
    .bind(&e.description)
    .bind(&e.event_types)
    .bind(e.enabled as i64)
    .bind(&e.disabled_reason)
    .bind(e.disabled_at)
    .bind(e.rate_limit)
    .bind(&e.secret_enc)
    .bind(&e.previous_secret_enc)
    .bind(e.previous_secret_expires_at)
    .bind(e.consecutive_failures)
    .bind(e.failing_since)
    .bind(e.circuit_open_until)
    .bind(e.last_success_at)
    .bind(e.last_failure_at)
    .bind(&e.last_error)
    .bind(e.version)
    .bind(e.created_at)
    .bind(e.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the endpoint's configuration, secrets and breaker state (read
/// with [`get_endpoint`] `lock = true` in the same transaction); returns the
/// new version.
pub async fn update_endpoint(conn: &mut AnyConnection, e: &EndpointRow) -> Result<Option<i64>> {
    let row = sqlx::query(
        "UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4, enabled = $5, disabled_reason = $6, \
         disabled_at = $7, rate_limit = $8, secret_enc = $9, previous_secret_enc = $10, previous_secret_expires_at = $11, \
         consecutive_failures = $12, failing_since = $13, circuit_open_until = $14, version = version + 1, updated_at = $15 \
         WHERE id = $1 RETURNING version",
    )
    .bind(&e.id)
    .bind(&e.url)
    .bind(&e.description)
    .bind(&e.event_types)
    .bind(e.enabled as i64)
    .bind(&e.disabled_reason)
    .bind(e.disabled_at)
    .bind(e.rate_limit)
    .bind(&e.secret_enc)
    .bind(&e.previous_secret_enc)
    .bind(e.previous_secret_expires_at)
    .bind(e.consecutive_failures)
    .bind(e.failing_since)
    .bind(e.circuit_open_until)
    .bind(e.updated_at)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("version")?),
        None => None,
    })
}

/// One endpoint; `lock` takes its row lock on PostgreSQL (inside a write
/// transaction, so delivery results cannot interleave with the change).
pub async fn get_endpoint(conn: &mut AnyConnection, id: &str, lock: bool) -> Result<Option<EndpointRow>> {
    let suffix = if lock && Backend::of(conn) == Backend::Postgres { " FOR NO KEY UPDATE" } else { "" };
    let row = sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1{suffix}"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(endpoint_from_row).transpose()
}

/// Newest first.
pub async fn list_endpoints(conn: &mut AnyConnection, before: Option<&str>, limit: i64) -> Result<Vec<EndpointRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(endpoint_from_row).collect()
}

pub async fn all_endpoints(conn: &mut AnyConnection) -> Result<Vec<EndpointRow>> {
    let rows = sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id")).fetch_all(conn).await?;
    rows.iter().map(endpoint_from_row).collect()
}

pub async fn enabled_endpoints(conn: &mut AnyConnection) -> Result<Vec<EndpointRow>> {
    let rows = sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE enabled = 1 ORDER BY id"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(endpoint_from_row).collect()
}

/// Locks endpoint rows in id order (PostgreSQL), so every transaction that
/// touches an endpoint and its deliveries takes the endpoint first.
pub async fn lock_endpoints(conn: &mut AnyConnection, ids: &[String]) -> Result<()> {
    if ids.is_empty() || Backend::of(conn) != Backend::Postgres {
        return Ok(());
    }
    let sql = format!(
        "SELECT id FROM webhook_endpoints WHERE id IN ({}) ORDER BY id FOR NO KEY UPDATE",
        placeholders(1, ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(id.as_str());
    }
    q.fetch_all(conn).await?;
    Ok(())
}

/// Whether any delivery is due at `now` (a cheap read before claiming).
pub async fn any_due(conn: &mut AnyConnection, now: i64) -> Result<bool> {
    let row = sqlx::query("SELECT message_id FROM webhook_deliveries WHERE next_attempt_at <= $1 LIMIT 1")
        .bind(now)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

/// Serialises fan-out between nodes sharing a PostgreSQL database (SQLite
/// has one writer anyway). Held until the transaction ends.
pub async fn lock_fan_out(conn: &mut AnyConnection) -> Result<()> {
    if Backend::of(conn) == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7242001)").execute(conn).await?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub status: String,
    pub attempt_count: i64,
    pub next_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const MESSAGE_COLUMNS: &str =
    "id, endpoint_id, event_id, event_type, body, status, attempt_count, next_attempt_at, last_attempt_at, created_at, updated_at";

fn message_from_row(r: &AnyRow) -> Result<MessageRow> {
    Ok(MessageRow {
        id: r.try_get("id")?,
        endpoint_id: r.try_get("endpoint_id")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        body: r.try_get("body")?,
        status: r.try_get("status")?,
        attempt_count: r.try_get("attempt_count")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_attempt_at: r.try_get("last_attempt_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Inserts new pending messages and their deliveries (due at each
/// message's `next_attempt_at`), several hundred rows per statement.
pub async fn insert_messages(conn: &mut AnyConnection, messages: &[MessageRow]) -> Result<()> {
    for chunk in messages.chunks(500) {
        let mut batch = Batch::new();
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * 7;
                format!("(${}, ${}, ${}, ${}, ${}, 'pending', 0, ${}, NULL, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 7)
            })
            .collect();
        let binds = chunk
            .iter()
            .flat_map(|m| {
                [
                    m.id.as_str().into(),
                    m.endpoint_id.as_str().into(),
                    m.event_id.as_str().into(),
                    m.event_type.as_str().into(),
                    m.body.as_str().into(),
                    m.next_attempt_at.into(),
                    m.created_at.into(),
                ]
            })
            .collect();
        batch.push(format!("INSERT INTO webhook_messages ({MESSAGE_COLUMNS}) VALUES {}", rows.join(", ")), binds);
        let rows: Vec<String> =
            (0..chunk.len()).map(|i| format!("(${}, ${}, 0, ${}, NULL, ${})", i * 4 + 1, i * 4 + 2, i * 4 + 3, i * 4 + 4)).collect();
        let binds = chunk
            .iter()
            .flat_map(|m| [m.id.as_str().into(), m.endpoint_id.as_str().into(), m.next_attempt_at.into(), m.created_at.into()])
            .collect();
        batch.push(
            format!(
                "INSERT INTO webhook_deliveries (message_id, endpoint_id, attempt, next_attempt_at, lease_until, created_at) VALUES {}",
                rows.join(", ")
            ),
            binds,
        );
        batch.run(conn).await?;
    }
    Ok(())
}

pub async fn get_message(conn: &mut AnyConnection, id: &str) -> Result<Option<MessageRow>> {
    let row = sqlx::query(&format!("SELECT {MESSAGE_COLUMNS} FROM webhook_messages WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(message_from_row).transpose()
}

/// An endpoint's messages, newest first, optionally of one status.
pub async fn list_messages(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<MessageRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM webhook_messages WHERE endpoint_id = $1 AND ($2 IS NULL OR status = $2) \
         AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .bind(endpoint_id)
    .bind(status)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(message_from_row).collect()
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub async fn messages_by_ids(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<MessageRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM webhook_messages WHERE id IN ({})", placeholders(1, ids.len()));
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(id.as_str());
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(message_from_row).collect()
}

#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub id: String,
    pub message_id: String,
    pub endpoint_id: String,
    pub url: String,
    pub attempted_at: i64,
    pub succeeded: bool,
    pub status_code: Option<i64>,
    pub latency_micros: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

const ATTEMPT_COLUMNS: &str =
    "id, message_id, endpoint_id, url, attempted_at, succeeded, status_code, latency_micros, response_excerpt, error";

fn attempt_from_row(r: &AnyRow) -> Result<AttemptRow> {
    Ok(AttemptRow {
        id: r.try_get("id")?,
        message_id: r.try_get("message_id")?,
        endpoint_id: r.try_get("endpoint_id")?,
        url: r.try_get("url")?,
        attempted_at: r.try_get("attempted_at")?,
        succeeded: r.try_get::<i64, _>("succeeded")? != 0,
        status_code: r.try_get("status_code")?,
        latency_micros: r.try_get("latency_micros")?,
        response_excerpt: r.try_get("response_excerpt")?,
        error: r.try_get("error")?,
    })
}

/// The attempts of these messages, oldest first.
pub async fn attempts_of(conn: &mut AnyConnection, message_ids: &[String]) -> Result<Vec<AttemptRow>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts WHERE message_id IN ({}) ORDER BY attempted_at, id",
        placeholders(1, message_ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in message_ids {
        q = q.bind(id.as_str());
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(attempt_from_row).collect()
}

/// What the claimer needs to know about an endpoint with due deliveries.
#[derive(Debug, Clone)]
pub struct DueEndpoint {
    pub id: String,
    pub enabled: bool,
    pub rate_limit: Option<i64>,
    pub rate_window_start: i64,
    pub rate_window_count: i64,
    pub consecutive_failures: i64,
    pub circuit_open_until: Option<i64>,
    pub in_flight: i64,
}

/// Serialises claimers between nodes sharing a PostgreSQL database, so
/// each sees the others' leases when counting deliveries in flight (SQLite
/// has one writer anyway). Held until the transaction ends; claims are
/// short, and recording results does not take it.
pub async fn lock_claims(conn: &mut AnyConnection) -> Result<()> {
    if Backend::of(conn) == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7242002)").execute(conn).await?;
    }
    Ok(())
}

/// Endpoints with at least one due delivery, in id order (read under
/// [`lock_claims`]).
pub async fn due_endpoints(conn: &mut AnyConnection, now: i64) -> Result<Vec<DueEndpoint>> {
    let rows = sqlx::query(
        "SELECT e.id, e.enabled, e.rate_limit, e.rate_window_start, e.rate_window_count, e.consecutive_failures, \
         e.circuit_open_until, \
         (SELECT COUNT(*) FROM webhook_deliveries f WHERE f.endpoint_id = e.id AND f.lease_until > $1) AS in_flight \
         FROM webhook_endpoints e \
         WHERE EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.next_attempt_at <= $1) \
         ORDER BY e.id",
    )
    .bind(now)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DueEndpoint {
                id: r.try_get("id")?,
                enabled: r.try_get::<i64, _>("enabled")? != 0,
                rate_limit: r.try_get("rate_limit")?,
                rate_window_start: r.try_get("rate_window_start")?,
                rate_window_count: r.try_get("rate_window_count")?,
                consecutive_failures: r.try_get("consecutive_failures")?,
                circuit_open_until: r.try_get("circuit_open_until")?,
                in_flight: r.try_get("in_flight")?,
            })
        })
        .collect()
}

/// Leases up to `limit` due deliveries of one endpoint until `lease_until`;
/// returns `(message_id, attempts made in this run)`.
pub async fn claim(conn: &mut AnyConnection, endpoint_id: &str, now: i64, lease_until: i64, limit: i64) -> Result<Vec<(String, i64)>> {
    let skip = if Backend::of(conn) == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let rows = sqlx::query(&format!(
        "UPDATE webhook_deliveries SET lease_until = $3, next_attempt_at = $3 WHERE message_id IN \
         (SELECT message_id FROM webhook_deliveries WHERE endpoint_id = $1 AND next_attempt_at <= $2 \
          ORDER BY next_attempt_at LIMIT $4{skip}) RETURNING message_id, attempt"
    ))
    .bind(endpoint_id)
    .bind(now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("message_id")?, r.try_get("attempt")?))).collect()
}

pub async fn set_rate_window(conn: &mut AnyConnection, endpoint_id: &str, start: i64, count: i64) -> Result<()> {
    sqlx::query("UPDATE webhook_endpoints SET rate_window_start = $2, rate_window_count = $3 WHERE id = $1")
        .bind(endpoint_id)
        .bind(start)
        .bind(count)
        .execute(conn)
        .await?;
    Ok(())
}

/// The result of one HTTP attempt, as recorded.
#[derive(Debug, Clone)]
pub struct AttemptResult<'a> {
    pub attempt: &'a AttemptRow,
    /// The lease under which the attempt was made.
    pub lease_until: i64,
    /// `None`: the message is done (succeeded or dead-lettered); otherwise
    /// when the next attempt of this run is due.
    pub retry_at: Option<i64>,
    /// Attempts made in this run, including this one.
    pub attempt_in_run: i64,
}

/// Queues an insert of attempt rows (one statement).
pub fn push_attempt_rows(batch: &mut Batch, attempts: &[&AttemptRow]) {
    if attempts.is_empty() {
        return;
    }
    let rows: Vec<String> = (0..attempts.len())
        .map(|i| format!("({})", (1..=10).map(|k| format!("${}", i * 10 + k)).collect::<Vec<_>>().join(", ")))
        .collect();
    let binds = attempts
        .iter()
        .flat_map(|a| {
            [
                a.id.as_str().into(),
                a.message_id.as_str().into(),
                a.endpoint_id.as_str().into(),
                a.url.as_str().into(),
                a.attempted_at.into(),
                (a.succeeded as i64).into(),
                a.status_code.into(),
                a.latency_micros.into(),
                a.response_excerpt.as_deref().into(),
                a.error.as_deref().into(),
            ]
        })
        .collect();
    batch.push(format!("INSERT INTO webhook_attempts ({ATTEMPT_COLUMNS}) VALUES {}", rows.join(", ")), binds);
}

/// Queues what attempts change, set-wise (their rows are inserted with
/// [`push_attempt_rows`]): each message's counters and, if the attempt's
/// lease is still current, its status; and each delivery (rescheduled, or
/// removed when the message is done, if the lease is still current). The
/// attempts must be of distinct messages.
pub fn push_attempt_effects(batch: &mut Batch, results: &[AttemptResult<'_>]) {
    if results.is_empty() {
        return;
    }
    // (message_id, attempted_at, succeeded, lease_until, status if failed, retry_at)
    let rows: Vec<String> = (0..results.len())
        .map(|i| format!("({})", (1..=6).map(|k| format!("${}", i * 6 + k)).collect::<Vec<_>>().join(", ")))
        .collect();
    let binds = results
        .iter()
        .flat_map(|r| {
            let a = r.attempt;
            let status = if a.succeeded { "succeeded" } else if r.retry_at.is_some() { "pending" } else { "failed" };
            [
                a.message_id.as_str().into(),
                a.attempted_at.into(),
                (a.succeeded as i64).into(),
                r.lease_until.into(),
                status.into(),
                r.retry_at.into(),
            ]
        })
        .collect();
    // A success always marks the message delivered; a failure changes its
    // status only while its lease is current. Statements of one batch see
    // the deliveries as they were before it.
    let current = "EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.message_id = webhook_messages.id AND d.lease_until = v.column4)";
    batch.push(
        format!(
            "UPDATE webhook_messages SET attempt_count = attempt_count + 1, last_attempt_at = v.column2, \
             status = CASE WHEN v.column3 = 1 OR {current} THEN v.column5 ELSE status END, \
             next_attempt_at = CASE WHEN {current} THEN v.column6 ELSE next_attempt_at END, updated_at = v.column2 \
             FROM (VALUES {}) AS v WHERE webhook_messages.id = v.column1",
            rows.join(", ")
        ),
        binds,
    );
    let retries: Vec<&AttemptResult<'_>> = results.iter().filter(|r| !r.attempt.succeeded && r.retry_at.is_some()).collect();
    if !retries.is_empty() {
        let rows: Vec<String> =
            (0..retries.len()).map(|i| format!("(${}, ${}, ${}, ${})", i * 4 + 1, i * 4 + 2, i * 4 + 3, i * 4 + 4)).collect();
        let binds = retries
            .iter()
            .flat_map(|r| [r.attempt.message_id.as_str().into(), r.lease_until.into(), r.attempt_in_run.into(), r.retry_at.into()])
            .collect();
        batch.push(
            format!(
                "UPDATE webhook_deliveries SET attempt = v.column3, next_attempt_at = v.column4, lease_until = NULL \
                 FROM (VALUES {}) AS v WHERE webhook_deliveries.message_id = v.column1 AND webhook_deliveries.lease_until = v.column2",
                rows.join(", ")
            ),
            binds,
        );
    }
    let done: Vec<&AttemptResult<'_>> = results.iter().filter(|r| r.attempt.succeeded || r.retry_at.is_none()).collect();
    if !done.is_empty() {
        let rows: Vec<String> = (0..done.len()).map(|i| format!("(${}, ${})", i * 2 + 1, i * 2 + 2)).collect();
        let binds = done.iter().flat_map(|r| [r.attempt.message_id.as_str().into(), r.lease_until.into()]).collect();
        batch.push(
            format!("DELETE FROM webhook_deliveries WHERE (message_id, lease_until) IN (VALUES {})", rows.join(", ")),
            binds,
        );
    }
}

/// What a run of attempts (oldest first) did to one endpoint's health.
#[derive(Debug, Clone, Default)]
pub struct HealthUpdate {
    pub endpoint_id: String,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    pub last_error: Option<String>,
    /// Whether any attempt succeeded (then the failure count restarts).
    pub had_success: bool,
    /// Failures after the last success (or all of them, if none succeeded).
    pub trailing_failures: i64,
    /// The first of those failures.
    pub trailing_since: Option<i64>,
    /// Failures in a row after which the circuit opens, and until when it
    /// would then stay open.
    pub breaker_threshold: i64,
    pub circuit_open_until: i64,
}

/// Queues the endpoint's health update: last success and failure, the
/// failure streak and its start, and the circuit breaker.
pub fn push_health(batch: &mut Batch, h: &HealthUpdate) {
    let streak = "CASE WHEN $5 = 1 THEN $6 ELSE consecutive_failures + $6 END";
    batch.push(
        format!(
            "UPDATE webhook_endpoints SET last_success_at = COALESCE($2, last_success_at), \
             last_failure_at = COALESCE($3, last_failure_at), last_error = COALESCE($4, last_error), \
             consecutive_failures = {streak}, \
             failing_since = CASE WHEN $6 = 0 THEN NULL WHEN $5 = 1 THEN $7 ELSE COALESCE(failing_since, $7) END, \
             circuit_open_until = CASE WHEN $6 = 0 THEN NULL WHEN {streak} >= $8 THEN $9 ELSE circuit_open_until END \
             WHERE id = $1"
        ),
        vec![
            h.endpoint_id.as_str().into(),
            h.last_success_at.into(),
            h.last_failure_at.into(),
            h.last_error.as_deref().into(),
            (h.had_success as i64).into(),
            h.trailing_failures.into(),
            h.trailing_since.into(),
            h.breaker_threshold.into(),
            h.circuit_open_until.into(),
        ],
    );
}

/// Queues adding attempts and failures to an endpoint's minute bucket.
pub fn push_minute_counts(batch: &mut Batch, endpoint_id: &str, minute: i64, attempts: i64, failures: i64) {
    batch.push(
        "INSERT INTO webhook_endpoint_minutes (endpoint_id, minute, attempts, failures) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (endpoint_id, minute) DO UPDATE SET attempts = webhook_endpoint_minutes.attempts + excluded.attempts, \
         failures = webhook_endpoint_minutes.failures + excluded.failures",
        vec![endpoint_id.into(), minute.into(), attempts.into(), failures.into()],
    );
}

pub async fn purge_minutes_before(conn: &mut AnyConnection, minute: i64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM webhook_endpoint_minutes WHERE minute < $1").bind(minute).execute(conn).await?;
    Ok(r.rows_affected())
}

/// Dead-letters every pending message of an endpoint (when it is
/// disabled); returns how many.
pub async fn dead_letter_pending(conn: &mut AnyConnection, endpoint_id: &str, now: i64) -> Result<u64> {
    let r = sqlx::query(
        "UPDATE webhook_messages SET status = 'failed', next_attempt_at = NULL, updated_at = $2 \
         WHERE id IN (SELECT message_id FROM webhook_deliveries WHERE endpoint_id = $1)",
    )
    .bind(endpoint_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1").bind(endpoint_id).execute(conn).await?;
    Ok(r.rows_affected())
}

/// Starts a new delivery run for one message, due at `now`: a fresh queue
/// row, or the existing one brought forward unless it is in flight.
pub async fn reschedule(conn: &mut AnyConnection, message_id: &str, endpoint_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (message_id, endpoint_id, attempt, next_attempt_at, lease_until, created_at) \
         VALUES ($1, $2, 0, $3, NULL, $3) ON CONFLICT (message_id) DO UPDATE SET attempt = 0, next_attempt_at = $3 \
         WHERE webhook_deliveries.lease_until IS NULL OR webhook_deliveries.lease_until <= $3",
    )
    .bind(message_id)
    .bind(endpoint_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE webhook_messages SET status = 'pending', next_attempt_at = \
         (SELECT next_attempt_at FROM webhook_deliveries WHERE message_id = $1), updated_at = $2 WHERE id = $1",
    )
    .bind(message_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts a new delivery run for every failed message of an endpoint created
/// at or after `since`; returns how many.
pub async fn recover_failed(conn: &mut AnyConnection, endpoint_id: &str, since: i64, now: i64) -> Result<u64> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (message_id, endpoint_id, attempt, next_attempt_at, lease_until, created_at) \
         SELECT id, endpoint_id, 0, $3, NULL, $3 FROM webhook_messages \
         WHERE endpoint_id = $1 AND status = 'failed' AND created_at >= $2",
    )
    .bind(endpoint_id)
    .bind(since)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let r = sqlx::query(
        "UPDATE webhook_messages SET status = 'pending', next_attempt_at = $3, updated_at = $3 \
         WHERE endpoint_id = $1 AND status = 'failed' AND created_at >= $2",
    )
    .bind(endpoint_id)
    .bind(since)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// Half-opens the circuit (one probe may go now): after a manual retry or
/// a recovery, whoever asked believes the receiver is back.
pub async fn half_open(conn: &mut AnyConnection, endpoint_id: &str) -> Result<()> {
    sqlx::query("UPDATE webhook_endpoints SET circuit_open_until = NULL WHERE id = $1").bind(endpoint_id).execute(conn).await?;
    Ok(())
}

/// Endpoints among `ids` that are enabled and have failed without a
/// success since at least `failing_before`.
pub async fn failing_endpoints(conn: &mut AnyConnection, ids: &[String], failing_before: i64) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id FROM webhook_endpoints WHERE enabled = 1 AND failing_since <= $1 AND id IN ({}) ORDER BY id",
        placeholders(2, ids.len())
    );
    let mut q = sqlx::query(&sql).bind(failing_before);
    for id in ids {
        q = q.bind(id.as_str());
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

/// Pending deliveries per endpoint: `(endpoint_id, count, oldest created_at)`.
pub async fn pending_by_endpoint(conn: &mut AnyConnection) -> Result<Vec<(String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT endpoint_id, COUNT(*) AS n, MIN(created_at) AS oldest FROM webhook_deliveries GROUP BY endpoint_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("endpoint_id")?, r.try_get("n")?, r.try_get("oldest")?))).collect()
}

/// Attempts and failures per endpoint since each of two minutes:
/// `(endpoint_id, attempts_a, failures_a, attempts_b, failures_b)` with
/// `since_a >= since_b`.
pub async fn minute_counts(conn: &mut AnyConnection, since_a: i64, since_b: i64) -> Result<Vec<(String, i64, i64, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT endpoint_id, \
         CAST(SUM(CASE WHEN minute >= $1 THEN attempts ELSE 0 END) AS BIGINT) AS attempts_a, \
         CAST(SUM(CASE WHEN minute >= $1 THEN failures ELSE 0 END) AS BIGINT) AS failures_a, \
         CAST(SUM(attempts) AS BIGINT) AS attempts_b, CAST(SUM(failures) AS BIGINT) AS failures_b \
         FROM webhook_endpoint_minutes WHERE minute >= $2 GROUP BY endpoint_id",
    )
    .bind(since_a)
    .bind(since_b)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("endpoint_id")?,
                r.try_get("attempts_a")?,
                r.try_get("failures_a")?,
                r.try_get("attempts_b")?,
                r.try_get("failures_b")?,
            ))
        })
        .collect()
}

/// The earliest time any delivery is due (for tests and diagnostics).
pub async fn next_due(conn: &mut AnyConnection) -> Result<Option<i64>> {
    let row = sqlx::query("SELECT MIN(next_attempt_at) AS t FROM webhook_deliveries").fetch_one(conn).await?;
    Ok(row.try_get("t")?)
}

// ------------------------------------------------------ admin console reads

/// The states an endpoint's delivery log can be filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Pending, never attempted.
    Waiting,
    /// Pending after at least one attempt: a failed delivery waiting for
    /// its retry (or a replay).
    Retrying,
    Succeeded,
    /// `failed`: every attempt of its run failed, or the endpoint was
    /// disabled while it was pending.
    DeadLettered,
}

/// One page of an endpoint's messages, newest first, optionally of one state.
pub async fn message_page(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    state: Option<MessageState>,
    offset: i64,
    limit: i64,
) -> Result<Vec<MessageRow>> {
    let (status, min_attempts, max_attempts) = match state {
        None => (None, 0, i64::MAX),
        Some(MessageState::Waiting) => (Some("pending"), 0, 0),
        Some(MessageState::Retrying) => (Some("pending"), 1, i64::MAX),
        Some(MessageState::Succeeded) => (Some("succeeded"), 0, i64::MAX),
        Some(MessageState::DeadLettered) => (Some("failed"), 0, i64::MAX),
    };
    let rows = sqlx::query(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM webhook_messages WHERE endpoint_id = $1 AND ($2 IS NULL OR status = $2) \
         AND attempt_count >= $3 AND attempt_count <= $4 ORDER BY id DESC LIMIT $5 OFFSET $6"
    ))
    .bind(endpoint_id)
    .bind(status)
    .bind(min_attempts)
    .bind(max_attempts)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    rows.iter().map(message_from_row).collect()
}

/// Per endpoint with any (every endpoint, or only `endpoint_id`, which the
/// per-endpoint status index serves): `(endpoint_id, messages waiting for a
/// retry after a failed attempt, dead-lettered messages)`.
pub async fn failure_counts(conn: &mut AnyConnection, endpoint_id: Option<&str>) -> Result<Vec<(String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT endpoint_id, CAST(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS BIGINT) AS retrying, \
         CAST(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS dead \
         FROM webhook_messages WHERE ($1 IS NULL OR endpoint_id = $1) \
         AND (status = 'failed' OR (status = 'pending' AND attempt_count > 0)) GROUP BY endpoint_id",
    )
    .bind(endpoint_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("endpoint_id")?, r.try_get("retrying")?, r.try_get("dead")?))).collect()
}

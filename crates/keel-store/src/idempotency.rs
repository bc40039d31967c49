//! Stored responses for `Idempotency-Key`, scoped per API key.

use crate::Result;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First use of the key: the caller runs the request and completes it.
    New,
    /// Same key and same request, already answered.
    Replay { status: u16, body: String },
    /// Same key and request, still running elsewhere.
    InFlight,
    /// Same key used for a different request.
    Mismatch,
}

pub struct Request<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub request_hash: &'a str,
}

/// A claim without a known owner (made before owners were recorded) left
/// unfinished this long may be taken over.
pub const STALE_CLAIM_MICROS: i64 = 60_000_000;

/// Claims the key for `owner` (this process's node id). An unfinished claim
/// whose owner no longer holds a live lease (see [`crate::nodes`]) is taken
/// over at once: its process died, so nothing else will finish it.
pub async fn claim(conn: &mut AnyConnection, r: &Request<'_>, owner: &str, now: i64) -> Result<Claim> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, method, path, request_hash, status, response_body, created_at, owner) \
         VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(r.scope)
    .bind(r.key)
    .bind(r.method)
    .bind(r.path)
    .bind(r.request_hash)
    .bind(now)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::New);
    }
    let row = sqlx::query(
        "SELECT method, path, request_hash, status, response_body, created_at FROM idempotency_keys \
         WHERE scope = $1 AND key = $2",
    )
    .bind(r.scope)
    .bind(r.key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(Claim::InFlight) };
    let method: String = row.try_get("method")?;
    let path: String = row.try_get("path")?;
    let hash: String = row.try_get("request_hash")?;
    if method != r.method || path != r.path || hash != r.request_hash {
        return Ok(Claim::Mismatch);
    }
    let status: Option<i64> = row.try_get("status")?;
    match status {
        Some(s) => Ok(Claim::Replay {
            status: u16::try_from(s).unwrap_or(500),
            body: row.try_get::<Option<String>, _>("response_body")?.unwrap_or_default(),
        }),
        None => {
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET created_at = $3, owner = $5 WHERE scope = $1 AND key = $2 AND status IS NULL \
                 AND CASE WHEN owner IS NULL THEN created_at < $4 \
                 ELSE NOT EXISTS (SELECT 1 FROM node_leases n WHERE n.node_id = idempotency_keys.owner AND n.expires_at >= $3) END",
            )
            .bind(r.scope)
            .bind(r.key)
            .bind(now)
            .bind(now - STALE_CLAIM_MICROS)
            .bind(owner)
            .execute(conn)
            .await?;
            Ok(if taken.rows_affected() == 1 { Claim::New } else { Claim::InFlight })
        }
    }
}

pub async fn complete(conn: &mut AnyConnection, scope: &str, key: &str, status: u16, body: &str) -> Result<()> {
    sqlx::query("UPDATE idempotency_keys SET status = $3, response_body = $4 WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .bind(i64::from(status))
        .bind(body)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets a claim whose request failed on our side, so a retry runs again.
pub async fn abandon(conn: &mut AnyConnection, scope: &str, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL")
        .bind(scope)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn purge_before(conn: &mut AnyConnection, cutoff: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(cutoff).execute(conn).await?;
    Ok(done.rows_affected())
}

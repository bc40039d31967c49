//! API keys, stored as SHA-256 of the secret (the secret is 256 random bits,
//! so a fast hash is enough; the plaintext is shown once and never stored).

use crate::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// A `keel_domain::access::Role` name (`publishable` for those keys).
    pub role: String,
    /// `secret` or `publishable`.
    pub kind: String,
    /// Secret keys' own requests-per-minute limit; `None`: the default.
    pub rate_limit_per_min: Option<i64>,
    pub created_by: Option<String>,
}

const COLUMNS: &str =
    "id, name, prefix, secret_hash, created_at, last_used_at, expires_at, revoked_at, role, created_by, kind, rate_limit_per_min";

fn from_row(r: &AnyRow) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        secret_hash: r.try_get("secret_hash")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        role: r.try_get("role")?,
        created_by: r.try_get("created_by")?,
        kind: r.try_get("kind")?,
        rate_limit_per_min: r.try_get("rate_limit_per_min")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, k: &ApiKeyRow) -> Result<()> {
    sqlx::query(&format!("INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
        .bind(&k.id)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.secret_hash)
        .bind(k.created_at)
        .bind(k.last_used_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .bind(&k.role)
        .bind(&k.created_by)
        .bind(&k.kind)
        .bind(k.rate_limit_per_min)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn by_hash(conn: &mut AnyConnection, hash: &str) -> Result<Option<ApiKeyRow>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE secret_hash = $1"))
        .bind(hash)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn touch(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1").bind(id).bind(now).execute(conn).await?;
    Ok(())
}

/// Revokes every live key with this name; returns how many.
pub async fn revoke_named(conn: &mut AnyConnection, name: &str, now: i64) -> Result<u64> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL")
        .bind(name)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

pub async fn by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<ApiKeyRow>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1")).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// A page of keys, newest first (ids are UUIDv7, so id order is time order).
pub async fn list(conn: &mut AnyConnection, limit: i64, starting_after: Option<&str>) -> Result<Vec<ApiKeyRow>> {
    let rows = match starting_after {
        Some(after) => {
            sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id < $1 ORDER BY id DESC LIMIT $2"))
                .bind(after)
                .bind(limit)
                .fetch_all(conn)
                .await?
        }
        None => sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY id DESC LIMIT $1")).bind(limit).fetch_all(conn).await?,
    };
    rows.iter().map(from_row).collect()
}

/// Revokes one key if still live; returns whether it changed.
pub async fn revoke(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

//! Leases of serving processes: a process renews its row while it lives, so
//! others can tell its unfinished claims from those of a process that died.

use crate::Result;
use sqlx::AnyConnection;

pub async fn renew(conn: &mut AnyConnection, node_id: &str, now: i64, expires_at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO node_leases (node_id, started_at, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (node_id) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(node_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A clean shutdown gives up its lease at once.
pub async fn release(conn: &mut AnyConnection, node_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM node_leases WHERE node_id = $1").bind(node_id).execute(conn).await?;
    Ok(())
}

pub async fn release_all_but(conn: &mut AnyConnection, node_id: &str) -> Result<u64> {
    let done = sqlx::query("DELETE FROM node_leases WHERE node_id <> $1").bind(node_id).execute(conn).await?;
    Ok(done.rows_affected())
}

pub async fn purge_expired(conn: &mut AnyConnection, before: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM node_leases WHERE expires_at < $1").bind(before).execute(conn).await?;
    Ok(done.rows_affected())
}

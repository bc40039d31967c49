//! Signatures of accepted signed feeds (migration 0021), so a signed body
//! sent again inside the signature's tolerance window is refused on every
//! node rather than applied twice.

use crate::Result;
use sqlx::AnyConnection;

/// Remembers an accepted signature; false when this integration already
/// accepted it. On PostgreSQL a concurrent insert of the same signature
/// waits for the first transaction and then finds the row, so exactly one
/// of two identical uploads is accepted.
pub async fn remember_signature(conn: &mut AnyConnection, integration_id: &str, signature: &str, signed_at: i64) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO feed_signatures (integration_id, signature, signed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (integration_id, signature) DO NOTHING",
    )
    .bind(integration_id)
    .bind(signature)
    .bind(signed_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets signatures signed before `cutoff`: they are outside the window,
/// so the timestamp check alone refuses them now.
pub async fn forget_signatures_before(conn: &mut AnyConnection, cutoff: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM feed_signatures WHERE signed_at < $1").bind(cutoff).execute(conn).await?;
    Ok(done.rows_affected())
}

//! The lease of an upload being received.
//!
//! The process streaming a feed's body renews the batch's lease as chunks
//! arrive. A killed process renews nothing, so once `lease_until` has passed
//! the batch is shown as `interrupted` and a retry with the same
//! Idempotency-Key takes it over, rather than being refused until the
//! maintenance sweep forgets the upload. Renewals name their owner and the
//! batch, so an upload that was taken over cannot write to it any more.

use crate::Result;
use sqlx::AnyConnection;

/// Uploads received before leases existed have none: they count as alive
/// for this long after their last sign of life, as they always did.
pub const LEGACY_UPLOAD_LEASE_MICROS: i64 = 15 * 60 * 1_000_000;

/// The condition a batch meets to be listed at `now` (a SQL parameter): any
/// status but `receiving`, or `receiving` with its lease lapsed. `alias` is
/// the table's prefix (`"s."`, or `""`).
pub(crate) fn listed(alias: &str, now: &str) -> String {
    format!(
        "({alias}status <> 'receiving' OR COALESCE({alias}lease_until, {alias}updated_at + {LEGACY_UPLOAD_LEASE_MICROS}) < {now})"
    )
}

/// Extends `owner`'s lease on an upload still being received to `until`;
/// false when the upload is no longer its own (taken over, or gone).
pub async fn renew_lease(conn: &mut AnyConnection, id: &str, owner: &str, until: i64, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE sync_batches SET lease_until = $3, updated_at = $4 \
         WHERE id = $1 AND status = 'receiving' AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .bind(until)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets an upload whose lease lapsed before `now`, with what it staged
/// (a body never completed was never authenticated, so none of it can be
/// kept); false when it is alive after all or already gone.
pub async fn take_over_lapsed(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(&format!(
        "DELETE FROM sync_batches WHERE id = $1 AND status = 'receiving' \
         AND COALESCE(lease_until, updated_at + {LEGACY_UPLOAD_LEASE_MICROS}) < $2"
    ))
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM sync_batch_rows WHERE batch_id = $1").bind(id).execute(conn).await?;
    Ok(true)
}


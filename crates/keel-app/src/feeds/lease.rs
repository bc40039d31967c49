//! Leases on uploads being received.
//!
//! While a feed's body streams in, its batch is `receiving` and holds the
//! Idempotency-Key. A process killed mid-stream cannot clean up after
//! itself, so the batch carries a short lease that the upload renews as its
//! chunks arrive (at most every few seconds, and with every staged chunk).
//! Once the lease has lapsed the upload is taken for dead: lists show the
//! batch as `interrupted`, and a retry with the same key takes it over at
//! once. Should the old upload wake up after all, its renewal finds the
//! batch gone and it stops (`409 upload_taken_over`).

use super::FeedUpload;
use crate::{in_tx, App, AppError, Result};
use keel_store::feeds::{self as db, BatchRow, LEGACY_UPLOAD_LEASE_MICROS};
use std::sync::OnceLock;

/// How long an upload counts as alive after its last sign of life: long
/// enough for a slow client between two chunks, short enough that a retry
/// after a crash is not turned away for long.
pub(super) const UPLOAD_LEASE_MICROS: i64 = 30 * 1_000_000;
/// A lease is renewed once it is this old, even without a staged chunk.
const RENEW_AFTER_MICROS: i64 = 10 * 1_000_000;

/// This process, as named in the leases it holds.
pub(super) fn owner() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| format!("pid:{}:{:08x}", std::process::id(), rand::random::<u32>()))
}

/// Whether a `receiving` batch's upload is dead at `now`.
pub(super) fn lapsed(b: &BatchRow, now: i64) -> bool {
    b.status == "receiving" && b.lease_until.unwrap_or(b.updated_at + LEGACY_UPLOAD_LEASE_MICROS) < now
}

/// The status a batch is shown with at `now`.
pub(super) fn shown_status(b: &BatchRow, now: i64) -> &str {
    if lapsed(b, now) {
        "interrupted"
    } else {
        &b.status
    }
}

pub(super) fn taken_over(id: &str) -> AppError {
    AppError::conflict(
        "upload_taken_over",
        format!("the upload of batch {id} stalled past its lease and was taken over by a retry with the same idempotency key"),
        Some("Idempotency-Key"),
    )
}

/// Makes way for a retry of a dead upload; false when it is alive after
/// all (or another retry got there first).
pub(super) async fn take_over(app: &App, dead: &BatchRow, now: i64) -> Result<bool> {
    let id = dead.id.clone();
    let taken = in_tx!(app, |tx| Ok(db::take_over_lapsed(&mut tx, &id, now).await?))?;
    if taken {
        tracing::info!(batch = %id, owner = dead.lease_owner.as_deref().unwrap_or("unknown"), "a retry took over an interrupted feed upload");
    }
    Ok(taken)
}

impl FeedUpload {
    /// The upload's clock: its start plus the time it has been running.
    pub(super) fn clock(&self) -> i64 {
        self.now + self.started.elapsed().as_micros() as i64
    }

    /// Renews the lease in the caller's transaction, or fails when the
    /// upload was taken over.
    pub(super) async fn renew_in(&self, conn: &mut keel_store::Conn, id: &str, at: i64) -> Result<()> {
        if !db::renew_lease(conn, id, owner(), at + UPLOAD_LEASE_MICROS, at).await? {
            return Err(taken_over(id));
        }
        Ok(())
    }

    /// Renews the lease when it is getting old (chunks that stage nothing
    /// yet still keep the upload alive).
    pub(super) async fn renew_if_due(&mut self) -> Result<()> {
        let at = self.clock();
        let Some(id) = self.batch.as_ref().map(|b| b.id.clone()) else { return Ok(()) };
        if at - self.renewed_at < RENEW_AFTER_MICROS {
            return Ok(());
        }
        let this = &*self;
        in_tx!(this.app, |tx| this.renew_in(&mut tx, &id, at).await)?;
        self.renewed_at = at;
        Ok(())
    }
}

//! Replays of signed feeds.
//!
//! A signature covers `t` and the body, and is accepted while `t` is within
//! [`SIGNATURE_TOLERANCE_SECS`] of now. Without an Idempotency-Key nothing
//! else tells two sends of the same signed body apart, so whoever saw one
//! could send it again, and have it applied again, inside that window. The
//! signatures accepted are therefore remembered in the database (every node
//! sees them) until they are past the window, and one seen before is
//! refused with `409 signature_replayed`. A fresh signature of the same body
//! (a new `t`) is a new upload.

use super::{FeedUpload, SIGNATURE_TOLERANCE_SECS};
use crate::{AppError, Result};
use keel_store::feeds as db;
use keel_store::Conn;

impl FeedUpload {
    /// In the transaction that accepts the upload: remembers its signature,
    /// or refuses one already accepted, so that of two identical uploads
    /// exactly one is accepted. Signatures past the window (twice over, for
    /// other nodes' clocks) are forgotten on the way.
    pub(super) async fn refuse_replay(&self, conn: &mut Conn, integration_id: &str, at: i64) -> Result<()> {
        let (Some(signature), Some(t)) = (&self.signature, self.signed_at) else { return Ok(()) };
        db::forget_signatures_before(conn, at - 2 * SIGNATURE_TOLERANCE_SECS * 1_000_000).await?;
        if !db::remember_signature(conn, integration_id, signature, t * 1_000_000).await? {
            return Err(AppError::conflict(
                "signature_replayed",
                "this signature was already accepted; sign the feed again (a new `t`) to send it again",
                Some("X-Keel-Signature"),
            ));
        }
        Ok(())
    }
}

//! `Idempotency-Key` bookkeeping, called by the web layer around every POST.
//! Stored responses can hold personal data (a customer's name, an order's
//! address), so they are kept encrypted like any other personal field.
//!
//! A claim names the process holding it (its node lease, see
//! [`crate::node`]): a retry after that process died takes the claim over
//! at once instead of waiting out a fixed timeout.

use crate::{in_tx, App, Result};
use keel_domain::time::now_micros;
pub use keel_store::idempotency::{Claim, Request};
use keel_store::idempotency as db;
use sha2::{Digest, Sha256};

/// Which request a write belongs to, for use cases whose effect must be
/// found again when the same request is retried after a crash (checkout):
/// the SHA-256 of the key's scope and the `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey(pub String);

impl RequestKey {
    pub fn new(scope: &str, key: &str) -> RequestKey {
        let mut h = Sha256::new();
        h.update(scope.as_bytes());
        h.update([0]);
        h.update(key.as_bytes());
        RequestKey(hex::encode(h.finalize()))
    }
}

impl App {
    pub async fn idempotency_claim(&self, r: &Request<'_>) -> Result<Claim> {
        let now = now_micros();
        if self.node.lease_due(now) {
            // The claim below names this process; its lease must be live
            // first, or another process would take the claim over.
            self.renew_node_lease(now).await?;
        }
        let owner = self.node.id();
        let claim = in_tx!(self, |tx| Ok(db::claim(&mut tx, r, owner, now).await?))?;
        Ok(match claim {
            Claim::Replay { status, body } => {
                let body = self.secrets.decrypt(&body).map_err(keel_store::StoreError::corrupt)?;
                Claim::Replay { status, body }
            }
            other => other,
        })
    }

    pub async fn idempotency_complete(&self, scope: &str, key: &str, status: u16, body: &str) -> Result<()> {
        let sealed = self.secrets.encrypt(body);
        in_tx!(self, |tx| Ok(db::complete(&mut tx, scope, key, status, &sealed).await?))
    }

    /// Forgets a claim whose request failed on our side, so a retry runs
    /// again. If the database cannot take that now, the release is owed and
    /// paid as soon as it answers (the `owed-releases` job).
    pub async fn idempotency_abandon(&self, scope: &str, key: &str) -> Result<()> {
        let outcome = self.idempotency_abandon_now(scope, key).await;
        if outcome.is_err() {
            self.node.owe_release(scope, key);
        }
        outcome
    }

    pub(crate) async fn idempotency_abandon_now(&self, scope: &str, key: &str) -> Result<()> {
        in_tx!(self, |tx| Ok(db::abandon(&mut tx, scope, key).await?))
    }
}

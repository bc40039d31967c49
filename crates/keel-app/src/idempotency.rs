//! `Idempotency-Key` bookkeeping, called by the web layer around every POST.

use crate::{in_tx, App, Result};
use keel_domain::time::now_micros;
pub use keel_store::idempotency::{Claim, Request};
use keel_store::idempotency as db;

impl App {
    pub async fn idempotency_claim(&self, r: &Request<'_>) -> Result<Claim> {
        in_tx!(self, |tx| Ok(db::claim(&mut tx, r, now_micros()).await?))
    }

    pub async fn idempotency_complete(&self, scope: &str, key: &str, status: u16, body: &str) -> Result<()> {
        in_tx!(self, |tx| Ok(db::complete(&mut tx, scope, key, status, body).await?))
    }

    pub async fn idempotency_abandon(&self, scope: &str, key: &str) -> Result<()> {
        in_tx!(self, |tx| Ok(db::abandon(&mut tx, scope, key).await?))
    }
}

//! `Idempotency-Key` bookkeeping, called by the web layer around every POST.
//! Stored responses can hold personal data (a customer's name, an order's
//! address), so they are kept encrypted like any other personal field.

use crate::{in_tx, App, Result};
use keel_domain::time::now_micros;
pub use keel_store::idempotency::{Claim, Request};
use keel_store::idempotency as db;

impl App {
    pub async fn idempotency_claim(&self, r: &Request<'_>) -> Result<Claim> {
        let claim = in_tx!(self, |tx| Ok(db::claim(&mut tx, r, now_micros()).await?))?;
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

    pub async fn idempotency_abandon(&self, scope: &str, key: &str) -> Result<()> {
        in_tx!(self, |tx| Ok(db::abandon(&mut tx, scope, key).await?))
    }
}

//! Which payment provider Keel talks to, and the storage that lets the
//! built-in `test` provider survive restarts like a remote provider would.

use keel_payments::{BoxFuture, PaymentError, PaymentProvider, StripeProvider, TestLedger, TestProvider};
use keel_store::{orders as db, Store};
use std::sync::Arc;

/// The test provider's ledger, kept in Keel's own database.
pub struct DbTestLedger {
    store: Store,
}

impl DbTestLedger {
    pub fn new(store: Store) -> DbTestLedger {
        DbTestLedger { store }
    }
}

fn unavailable(e: impl std::fmt::Display) -> PaymentError {
    PaymentError::Unavailable { message: format!("test ledger: {e}") }
}

impl TestLedger for DbTestLedger {
    fn load(&self, key: &str) -> BoxFuture<'_, Result<Option<String>, PaymentError>> {
        let key = key.to_owned();
        Box::pin(async move {
            let mut conn = self.store.reader().await.map_err(unavailable)?;
            db::test_payment_load(&mut conn, &key).await.map_err(unavailable)
        })
    }

    fn save(&self, key: &str, json: String) -> BoxFuture<'_, Result<(), PaymentError>> {
        let key = key.to_owned();
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                let outcome: Result<(), keel_store::StoreError> = async {
                    let mut tx = self.store.begin().await?;
                    db::test_payment_save(&mut tx, &key, &json).await?;
                    tx.commit().await?;
                    Ok(())
                }
                .await;
                match outcome {
                    Err(e) if e.is_transient() && attempt < crate::MAX_TX_RETRIES => {
                        attempt += 1;
                        crate::backoff(attempt).await;
                    }
                    other => return other.map_err(unavailable),
                }
            }
        })
    }
}

/// Provider settings, from `KEEL_PAYMENTS` and friends.
#[derive(Clone)]
pub enum PaymentsConfig {
    /// The built-in provider with Stripe-style test tokens.
    Test { webhook_secret: String },
    Stripe { secret_key: String, webhook_secret: String, api_base: Option<String> },
}

impl std::fmt::Debug for PaymentsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PaymentsConfig::Test { .. } => f.write_str("PaymentsConfig::Test"),
            PaymentsConfig::Stripe { api_base, .. } => write!(f, "PaymentsConfig::Stripe {{ api_base: {api_base:?} }}"),
        }
    }
}

impl PaymentsConfig {
    pub fn provider(&self, store: &Store) -> Result<Arc<dyn PaymentProvider>, PaymentError> {
        Ok(match self {
            PaymentsConfig::Test { webhook_secret } => {
                Arc::new(TestProvider::new(Arc::new(DbTestLedger::new(store.clone())), webhook_secret.clone()))
            }
            PaymentsConfig::Stripe { secret_key, webhook_secret, api_base } => {
                let mut p = StripeProvider::new(secret_key.clone(), webhook_secret.clone())?;
                if let Some(base) = api_base {
                    p = p.with_base_url(base.clone());
                }
                Arc::new(p)
            }
        })
    }
}

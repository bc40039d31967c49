//! Keel's use cases. Each write is one database transaction that changes the
//! tables, appends ledger movements where stock moves, and appends its events
//! to the outbox, then commits, retried as a whole on lock or serialization
//! failures. Nothing outside this crate writes.

pub mod apikeys;
pub mod audit;
pub mod carts;
pub mod catalog;
pub mod checkout;
pub mod collections;
pub mod customers;
pub mod dashboard;
pub mod demo;
pub mod error;
pub mod events;
pub mod feeds;
pub mod health;
pub mod idempotency;
pub mod images;
pub mod inventory;
pub mod locations;
pub mod node;
pub mod orders;
pub mod outbound;
pub mod payments;
pub mod privacy;
pub mod purge;
pub mod reservations;
pub mod secrets;
pub mod security;
pub mod sessions;
pub mod shipping;
pub mod staff;
pub mod storefront;
pub mod throttle;
pub mod views;
pub mod webhooks;
pub mod workers;

pub use error::AppError;
pub use keel_store::{Backend, Location, Outage, PoolSizes, Store};

use std::time::Duration;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Who performed a write, as recorded in the ledger and events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    pub fn system(job: &str) -> Actor {
        Actor(format!("system:{job}"))
    }
}

#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub secrets: secrets::Secrets,
    pub payments: std::sync::Arc<dyn keel_payments::PaymentProvider>,
    pub checkout: checkout::CheckoutConfig,
    /// Which outbound targets are allowed ([`outbound`]); every outbound
    /// client below is built under it.
    outbound: outbound::Outbound,
    /// The HTTP client of feed pulls.
    feed_client: outbound::Client,
    /// Webhook delivery settings and their HTTP client.
    webhook_runtime: std::sync::Arc<webhooks::Runtime>,
    /// CDN purge settings and the in-process invalidation channel (see [`purge`]).
    pub cache: std::sync::Arc<purge::CacheRuntime>,
    pub media: images::Media,
    /// Staff sign-in policy (two-factor requirement).
    pub staff: staff::StaffConfig,
    /// This process: its lease, job heartbeats and storage state.
    pub node: std::sync::Arc<node::Node>,
    /// The process-wide cap on concurrent password hashing (see [`throttle`]).
    pub passwords: std::sync::Arc<throttle::PasswordChecks>,
    /// Per-address sampling of security events a flood could repeat.
    security: std::sync::Arc<security::SecuritySampler>,
}

impl App {
    /// An app with the built-in test payment provider and default checkout
    /// settings, no CDN, and no private outbound targets; see
    /// [`App::with_payments`], [`App::with_checkout`],
    /// [`App::with_purge_config`] and [`App::with_outbound`].
    pub fn new(store: Store, secrets: secrets::Secrets) -> App {
        let webhook_secret = format!("whsec_{}", &secrets.blind_index("keel/test-provider/webhook-secret")[..32]);
        let payments = payments::PaymentsConfig::Test { webhook_secret }
            .provider(&store)
            .expect("the test provider needs no configuration");
        let outbound = outbound::Outbound::default();
        let webhook_runtime = std::sync::Arc::new(webhooks::Runtime::new(webhooks::WebhookConfig::default(), &outbound));
        App {
            store,
            secrets,
            payments,
            checkout: checkout::CheckoutConfig::default(),
            feed_client: feeds::pull_client(&outbound),
            webhook_runtime,
            cache: std::sync::Arc::new(purge::CacheRuntime::new(purge::PurgeConfig::default(), &outbound)),
            outbound,
            media: images::Media::new("keel-data/media"),
            staff: staff::StaffConfig::default(),
            node: std::sync::Arc::new(node::Node::new()),
            passwords: std::sync::Arc::new(throttle::PasswordChecks::default()),
            security: std::sync::Arc::new(security::SecuritySampler::default()),
        }
    }

    /// Where generated image files are written (default `keel-data/media`).
    pub fn with_media_dir(mut self, dir: impl Into<std::path::PathBuf>) -> App {
        self.media = images::Media::new(dir);
        self
    }

    pub fn with_payments(mut self, provider: std::sync::Arc<dyn keel_payments::PaymentProvider>) -> App {
        self.payments = provider;
        self
    }

    pub fn with_staff_config(mut self, config: staff::StaffConfig) -> App {
        self.staff = config;
        self
    }

    pub fn with_checkout(mut self, config: checkout::CheckoutConfig) -> App {
        self.checkout = config;
        self
    }

    /// `keel check`: the store's invariants, and recent orders' payment
    /// states against the provider's.
    pub async fn check(&self) -> Result<keel_store::check::Report> {
        let mut report = {
            let mut conn = self.store.reader().await?;
            keel_store::check::run(&mut conn).await?
        };
        report.problems.extend(self.check_encryption().await?);
        report.problems.extend(self.check_payments(keel_domain::time::now_micros()).await?);
        Ok(report)
    }

    /// Decrypts a sample of every kind of encrypted field: a database
    /// restored without its master key (or with another) is reported here,
    /// not as 500s on the first order page.
    pub async fn check_encryption(&self) -> Result<Vec<keel_store::check::Problem>> {
        let samples = {
            let mut conn = self.store.reader().await?;
            keel_store::check::encrypted_samples(&mut conn, 3).await?
        };
        let mut failing: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for (table, value) in &samples {
            if self.secrets.decrypt(value).is_err() {
                *failing.entry(table).or_default() += 1;
            }
        }
        Ok(failing
            .into_iter()
            .map(|(table, n)| keel_store::check::Problem {
                check: "encryption",
                subject: table.to_owned(),
                detail: format!("{n} sampled value(s) cannot be decrypted with the master key in use (restored without its key, or with another?)"),
            })
            .collect())
    }
}

/// Runs `$body` in a write transaction bound to `$tx`, committing on `Ok` and
/// retrying the whole body (bounded, with jittered backoff) when the database
/// reports a lock or serialization conflict.
#[macro_export]
macro_rules! in_tx {
    ($app:expr, |$tx:ident| $body:expr) => {{
        let mut attempt: u32 = 0;
        loop {
            let outcome: $crate::Result<_> = async {
                let mut $tx = $app.store.begin().await?;
                // The body in its own block: a `return` in it ends the body
                // (and is committed if `Ok`), never skips the commit.
                let value: $crate::Result<_> = async { $body }.await;
                match value {
                    Ok(v) => {
                        $tx.commit().await.map_err($crate::AppError::from)?;
                        Ok(v)
                    }
                    Err(e) => {
                        let _ = $tx.rollback().await;
                        Err(e)
                    }
                }
            }
            .await;
            match outcome {
                Err(e) if e.is_transient() && attempt < $crate::MAX_TX_RETRIES => {
                    attempt += 1;
                    $crate::backoff(attempt).await;
                }
                other => {
                    $app.node.observe_write(match &other {
                        Ok(_) => Ok(()),
                        Err(e) => Err(e.outage()),
                    });
                    break other;
                }
            }
        }
    }};
}

pub const MAX_TX_RETRIES: u32 = 10;

/// Exponential backoff with full jitter: up to 2 ms, 4 ms, … capped at 250 ms.
pub async fn backoff(attempt: u32) {
    use rand::Rng;
    let cap = (2u64 << attempt.min(7)).min(250);
    let ms = rand::thread_rng().gen_range(1..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Page size bounds shared by every list.
pub fn page_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(10).clamp(1, 100)
}

//! This process as others see it, and what it knows about its own health.
//!
//! - Its **lease** (`node_leases`), renewed while it lives, so an
//!   `Idempotency-Key` it claimed can be taken over at once when it dies.
//! - Its **background jobs**, for `/readyz`: a job task that ended (a
//!   panic) while the process serves means work no longer happens here.
//! - The **storage** state it observed: a write refused for lack of space
//!   marks the disk full until a write commits again; the health job turns
//!   that into `alert.raised` / `alert.resolved`.
//! - **Releases it owes**: a claim whose request failed while the database
//!   was unreachable could not be released then; it is released as soon as
//!   the database answers again.

use crate::{in_tx, App, Result};
use keel_domain::ids::NodeId;
use keel_domain::time::now_micros;
use keel_store::nodes as db;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

/// How long a lease lasts without renewal; renewed when less than
/// [`RENEW_BELOW_MICROS`] is left (so about every 5 s while in use).
pub const LEASE_MICROS: i64 = 15_000_000;
const RENEW_BELOW_MICROS: i64 = 10_000_000;

pub struct Node {
    id: String,
    lease_until: AtomicI64,
    /// When a write last failed for lack of space (0: not since the last
    /// committed write).
    storage_full_since: AtomicI64,
    jobs: Mutex<Vec<tokio::task::AbortHandle>>,
    /// The full-disk episode not yet fully told through the outbox:
    /// (since, whether `alert.raised` is written).
    storage_alert: Mutex<Option<(i64, bool)>>,
    owed_releases: Mutex<Vec<(String, String)>>,
}

impl Default for Node {
    fn default() -> Self {
        Node::new()
    }
}

impl Node {
    pub fn new() -> Node {
        Node {
            id: NodeId::generate().to_string(),
            lease_until: AtomicI64::new(0),
            storage_full_since: AtomicI64::new(0),
            jobs: Mutex::new(Vec::new()),
            storage_alert: Mutex::new(None),
            owed_releases: Mutex::new(Vec::new()),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the lease should be renewed in the transaction about to run.
    pub fn lease_due(&self, now: i64) -> bool {
        self.lease_until.load(Ordering::Relaxed) - now < RENEW_BELOW_MICROS
    }

    fn lease_renewed(&self, until: i64) {
        self.lease_until.fetch_max(until, Ordering::Relaxed);
    }

    /// Called with every write transaction's outcome (by `in_tx!`).
    pub fn observe_write(&self, outcome: std::result::Result<(), Option<keel_store::Outage>>) {
        match outcome {
            Ok(()) => {
                if self.storage_full_since.load(Ordering::Relaxed) != 0 {
                    self.storage_full_since.store(0, Ordering::Relaxed);
                }
            }
            Err(Some(keel_store::Outage::StorageFull)) => {
                let now = now_micros();
                if self.storage_full_since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                    tracing::error!("a write failed for lack of disk space; writes are refused until space is freed");
                    self.storage_alert.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert((now, false));
                }
            }
            Err(_) => {}
        }
    }

    /// Since when writes fail for lack of space, if they do.
    pub fn storage_full_since(&self) -> Option<i64> {
        Some(self.storage_full_since.load(Ordering::Relaxed)).filter(|&t| t != 0)
    }

    /// Records the background jobs this process runs.
    pub fn watch_jobs(&self, jobs: impl IntoIterator<Item = tokio::task::AbortHandle>) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).extend(jobs);
    }

    /// (running, started) background jobs; (0, 0) when this process runs none.
    pub fn jobs_running(&self) -> (usize, usize) {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        (jobs.iter().filter(|j| !j.is_finished()).count(), jobs.len())
    }

    pub fn owe_release(&self, scope: &str, key: &str) {
        let mut owed = self.owed_releases.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: past this, the owner's lease (or the 48 h purge) frees them.
        if owed.len() < 100_000 {
            owed.push((scope.to_owned(), key.to_owned()));
        }
    }

    fn take_owed(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.owed_releases.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl App {
    /// Tells a full-disk episode through the outbox: `alert.raised` as soon
    /// as anything can be written (often only once space is back, as the
    /// disk refuses the alert too), then `alert.resolved` once writes commit
    /// again. Until then `/readyz` and the logs carry it.
    pub async fn record_storage_alerts(&self, now: i64) -> Result<u64> {
        let pending = *self.node.storage_alert.lock().unwrap_or_else(|p| p.into_inner());
        let Some((since, raised)) = pending else { return Ok(0) };
        let full = self.node.storage_full_since().is_some();
        let mut written = 0;
        if !raised {
            self.storage_alert("alert.raised", "healthy", "failing", since, now).await?;
            self.node.storage_alert.lock().unwrap_or_else(|p| p.into_inner()).replace((since, true));
            written += 1;
        }
        if !full {
            self.storage_alert("alert.resolved", "failing", "healthy", since, now).await?;
            let mut slot = self.node.storage_alert.lock().unwrap_or_else(|p| p.into_inner());
            // A new episode may have begun meanwhile; keep that one.
            if slot.is_some_and(|(s, _)| s == since) {
                *slot = None;
            }
            written += 1;
        }
        Ok(written)
    }

    async fn storage_alert(&self, kind: &'static str, from: &str, to: &str, since: i64, now: i64) -> Result<()> {
        const COMPONENT: &str = "database:storage";
        in_tx!(self, |tx| {
            let version = keel_store::health::set_state(&mut tx, COMPONENT, "database", to, now).await?;
            keel_store::outbox::append(
                &mut tx,
                keel_store::outbox::NewEvent {
                    kind,
                    aggregate_type: "health",
                    aggregate_id: COMPONENT,
                    aggregate_seq: version,
                    payload: serde_json::json!({
                        "component": { "kind": "database", "id": "storage", "name": "Database storage" },
                        "from": from,
                        "to": to,
                        "detail": "writes were refused for lack of disk space (storage_full)",
                        "since": keel_domain::time::to_rfc3339(since),
                        "node": self.node.id(),
                    }),
                },
            )
            .await?;
            Ok(())
        })
    }

    /// Renews this process's lease (the `node-lease` job, and the claim
    /// path when due), and forgets leases long expired.
    pub async fn renew_node_lease(&self, now: i64) -> Result<u64> {
        let until = now + LEASE_MICROS;
        let purged = in_tx!(self, |tx| {
            db::renew(&mut tx, self.node.id(), now, until).await?;
            Ok(db::purge_expired(&mut tx, now - 3600 * 1_000_000).await?)
        })?;
        self.node.lease_renewed(until);
        Ok(purged)
    }

    /// On SQLite one process serves a database at a time (the serve lock),
    /// so at start every other lease belongs to a process that is gone:
    /// ending them frees its unfinished claims at once.
    pub async fn end_other_leases(&self) -> Result<u64> {
        in_tx!(self, |tx| Ok(db::release_all_but(&mut tx, self.node.id()).await?))
    }

    /// Gives up the lease at a clean shutdown, so claims still open (none,
    /// normally) are free at once.
    pub async fn release_node_lease(&self) -> Result<()> {
        in_tx!(self, |tx| Ok(db::release(&mut tx, self.node.id()).await?))
    }

    /// Releases claims whose requests failed while the database was away.
    pub async fn pay_owed_releases(&self) -> Result<u64> {
        let owed = self.node.take_owed();
        let mut done = 0;
        for (i, (scope, key)) in owed.iter().enumerate() {
            if let Err(e) = self.idempotency_abandon_now(scope, key).await {
                for (scope, key) in &owed[i..] {
                    self.node.owe_release(scope, key);
                }
                return Err(e);
            }
            done += 1;
        }
        Ok(done)
    }
}

/// What `/readyz` reports: whether this process should get traffic.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// `ok`, or why the database is not usable (`unreachable`, `behind`:
    /// migrations this binary needs are not applied).
    pub database: &'static str,
    pub migration: Option<i64>,
    pub migration_expected: i64,
    /// `ok` or `full` (a write failed for lack of space and none has
    /// committed since).
    pub storage: &'static str,
    pub jobs_running: usize,
    pub jobs_started: usize,
}

impl App {
    pub async fn readiness(&self) -> Readiness {
        let expected = keel_store::migrate::latest_version();
        let probe = async {
            let mut conn = self.store.reader().await?;
            Ok::<_, keel_store::StoreError>(keel_store::migrate::applied_version(&mut conn).await?)
        };
        let applied = match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: database unreachable");
                None
            }
            Err(_) => None,
        };
        let database = match applied {
            None => "unreachable",
            Some(v) if v < expected => "behind",
            Some(_) => "ok",
        };
        let storage = if self.node.storage_full_since().is_some() { "full" } else { "ok" };
        let (jobs_running, jobs_started) = self.node.jobs_running();
        Readiness {
            ready: database == "ok" && storage == "ok" && jobs_running == jobs_started,
            database,
            migration: applied,
            migration_expected: expected,
            storage,
            jobs_running,
            jobs_started,
        }
    }
}

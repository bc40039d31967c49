//! Background jobs. Each runs on an interval until shutdown, logs its work
//! once per run, and never panics the process on a failed run.

use crate::App;
use tracing::Instrument;
use keel_domain::time::now_micros;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Responses to `Idempotency-Key` are kept at least this long.
pub const IDEMPOTENCY_RETENTION_MICROS: i64 = 48 * 3600 * 1_000_000;

pub fn spawn_all(app: App, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut jobs = crate::webhooks::spawn_workers(app.clone(), shutdown.clone());
    jobs.extend(crate::feeds::spawn_workers(app.clone(), shutdown.clone()));
    jobs.extend(crate::health::spawn_workers(app.clone(), shutdown.clone()));
    jobs.extend(crate::security::spawn_workers(app.clone(), shutdown.clone()));
    jobs.extend(crate::purge::spawn_workers(app.clone(), shutdown.clone()));
    jobs.extend(crate::images::spawn_workers(app.clone(), shutdown.clone()));
    jobs.extend(vec![
        spawn_every("reservation-expiry", Duration::from_secs(1), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.expire_reservations(now_micros()).await.map(|n| n as u64) }
            }
        }),
        spawn_every("checkout-recovery", Duration::from_secs(1), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.recover_checkouts(now_micros()).await }
            }
        }),
        spawn_every("payment-capture", Duration::from_secs(1), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.run_due_captures(now_micros()).await }
            }
        }),
        spawn_every("payment-reconciliation", Duration::from_secs(60), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.reconcile_payments(now_micros()).await }
            }
        }),
        spawn_every("cart-expiry", Duration::from_secs(60), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.expire_carts(now_micros()).await }
            }
        }),
        spawn_every("session-purge", Duration::from_secs(3600), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.purge_sessions(now_micros()).await }
            }
        }),
        spawn_every("stale-accounts", Duration::from_secs(3600), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.disable_stale_staff(now_micros()).await }
            }
        }),
        spawn_every("node-lease", Duration::from_secs(5), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.renew_node_lease(now_micros()).await }
            }
        }),
        spawn_every("storage-alerts", Duration::from_secs(5), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.record_storage_alerts(now_micros()).await }
            }
        }),
        spawn_every("owed-releases", Duration::from_secs(1), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.pay_owed_releases().await }
            }
        }),
        spawn_every("idempotency-purge", Duration::from_secs(3600), shutdown, {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.purge_idempotency_keys(now_micros() - IDEMPOTENCY_RETENTION_MICROS).await }
            }
        }),
    ]);
    app.node.watch_jobs(jobs.iter().map(JoinHandle::abort_handle));
    jobs
}

pub(crate) fn spawn_every<F, Fut>(name: &'static str, every: Duration, mut shutdown: watch::Receiver<bool>, job: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = crate::Result<u64>> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            match job().instrument(tracing::info_span!("job", name)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(job = name, affected = n, "job run"),
                Err(e) => tracing::warn!(job = name, error = %e, cause = ?std::error::Error::source(&e), "job failed"),
            }
        }
    })
}

impl App {
    pub async fn purge_idempotency_keys(&self, cutoff: i64) -> crate::Result<u64> {
        crate::in_tx!(self, |tx| Ok(keel_store::idempotency::purge_before(&mut tx, cutoff).await?))
    }
}

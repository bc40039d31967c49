//! Integration health: every inbound integration, webhook endpoint and
//! outbox consumer judged healthy / degraded / stale / failing by
//! `keel_domain::health::judge`. State changes raise `alert.raised` and
//! `alert.resolved` events (so they reach webhooks) and log lines.

use crate::{in_tx, App, Result};
use keel_domain::health::{judge, HealthState, Signals};
use keel_domain::time::{now_micros, to_rfc3339};
use keel_store::{health as db, outbox};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComponentHealth {
    /// `integration`, `webhook_endpoint` or `consumer`.
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    #[schema(value_type = String, example = "healthy")]
    pub state: HealthState,
    pub last_success_at: Option<String>,
    pub last_failure_at: Option<String>,
    /// Share of failed attempts in the last hour / day (0.0–1.0).
    pub error_rate_1h: f64,
    pub error_rate_24h: f64,
    /// Seconds since the newest good data, and the agreed maximum.
    pub freshness_lag_seconds: Option<i64>,
    pub sla_seconds: Option<i64>,
    /// Work waiting (events behind, deliveries pending) and its oldest age.
    pub backlog: i64,
    pub oldest_pending_seconds: i64,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthReport {
    #[schema(example = "integration_health")]
    pub object: &'static str,
    /// The worst state of any component.
    #[schema(value_type = String)]
    pub status: HealthState,
    pub components: Vec<ComponentHealth>,
    pub checked_at: String,
}

fn rate(failures: i64, attempts: i64) -> f64 {
    if attempts > 0 {
        failures as f64 / attempts as f64
    } else {
        0.0
    }
}

impl ComponentHealth {
    fn key(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

impl App {
    /// The current health of everything Keel integrates with.
    pub async fn integration_health(&self, now: i64) -> Result<HealthReport> {
        let mut components = self.consumer_health().await?;
        components.extend(self.webhook_endpoint_health(now).await?);
        components.extend(self.inbound_integration_health(now).await?);
        let status = components.iter().map(|c| c.state).max().unwrap_or(HealthState::Healthy);
        Ok(HealthReport { object: "integration_health", status, components, checked_at: to_rfc3339(now) })
    }

    async fn consumer_health(&self) -> Result<Vec<ComponentHealth>> {
        let mut conn = self.store.reader().await?;
        let mut out = Vec::new();
        for name in db::consumers(&mut conn).await? {
            let (events, micros) = outbox::lag(&mut conn, &name).await?;
            let lag_secs = micros / 1_000_000;
            let signals = Signals { enabled: true, backlog: events, oldest_pending_secs: lag_secs, ..Signals::default() };
            let detail = if name == crate::purge::CONSUMER { self.purge_last_error() } else { None };
            let mut state = judge(&signals);
            if state == HealthState::Healthy && (lag_secs > 5 || detail.is_some()) {
                // Behind, or (CDN purge) its last call failed.
                state = HealthState::Degraded;
            }
            out.push(ComponentHealth {
                kind: "consumer",
                id: name.clone(),
                name,
                state,
                last_success_at: None,
                last_failure_at: None,
                error_rate_1h: 0.0,
                error_rate_24h: 0.0,
                freshness_lag_seconds: Some(lag_secs),
                sla_seconds: None,
                backlog: events,
                oldest_pending_seconds: lag_secs,
                detail,
            });
        }
        Ok(out)
    }

    /// Compares the current states with the recorded ones and raises an
    /// alert for each change; returns how many changed.
    pub async fn record_health_transitions(&self, now: i64) -> Result<u64> {
        let report = self.integration_health(now).await?;
        let known = {
            let mut conn = self.store.reader().await?;
            db::states(&mut conn).await?
        };
        let mut changed = 0;
        for c in &report.components {
            let key = c.key();
            let before = known.iter().find(|s| s.component == key).and_then(|s| HealthState::parse(&s.state));
            if before == Some(c.state) || (before.is_none() && c.state == HealthState::Healthy) {
                continue;
            }
            let from = before.unwrap_or(HealthState::Healthy);
            let kind = if c.state == HealthState::Healthy { "alert.resolved" } else { "alert.raised" };
            in_tx!(self, |tx| {
                let version = db::set_state(&mut tx, &key, c.kind, c.state.as_str(), now).await?;
                outbox::append(
                    &mut tx,
                    outbox::NewEvent {
                        kind,
                        aggregate_type: "health",
                        aggregate_id: &key,
                        aggregate_seq: version,
                        payload: json!({
                            "component": { "kind": c.kind, "id": c.id, "name": c.name },
                            "from": from.as_str(),
                            "to": c.state.as_str(),
                            "detail": c.detail,
                            "freshness_lag_seconds": c.freshness_lag_seconds,
                            "sla_seconds": c.sla_seconds,
                            "error_rate_1h": c.error_rate_1h,
                        }),
                    },
                )
                .await?;
                Ok(())
            })?;
            if c.state == HealthState::Healthy {
                tracing::info!(component = %key, from = from.as_str(), "integration recovered");
            } else {
                tracing::warn!(component = %key, from = from.as_str(), to = c.state.as_str(), detail = ?c.detail, "integration health changed");
            }
            changed += 1;
        }
        Ok(changed)
    }
}

pub fn spawn_workers(app: App, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![crate::workers::spawn_every("health-alerts", Duration::from_secs(10), shutdown, move || {
        let app = app.clone();
        async move { app.record_health_transitions(now_micros()).await }
    })]
}

impl App {
    async fn webhook_endpoint_health(&self, now: i64) -> Result<Vec<ComponentHealth>> {
        let stats = self.webhook_endpoint_stats(now).await?;
        Ok(stats
            .into_iter()
            .map(|e| {
                let oldest = e.oldest_pending_age_micros / 1_000_000;
                let signals = Signals {
                    enabled: e.enabled,
                    last_success_at: e.last_success_at,
                    last_failure_at: e.last_failure_at,
                    attempts_1h: e.attempts_1h,
                    failures_1h: e.failures_1h,
                    freshness_lag_secs: None,
                    sla_secs: None,
                    backlog: e.pending,
                    oldest_pending_secs: oldest,
                };
                let mut state = judge(&signals);
                if e.circuit_open && state < HealthState::Degraded {
                    state = HealthState::Degraded;
                }
                let detail = e
                    .disabled_reason
                    .clone()
                    .or_else(|| e.circuit_open.then(|| "circuit open after consecutive failures".to_owned()))
                    .or(e.last_error.clone());
                ComponentHealth {
                    kind: "webhook_endpoint",
                    name: e.url.clone(),
                    id: e.id,
                    state,
                    last_success_at: e.last_success_at.map(to_rfc3339),
                    last_failure_at: e.last_failure_at.map(to_rfc3339),
                    error_rate_1h: rate(e.failures_1h, e.attempts_1h),
                    error_rate_24h: rate(e.failures_24h, e.attempts_24h),
                    freshness_lag_seconds: None,
                    sla_seconds: None,
                    backlog: e.pending,
                    oldest_pending_seconds: oldest,
                    detail,
                }
            })
            .collect())
    }

    async fn inbound_integration_health(&self, now: i64) -> Result<Vec<ComponentHealth>> {
        let stats = self.integration_stats(now).await?;
        Ok(stats
            .into_iter()
            .map(|i| {
                let signals = Signals {
                    enabled: i.enabled,
                    last_success_at: i.last_success_at,
                    last_failure_at: i.last_failure_at,
                    attempts_1h: i.batches_last_hour,
                    failures_1h: i.failures_last_hour,
                    freshness_lag_secs: i.seconds_since_last_success,
                    sla_secs: Some(i.freshness_sla_seconds),
                    backlog: 0,
                    oldest_pending_secs: 0,
                };
                let mut state = judge(&signals);
                if i.enabled && i.last_success_at.is_none() && i.last_failure_at.is_none() && state == HealthState::Healthy {
                    // Registered but nothing received yet: not known to be fresh.
                    state = HealthState::Degraded;
                }
                ComponentHealth {
                    kind: "integration",
                    id: i.id,
                    name: i.name,
                    state,
                    last_success_at: i.last_success_at.map(to_rfc3339),
                    last_failure_at: i.last_failure_at.map(to_rfc3339),
                    error_rate_1h: rate(i.failures_last_hour, i.batches_last_hour),
                    error_rate_24h: rate(i.failures_last_day, i.batches_last_day),
                    freshness_lag_seconds: i.seconds_since_last_success,
                    sla_seconds: Some(i.freshness_sla_seconds),
                    backlog: 0,
                    oldest_pending_seconds: 0,
                    detail: i.last_error,
                }
            })
            .collect())
    }
}

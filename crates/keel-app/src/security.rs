//! The security event log: failed and throttled sign-ins (staff and
//! customers), wrong second-factor codes and refused API keys, appended to
//! the audit log (so they are hash-chained with everything else) with the
//! client address and the email or key prefix — never the password, code
//! or key. Refusals that cost nothing to send (throttled attempts, bad API
//! keys) are recorded at a bounded rate per address, so a flood cannot
//! flood the log. A spike of failures across accounts raises `alert.raised`
//! (component `security:sign-in`) and `alert.resolved` once it calms.

use crate::audit::NewAuditEntry;
use crate::{in_tx, App, Result};
use keel_domain::login::address_bucket;
use keel_store::health;
use keel_store::outbox;
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What happened; each is its own audit `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityEvent {
    StaffSignInFailed,
    StaffSignInThrottled,
    SecondFactorFailed,
    CustomerSignInFailed,
    CustomerSignInThrottled,
    ApiKeyRejected,
}

impl SecurityEvent {
    pub fn action(self) -> &'static str {
        match self {
            SecurityEvent::StaffSignInFailed => "security.staff_sign_in_failed",
            SecurityEvent::StaffSignInThrottled => "security.staff_sign_in_throttled",
            SecurityEvent::SecondFactorFailed => "security.second_factor_failed",
            SecurityEvent::CustomerSignInFailed => "security.customer_sign_in_failed",
            SecurityEvent::CustomerSignInThrottled => "security.customer_sign_in_throttled",
            SecurityEvent::ApiKeyRejected => "security.api_key_rejected",
        }
    }

    fn status(self) -> u16 {
        match self {
            SecurityEvent::StaffSignInThrottled | SecurityEvent::CustomerSignInThrottled => 429,
            _ => 401,
        }
    }

    /// Refusals an attacker can send for free are sampled per address.
    fn bounded(self) -> bool {
        matches!(self, SecurityEvent::StaffSignInThrottled | SecurityEvent::CustomerSignInThrottled | SecurityEvent::ApiKeyRejected)
    }
}

/// Failures that count towards a spike (evaluated, so already throttled
/// per account and address).
const SPIKE_ACTIONS: [&str; 3] = ["security.staff_sign_in_failed", "security.second_factor_failed", "security.customer_sign_in_failed"];
/// This many failures within [`SPIKE_WINDOW`] raise the alert; it is
/// resolved once they fall below half of it.
pub const SPIKE_FAILURES: i64 = 50;
pub const SPIKE_WINDOW: i64 = 5 * 60 * 1_000_000;
const COMPONENT: &str = "security:sign-in";

/// Bounded entries per address and kind: this many per minute.
const BOUNDED_PER_MINUTE: u32 = 5;

/// Per-process memory of how many bounded entries each address wrote in
/// the current minute (a bounded cache: entries expire, the oldest go).
pub struct SecuritySampler {
    recent: moka::sync::Cache<(SecurityEvent, String), std::sync::Arc<std::sync::atomic::AtomicU32>>,
}

impl Default for SecuritySampler {
    fn default() -> Self {
        SecuritySampler {
            recent: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(60)).build(),
        }
    }
}

impl SecuritySampler {
    fn admit(&self, event: SecurityEvent, ip: &str) -> bool {
        let bucket = ip.parse::<IpAddr>().map(|a| address_bucket(a).to_string()).unwrap_or_else(|_| ip.to_owned());
        let n = self.recent.get_with((event, bucket), Default::default);
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < BOUNDED_PER_MINUTE
    }
}

/// The longest email or key prefix kept in an entry.
const MAX_SUBJECT: usize = 320;

impl App {
    /// Appends one security event. `subject` is the email tried or the key
    /// prefix; `ip` the client address (empty: unknown). Never fails the
    /// request it describes: a write error is logged.
    pub async fn record_security_event(&self, event: SecurityEvent, subject: &str, ip: &str, extra: Option<(&str, serde_json::Value)>, now: i64) {
        if event.bounded() && !self.security.admit(event, ip) {
            return;
        }
        let field = if event == SecurityEvent::ApiKeyRejected { "key_prefix" } else { "email" };
        let mut summary = serde_json::Map::new();
        summary.insert(field.into(), json!(subject.chars().take(MAX_SUBJECT).collect::<String>()));
        if let Some((k, v)) = extra {
            summary.insert(k.into(), v);
        }
        let entry = NewAuditEntry {
            actor: "anonymous".into(),
            action: event.action().into(),
            target: None,
            summary: serde_json::Value::Object(summary),
            ip: Some(ip.to_owned()).filter(|i| !i.is_empty()),
            status: event.status(),
        };
        let row = entry.into_row(now);
        if let Err(e) = in_tx!(self, |tx| Ok(keel_store::audit::insert(&mut tx, &row).await?)) {
            tracing::error!(error = %e, action = event.action(), "could not record a security event");
        }
        if !event.bounded() {
            tracing::warn!(action = event.action(), ip, "security event");
        }
    }

    /// Raises or resolves the sign-in spike alert from the failures of the
    /// last [`SPIKE_WINDOW`]; returns how many alerts it wrote (the
    /// `security-alerts` job, every 10 s).
    pub async fn record_security_alerts(&self, now: i64) -> Result<u64> {
        let mut conn = self.store.reader().await?;
        let failures = keel_store::audit::count_actions_since(&mut conn, &SPIKE_ACTIONS, now - SPIKE_WINDOW).await?;
        drop(conn);
        in_tx!(self, |tx| {
            let states = health::states(&mut tx).await?;
            let raised = states.iter().any(|s| s.component == COMPONENT && s.state == "failing");
            let (kind, from, to) = match (raised, failures) {
                (false, n) if n >= SPIKE_FAILURES => ("alert.raised", "healthy", "failing"),
                (true, n) if n < SPIKE_FAILURES / 2 => ("alert.resolved", "failing", "healthy"),
                _ => return Ok(0),
            };
            let version = health::set_state(&mut tx, COMPONENT, "security", to, now).await?;
            outbox::append(
                &mut tx,
                outbox::NewEvent {
                    kind,
                    aggregate_type: "health",
                    aggregate_id: COMPONENT,
                    aggregate_seq: version,
                    payload: json!({
                        "component": { "kind": "security", "id": "sign-in", "name": "Sign-in failures" },
                        "from": from,
                        "to": to,
                        "detail": format!("{failures} failed sign-ins or codes in the last 5 minutes (alert at {SPIKE_FAILURES})"),
                        "failures_5m": failures,
                    }),
                },
            )
            .await?;
            tracing::warn!(failures, kind, "sign-in failure spike");
            Ok(1)
        })
    }
}

pub fn spawn_workers(app: App, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![crate::workers::spawn_every("security-alerts", Duration::from_secs(10), shutdown, move || {
        let app = app.clone();
        async move { app.record_security_alerts(keel_domain::time::now_micros()).await }
    })]
}

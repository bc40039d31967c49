//! Health rules for integrations, webhook endpoints and outbox consumers:
//! from raw signals (successes, failures, lag) to one of four states.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Healthy,
    /// Working, but with errors or lag worth watching.
    Degraded,
    /// No fresh data within the agreed time.
    Stale,
    /// Not working.
    Failing,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Stale => "stale",
            Self::Failing => "failing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Healthy, Self::Degraded, Self::Stale, Self::Failing].into_iter().find(|h| h.as_str() == s)
    }
}

/// What is known about a component at one moment. Times are microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    pub enabled: bool,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    pub attempts_1h: i64,
    pub failures_1h: i64,
    /// How old the newest good data is, against `sla_secs`.
    pub freshness_lag_secs: Option<i64>,
    pub sla_secs: Option<i64>,
    /// Work waiting, and the age of the oldest item.
    pub backlog: i64,
    pub oldest_pending_secs: i64,
}

/// Backlog older than this makes a consumer or endpoint stale.
pub const STALE_BACKLOG_SECS: i64 = 300;
/// Error rate (per mille) above which a component is degraded.
pub const DEGRADED_ERROR_PER_MILLE: i64 = 100;

pub fn judge(s: &Signals) -> HealthState {
    if !s.enabled {
        return HealthState::Failing;
    }
    let failing_now = match (s.last_success_at, s.last_failure_at) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(ok), Some(bad)) => bad > ok,
    };
    if failing_now && s.failures_1h >= 3 {
        return HealthState::Failing;
    }
    if let (Some(lag), Some(sla)) = (s.freshness_lag_secs, s.sla_secs) {
        if lag > sla {
            return HealthState::Stale;
        }
    }
    if s.backlog > 0 && s.oldest_pending_secs > STALE_BACKLOG_SECS {
        return HealthState::Stale;
    }
    let error_rate = if s.attempts_1h > 0 { s.failures_1h * 1000 / s.attempts_1h } else { 0 };
    if failing_now || error_rate > DEGRADED_ERROR_PER_MILLE {
        return HealthState::Degraded;
    }
    HealthState::Healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Signals {
        Signals { enabled: true, last_success_at: Some(10), attempts_1h: 100, ..Signals::default() }
    }

    #[test]
    fn states() {
        assert_eq!(judge(&ok()), HealthState::Healthy);
        assert_eq!(judge(&Signals { enabled: false, ..ok() }), HealthState::Failing);
        assert_eq!(judge(&Signals { last_failure_at: Some(20), failures_1h: 3, ..ok() }), HealthState::Failing);
        assert_eq!(judge(&Signals { last_failure_at: Some(20), failures_1h: 1, ..ok() }), HealthState::Degraded);
        assert_eq!(judge(&Signals { last_failure_at: Some(5), failures_1h: 20, ..ok() }), HealthState::Degraded, "20 % errors");
        assert_eq!(judge(&Signals { freshness_lag_secs: Some(901), sla_secs: Some(900), ..ok() }), HealthState::Stale);
        assert_eq!(judge(&Signals { freshness_lag_secs: Some(899), sla_secs: Some(900), ..ok() }), HealthState::Healthy);
        assert_eq!(judge(&Signals { backlog: 3, oldest_pending_secs: 301, ..ok() }), HealthState::Stale);
        assert_eq!(judge(&Signals { enabled: true, ..Signals::default() }), HealthState::Healthy, "nothing happened yet");
    }
}

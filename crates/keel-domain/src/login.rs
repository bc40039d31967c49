//! Sign-in throttling: a progressive delay after a few failures, then a
//! lock. Pure arithmetic over a failure count and times; the app keeps one
//! counter per account and one per client address.

/// Failures recorded for one account or address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub failures: i64,
    pub last_failure_at: i64,
    pub locked_until: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    /// From this many failures on, each attempt waits (1 s, 2 s, 4 s, …).
    pub delay_after: i64,
    /// This many failures lock the account or address for `lock_micros`.
    pub lock_after: i64,
    pub lock_micros: i64,
    pub max_delay_micros: i64,
    /// Failures older than this are forgotten.
    pub window_micros: i64,
}

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;

impl Throttle {
    /// Per account (email, known or not).
    pub const ACCOUNT: Throttle =
        Throttle { delay_after: 3, lock_after: 10, lock_micros: 15 * MINUTE, max_delay_micros: 60 * SECOND, window_micros: 15 * MINUTE };
    /// Per client address: looser, since offices share one.
    pub const ADDRESS: Throttle =
        Throttle { delay_after: 20, lock_after: 100, lock_micros: 15 * MINUTE, max_delay_micros: 60 * SECOND, window_micros: 15 * MINUTE };

    fn live(&self, f: Option<Failures>, now: i64) -> Option<Failures> {
        let f = f?;
        match f.locked_until {
            Some(until) if until > now => Some(f),
            Some(_) => None, // the lock has been served
            None if now - f.last_failure_at >= self.window_micros => None,
            None => Some(f),
        }
    }

    /// How long (µs) the next attempt must wait; 0 when it may go ahead.
    pub fn wait(&self, f: Option<Failures>, now: i64) -> i64 {
        let Some(f) = self.live(f, now) else { return 0 };
        if let Some(until) = f.locked_until {
            return until - now;
        }
        if f.failures < self.delay_after {
            return 0;
        }
        let shift = (f.failures - self.delay_after).min(20) as u32;
        let delay = (SECOND << shift).min(self.max_delay_micros);
        (f.last_failure_at + delay - now).max(0)
    }

    /// The record after one more failure at `now`.
    pub fn after_failure(&self, f: Option<Failures>, now: i64) -> Failures {
        let n = self.live(f, now).map_or(0, |f| f.failures) + 1;
        let locked_until = (n >= self.lock_after).then_some(now + self.lock_micros);
        Failures { failures: n, last_failure_at: now, locked_until }
    }
}

/// Whole seconds to put in `Retry-After` for a wait in µs (at least 1).
pub fn retry_after_secs(wait_micros: i64) -> u64 {
    ((wait_micros + SECOND - 1) / SECOND).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_then_locks_then_expires() {
        let t = Throttle::ACCOUNT;
        let mut f = None;
        let mut now = 1_000 * SECOND;
        for _ in 0..2 {
            f = Some(t.after_failure(f, now));
            assert_eq!(t.wait(f, now), 0);
        }
        f = Some(t.after_failure(f, now));
        assert_eq!(t.wait(f, now), SECOND, "third failure: wait a second");
        now += SECOND;
        assert_eq!(t.wait(f, now), 0);
        f = Some(t.after_failure(f, now));
        assert_eq!(t.wait(f, now), 2 * SECOND);
        for _ in 4..10 {
            now += MINUTE;
            f = Some(t.after_failure(f, now));
        }
        assert_eq!(f.unwrap().failures, 10);
        assert_eq!(t.wait(f, now), 15 * MINUTE, "ten failures lock for 15 minutes");
        assert_eq!(retry_after_secs(t.wait(f, now)), 900);
        now += 15 * MINUTE;
        assert_eq!(t.wait(f, now), 0, "the lock expires");
        assert_eq!(t.after_failure(f, now).failures, 1, "and the count starts again");
    }

    #[test]
    fn old_failures_are_forgotten_and_delay_is_capped() {
        let t = Throttle::ACCOUNT;
        let f = Some(Failures { failures: 9, last_failure_at: 0, locked_until: None });
        assert_eq!(t.wait(f, t.window_micros), 0);
        assert_eq!(t.after_failure(f, t.window_micros).failures, 1);
        let f = Some(Failures { failures: 9, last_failure_at: 0, locked_until: None });
        assert_eq!(t.wait(f, 0), t.max_delay_micros);
        assert_eq!(retry_after_secs(1), 1);
    }
}

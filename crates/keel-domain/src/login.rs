//! Sign-in throttling: a progressive delay after a few failures, then a
//! lock. Pure arithmetic over a failure count and times; the app keeps one
//! counter per account and one per client address (IPv6 per /64, see
//! [`address_bucket`]).
//!
//! An attempt is counted *before* it is evaluated ([`Throttle::reserve`]):
//! the store writes the new count only if the row is still the one the
//! decision was made on, so parallel attempts cannot all pass one check.
//! A success then clears or releases what it reserved.

use std::net::{IpAddr, Ipv6Addr};

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

    /// Whether an attempt may go ahead at `now`: the record with this
    /// attempt counted as a failure (written before the password is
    /// checked), or how long (µs) to wait.
    pub fn reserve(&self, f: Option<Failures>, now: i64) -> Result<Failures, i64> {
        match self.wait(f, now) {
            0 => Ok(self.after_failure(f, now)),
            wait => Err(wait),
        }
    }
}

/// The address a throttle or rate limit counts: an IPv4 address as it is,
/// an IPv6 address by its /64 (one subscriber's usual allocation, so
/// rotating the low bits buys nothing); an IPv4-mapped IPv6 address is
/// treated as the IPv4 address it carries.
pub fn address_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
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

    #[test]
    fn reserve_counts_the_attempt_or_says_how_long_to_wait() {
        let t = Throttle::ACCOUNT;
        let mut f = None;
        for n in 1..=3 {
            f = Some(t.reserve(f, 0).expect("free attempts"));
            assert_eq!(f.unwrap().failures, n);
        }
        assert_eq!(t.reserve(f, 0), Err(SECOND), "the fourth waits, counted or not");
        assert_eq!(t.reserve(f, SECOND).map(|f| f.failures), Ok(4));
        let near = Some(Failures { failures: 9, last_failure_at: 0, locked_until: None });
        let locked = t.reserve(near, t.max_delay_micros).unwrap();
        assert_eq!(locked.locked_until, Some(t.max_delay_micros + t.lock_micros));
        assert_eq!(t.reserve(Some(locked), t.max_delay_micros + 1), Err(t.lock_micros - 1));
    }

    #[test]
    fn ipv6_counts_per_64_and_ipv4_per_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_bucket(a), address_bucket(b));
        assert_eq!(address_bucket(a).to_string(), "2001:db8:1:2::");
        assert_ne!(address_bucket(a), address_bucket(c));
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(address_bucket(v4), v4);
        assert_ne!(address_bucket(v4), address_bucket("203.0.113.8".parse().unwrap()));
        assert_eq!(address_bucket("::ffff:203.0.113.7".parse().unwrap()), v4);
    }
}

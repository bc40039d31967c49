//! One throttle for every front door that checks a secret or tells whether
//! something exists: staff sign-in and its second factor, customer sign-in
//! and registration, the storefront's order lookup. Each attempt is counted
//! *before* it is evaluated, under every key it touches (the account, the
//! client address bucket), in one transaction whose conditional writes only
//! go through on the row they were decided on (`keel_store::throttle`): so
//! 40 parallel wrong passwords cannot all pass one reading of the counter.
//! A success clears the account's counter and gives the address's back.
//!
//! Password checks also pass through [`PasswordChecks`], one semaphore per
//! process sized to the cores, so a flood of sign-ins (staff or customer)
//! cannot take the CPU from checkout: an attempt that waits too long for a
//! permit is refused with 429 and not counted.

use crate::security::SecurityEvent;
use crate::{in_tx, App, AppError, Result};
use keel_domain::login::{address_bucket, retry_after_secs, Failures, Throttle};
use keel_store::throttle::{self as db, FailureRow};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// What is counted, each under its own name in `login_failures`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Staff passwords, per lowercased email (known or not).
    StaffAccount,
    /// Staff second-factor codes, per email: kept apart from passwords, so
    /// a right password does not wipe the record of wrong codes.
    SecondFactor,
    /// Staff sign-in steps per client address bucket.
    StaffAddress,
    /// Customer passwords, per blind index of the email.
    CustomerAccount,
    /// Customer sign-ins per client address bucket.
    CustomerAddress,
    /// Registrations per client address bucket (every one counts).
    Registration,
    /// Order lookups per blind index of the email.
    LookupEmail,
    /// Order lookups per client address bucket.
    LookupAddress,
    /// Postal-code proofs per order id.
    OrderProof,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::StaffAccount => "account",
            Scope::SecondFactor => "second_factor",
            Scope::StaffAddress => "ip",
            Scope::CustomerAccount => "customer",
            Scope::CustomerAddress => "customer_ip",
            Scope::Registration => "register_ip",
            Scope::LookupEmail => "lookup_email",
            Scope::LookupAddress => "lookup_ip",
            Scope::OrderProof => "order_proof",
        }
    }

    pub fn policy(self) -> Throttle {
        match self {
            Scope::StaffAccount | Scope::SecondFactor | Scope::CustomerAccount | Scope::LookupEmail | Scope::OrderProof => {
                Throttle::ACCOUNT
            }
            Scope::StaffAddress | Scope::CustomerAddress | Scope::Registration | Scope::LookupAddress => Throttle::ADDRESS,
        }
    }
}

/// The key an address is counted under: its bucket (IPv6 per /64). A value
/// that is not an address (tests, an unknown peer) is kept as it is.
pub fn address_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(a) => address_bucket(a).to_string(),
        Err(_) => ip.to_owned(),
    }
}

fn to_failures(r: Option<FailureRow>) -> Option<Failures> {
    r.map(|r| Failures { failures: r.failures, last_failure_at: r.last_failure_at, locked_until: r.locked_until })
}

fn from_failures(f: Failures) -> FailureRow {
    FailureRow { failures: f.failures, last_failure_at: f.last_failure_at, locked_until: f.locked_until }
}

/// An attempt counted under these keys, to be cleared or given back if it
/// turns out not to be a failure.
#[derive(Debug)]
#[must_use]
pub struct Attempt {
    keys: Vec<(Scope, String)>,
}

/// A conditional write that keeps losing to parallel attempts is answered
/// like a throttled one rather than looping for ever.
const MAX_RACES: u32 = 64;

impl App {
    /// Counts one attempt under every `(scope, key)` (an empty key is
    /// skipped: e.g. an unknown client address), all or none. Refuses with
    /// `TooManyAttempts` (the longest wait) while any of them must wait.
    pub async fn reserve_attempt(&self, keys: &[(Scope, &str)], now: i64) -> Result<Attempt> {
        let mut keys: Vec<(Scope, String)> = keys.iter().filter(|(_, k)| !k.is_empty()).map(|(s, k)| (*s, (*k).to_owned())).collect();
        // One order for every caller, so two transactions never wait on
        // each other's rows (PostgreSQL row locks).
        keys.sort();
        keys.dedup();
        in_tx!(self, |tx| {
            let mut wait = 0;
            for (scope, key) in &keys {
                let mut races = 0;
                loop {
                    let seen = db::failures(&mut tx, scope.name(), key).await?;
                    match scope.policy().reserve(to_failures(seen), now) {
                        Err(w) => {
                            wait = wait.max(w);
                            break;
                        }
                        Ok(f) => {
                            if db::put_if_unchanged(&mut tx, scope.name(), key, seen, from_failures(f)).await? {
                                break;
                            }
                        }
                    }
                    races += 1;
                    if races >= MAX_RACES {
                        wait = wait.max(1);
                        break;
                    }
                }
            }
            if wait > 0 {
                // Rolls back what this attempt counted under the other keys.
                return Err(AppError::TooManyAttempts { retry_after_secs: retry_after_secs(wait) });
            }
            Ok(())
        })?;
        Ok(Attempt { keys })
    }

    /// [`App::reserve_attempt`], recording a refusal as `event` in the
    /// security log (sampled per address).
    pub(crate) async fn reserve_or_record(&self, keys: &[(Scope, &str)], event: SecurityEvent, subject: &str, ip: &str, now: i64) -> Result<Attempt> {
        match self.reserve_attempt(keys, now).await {
            Err(AppError::TooManyAttempts { retry_after_secs }) => {
                let extra = Some(("retry_after_secs", serde_json::json!(retry_after_secs)));
                self.record_security_event(event, subject, ip, extra, now).await;
                Err(AppError::TooManyAttempts { retry_after_secs })
            }
            other => other,
        }
    }

    /// The attempt succeeded: the counters of `cleared` scopes start again
    /// (the account's), the others get this attempt back (the address's).
    pub async fn attempt_succeeded(&self, attempt: Attempt, cleared: &[Scope]) -> Result<()> {
        in_tx!(self, |tx| {
            for (scope, key) in &attempt.keys {
                if cleared.contains(scope) {
                    db::clear(&mut tx, scope.name(), key).await?;
                } else {
                    db::release(&mut tx, scope.name(), key, scope.policy().lock_after).await?;
                }
            }
            Ok(())
        })
    }

    /// The attempt was never evaluated (no permit to check a password):
    /// it does not count.
    pub async fn attempt_not_evaluated(&self, attempt: Attempt) -> Result<()> {
        self.attempt_succeeded(attempt, &[]).await
    }
}

/// How long an attempt waits for a password-check permit before it is
/// answered 429: long enough to ride out a burst of real sign-ins.
const PERMIT_WAIT: Duration = Duration::from_secs(2);

/// The process-wide cap on concurrent argon2 work.
pub struct PasswordChecks {
    permits: Semaphore,
    size: usize,
    done: AtomicU64,
}

impl Default for PasswordChecks {
    fn default() -> Self {
        PasswordChecks::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

impl PasswordChecks {
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        PasswordChecks { permits: Semaphore::new(size), size, done: AtomicU64::new(0) }
    }

    /// How many password hashes were computed or verified by this process.
    pub fn count(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs one argon2 computation under a permit, or refuses with 429.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let permit = match tokio::time::timeout(PERMIT_WAIT, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            _ => return Err(AppError::TooManyAttempts { retry_after_secs: 1 }),
        };
        self.done.fetch_add(1, Ordering::Relaxed);
        let out = work.await;
        drop(permit);
        out
    }
}

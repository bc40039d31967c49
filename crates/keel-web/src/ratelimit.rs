//! Rate limits: a token bucket per client address (every route but
//! `/healthz`) and per API key (`/api/v1`). A bucket holds one minute's
//! allowance and refills continuously; an empty bucket answers `429` with
//! `Retry-After` and the `rate_limited` error. Addresses are counted by
//! bucket (`keel_domain::login::address_bucket`: IPv6 per /64), so rotating
//! through one allocation buys nothing. Memory is bounded by a cache of at
//! most [`MAX_KEYS`] buckets that drops one idle for a minute (full again:
//! the same as none) and, when full, the least recently used — never every
//! bucket at once, which would hand every client a fresh allowance.

use crate::edge::ClientIp;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keel_app::apikeys::{KeyScope, Principal};
use keel_domain::login::address_bucket;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests per minute; `None` means no limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub per_ip_per_min: Option<u32>,
    pub per_key_per_min: Option<u32>,
}

impl Limits {
    /// The defaults `keel serve` uses: generous enough for a busy shop front
    /// behind one address and for an integration pushing steadily.
    pub const SERVE_DEFAULT: Limits =
        Limits { per_ip_per_min: Some(1200), per_key_per_min: Some(keel_app::apikeys::DEFAULT_RATE_LIMIT_PER_MIN) };
}

pub const MAX_KEYS: u64 = 100_000;
/// A bucket unused this long has refilled completely.
const FULL_AFTER: Duration = Duration::from_secs(60);

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A keyed token bucket.
pub struct Limiter<K> {
    per_min: u32,
    buckets: moka::sync::Cache<K, Arc<Mutex<Bucket>>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Limiter<K> {
    pub fn new(per_min: u32) -> Self {
        Limiter::with_capacity(per_min, MAX_KEYS)
    }

    pub fn with_capacity(per_min: u32, max_keys: u64) -> Self {
        let buckets = moka::sync::Cache::builder()
            .max_capacity(max_keys)
            .time_to_idle(FULL_AFTER)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .build();
        Limiter { per_min: per_min.max(1), buckets }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.check_at_rate(key, self.per_min)
    }

    /// [`Self::check`] for a key with its own allowance per minute.
    pub fn check_at_rate(&self, key: &K, per_min: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let capacity = f64::from(per_min.max(1));
        let per_sec = capacity / 60.0;
        let bucket = self.buckets.get_with_by_ref(key, || Arc::new(Mutex::new(Bucket { tokens: capacity, at: now })));
        let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec).min(capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_sec))
        }
    }

    /// Buckets held (after pending evictions are applied).
    pub fn len(&self) -> u64 {
        self.buckets.run_pending_tasks();
        self.buckets.entry_count()
    }
}

/// The limiters of one running router.
#[derive(Default)]
pub struct RateLimiters {
    ip: Option<Limiter<IpAddr>>,
    key: Option<Limiter<String>>,
}

impl RateLimiters {
    pub fn new(limits: Limits) -> Self {
        RateLimiters {
            ip: limits.per_ip_per_min.filter(|n| *n > 0).map(Limiter::new),
            key: limits.per_key_per_min.filter(|n| *n > 0).map(Limiter::new),
        }
    }
}

fn too_many(wait: Duration, what: &str) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut res = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        "rate_limited",
        format!("too many requests {what}; retry after {secs} s"),
    )
    .into_response();
    res.headers_mut().insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    res
}

/// Outermost layer: per client address.
pub async fn per_ip(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(limiter) = &state.limiters.ip {
        if !matches!(req.uri().path(), "/healthz" | "/readyz") {
            if let Some(ip) = ClientIp::of_request(&req, &state).0 {
                if let Err(wait) = limiter.check(&address_bucket(ip)) {
                    return too_many(wait, "from this address");
                }
            }
        }
    }
    next.run(req).await
}

/// Inside API authentication: per secret key, at its own limit or the
/// configured one. A publishable key is shared by every shopper of a shop
/// front, so it is limited per client address only (the outer layer).
pub async fn per_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(limiter) = &state.limiters.key {
        if let Some(p) = req.extensions().get::<Principal>().filter(|p| p.scope != KeyScope::Storefront) {
            let per_min = p.rate_limit_per_min.unwrap_or(limiter.per_min);
            if let Err(wait) = limiter.check_at_rate(&p.key_id, per_min) {
                return too_many(wait, "for this API key");
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_minute_then_refuses_with_a_wait() {
        let l = Limiter::new(3);
        for _ in 0..3 {
            assert!(l.check(&"a").is_ok());
        }
        let wait = l.check(&"a").unwrap_err();
        assert!(wait > Duration::from_secs(10) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(l.check(&"b").is_ok(), "keys are independent");
    }

    #[test]
    fn a_full_cache_drops_some_buckets_not_every_one() {
        let l = Limiter::with_capacity(1, 50);
        assert!(l.check(&0u32).is_ok());
        for k in 1..500u32 {
            let _ = l.check(&k);
            // Key 0 is used all along, so it is the last to go.
            assert!(l.check(&0).is_err(), "key 0 kept its empty bucket after {k} other keys");
        }
        assert!(l.len() <= 60, "bounded: {}", l.len());
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let l = Limiter::new(2);
        let a: IpAddr = "2001:db8:7:7::1".parse().unwrap();
        let b: IpAddr = "2001:db8:7:7:dead:beef:0:2".parse().unwrap();
        assert!(l.check(&address_bucket(a)).is_ok());
        assert!(l.check(&address_bucket(b)).is_ok());
        assert!(l.check(&address_bucket(a)).is_err(), "one /64, one allowance");
        assert!(l.check(&address_bucket("2001:db8:7:8::1".parse().unwrap())).is_ok(), "the next /64 is another client");
    }
}

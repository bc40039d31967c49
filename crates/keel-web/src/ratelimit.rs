//! Rate limits: a token bucket per client address (every route but
//! `/healthz`) and per API key (`/api/v1`). A bucket holds one minute's
//! allowance and refills continuously; an empty bucket answers `429` with
//! `Retry-After` and the `rate_limited` error. Memory is bounded: idle
//! buckets (full again) are swept, and the map never exceeds [`MAX_KEYS`].

use crate::edge::client_ip;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keel_app::apikeys::Principal;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
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
    pub const SERVE_DEFAULT: Limits = Limits { per_ip_per_min: Some(1200), per_key_per_min: Some(600) };
}

const MAX_KEYS: usize = 100_000;
const SWEEP_EVERY: Duration = Duration::from_secs(30);

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A keyed token bucket.
pub struct Limiter<K> {
    per_min: u32,
    state: Mutex<(HashMap<K, Bucket>, Instant)>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(per_min: u32) -> Self {
        Limiter { per_min: per_min.max(1), state: Mutex::new((HashMap::new(), Instant::now())) }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let capacity = f64::from(self.per_min);
        let per_sec = capacity / 60.0;
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (map, swept) = &mut *guard;
        if now.duration_since(*swept) >= SWEEP_EVERY || map.len() >= MAX_KEYS {
            // A bucket that would be full again is the same as no bucket.
            let full_after = Duration::from_secs_f64(60.0);
            map.retain(|_, b| now.duration_since(b.at) < full_after);
            if map.len() >= MAX_KEYS {
                map.clear();
            }
            *swept = now;
        }
        let b = map.entry(key.clone()).or_insert(Bucket { tokens: capacity, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec).min(capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_sec))
        }
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
            if let Some(ip) = client_ip(&req, state.edge.trust_proxy) {
                if let Err(wait) = limiter.check(&ip) {
                    return too_many(wait, "from this address");
                }
            }
        }
    }
    next.run(req).await
}

/// Inside API authentication: per API key.
pub async fn per_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(limiter) = &state.limiters.key {
        if let Some(p) = req.extensions().get::<Principal>() {
            if let Err(wait) = limiter.check(&p.key_id) {
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
}

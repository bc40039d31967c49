//! API authentication: `Authorization: Bearer keel_sk_…`. Verified keys are
//! cached briefly so a hot endpoint does not hash-and-query on every request;
//! a key revoked through this node stops at once (the cache is purged), one
//! revoked elsewhere within [`CACHE_TTL`]. After authentication the route's
//! permission (see [`crate::access`]) is checked against the key's role.
//! A refused key is a security event (its prefix and the client address,
//! sampled per address: see `keel_app::security`).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use keel_domain::access::allows;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use crate::edge::ClientIp;
use keel_app::apikeys::{hash_secret, KeyScope, Principal, KEY_PREFIX, PUBLISHABLE_PREFIX};
use keel_app::security::SecurityEvent;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const CACHE_TTL: Duration = Duration::from_secs(10);
const TOUCH_EVERY: Duration = Duration::from_secs(60);
const CACHE_MAX: usize = 10_000;

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
    touched: Mutex<HashMap<String, Instant>>,
}

impl KeyCache {
    fn get(&self, hash: &str) -> Option<Principal> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(hash).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(p, _)| p.clone())
    }

    fn put(&self, hash: String, p: Principal) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX {
            map.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        map.insert(hash, (p, Instant::now()));
    }

    /// Forgets a key at once (after revocation).
    pub fn evict(&self, key_id: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (p, _)| p.key_id != key_id);
    }

    /// Whether last-used should be written now (at most once a minute per key).
    fn due_for_touch(&self, key_id: &str) -> bool {
        let mut map = self.touched.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key_id) {
            Some(at) if at.elapsed() < TOUCH_EVERY => false,
            _ => {
                map.insert(key_id.to_owned(), Instant::now());
                true
            }
        }
    }
}

/// Middleware for `/api/v1` (and `/metrics`): resolves the bearer key into a
/// [`Principal`] request extension or answers 401, then refuses with 403 a
/// route the key's role may not use. Requests that matched no route pass on
/// to the 404 fallback.
pub async fn require_api_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let secret = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .map(str::to_owned);
    let Some(secret) = secret else {
        return ApiError::unauthorized("send an API key as `Authorization: Bearer keel_sk_…` (or a publishable `keel_pk_…`)").into_response();
    };
    let hash = hash_secret(&secret);
    let cached = state.keys.get(&hash).filter(|p| p.expires_at.is_none_or(|e| e > keel_domain::time::now_micros()));
    let principal = match cached {
        Some(p) => p,
        None => match state.app.authenticate(&secret).await {
            Ok(Some(p)) => {
                state.keys.put(hash, p.clone());
                p
            }
            Ok(None) => {
                let ip = ClientIp::of_request(&req, &state).text();
                let now = keel_domain::time::now_micros();
                state.app.record_security_event(SecurityEvent::ApiKeyRejected, &key_prefix(&secret), &ip, None, now).await;
                return ApiError::unauthorized("the API key is unknown, revoked or expired").into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    if let Some(path) = req.extensions().get::<MatchedPath>() {
        match (crate::access::route_permission(req.method(), path.as_str()), principal.scope) {
            (Some(perm), KeyScope::Role(role)) if allows(role, perm) => {}
            (Some(perm), KeyScope::Role(role)) => {
                return ApiError::forbidden(format!("this API key's role ({}) does not allow {}", role.as_str(), perm.as_str())).into_response()
            }
            (Some(_), KeyScope::Storefront) if crate::access::publishable_allows(req.method(), path.as_str()) => {}
            (Some(_), KeyScope::Storefront) => {
                return ApiError::forbidden("a publishable key may only read the catalog and use carts and checkout; use a secret key")
                    .into_response()
            }
            (None, _) => {
                tracing::error!(route = path.as_str(), "route has no permission in the access table; refused");
                return ApiError::forbidden("this route is not open to API keys").into_response();
            }
        }
    }
    if state.keys.due_for_touch(&principal.key_id) {
        let app = state.app.clone();
        let id = principal.key_id.clone();
        tokio::spawn(async move {
            if let Err(e) = app.touch_api_key(&id).await {
                tracing::warn!(error = %e, "could not record API key use");
            }
        });
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// What the security log keeps of a refused key: the part Keel itself
/// shows of keys (`keel_sk_` or `keel_pk_` and six characters), never the rest.
fn key_prefix(secret: &str) -> String {
    let n = KEY_PREFIX.len() + 6;
    match secret.get(..n) {
        Some(p) if (secret.starts_with(KEY_PREFIX) || secret.starts_with(PUBLISHABLE_PREFIX)) && secret.len() > n => p.to_owned(),
        _ => "(not a Keel key)".to_owned(),
    }
}

/// The authenticated caller of an API handler.
pub struct ApiKey(pub Principal);

impl ApiKey {
    pub fn actor(&self) -> keel_app::Actor {
        self.0.actor()
    }

    /// Whom personal data in a response is shown to.
    pub fn viewer(&self) -> keel_app::privacy::Viewer {
        self.0.viewer()
    }

    /// The key's staff role; a publishable key has none (and reaches no
    /// route that asks).
    pub fn role(&self) -> Result<keel_domain::access::Role, ApiError> {
        self.0.scope.role().ok_or_else(|| ApiError::forbidden("a publishable key has no role"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(ApiKey)
            .ok_or_else(|| ApiError::unauthorized("authentication required"))
    }
}

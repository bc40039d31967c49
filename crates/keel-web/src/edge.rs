//! Settings of the HTTP edge that are not about any one resource: whether a
//! proxy in front is trusted for the client address, rate limits (off by
//! default; `keel serve` turns them on), and whether the listener is HTTPS
//! (for HSTS).
//!
//! [`ClientIp`] is the one way to learn the client's address: every
//! throttle, rate limit and audit entry uses it, so `KEEL_TRUST_PROXY`
//! means the same thing everywhere.

use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Default)]
pub struct EdgeSettings {
    /// `KEEL_TRUST_PROXY=1`: take the client address from the last
    /// `X-Forwarded-For` entry (the one the trusted proxy appended).
    pub trust_proxy: bool,
    /// Served over TLS: responses carry `Strict-Transport-Security`.
    pub https: bool,
    pub rate_limits: crate::ratelimit::Limits,
}

/// The client's address: the socket peer (needs
/// `into_make_service_with_connect_info::<SocketAddr>()`), or, behind a
/// trusted proxy, the address it forwarded.
pub fn client_ip(headers: &HeaderMap, extensions: &Extensions, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back();
        if forwarded.is_some() {
            return forwarded;
        }
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The client's address as an extractor (see [`client_ip`]); `None` when
/// the server was started without connect info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    pub fn of(parts: &Parts, state: &AppState) -> ClientIp {
        ClientIp(client_ip(&parts.headers, &parts.extensions, state.edge.trust_proxy))
    }

    /// The same, for middleware that holds the whole request.
    pub fn of_request(req: &axum::extract::Request, state: &AppState) -> ClientIp {
        ClientIp(client_ip(req.headers(), req.extensions(), state.edge.trust_proxy))
    }

    /// The address as use cases take it (empty: unknown).
    pub fn text(&self) -> String {
        self.0.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(parts, state))
    }
}

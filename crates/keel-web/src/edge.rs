//! Settings of the HTTP edge that are not about any one resource: whether a
//! proxy in front is trusted for the client address, rate limits (off by
//! default; `keel serve` turns them on), and whether the listener is HTTPS
//! (for HSTS).

use axum::extract::{ConnectInfo, Request};
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
pub fn client_ip(req: &Request, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        let forwarded = req
            .headers()
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
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

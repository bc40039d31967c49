//! Security headers on every response. Storefront pages set their own
//! policy ([`crate::storefront::security_headers`], with the stylesheet's
//! hash); this outer layer fills in whatever a response lacks: the same
//! storefront policy for other HTML, a deny-everything policy for JSON and
//! files, `nosniff`, the referrer policy, framing refused, a
//! `Permissions-Policy`, and HSTS when served over TLS.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// For responses that are not pages: nothing may load, nothing may frame.
pub const NON_HTML_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// Powerful browser features no Keel page uses are off for every page and
/// anything it frames; `payment` stays with the shop's own origin.
pub const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), usb=(), payment=(self)";
/// One year, subdomains included; sent only when Keel itself serves HTTPS.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The headers every response carries besides its CSP.
pub fn baseline(headers: &mut HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

pub async fn every_response(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let html = h.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
        if html {
            crate::storefront::security_headers(h);
        } else {
            h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(NON_HTML_CSP));
            baseline(h);
        }
    } else if !h.contains_key(header::X_CONTENT_TYPE_OPTIONS) {
        baseline(h);
    }
    if !h.contains_key("permissions-policy") {
        h.insert("permissions-policy", HeaderValue::from_static(PERMISSIONS_POLICY));
    }
    if state.edge.https {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    res
}

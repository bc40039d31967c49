//! Cross-site request forgery defences for storefront forms.
//!
//! Two checks, both required on every form of the cart, checkout and
//! account pages:
//! 1. **Same origin**: `Sec-Fetch-Site: same-origin`, or else an `Origin`
//!    (or, failing that, `Referer`) equal to the shop's public origin
//!    (`KEEL_PUBLIC_URL`) or, when none is configured, to the request's own
//!    `Host`. A request that proves neither is refused.
//! 2. **A per-session token** in the hidden field `csrf`, compared in
//!    constant time. Each rendering masks the session's secret with a fresh
//!    one-time pad, so the token differs on every page (no BREACH-style
//!    recovery through compressed responses) while any of them verifies.
//!
//! The one exception is `POST /cart/lines`, the product page's add-to-cart
//! form: product pages are publicly cached and so cannot carry a
//! per-session token. It requires the same-origin check only (and verifies
//! a token when one is sent). Adding to a cart is the least harmful write a
//! forged request could make, and `SameSite=Lax` already keeps the cookie
//! off cross-site POSTs.

use super::Settings;
use axum::http::header::{self, HeaderMap};
use base64::Engine;
use rand::RngCore;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A fresh masked token for a session's secret.
pub fn token(secret: &str) -> String {
    let secret = B64.decode(secret).unwrap_or_default();
    let mut pad = vec![0u8; secret.len()];
    rand::rngs::OsRng.fill_bytes(&mut pad);
    let masked: Vec<u8> = pad.iter().zip(&secret).map(|(p, s)| p ^ s).collect();
    pad.extend(masked);
    B64.encode(pad)
}

/// Whether `token` was made by [`token`] from `secret`; constant time in
/// the token's content.
pub fn verify(secret: &str, token: &str) -> bool {
    let (Ok(secret), Ok(raw)) = (B64.decode(secret), B64.decode(token.trim())) else {
        return false;
    };
    if secret.is_empty() || raw.len() != secret.len() * 2 {
        return false;
    }
    let (pad, masked) = raw.split_at(secret.len());
    let diff = pad.iter().zip(masked).zip(&secret).fold(0u8, |acc, ((p, m), s)| acc | ((p ^ m) ^ s));
    std::hint::black_box(diff) == 0
}

/// Whether the request comes from one of the shop's own pages.
pub fn same_origin(headers: &HeaderMap, config: &Settings) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    match get("sec-fetch-site") {
        Some("same-origin") => return true,
        Some(_) => return false,
        None => {}
    }
    let claimed = match get("origin") {
        Some(o) => o.to_ascii_lowercase(),
        None => match get("referer").and_then(origin_of) {
            Some(o) => o,
            None => return false,
        },
    };
    match &config.public_origin {
        Some(public) => claimed == *public,
        None => {
            // Scheme and host both: an `http://` page must not post to the
            // `https://` shop on the same host.
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(|h| h.trim().to_ascii_lowercase());
            host.is_some_and(|h| claimed == format!("{}://{h}", config.scheme))
        }
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn secret() -> String {
        B64.encode([7u8; 32])
    }

    #[test]
    fn masked_tokens_differ_but_all_verify() {
        let s = secret();
        let (a, b) = (token(&s), token(&s));
        assert_ne!(a, b);
        assert!(verify(&s, &a) && verify(&s, &b));
        assert!(!verify(&s, ""));
        assert!(!verify(&s, &s));
        assert!(!verify(&B64.encode([8u8; 32]), &a));
        let mut bad = B64.decode(&a).unwrap();
        bad[40] ^= 1;
        assert!(!verify(&s, &B64.encode(bad)));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_needs_proof() {
        let local = Settings::default();
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")]), &local));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site"), ("origin", "http://a.test"), ("host", "a.test")]), &local));
        assert!(same_origin(&headers(&[("origin", "http://a.test:8080"), ("host", "a.test:8080")]), &local));
        assert!(!same_origin(&headers(&[("origin", "http://evil.test"), ("host", "a.test")]), &local));
        assert!(!same_origin(&headers(&[("origin", "null"), ("host", "a.test")]), &local));
        assert!(same_origin(&headers(&[("referer", "http://a.test/products/x"), ("host", "a.test")]), &local));
        assert!(!same_origin(&headers(&[("host", "a.test")]), &local));
        // The scheme counts too.
        assert!(!same_origin(&headers(&[("origin", "https://a.test"), ("host", "a.test")]), &local));
        let tls = Settings::default().with_tls(true);
        assert!(same_origin(&headers(&[("origin", "https://a.test"), ("host", "a.test")]), &tls));
        assert!(!same_origin(&headers(&[("origin", "http://a.test"), ("host", "a.test")]), &tls));
        assert!(tls.secure_cookies, "under TLS cookies are always Secure");
        let public = Settings::default().with_public_url("https://shop.example").unwrap();
        assert!(same_origin(&headers(&[("origin", "https://shop.example"), ("host", "10.0.0.5")]), &public));
        assert!(!same_origin(&headers(&[("origin", "http://shop.example"), ("host", "shop.example")]), &public));
    }
}

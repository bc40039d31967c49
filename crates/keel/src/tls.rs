//! HTTPS for `keel serve --tls-cert FILE --tls-key FILE`: rustls with the
//! ring provider (the one reqwest already uses), and the optional plain-HTTP
//! listener that answers every request with a `308` to the HTTPS address.

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum_server::tls_rustls::RustlsConfig;
use std::path::Path;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Loads a PEM certificate chain and private key.
pub async fn config(cert: &Path, key: &Path) -> Result<RustlsConfig, AnyError> {
    // Ignored if already installed (the process has one provider).
    let _ = rustls::crypto::ring::default_provider().install_default();
    RustlsConfig::from_pem_file(cert, key).await.map_err(|e| {
        format!("cannot load the TLS certificate {} and key {}: {e}", cert.display(), key.display()).into()
    })
}

/// A router for the redirect listener: every method and path → `308` to
/// the same path on the public origin when `KEEL_PUBLIC_URL` is https,
/// else on `https://HOST:https_port` with HOST parsed and checked from the
/// request (never copied as given).
pub fn redirect_router(https_port: u16, public_origin: Option<String>) -> axum::Router {
    axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let public_origin = public_origin.clone();
        async move { redirect(&uri, &headers, https_port, public_origin.as_deref()) }
    })
}

fn redirect(uri: &Uri, headers: &HeaderMap, https_port: u16, public_origin: Option<&str>) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if let Some(origin) = public_origin.filter(|o| o.starts_with("https://")) {
        return match axum::http::HeaderValue::from_str(&format!("{origin}{path}")) {
            Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
            Err(_) => (StatusCode::BAD_REQUEST, "bad request path").into_response(),
        };
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
        .map(|a| a.host().to_owned());
    let Some(host) = host else {
        return (StatusCode::BAD_REQUEST, "a Host header is required").into_response();
    };
    let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
    let location = format!("https://{host}{port}{path}");
    match axum::http::HeaderValue::from_str(&location) {
        Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "bad Host header").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(host: &str, public: Option<&str>) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        let r = redirect(&"/cart?x=1".parse().unwrap(), &h, 8443, public);
        r.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn the_redirect_goes_to_the_public_origin_when_one_is_configured() {
        assert_eq!(location("evil.example", Some("https://shop.example")).as_deref(), Some("https://shop.example/cart?x=1"));
        assert_eq!(location("shop.example:8080", None).as_deref(), Some("https://shop.example:8443/cart?x=1"));
        assert_eq!(location("evil.example/@x", None), None, "a Host that is no host is refused");
    }
}

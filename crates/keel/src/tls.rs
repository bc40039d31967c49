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
/// the same path on `https://HOST:https_port`.
pub fn redirect_router(https_port: u16) -> axum::Router {
    axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| async move { redirect(&uri, &headers, https_port) })
}

fn redirect(uri: &Uri, headers: &HeaderMap, https_port: u16) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
        .map(|a| a.host().to_owned());
    let Some(host) = host else {
        return (StatusCode::BAD_REQUEST, "a Host header is required").into_response();
    };
    let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = format!("https://{host}{port}{path}");
    match axum::http::HeaderValue::from_str(&location) {
        Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "bad Host header").into_response(),
    }
}

//! The storefront: server-rendered HTML that works without JavaScript.
//! Handlers build a template, then [`respond`] adds the caching and security
//! headers every page needs, so each page states only its cache policy.

mod account;
mod cart;
mod checkout;
mod csrf;
mod form;
mod home;
mod orders;
pub mod session;

use crate::AppState;
use askama::Template;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::show))
        .merge(cart::router())
        .merge(checkout::router())
        .merge(orders::router())
        .merge(account::router())
}

/// The one stylesheet, inlined in every page: it is small enough that a
/// separate request would cost more than the bytes it saves.
pub const STYLESHEET: &str = concat!(include_str!("../../static/store.css"), include_str!("../../static/checkout.css"));

/// `style-src` allows exactly the inline stylesheet above, by hash, so the
/// policy needs no `'unsafe-inline'`.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLESHEET.as_bytes()));
    format!(
        "default-src 'none'; img-src 'self' data:; style-src 'sha256-{hash}'; script-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
});

/// What every page's layout needs, whatever the page.
#[derive(Debug, Clone, Default)]
pub struct Shell {
    /// The document title, without the shop name.
    pub title: String,
    pub description: String,
    /// Absolute path of the canonical URL (e.g. `/products/eve-tee`).
    pub canonical: Option<String>,
    /// schema.org JSON-LD, already serialised.
    pub json_ld: Option<String>,
    pub noindex: bool,
    pub stylesheet: &'static str,
}

impl Shell {
    pub fn new(title: impl Into<String>, description: impl Into<String>) -> Shell {
        Shell { title: title.into(), description: description.into(), stylesheet: STYLESHEET, ..Shell::default() }
    }

    pub fn canonical(mut self, path: impl Into<String>) -> Shell {
        self.canonical = Some(path.into());
        self
    }
}

/// How a response may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// Catalog pages: shared caches may keep them `max_age` seconds and serve
    /// them stale for `stale_while_revalidate` more while refetching.
    Public { max_age: u32, stale_while_revalidate: u32 },
    /// Carts, checkout, accounts: never stored anywhere.
    Private,
}

impl Cache {
    pub const CATALOG: Cache = Cache::Public { max_age: 60, stale_while_revalidate: 600 };

    fn header(self) -> String {
        match self {
            Cache::Public { max_age, stale_while_revalidate } => {
                format!("public, max-age={max_age}, stale-while-revalidate={stale_while_revalidate}")
            }
            Cache::Private => "private, no-store".to_owned(),
        }
    }
}

/// A rendered page and how to serve it.
pub struct Page {
    pub status: StatusCode,
    pub cache: Cache,
    /// CDN purge keys: the ids of the products and collections shown.
    pub surrogate_keys: Vec<String>,
    pub html: String,
}

impl Page {
    pub fn render(template: &impl Template, cache: Cache) -> Page {
        let html = template.render().unwrap_or_else(|e| {
            tracing::error!(error = %e, "template failed to render");
            String::new()
        });
        Page { status: StatusCode::OK, cache, surrogate_keys: Vec::new(), html }
    }

    pub fn status(mut self, status: StatusCode) -> Page {
        self.status = status;
        self
    }

    pub fn keys(mut self, keys: impl IntoIterator<Item = String>) -> Page {
        self.surrogate_keys.extend(keys);
        self
    }
}

/// Serves `page`, answering `304 Not Modified` when the request already holds
/// this exact page (strong ETag over the body).
pub fn respond(request: &HeaderMap, page: Page) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&page.cache.header()).expect("ascii"));
    security_headers(&mut headers);
    if !page.surrogate_keys.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&page.surrogate_keys.join(" ")) {
            headers.insert("surrogate-key", v);
        }
    }
    if page.cache != Cache::Private && page.status == StatusCode::OK {
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(page.html.as_bytes())[..12]));
        let matches = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*"));
        headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
        if matches {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
    }
    (page.status, headers, page.html).into_response()
}

pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&CSP).expect("ascii"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

#[derive(Template)]
#[template(path = "storefront/error.html")]
struct ErrorPage {
    shell: Shell,
    heading: &'static str,
    message: &'static str,
}

/// The storefront's 404 page.
pub fn not_found(request: &HeaderMap) -> Response {
    let mut shell = Shell::new("Page not found", "This page does not exist.");
    shell.noindex = true;
    let page = ErrorPage { shell, heading: "Page not found", message: "We could not find that page. It may have moved, or the link may be mistyped." };
    respond(request, Page::render(&page, Cache::Private).status(StatusCode::NOT_FOUND))
}

/// The storefront's error page for failures the shopper cannot fix.
pub fn server_error(request: &HeaderMap) -> Response {
    let mut shell = Shell::new("Something went wrong", "An error occurred.");
    shell.noindex = true;
    let page = ErrorPage { shell, heading: "Something went wrong", message: "Please try again in a moment. The problem has been logged." };
    respond(request, Page::render(&page, Cache::Private).status(StatusCode::INTERNAL_SERVER_ERROR))
}

/// Formats minor units for people: `1999` USD → `$19.99`.
pub fn format_money(amount: i64, currency: &str) -> String {
    let digits = keel_domain::money::Currency::parse("currency", currency).map(|c| c.minor_units()).unwrap_or(2);
    let symbol = match currency {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        _ => "",
    };
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    let scale = 10u64.pow(u32::from(digits));
    let whole = abs / scale;
    let body = if digits == 0 { whole.to_string() } else { format!("{whole}.{:0width$}", abs % scale, width = usize::from(digits)) };
    if symbol.is_empty() {
        format!("{sign}{body} {currency}")
    } else {
        format!("{sign}{symbol}{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_with_the_currency_digits() {
        assert_eq!(format_money(1999, "USD"), "$19.99");
        assert_eq!(format_money(5, "EUR"), "€0.05");
        assert_eq!(format_money(1200, "JPY"), "¥1200");
        assert_eq!(format_money(-250, "CHF"), "-2.50 CHF");
    }
}

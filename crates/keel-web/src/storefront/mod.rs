//! The storefront: server-rendered HTML that works without JavaScript.
//! Handlers build a template, then [`respond`] adds the caching and security
//! headers every page needs, so each page states only its cache policy.

mod account;
mod cache;
mod cart;
mod checkout;
mod collection;
pub(crate) mod csrf;
pub(crate) mod form;
mod home;
mod listing;
mod orders;
mod product;
mod search;
mod seo;
pub mod session;

pub use cache::FragmentCache;

use crate::AppState;
use askama::Template;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use keel_app::AppError;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use tower_http::compression::CompressionLayer;

/// The storefront's routes, compressed (brotli or gzip, as the client
/// accepts) when the response type is worth compressing. Page modules with
/// their own routers are merged in [`pages`], so they get the same layers.
pub fn router() -> Router<AppState> {
    pages().layer(CompressionLayer::new().br(true).gzip(true))
}

fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(home::show))
        .route("/collections/{handle}", get(collection::show))
        .route("/search", get(search::show))
        .route("/products/{handle}", get(product::show))
        .route("/sitemap.xml", get(seo::sitemap))
        .route("/robots.txt", get(seo::robots))
        .merge(cart::router())
        .merge(checkout::router())
        .merge(orders::router())
        .merge(account::router())
}

/// Storefront settings shared by every page.
pub struct Settings {
    /// Absolute base of canonical URLs and the sitemap, without a trailing
    /// slash (`KEEL_PUBLIC_URL`); never taken from the request's `Host`.
    pub public_url: String,
    /// The shop's public origin when `KEEL_PUBLIC_URL` is configured: forms
    /// must come from it. Unset: from the request's own `Host`.
    pub public_origin: Option<String>,
    /// Send cookies with `Secure`: the public URL is https, or Keel itself
    /// serves TLS.
    pub secure_cookies: bool,
    /// The scheme requests arrive on (`https` when Keel serves TLS), for the
    /// same-origin check when no public URL is configured.
    pub scheme: &'static str,
    /// The currency prices are shown and filtered in, and of new carts.
    pub currency: String,
    /// Rendered product pages, revalidated on every request.
    pub cache: FragmentCache,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
            public_origin: None,
            secure_cookies: false,
            scheme: "http",
            currency: "USD".to_owned(),
            cache: FragmentCache::new(1024),
        }
    }
}

pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:7300";

impl Settings {
    /// The shop as configured by `KEEL_PUBLIC_URL` (`http://` or `https://`
    /// plus a host, optional port and path): the base of canonical URLs,
    /// the origin forms must come from, and `https://` makes cookies `Secure`.
    pub fn with_public_url(self, url: &str) -> Result<Settings, String> {
        let mut s = self.with_base_url(url)?;
        let (scheme, rest) = s.public_url.split_once("://").expect("checked by with_base_url");
        let scheme = scheme.to_ascii_lowercase();
        let host = rest.split(['/', '?', '#']).next().unwrap_or("").to_ascii_lowercase();
        s.secure_cookies = scheme == "https";
        s.public_origin = Some(format!("{scheme}://{host}"));
        Ok(s)
    }

    /// Keel serves this listener over TLS: cookies are always `Secure`, and
    /// forms must come from `https://` the request's host.
    pub fn with_tls(mut self, tls: bool) -> Settings {
        if tls {
            self.secure_cookies = true;
            self.scheme = "https";
        }
        self
    }

    /// Only the base of canonical URLs and the sitemap (the listen address
    /// when no public URL is configured); origin checks use `Host`.
    pub fn with_base_url(mut self, url: &str) -> Result<Settings, String> {
        let url = url.trim().trim_end_matches('/');
        let invalid = || format!("KEEL_PUBLIC_URL must be an absolute http(s) URL naming a host, like https://shop.example, not `{url}`");
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(invalid());
        }
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        let path_ok = rest.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]/_~".contains(&b));
        if !host_ok || !path_ok {
            return Err(invalid());
        }
        self.public_url = url.to_owned();
        Ok(self)
    }

    pub fn with_currency(mut self, currency: &str) -> Result<Settings, String> {
        let c = keel_domain::money::Currency::parse("currency", currency)
            .map_err(|_| format!("KEEL_STORE_CURRENCY must be an ISO 4217 code, not `{currency}`"))?;
        self.currency = c.code().to_owned();
        Ok(self)
    }

    /// An absolute URL for a path that starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.public_url, path)
    }
}

/// A failed use case as a page: unknown things are the 404 page, anything
/// else is logged once and answered with the generic error page.
pub fn failure(request: &HeaderMap, what: &str, e: AppError) -> Response {
    match e {
        AppError::NotFound { .. } => not_found(request),
        e => unexpected(request, what, &e),
    }
}

/// Any failure but "not found": an outage of the database is answered as
/// such (507 or 503 with `Retry-After`), anything else is logged once and
/// answered with the generic error page.
pub fn unexpected(request: &HeaderMap, what: &str, e: &AppError) -> Response {
    if let Some(outage) = e.outage() {
        let (status, code, _, retry) = crate::error::outage_answer(outage);
        tracing::warn!(error = %e, cause = ?std::error::Error::source(e), code, page = what, "database outage");
        let mut shell = Shell::new("Please try again shortly", "The shop cannot save anything right now.");
        shell.noindex = true;
        let page = ErrorPage {
            shell,
            heading: "Please try again shortly",
            message: "The shop cannot save or load this right now. Nothing was charged or changed. Please try again in a minute.".into(),
        };
        let mut r = respond(request, Page::render(&page, Cache::Private).status(status));
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return r;
    }
    tracing::error!(error = %e, cause = ?std::error::Error::source(e), page = what, "storefront page failed");
    server_error(request)
}

/// The one stylesheet, inlined in every page: it is small enough that a
/// separate request would cost more than the bytes it saves.
pub const STYLESHEET: &str = concat!(include_str!("../../static/store.css"), include_str!("../../static/checkout.css"));

/// `style-src` allows exactly the inline stylesheet above, by hash, so the
/// policy needs no `'unsafe-inline'`. JSON-LD blocks are data, not script,
/// and need no allowance. `connect-src 'self'` lets same-origin tools (and
/// crawler audits that fetch `/robots.txt` from the page) read this site.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let style = style_source(STYLESHEET);
    HeaderValue::from_str(&format!(
        "default-src 'none'; img-src 'self' data:; style-src {style}; script-src 'self'; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ))
    .expect("ascii")
});

/// The CSP source that allows exactly `css` as an inline `<style>`, by hash.
pub fn style_source(css: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(css.as_bytes())))
}

/// What every page's layout needs, whatever the page.
#[derive(Debug, Clone, Default)]
pub struct Shell {
    /// The document title, without the shop name.
    pub title: String,
    pub description: String,
    /// The canonical URL, absolute (see [`Settings::url`]).
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

    pub fn canonical(mut self, url: impl Into<String>) -> Shell {
        self.canonical = Some(url.into());
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
    pub content_type: &'static str,
    /// A validator known without hashing the body (e.g. from a version
    /// stamp or computed once when the page was cached), quoted.
    pub etag: Option<String>,
    /// Microseconds since the epoch; sent as `Last-Modified` and compared
    /// with `If-Modified-Since`. Only set when it moves with every change
    /// the page shows.
    pub last_modified: Option<i64>,
    pub body: Bytes,
}

/// A strong entity tag over a body.
pub fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12]))
}

impl Page {
    pub fn render(template: &impl Template, cache: Cache) -> Page {
        let html = template.render().unwrap_or_else(|e| {
            tracing::error!(error = %e, "template failed to render");
            String::new()
        });
        Page::new(Bytes::from(html), "text/html; charset=utf-8", cache)
    }

    pub fn new(body: Bytes, content_type: &'static str, cache: Cache) -> Page {
        Page {
            status: StatusCode::OK,
            cache,
            surrogate_keys: Vec::new(),
            content_type,
            etag: None,
            last_modified: None,
            body,
        }
    }

    pub fn status(mut self, status: StatusCode) -> Page {
        self.status = status;
        self
    }

    pub fn keys(mut self, keys: impl IntoIterator<Item = String>) -> Page {
        self.surrogate_keys.extend(keys);
        self
    }

    pub fn etag(mut self, etag: String) -> Page {
        self.etag = Some(etag);
        self
    }

    pub fn last_modified(mut self, micros: i64) -> Page {
        self.last_modified = Some(micros);
        self
    }
}

/// Serves `page`. A publicly cacheable 200 carries a strong ETag (given, or
/// over the body) and, when known, `Last-Modified`; a request that already
/// holds this page gets `304 Not Modified`. `If-None-Match` wins over
/// `If-Modified-Since` (RFC 9110 §13.2.2).
pub fn respond(request: &HeaderMap, page: Page) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(page.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&page.cache.header()).expect("ascii"));
    security_headers(&mut headers);
    if !page.surrogate_keys.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&page.surrogate_keys.join(" ")) {
            headers.insert("surrogate-key", v);
        }
    }
    if page.cache != Cache::Private && page.status == StatusCode::OK {
        let etag = page.etag.clone().unwrap_or_else(|| etag_of(&page.body));
        headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
        // HTTP dates have one-second precision, so a page changed during the
        // current second could change again within it under the same date;
        // its Last-Modified is withheld until that second is over (the ETag
        // covers it meanwhile), which makes If-Modified-Since exact.
        let now_s = keel_domain::time::now_micros() / 1_000_000;
        let last_modified = page.last_modified.filter(|lm| lm / 1_000_000 < now_s);
        if let Some(lm) = last_modified {
            headers.insert(header::LAST_MODIFIED, HeaderValue::from_str(&http_date(lm)).expect("ascii"));
        }
        let fresh = match request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
            Some(v) => v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*"),
            None => match (last_modified, request.get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok())) {
                (Some(lm), Some(since)) => parse_http_date(since).is_some_and(|since| lm / 1_000_000 <= since),
                _ => false,
            },
        };
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
    }
    (page.status, headers, page.body).into_response()
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) from microseconds.
pub fn http_date(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Seconds since the epoch from an IMF-fixdate; `None` for anything else.
pub fn parse_http_date(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s.trim(), "%a, %d %b %Y %H:%M:%S GMT").ok().map(|d| d.and_utc().timestamp())
}

pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    crate::headers::baseline(headers);
}

#[derive(Template)]
#[template(path = "storefront/error.html", whitespace = "minimize")]
struct ErrorPage {
    shell: Shell,
    heading: &'static str,
    message: String,
}

/// The storefront's 404 page.
pub fn not_found(request: &HeaderMap) -> Response {
    let mut shell = Shell::new("Page not found", "This page does not exist.");
    shell.noindex = true;
    let page = ErrorPage { shell, heading: "Page not found", message: "We could not find that page. It may have moved, or the link may be mistyped.".into() };
    respond(request, Page::render(&page, Cache::Private).status(StatusCode::NOT_FOUND))
}

/// The page for a throttled sign-in, registration or order lookup: 429
/// with `Retry-After`.
pub fn too_many(request: &HeaderMap, retry_after_secs: u64) -> Response {
    let mut shell = Shell::new("Too many attempts", "Too many attempts.");
    shell.noindex = true;
    let wait = if retry_after_secs < 120 { format!("{retry_after_secs} seconds") } else { format!("{} minutes", retry_after_secs.div_ceil(60)) };
    let message = format!("There have been too many attempts. For your security, please wait {wait} and try again.");
    let page = ErrorPage { shell, heading: "Too many attempts", message };
    let mut r = respond(request, Page::render(&page, Cache::Private).status(StatusCode::TOO_MANY_REQUESTS));
    r.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from(retry_after_secs.max(1)));
    r
}

/// The storefront's error page for failures the shopper cannot fix.
pub fn server_error(request: &HeaderMap) -> Response {
    let mut shell = Shell::new("Something went wrong", "An error occurred.");
    shell.noindex = true;
    let page = ErrorPage { shell, heading: "Something went wrong", message: "Please try again in a moment. The problem has been logged.".into() };
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

fn currency_digits(currency: &str) -> u8 {
    keel_domain::money::Currency::parse("currency", currency).map(|c| c.minor_units()).unwrap_or(2)
}

/// Minor units as a plain decimal for machines: `1999` USD → `19.99`.
pub fn decimal_amount(amount: i64, currency: &str) -> String {
    let digits = currency_digits(currency);
    let scale = 10i64.pow(u32::from(digits));
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs() as i64;
    if digits == 0 {
        format!("{sign}{abs}")
    } else {
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = usize::from(digits))
    }
}

/// What a shopper typed as a price (`20`, `19.5`, `19.99`) in minor units;
/// `None` when it is not a non-negative amount with at most the currency's
/// digits, or is absurdly large.
pub fn parse_amount(text: &str, currency: &str) -> Option<i64> {
    let digits = usize::from(currency_digits(currency));
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !numeric(whole) || !numeric(frac) || frac.len() > digits || whole.len() > 9 {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac_units: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<digits$}").parse().ok()? };
    whole.checked_mul(10i64.pow(digits as u32))?.checked_add(frac_units)
}

#[cfg(test)]
mod tests {
    #[test]
    fn amounts_parse_and_print() {
        assert_eq!(parse_amount("20", "USD"), Some(2000));
        assert_eq!(parse_amount("19.5", "USD"), Some(1950));
        assert_eq!(parse_amount(" 0.99 ", "USD"), Some(99));
        assert_eq!(parse_amount("1200", "JPY"), Some(1200));
        for bad in ["", "-5", "1.999", "abc", "1e3", "12345678901", ".", "1.2.3"] {
            assert_eq!(parse_amount(bad, "USD"), None, "{bad}");
        }
        assert_eq!(decimal_amount(1999, "USD"), "19.99");
        assert_eq!(decimal_amount(5, "EUR"), "0.05");
        assert_eq!(decimal_amount(1200, "JPY"), "1200");
    }

    use super::*;

    #[test]
    fn http_dates_round_trip_at_second_precision() {
        let micros = 784_111_777_123_456;
        assert_eq!(http_date(micros), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn last_modified_is_withheld_during_the_second_of_the_change() {
        let now = keel_domain::time::now_micros();
        let mut request = HeaderMap::new();
        let page = |lm| Page::new(Bytes::from_static(b"x"), "text/plain", Cache::CATALOG).last_modified(lm);
        let fresh = respond(&request, page(now));
        assert!(fresh.headers().get(header::LAST_MODIFIED).is_none());
        let old = respond(&request, page(now - 5_000_000));
        let lm = old.headers()[header::LAST_MODIFIED].clone();
        request.insert(header::IF_MODIFIED_SINCE, lm.clone());
        assert_eq!(respond(&request, page(now - 5_000_000)).status(), StatusCode::NOT_MODIFIED);
        // Changed since: the current-second change is not hidden behind the old date.
        assert_eq!(respond(&request, page(now)).status(), StatusCode::OK);
    }

    #[test]
    fn public_url_is_validated() {
        let s = Settings::default().with_public_url("https://shop.example.com/").unwrap();
        assert_eq!(s.url("/sitemap.xml"), "https://shop.example.com/sitemap.xml");
        assert!(Settings::default().with_public_url("shop.example.com").is_err());
        assert!(Settings::default().with_public_url("https://evil\"><x").is_err());
    }

    #[test]
    fn money_is_formatted_with_the_currency_digits() {
        assert_eq!(format_money(1999, "USD"), "$19.99");
        assert_eq!(format_money(5, "EUR"), "€0.05");
        assert_eq!(format_money(1200, "JPY"), "¥1200");
        assert_eq!(format_money(-250, "CHF"), "-2.50 CHF");
    }
}

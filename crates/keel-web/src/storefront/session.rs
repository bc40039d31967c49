//! The storefront session as handlers see it: the `keel_session` cookie,
//! the [`Visitor`] extractor that loads it, and the storefront settings that
//! decide how the cookie is sent.
//!
//! A visitor without a cookie costs nothing: no row, no `Set-Cookie`, so
//! catalog pages stay cacheable. A session is created only when something
//! must be kept (a cart line, a sign-in, a form that needs a CSRF token).

use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::response::Response;
use keel_app::sessions::{NewSession, Session, SESSION_IDLE_MICROS};
use keel_app::App;

pub const COOKIE: &str = "keel_session";

/// The browser behind a storefront request and its session, if it has one.
/// Handlers that change the session pass their response through
/// [`Visitor::finish`], which sends the cookie when it changed.
pub struct Visitor {
    session: Option<Session>,
    /// The cookie to send: a new token, or `None` inside to clear it.
    cookie: Option<Option<String>>,
    secure: bool,
}

impl Visitor {
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The signed-in customer's id.
    pub fn customer_id(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.customer_id.as_deref())
    }

    /// Who a write is attributed to in the ledger and events.
    pub fn actor(&self) -> keel_app::Actor {
        match self.customer_id() {
            Some(c) => keel_app::Actor(format!("customer:{c}")),
            None => keel_app::Actor("storefront:guest".into()),
        }
    }

    /// The session, created now if the visitor has none.
    pub async fn ensure(&mut self, app: &App) -> keel_app::Result<&Session> {
        if self.session.is_none() {
            let new = app.start_session(None, None).await?;
            self.adopt(new);
        }
        Ok(self.session.as_ref().expect("just ensured"))
    }

    /// Signs `customer_id` in (or, with `None`, out while keeping the cart)
    /// under a new token; the old token stops working.
    pub async fn rotate(&mut self, app: &App, customer_id: Option<&str>) -> keel_app::Result<&Session> {
        let new = app.rotate_session(self.session.as_ref(), customer_id).await?;
        self.adopt(new);
        Ok(self.session.as_ref().expect("just rotated"))
    }

    /// Ends the session and clears the cookie.
    pub async fn end(&mut self, app: &App) -> keel_app::Result<()> {
        if let Some(s) = self.session.take() {
            app.end_session(&s).await?;
        }
        self.cookie = Some(None);
        Ok(())
    }

    pub(super) fn remember_cart(&mut self, cart_id: &str) {
        if let Some(s) = self.session.as_mut() {
            s.cart_id = Some(cart_id.to_owned());
        }
    }

    fn adopt(&mut self, new: NewSession) {
        self.cookie = Some(Some(new.token));
        self.session = Some(new.session);
    }

    /// Adds the `Set-Cookie` this visit calls for, if any.
    pub fn finish(&self, mut response: Response) -> Response {
        if let Some(cookie) = &self.cookie {
            let value = match cookie {
                Some(token) => set_cookie(token, SESSION_IDLE_MICROS / 1_000_000, self.secure),
                None => set_cookie("", 0, self.secure),
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }
}

fn set_cookie(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// The value of cookie `name` in the request, if sent.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let secure = state.storefront.secure_cookies;
        let Some(token) = cookie_value(&parts.headers, COOKIE).filter(|t| !t.is_empty()) else {
            return Ok(Visitor { session: None, cookie: None, secure });
        };
        match state.app.load_session(&token).await {
            Ok(Some(loaded)) => {
                // A refreshed idle timeout renews the cookie's lifetime too.
                let cookie = loaded.refreshed.then(|| Some(token.clone()));
                Ok(Visitor { session: Some(loaded.session), cookie, secure })
            }
            // Unknown or expired: forget it (the cookie is cleared if this
            // response sets any session state; otherwise it is harmless).
            Ok(None) => Ok(Visitor { session: None, cookie: None, secure }),
            Err(e) => Err(super::unexpected(&parts.headers, "loading the session", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_decides_the_origin_and_secure_cookies() {
        let c = crate::storefront::Settings::default().with_public_url("https://Shop.Example:8443/store/").unwrap();
        assert_eq!(c.public_origin.as_deref(), Some("https://shop.example:8443"));
        assert!(c.secure_cookies);
        let c = crate::storefront::Settings::default().with_public_url("http://127.0.0.1:7300").unwrap();
        assert!(!c.secure_cookies);
        assert!(crate::storefront::Settings::default().with_public_url("shop.example").is_err());
        assert!(crate::storefront::Settings::default().with_public_url("https://user@evil").is_err());
    }

    #[test]
    fn cookies_are_http_only_and_same_site_lax() {
        assert_eq!(set_cookie("t", 60, false), "keel_session=t; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
        assert!(set_cookie("t", 60, true).ends_with("; Secure"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; keel_session=abc; b=2"));
        assert_eq!(cookie_value(&h, COOKIE).as_deref(), Some("abc"));
    }
}

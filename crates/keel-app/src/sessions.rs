//! Storefront sessions: who a browser is (a cart, maybe a signed-in
//! customer) and the secret its forms' CSRF tokens derive from.
//!
//! The cookie carries a random 256-bit token; the database keeps only its
//! SHA-256, so reading the table does not let anyone act as a shopper (a
//! fast hash is enough for secrets of that entropy, as for API keys).
//! Sessions are created lazily — only when there is something to keep — end
//! after [`SESSION_IDLE_MICROS`] without activity, and are replaced by a new
//! token whenever the signed-in customer changes (session fixation defence).

use crate::apikeys::hash_secret;
use crate::orders::OrderView;
use crate::throttle::{address_key, Scope};
use crate::{in_tx, App, Result};
use base64::Engine;
use keel_domain::time::now_micros;
use keel_store::sessions::{self as db, SessionRow};
use rand::RngCore;

/// A session ends after 30 days without activity (a shopper's cart lives
/// that long with it; the cart itself expires on its own schedule).
pub const SESSION_IDLE_MICROS: i64 = 30 * 24 * 3600 * 1_000_000;
/// Activity is written at most this often, so reads stay reads.
const TOUCH_EVERY_MICROS: i64 = 3600 * 1_000_000;
/// Length of a token: 32 bytes in unpadded base64url.
const TOKEN_LEN: usize = 43;

/// What a session may show about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAccess {
    /// The session checked the order out: confirmation and status.
    Placed,
    /// The session gave the order number and email: status only, without
    /// where it ships.
    Lookup,
    /// The session also gave the shipping address's postal code: the status
    /// with the address.
    Verified,
}

impl OrderAccess {
    fn as_str(self) -> &'static str {
        match self {
            OrderAccess::Placed => "placed",
            OrderAccess::Lookup => "lookup",
            OrderAccess::Verified => "verified",
        }
    }
}

/// A live session. `Debug` leaves out the CSRF secret.
#[derive(Clone)]
pub struct Session {
    /// Hex SHA-256 of the cookie token.
    pub id: String,
    pub cart_id: Option<String>,
    pub customer_id: Option<String>,
    pub csrf_secret: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("cart_id", &self.cart_id).field("customer_id", &self.customer_id).finish_non_exhaustive()
    }
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Session {
        Session { id: r.id, cart_id: r.cart_id, customer_id: r.customer_id, csrf_secret: r.csrf_secret, expires_at: r.expires_at }
    }
}

/// A session just created, with the token to put in the cookie (shown once).
pub struct NewSession {
    pub token: String,
    pub session: Session,
}

/// A session loaded from a cookie; `refreshed` when its idle timeout was
/// restarted, so the cookie's lifetime should be renewed too.
pub struct LoadedSession {
    pub session: Session,
    pub refreshed: bool,
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}


fn plausible_token(token: &str) -> bool {
    token.len() == TOKEN_LEN && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn new_row(cart_id: Option<String>, customer_id: Option<String>) -> (String, SessionRow) {
    let token = random_b64(32);
    let now = now_micros();
    let row = SessionRow {
        id: hash_secret(&token),
        cart_id,
        customer_id,
        csrf_secret: random_b64(32),
        created_at: now,
        last_seen_at: now,
        expires_at: now + SESSION_IDLE_MICROS,
    };
    (token, row)
}

impl App {
    /// Starts a session (one transaction).
    pub async fn start_session(&self, cart_id: Option<&str>, customer_id: Option<&str>) -> Result<NewSession> {
        let (token, row) = new_row(cart_id.map(str::to_owned), customer_id.map(str::to_owned));
        in_tx!(self, |tx| Ok(db::insert(&mut tx, &row).await?))?;
        Ok(NewSession { token, session: row.into() })
    }

    /// The live session behind a cookie token, if any. Restarts its idle
    /// timeout when it was last recorded over an hour ago.
    pub async fn load_session(&self, token: &str) -> Result<Option<LoadedSession>> {
        if !plausible_token(token) {
            return Ok(None);
        }
        let id = hash_secret(token);
        let now = now_micros();
        let row = {
            let mut conn = self.store.reader().await?;
            db::get_live(&mut conn, &id, now).await?
        };
        let Some(mut row) = row else { return Ok(None) };
        let mut refreshed = false;
        if now - row.last_seen_at > TOUCH_EVERY_MICROS {
            let expires_at = now + SESSION_IDLE_MICROS;
            if in_tx!(self, |tx| Ok(db::touch(&mut tx, &id, now, expires_at).await?))? {
                row.last_seen_at = now;
                row.expires_at = expires_at;
                refreshed = true;
            }
        }
        Ok(Some(LoadedSession { session: row.into(), refreshed }))
    }

    /// Records the session's cart.
    pub async fn set_session_cart(&self, session: &Session, cart_id: &str) -> Result<()> {
        in_tx!(self, |tx| Ok(db::set_cart(&mut tx, &session.id, cart_id).await?))?;
        Ok(())
    }

    /// Replaces `old` (if any) with a new session for `customer_id` (`None`
    /// signs out but keeps the cart), in one transaction: the new token is
    /// issued, the cart and order access move over, the old row is deleted
    /// so the old token stops working.
    pub async fn rotate_session(&self, old: Option<&Session>, customer_id: Option<&str>) -> Result<NewSession> {
        let (token, row) = new_row(old.and_then(|s| s.cart_id.clone()), customer_id.map(str::to_owned));
        in_tx!(self, |tx| {
            db::insert(&mut tx, &row).await?;
            if let Some(old) = old {
                db::move_orders(&mut tx, &old.id, &row.id).await?;
                db::delete(&mut tx, &old.id).await?;
            }
            Ok(())
        })?;
        Ok(NewSession { token, session: row.into() })
    }

    /// Ends a session (sign out): its token stops working at once.
    pub async fn end_session(&self, session: &Session) -> Result<()> {
        in_tx!(self, |tx| Ok(db::delete(&mut tx, &session.id).await?))?;
        Ok(())
    }

    /// Lets `session` show `order_id`.
    pub async fn grant_session_order(&self, session: &Session, order_id: &str, access: OrderAccess) -> Result<()> {
        let now = now_micros();
        in_tx!(self, |tx| Ok(db::grant_order(&mut tx, &session.id, order_id, access.as_str(), now).await?))?;
        Ok(())
    }

    /// Whether `session` holds `access` to `order_id` (`Placed` implies
    /// the others, `Verified` implies `Lookup`).
    pub async fn session_may_show_order(&self, session: &Session, order_id: &str, access: OrderAccess) -> Result<bool> {
        let mut conn = self.store.reader().await?;
        let held = db::order_access(&mut conn, &session.id, order_id).await?;
        Ok(match access {
            OrderAccess::Placed => held.iter().any(|a| a == "placed"),
            OrderAccess::Lookup => !held.is_empty(),
            OrderAccess::Verified => held.iter().any(|a| a == "placed" || a == "verified"),
        })
    }

    /// The storefront's order lookup: the order with this number if `email`
    /// is its email, granting `session` [`OrderAccess::Lookup`]; else
    /// `None`. Throttled per email (its blind index) and per client address
    /// like a sign-in, since numbers are sequential: a miss counts, a hit
    /// gives its attempt back. Errors: 429 `TooManyAttempts`, 422 for an
    /// email that is not one.
    pub async fn lookup_order(&self, session: &Session, number: i64, email: &str, ip: &str, now: i64) -> Result<Option<OrderView>> {
        let index = self.secrets.blind_index(&crate::customers::normalise_email(email));
        let address = address_key(ip);
        let attempt = self.reserve_attempt(&[(Scope::LookupEmail, index.as_str()), (Scope::LookupAddress, address.as_str())], now).await?;
        let Some(order) = self.find_order_for_email(number, email).await? else {
            drop(attempt);
            return Ok(None);
        };
        self.grant_session_order(session, &order.id, OrderAccess::Lookup).await?;
        self.attempt_succeeded(attempt, &[]).await?;
        Ok(Some(order))
    }

    /// The second proof for a looked-up order: the postal code of its
    /// shipping address (spaces and case ignored). Grants
    /// [`OrderAccess::Verified`] and returns true when it matches. Counted
    /// per order and per address, so the few digits of a postal code cannot
    /// be walked. The session must already hold `Lookup`.
    pub async fn prove_order(&self, session: &Session, order_id: &str, postal_code: &str, ip: &str, now: i64) -> Result<bool> {
        if !self.session_may_show_order(session, order_id, OrderAccess::Lookup).await? {
            return Ok(false);
        }
        let address = address_key(ip);
        let attempt = self.reserve_attempt(&[(Scope::OrderProof, order_id), (Scope::LookupAddress, address.as_str())], now).await?;
        let order = self.get_order(order_id).await?;
        let tidy = |s: &str| s.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_uppercase).collect::<String>();
        let given = tidy(postal_code);
        let matches = !given.is_empty() && order.shipping_address.as_ref().is_some_and(|a| tidy(&a.postal_code) == given);
        if !matches {
            drop(attempt);
            return Ok(false);
        }
        self.grant_session_order(session, order_id, OrderAccess::Verified).await?;
        self.attempt_succeeded(attempt, &[Scope::OrderProof]).await?;
        Ok(true)
    }

    /// Deletes storefront sessions idle past their timeout, expired staff
    /// sessions and stale sign-in failure counters; returns how many.
    pub async fn purge_sessions(&self, now: i64) -> Result<u64> {
        let shop = in_tx!(self, |tx| Ok(db::purge_expired(&mut tx, now, 1000).await?))?;
        let stale_before = now - keel_domain::login::Throttle::ACCOUNT.window_micros.max(keel_domain::login::Throttle::ADDRESS.window_micros);
        let staff = in_tx!(self, |tx| Ok(keel_store::staff::purge_expired(&mut tx, now, stale_before).await?))?;
        Ok(shop + staff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_and_only_their_hash_is_kept() {
        let (token, row) = new_row(None, None);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(plausible_token(&token));
        assert_eq!(row.id, hash_secret(&token));
        assert_ne!(row.id, token);
        let (other, _) = new_row(None, None);
        assert_ne!(token, other);
        assert!(!plausible_token("short"));
        assert!(!plausible_token(&"a".repeat(42).replace('a', "%")));
    }
}

//! Storefront sessions. A session row is keyed by the SHA-256 of the cookie
//! token; the token itself is never stored.

use crate::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Clone)]
pub struct SessionRow {
    /// Hex SHA-256 of the cookie token.
    pub id: String,
    pub cart_id: Option<String>,
    pub customer_id: Option<String>,
    pub csrf_secret: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("cart_id", &self.cart_id)
            .field("customer_id", &self.customer_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, cart_id, customer_id, csrf_secret, created_at, last_seen_at, expires_at";

fn from_row(r: &AnyRow) -> Result<SessionRow> {
    Ok(SessionRow {
        id: r.try_get("id")?,
        cart_id: r.try_get("cart_id")?,
        customer_id: r.try_get("customer_id")?,
        csrf_secret: r.try_get("csrf_secret")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, s: &SessionRow) -> Result<()> {
    sqlx::query(&format!("INSERT INTO storefront_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
        .bind(&s.id)
        .bind(&s.cart_id)
        .bind(&s.customer_id)
        .bind(&s.csrf_secret)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// The session with this id, if it has not expired at `now`.
pub async fn get_live(conn: &mut AnyConnection, id: &str, now: i64) -> Result<Option<SessionRow>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM storefront_sessions WHERE id = $1 AND expires_at > $2"))
        .bind(id)
        .bind(now)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Records activity: the idle timeout restarts from `now`.
pub async fn touch(conn: &mut AnyConnection, id: &str, now: i64, expires_at: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE storefront_sessions SET last_seen_at = $2, expires_at = $3 WHERE id = $1 AND expires_at > $2")
        .bind(id)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_cart(conn: &mut AnyConnection, id: &str, cart_id: &str) -> Result<bool> {
    let done = sqlx::query("UPDATE storefront_sessions SET cart_id = $2 WHERE id = $1")
        .bind(id)
        .bind(cart_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<bool> {
    sqlx::query("DELETE FROM storefront_session_orders WHERE session_id = $1").bind(id).execute(&mut *conn).await?;
    let done = sqlx::query("DELETE FROM storefront_sessions WHERE id = $1").bind(id).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Moves what a session may show to another session (rotation).
pub async fn move_orders(conn: &mut AnyConnection, from: &str, to: &str) -> Result<()> {
    sqlx::query("UPDATE storefront_session_orders SET session_id = $2 WHERE session_id = $1")
        .bind(from)
        .bind(to)
        .execute(conn)
        .await?;
    Ok(())
}

/// Lets a session show an order; granting twice is a no-op.
pub async fn grant_order(conn: &mut AnyConnection, session_id: &str, order_id: &str, access: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO storefront_session_orders (session_id, order_id, access, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (session_id, order_id, access) DO NOTHING",
    )
    .bind(session_id)
    .bind(order_id)
    .bind(access)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The kinds of access (`placed`, `lookup`) a session holds to an order.
pub async fn order_access(conn: &mut AnyConnection, session_id: &str, order_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT access FROM storefront_session_orders WHERE session_id = $1 AND order_id = $2 ORDER BY access")
        .bind(session_id)
        .bind(order_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("access")?)).collect()
}

/// Deletes up to `limit` sessions expired at `now`; returns how many.
pub async fn purge_expired(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<u64> {
    let ids: Vec<String> = sqlx::query("SELECT id FROM storefront_sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2")
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut n = 0;
    for id in ids {
        n += u64::from(delete(conn, &id).await?);
    }
    Ok(n)
}

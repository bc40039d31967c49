//! Carts and their lines.

use crate::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct CartRow {
    pub id: String,
    pub status: String,
    pub currency: String,
    pub customer_id: Option<String>,
    pub email_enc: Option<String>,
    pub email_index: Option<String>,
    pub shipping_address_enc: Option<String>,
    pub shipping_country: Option<String>,
    pub shipping_region: Option<String>,
    pub shipping_method_id: Option<String>,
    pub order_id: Option<String>,
    pub version: i64,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct CartLineRow {
    pub id: String,
    pub cart_id: String,
    pub variant_id: String,
    pub sku: String,
    pub title: String,
    pub unit_amount: i64,
    pub quantity: i64,
    pub created_at: i64,
}

const COLUMNS: &str = "id, status, currency, customer_id, email_enc, email_index, shipping_address_enc, \
     shipping_country, shipping_region, shipping_method_id, order_id, version, expires_at, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<CartRow> {
    Ok(CartRow {
        id: r.try_get("id")?,
        status: r.try_get("status")?,
        currency: r.try_get("currency")?,
        customer_id: r.try_get("customer_id")?,
        email_enc: r.try_get("email_enc")?,
        email_index: r.try_get("email_index")?,
        shipping_address_enc: r.try_get("shipping_address_enc")?,
        shipping_country: r.try_get("shipping_country")?,
        shipping_region: r.try_get("shipping_region")?,
        shipping_method_id: r.try_get("shipping_method_id")?,
        order_id: r.try_get("order_id")?,
        version: r.try_get("version")?,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, c: &CartRow) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO carts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    ))
    .bind(&c.id)
    .bind(&c.status)
    .bind(&c.currency)
    .bind(&c.customer_id)
    .bind(&c.email_enc)
    .bind(&c.email_index)
    .bind(&c.shipping_address_enc)
    .bind(&c.shipping_country)
    .bind(&c.shipping_region)
    .bind(&c.shipping_method_id)
    .bind(&c.order_id)
    .bind(c.version)
    .bind(c.expires_at)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the mutable fields if the cart is still in `expected_status`;
/// returns the new version, or `None` when the status moved on.
pub async fn update(conn: &mut AnyConnection, c: &CartRow, expected_status: &str) -> Result<Option<i64>> {
    let row = sqlx::query(
        "UPDATE carts SET status = $2, customer_id = $3, email_enc = $4, email_index = $5, shipping_address_enc = $6, \
         shipping_country = $7, shipping_region = $8, shipping_method_id = $9, order_id = $10, expires_at = $11, \
         updated_at = $12, version = version + 1 WHERE id = $1 AND status = $13 RETURNING version",
    )
    .bind(&c.id)
    .bind(&c.status)
    .bind(&c.customer_id)
    .bind(&c.email_enc)
    .bind(&c.email_index)
    .bind(&c.shipping_address_enc)
    .bind(&c.shipping_country)
    .bind(&c.shipping_region)
    .bind(&c.shipping_method_id)
    .bind(&c.order_id)
    .bind(c.expires_at)
    .bind(c.updated_at)
    .bind(expected_status)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("version")?),
        None => None,
    })
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<CartRow>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM carts WHERE id = $1")).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn lines(conn: &mut AnyConnection, cart_id: &str) -> Result<Vec<CartLineRow>> {
    let rows = sqlx::query(
        "SELECT id, cart_id, variant_id, sku, title, unit_amount, quantity, created_at FROM cart_lines \
         WHERE cart_id = $1 ORDER BY created_at, id",
    )
    .bind(cart_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CartLineRow {
                id: r.try_get("id")?,
                cart_id: r.try_get("cart_id")?,
                variant_id: r.try_get("variant_id")?,
                sku: r.try_get("sku")?,
                title: r.try_get("title")?,
                unit_amount: r.try_get("unit_amount")?,
                quantity: r.try_get("quantity")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

pub async fn insert_line(conn: &mut AnyConnection, l: &CartLineRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO cart_lines (id, cart_id, variant_id, sku, title, unit_amount, quantity, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&l.id)
    .bind(&l.cart_id)
    .bind(&l.variant_id)
    .bind(&l.sku)
    .bind(&l.title)
    .bind(l.unit_amount)
    .bind(l.quantity)
    .bind(l.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_line_quantity(conn: &mut AnyConnection, cart_id: &str, line_id: &str, quantity: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE cart_lines SET quantity = $3 WHERE cart_id = $1 AND id = $2")
        .bind(cart_id)
        .bind(line_id)
        .bind(quantity)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_line(conn: &mut AnyConnection, cart_id: &str, line_id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM cart_lines WHERE cart_id = $1 AND id = $2")
        .bind(cart_id)
        .bind(line_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Open carts past their expiry.
pub async fn expired(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM carts WHERE status = 'open' AND expires_at <= $1 ORDER BY expires_at LIMIT $2")
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

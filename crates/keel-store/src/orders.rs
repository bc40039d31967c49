//! Checkouts (the steps from cart to order), orders, their lines, refunds,
//! order numbers, and the test payment provider's ledger.

use crate::{Backend, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct CheckoutRow {
    pub id: String,
    pub cart_id: String,
    pub status: String,
    pub reservation_id: Option<String>,
    pub payment_provider: String,
    pub payment_method: String,
    pub payment_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub order_id: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub lease_until: i64,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The request that started it (hashed API key scope + Idempotency-Key).
    pub request_key: Option<String>,
}

const CHECKOUT_COLUMNS: &str = "id, cart_id, status, reservation_id, payment_provider, payment_method, payment_id, \
     amount, currency, order_id, failure_code, failure_message, lease_until, version, created_at, updated_at, request_key";

fn checkout_from_row(r: &AnyRow) -> Result<CheckoutRow> {
    Ok(CheckoutRow {
        id: r.try_get("id")?,
        cart_id: r.try_get("cart_id")?,
        status: r.try_get("status")?,
        reservation_id: r.try_get("reservation_id")?,
        payment_provider: r.try_get("payment_provider")?,
        payment_method: r.try_get("payment_method")?,
        payment_id: r.try_get("payment_id")?,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        order_id: r.try_get("order_id")?,
        failure_code: r.try_get("failure_code")?,
        failure_message: r.try_get("failure_message")?,
        lease_until: r.try_get("lease_until")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        request_key: r.try_get("request_key")?,
    })
}

pub async fn insert_checkout(conn: &mut AnyConnection, c: &CheckoutRow) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO checkouts ({CHECKOUT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    ))
    .bind(&c.id)
    .bind(&c.cart_id)
    .bind(&c.status)
    .bind(&c.reservation_id)
    .bind(&c.payment_provider)
    .bind(&c.payment_method)
    .bind(&c.payment_id)
    .bind(c.amount)
    .bind(&c.currency)
    .bind(&c.order_id)
    .bind(&c.failure_code)
    .bind(&c.failure_message)
    .bind(c.lease_until)
    .bind(c.version)
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(&c.request_key)
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest checkout of `cart_id` started by the request `request_key`.
pub async fn checkout_for_request(conn: &mut AnyConnection, cart_id: &str, request_key: &str) -> Result<Option<CheckoutRow>> {
    let row = sqlx::query(&format!(
        "SELECT {CHECKOUT_COLUMNS} FROM checkouts WHERE cart_id = $1 AND request_key = $2 ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(cart_id)
    .bind(request_key)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(checkout_from_row).transpose()
}

/// Moves a checkout from `from` to the row's status and fields; `false` when
/// it was no longer in `from` (another node or the recovery worker won).
pub async fn advance_checkout(conn: &mut AnyConnection, c: &CheckoutRow, from: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE checkouts SET status = $2, reservation_id = $3, payment_id = $4, order_id = $5, failure_code = $6, \
         failure_message = $7, lease_until = $8, updated_at = $9, version = version + 1 WHERE id = $1 AND status = $10",
    )
    .bind(&c.id)
    .bind(&c.status)
    .bind(&c.reservation_id)
    .bind(&c.payment_id)
    .bind(&c.order_id)
    .bind(&c.failure_code)
    .bind(&c.failure_message)
    .bind(c.lease_until)
    .bind(c.updated_at)
    .bind(from)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get_checkout(conn: &mut AnyConnection, id: &str) -> Result<Option<CheckoutRow>> {
    let row = sqlx::query(&format!("SELECT {CHECKOUT_COLUMNS} FROM checkouts WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(checkout_from_row).transpose()
}

/// Checkouts stuck mid-way whose lease has run out (their process died).
pub async fn stalled_checkouts(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM checkouts WHERE status IN ('reserved', 'authorizing', 'authorized') AND lease_until <= $1 \
         ORDER BY lease_until LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

/// Takes over a stalled checkout by extending its lease; `false` if another
/// worker got it first or it has moved on.
pub async fn take_lease(conn: &mut AnyConnection, id: &str, now: i64, until: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE checkouts SET lease_until = $3, version = version + 1 WHERE id = $1 AND lease_until <= $2 \
         AND status IN ('reserved', 'authorizing', 'authorized')",
    )
    .bind(id)
    .bind(now)
    .bind(until)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone)]
pub struct OrderRow {
    pub id: String,
    pub number: i64,
    pub cart_id: String,
    pub checkout_id: String,
    pub customer_id: Option<String>,
    pub email_enc: Option<String>,
    pub email_index: Option<String>,
    pub status: String,
    pub payment_status: String,
    pub currency: String,
    pub subtotal: i64,
    pub discount_total: i64,
    pub shipping_total: i64,
    pub tax_total: i64,
    pub total: i64,
    pub tax_inclusive: bool,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub shipping_address_enc: Option<String>,
    pub shipping_country: Option<String>,
    pub shipping_method_id: Option<String>,
    pub reservation_id: Option<String>,
    pub payment_provider: String,
    pub payment_id: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct OrderLineRow {
    pub position: i64,
    pub variant_id: String,
    pub sku: String,
    pub title: String,
    pub unit_amount: i64,
    pub quantity: i64,
}

const ORDER_COLUMNS: &str = "id, number, cart_id, checkout_id, customer_id, email_enc, email_index, status, \
     payment_status, currency, subtotal, discount_total, shipping_total, tax_total, total, tax_inclusive, \
     amount_captured, amount_refunded, shipping_address_enc, shipping_country, shipping_method_id, reservation_id, \
     payment_provider, payment_id, version, created_at, updated_at";

fn order_from_row(r: &AnyRow) -> Result<OrderRow> {
    Ok(OrderRow {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        cart_id: r.try_get("cart_id")?,
        checkout_id: r.try_get("checkout_id")?,
        customer_id: r.try_get("customer_id")?,
        email_enc: r.try_get("email_enc")?,
        email_index: r.try_get("email_index")?,
        status: r.try_get("status")?,
        payment_status: r.try_get("payment_status")?,
        currency: r.try_get("currency")?,
        subtotal: r.try_get("subtotal")?,
        discount_total: r.try_get("discount_total")?,
        shipping_total: r.try_get("shipping_total")?,
        tax_total: r.try_get("tax_total")?,
        total: r.try_get("total")?,
        tax_inclusive: r.try_get::<i64, _>("tax_inclusive")? != 0,
        amount_captured: r.try_get("amount_captured")?,
        amount_refunded: r.try_get("amount_refunded")?,
        shipping_address_enc: r.try_get("shipping_address_enc")?,
        shipping_country: r.try_get("shipping_country")?,
        shipping_method_id: r.try_get("shipping_method_id")?,
        reservation_id: r.try_get("reservation_id")?,
        payment_provider: r.try_get("payment_provider")?,
        payment_id: r.try_get("payment_id")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The next order number (1001, 1002, …).
pub async fn next_order_number(conn: &mut AnyConnection) -> Result<i64> {
    let row = match Backend::of(conn) {
        Backend::Postgres => sqlx::query("SELECT nextval('order_number_seq') AS n").fetch_one(conn).await?,
        Backend::Sqlite => {
            sqlx::query(
                "INSERT INTO counters (name, value) VALUES ('order_number', 1001) \
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value AS n",
            )
            .fetch_one(conn)
            .await?
        }
    };
    Ok(row.try_get("n")?)
}

pub async fn insert_order(conn: &mut AnyConnection, o: &OrderRow, lines: &[OrderLineRow]) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)"
    ))
    .bind(&o.id)
    .bind(o.number)
    .bind(&o.cart_id)
    .bind(&o.checkout_id)
    .bind(&o.customer_id)
    .bind(&o.email_enc)
    .bind(&o.email_index)
    .bind(&o.status)
    .bind(&o.payment_status)
    .bind(&o.currency)
    .bind(o.subtotal)
    .bind(o.discount_total)
    .bind(o.shipping_total)
    .bind(o.tax_total)
    .bind(o.total)
    .bind(i64::from(o.tax_inclusive))
    .bind(o.amount_captured)
    .bind(o.amount_refunded)
    .bind(&o.shipping_address_enc)
    .bind(&o.shipping_country)
    .bind(&o.shipping_method_id)
    .bind(&o.reservation_id)
    .bind(&o.payment_provider)
    .bind(&o.payment_id)
    .bind(o.version)
    .bind(o.created_at)
    .bind(o.updated_at)
    .execute(&mut *conn)
    .await?;
    for l in lines {
        sqlx::query(
            "INSERT INTO order_lines (order_id, position, variant_id, sku, title, unit_amount, quantity) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&o.id)
        .bind(l.position)
        .bind(&l.variant_id)
        .bind(&l.sku)
        .bind(&l.title)
        .bind(l.unit_amount)
        .bind(l.quantity)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Writes status and money fields if the order is still at `version`;
/// returns the new version.
pub async fn update_order(conn: &mut AnyConnection, o: &OrderRow, expected_version: i64) -> Result<Option<i64>> {
    let row = sqlx::query(
        "UPDATE orders SET status = $2, payment_status = $3, amount_captured = $4, amount_refunded = $5, \
         updated_at = $6, version = version + 1 WHERE id = $1 AND version = $7 RETURNING version",
    )
    .bind(&o.id)
    .bind(&o.status)
    .bind(&o.payment_status)
    .bind(o.amount_captured)
    .bind(o.amount_refunded)
    .bind(o.updated_at)
    .bind(expected_version)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("version")?),
        None => None,
    })
}

pub async fn get_order(conn: &mut AnyConnection, id: &str) -> Result<Option<OrderRow>> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1")).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(order_from_row).transpose()
}

pub async fn order_by_number(conn: &mut AnyConnection, number: i64) -> Result<Option<OrderRow>> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE number = $1"))
        .bind(number)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

pub async fn order_by_payment(conn: &mut AnyConnection, payment_id: &str) -> Result<Option<OrderRow>> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE payment_id = $1"))
        .bind(payment_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

pub async fn order_lines(conn: &mut AnyConnection, order_id: &str) -> Result<Vec<OrderLineRow>> {
    let rows = sqlx::query(
        "SELECT position, variant_id, sku, title, unit_amount, quantity FROM order_lines WHERE order_id = $1 ORDER BY position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OrderLineRow {
                position: r.try_get("position")?,
                variant_id: r.try_get("variant_id")?,
                sku: r.try_get("sku")?,
                title: r.try_get("title")?,
                unit_amount: r.try_get("unit_amount")?,
                quantity: r.try_get("quantity")?,
            })
        })
        .collect()
}

/// Newest first, optionally by status, customer or email index.
pub async fn list_orders(
    conn: &mut AnyConnection,
    status: Option<&str>,
    customer_id: Option<&str>,
    email_index: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<OrderRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR customer_id = $2) \
         AND ($3 IS NULL OR email_index = $3) AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
    ))
    .bind(status)
    .bind(customer_id)
    .bind(email_index)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(order_from_row).collect()
}

#[derive(Debug, Clone)]
pub struct RefundRow {
    pub id: String,
    pub order_id: String,
    pub provider_refund_id: Option<String>,
    pub amount: i64,
    pub reason: Option<String>,
    pub status: String,
    pub actor: String,
    pub created_at: i64,
}

pub async fn insert_refund(conn: &mut AnyConnection, r: &RefundRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO refunds (id, order_id, provider_refund_id, amount, reason, status, actor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.order_id)
    .bind(&r.provider_refund_id)
    .bind(r.amount)
    .bind(&r.reason)
    .bind(&r.status)
    .bind(&r.actor)
    .bind(r.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn refunds_of(conn: &mut AnyConnection, order_id: &str) -> Result<Vec<RefundRow>> {
    let rows = sqlx::query(
        "SELECT id, order_id, provider_refund_id, amount, reason, status, actor, created_at FROM refunds \
         WHERE order_id = $1 ORDER BY created_at, id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RefundRow {
                id: r.try_get("id")?,
                order_id: r.try_get("order_id")?,
                provider_refund_id: r.try_get("provider_refund_id")?,
                amount: r.try_get("amount")?,
                reason: r.try_get("reason")?,
                status: r.try_get("status")?,
                actor: r.try_get("actor")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

pub async fn test_payment_load(conn: &mut AnyConnection, key: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT value FROM test_payments WHERE key = $1").bind(key).fetch_optional(conn).await?;
    Ok(match row {
        Some(r) => Some(r.try_get("value")?),
        None => None,
    })
}

pub async fn test_payment_save(conn: &mut AnyConnection, key: &str, value: &str) -> Result<()> {
    sqlx::query("INSERT INTO test_payments (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(value)
        .execute(conn)
        .await?;
    Ok(())
}

/// Events of one aggregate in order: an order's timeline.
pub async fn timeline(conn: &mut AnyConnection, aggregate_id: &str) -> Result<Vec<crate::outbox::Event>> {
    crate::outbox::of_aggregate(conn, aggregate_id).await
}

/// What the admin order list narrows to; `None` matches any.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderFilter<'a> {
    pub status: Option<&'a str>,
    pub payment_status: Option<&'a str>,
    pub number: Option<i64>,
    /// The blind index of a normalised email.
    pub email_index: Option<&'a str>,
    /// Placed at or after (µs).
    pub placed_from: Option<i64>,
    /// Placed before (µs).
    pub placed_before: Option<i64>,
}

/// One row of the admin order list.
#[derive(Debug, Clone)]
pub struct OrderSummaryRow {
    pub id: String,
    pub number: i64,
    pub email_enc: Option<String>,
    pub status: String,
    pub payment_status: String,
    pub currency: String,
    pub total: i64,
    /// Units over all lines.
    pub item_count: i64,
    pub created_at: i64,
}

/// Newest first (ids are time-ordered), filtered, paged by offset, with
/// each order's unit count, in one query.
pub async fn order_summaries(conn: &mut AnyConnection, f: &OrderFilter<'_>, offset: i64, limit: i64) -> Result<Vec<OrderSummaryRow>> {
    let rows = sqlx::query(
        "SELECT o.id, o.number, o.email_enc, o.status, o.payment_status, o.currency, o.total, o.created_at, \
         CAST(COALESCE((SELECT SUM(l.quantity) FROM order_lines l WHERE l.order_id = o.id), 0) AS BIGINT) AS item_count \
         FROM orders o WHERE ($1 IS NULL OR o.status = $1) AND ($2 IS NULL OR o.payment_status = $2) \
         AND ($3 IS NULL OR o.number = $3) AND ($4 IS NULL OR o.email_index = $4) \
         AND ($5 IS NULL OR o.created_at >= $5) AND ($6 IS NULL OR o.created_at < $6) \
         ORDER BY o.id DESC LIMIT $7 OFFSET $8",
    )
    .bind(f.status)
    .bind(f.payment_status)
    .bind(f.number)
    .bind(f.email_index)
    .bind(f.placed_from)
    .bind(f.placed_before)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OrderSummaryRow {
                id: r.try_get("id")?,
                number: r.try_get("number")?,
                email_enc: r.try_get("email_enc")?,
                status: r.try_get("status")?,
                payment_status: r.try_get("payment_status")?,
                currency: r.try_get("currency")?,
                total: r.try_get("total")?,
                item_count: r.try_get("item_count")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

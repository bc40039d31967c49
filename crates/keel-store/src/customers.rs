//! Customers and their addresses; personal fields are stored encrypted.
//!
//! This module never sees plaintext personal data: callers (keel-app) pass
//! ciphertexts (`*_enc`) and blind indexes, and decrypt what they read.

use crate::{Backend, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct CustomerRow {
    pub id: String,
    /// `account` or `guest`.
    pub kind: String,
    /// Blind index of the normalised email.
    pub email_index: String,
    pub email_enc: String,
    pub first_name_enc: Option<String>,
    pub last_name_enc: Option<String>,
    pub phone_enc: Option<String>,
    /// Argon2id PHC string; accounts only.
    pub password_hash: Option<String>,
    pub marketing_opt_in: bool,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl CustomerRow {
    /// The uniquely-constrained copy of the email index: set for accounts
    /// only, so guests may share an email.
    fn account_email_index(&self) -> Option<&str> {
        (self.kind == "account").then_some(self.email_index.as_str())
    }
}

const COLUMNS: &str = "id, kind, email_index, email_enc, first_name_enc, last_name_enc, phone_enc, password_hash, \
                       marketing_opt_in, version, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<CustomerRow> {
    let opt_in: i64 = r.try_get("marketing_opt_in")?;
    Ok(CustomerRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        email_index: r.try_get("email_index")?,
        email_enc: r.try_get("email_enc")?,
        first_name_enc: r.try_get("first_name_enc")?,
        last_name_enc: r.try_get("last_name_enc")?,
        phone_enc: r.try_get("phone_enc")?,
        password_hash: r.try_get("password_hash")?,
        marketing_opt_in: opt_in != 0,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Inserts a customer. An account whose email is already registered fails
/// with a unique violation on `customers.account_email_index`.
pub async fn insert(conn: &mut AnyConnection, c: &CustomerRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO customers (id, kind, email_index, account_email_index, email_enc, first_name_enc, last_name_enc, \
         phone_enc, password_hash, marketing_opt_in, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&c.id)
    .bind(&c.kind)
    .bind(&c.email_index)
    .bind(c.account_email_index())
    .bind(&c.email_enc)
    .bind(&c.first_name_enc)
    .bind(&c.last_name_enc)
    .bind(&c.phone_enc)
    .bind(&c.password_hash)
    .bind(i64::from(c.marketing_opt_in))
    .bind(c.version)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes every mutable field and bumps the version; `None` if the customer
/// is gone. An account moved to a registered email fails with a unique
/// violation on `customers.account_email_index`.
pub async fn update(conn: &mut AnyConnection, c: &CustomerRow) -> Result<Option<i64>> {
    let row = sqlx::query(
        "UPDATE customers SET kind = $2, email_index = $3, account_email_index = $4, email_enc = $5, \
         first_name_enc = $6, last_name_enc = $7, phone_enc = $8, password_hash = $9, marketing_opt_in = $10, \
         version = version + 1, updated_at = $11 WHERE id = $1 RETURNING version",
    )
    .bind(&c.id)
    .bind(&c.kind)
    .bind(&c.email_index)
    .bind(c.account_email_index())
    .bind(&c.email_enc)
    .bind(&c.first_name_enc)
    .bind(&c.last_name_enc)
    .bind(&c.phone_enc)
    .bind(&c.password_hash)
    .bind(i64::from(c.marketing_opt_in))
    .bind(c.updated_at)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("version")?),
        None => None,
    })
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<CustomerRow>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM customers WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Reads a customer inside a write transaction, locking its row on
/// PostgreSQL so concurrent changes to the same customer queue up (SQLite
/// has a single writer already).
pub async fn get_for_update(conn: &mut AnyConnection, id: &str) -> Result<Option<CustomerRow>> {
    let lock = if Backend::of(conn) == Backend::Postgres { " FOR UPDATE" } else { "" };
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM customers WHERE id = $1{lock}"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Bumps a customer's version (its addresses are part of the aggregate) and
/// locks its row for the rest of the transaction; the new version, or `None`
/// if there is no such customer.
pub async fn touch(conn: &mut AnyConnection, id: &str) -> Result<Option<i64>> {
    let row = sqlx::query("UPDATE customers SET version = version + 1 WHERE id = $1 RETURNING version")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("version")?),
        None => None,
    })
}

/// Newest first, optionally only those whose email has blind index
/// `email_index`.
pub async fn list(
    conn: &mut AnyConnection,
    email_index: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<CustomerRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM customers WHERE ($1 IS NULL OR email_index = $1) AND ($2 IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(email_index)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The registered account with this email index, if any.
pub async fn account_by_email_index(conn: &mut AnyConnection, email_index: &str) -> Result<Option<CustomerRow>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM customers WHERE account_email_index = $1"))
        .bind(email_index)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The most recently created guest with this email index, if any.
pub async fn latest_guest_by_email_index(conn: &mut AnyConnection, email_index: &str) -> Result<Option<CustomerRow>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM customers WHERE email_index = $1 AND kind = 'guest' ORDER BY id DESC LIMIT 1"
    ))
    .bind(email_index)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

#[derive(Debug, Clone)]
pub struct AddressRow {
    pub id: String,
    pub customer_id: String,
    pub name_enc: String,
    pub line1_enc: String,
    pub line2_enc: Option<String>,
    pub city_enc: String,
    pub region_enc: Option<String>,
    pub postal_code_enc: Option<String>,
    /// ISO 3166-1 alpha-2, in clear.
    pub country: String,
    pub phone_enc: Option<String>,
    pub is_default_shipping: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const ADDRESS_COLUMNS: &str = "id, customer_id, name_enc, line1_enc, line2_enc, city_enc, region_enc, postal_code_enc, \
                               country, phone_enc, is_default_shipping, created_at, updated_at";

fn address_from_row(r: &AnyRow) -> Result<AddressRow> {
    let default: i64 = r.try_get("is_default_shipping")?;
    Ok(AddressRow {
        id: r.try_get("id")?,
        customer_id: r.try_get("customer_id")?,
        name_enc: r.try_get("name_enc")?,
        line1_enc: r.try_get("line1_enc")?,
        line2_enc: r.try_get("line2_enc")?,
        city_enc: r.try_get("city_enc")?,
        region_enc: r.try_get("region_enc")?,
        postal_code_enc: r.try_get("postal_code_enc")?,
        country: r.try_get("country")?,
        phone_enc: r.try_get("phone_enc")?,
        is_default_shipping: default != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert_address(conn: &mut AnyConnection, a: &AddressRow) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO customer_addresses ({ADDRESS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&a.id)
    .bind(&a.customer_id)
    .bind(&a.name_enc)
    .bind(&a.line1_enc)
    .bind(&a.line2_enc)
    .bind(&a.city_enc)
    .bind(&a.region_enc)
    .bind(&a.postal_code_enc)
    .bind(&a.country)
    .bind(&a.phone_enc)
    .bind(i64::from(a.is_default_shipping))
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes every mutable field of an address; false if it is gone.
pub async fn update_address(conn: &mut AnyConnection, a: &AddressRow) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE customer_addresses SET name_enc = $3, line1_enc = $4, line2_enc = $5, city_enc = $6, region_enc = $7, \
         postal_code_enc = $8, country = $9, phone_enc = $10, is_default_shipping = $11, updated_at = $12 \
         WHERE id = $1 AND customer_id = $2",
    )
    .bind(&a.id)
    .bind(&a.customer_id)
    .bind(&a.name_enc)
    .bind(&a.line1_enc)
    .bind(&a.line2_enc)
    .bind(&a.city_enc)
    .bind(&a.region_enc)
    .bind(&a.postal_code_enc)
    .bind(&a.country)
    .bind(&a.phone_enc)
    .bind(i64::from(a.is_default_shipping))
    .bind(a.updated_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Clears the default-shipping flag on the customer's other addresses, so
/// `keep` (if any) can take it.
pub async fn clear_default_shipping(conn: &mut AnyConnection, customer_id: &str, keep: Option<&str>, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE customer_addresses SET is_default_shipping = 0, updated_at = $3 \
         WHERE customer_id = $1 AND is_default_shipping = 1 AND ($2 IS NULL OR id <> $2)",
    )
    .bind(customer_id)
    .bind(keep)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_address(conn: &mut AnyConnection, customer_id: &str, id: &str) -> Result<Option<AddressRow>> {
    let row = sqlx::query(&format!(
        "SELECT {ADDRESS_COLUMNS} FROM customer_addresses WHERE id = $1 AND customer_id = $2"
    ))
    .bind(id)
    .bind(customer_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(address_from_row).transpose()
}

/// A customer's addresses, newest first.
pub async fn list_addresses(
    conn: &mut AnyConnection,
    customer_id: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<AddressRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {ADDRESS_COLUMNS} FROM customer_addresses WHERE customer_id = $1 AND ($2 IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(customer_id)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(address_from_row).collect()
}

pub async fn count_addresses(conn: &mut AnyConnection, customer_id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM customer_addresses WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("n")?)
}

/// Deletes an address; false if there was none.
pub async fn delete_address(conn: &mut AnyConnection, customer_id: &str, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM customer_addresses WHERE id = $1 AND customer_id = $2")
        .bind(id)
        .bind(customer_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Every text value stored for a customer, exactly as in the tables: the
/// customer row and its address rows (ids, kinds, ciphertexts, indexes,
/// hashes, countries). For audits that personal data is not kept in clear.
pub async fn stored_text(conn: &mut AnyConnection, customer_id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let customer = sqlx::query(
        "SELECT id, kind, email_index, account_email_index, email_enc, first_name_enc, last_name_enc, phone_enc, \
         password_hash FROM customers WHERE id = $1",
    )
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    let addresses = sqlx::query(&format!("SELECT {ADDRESS_COLUMNS} FROM customer_addresses WHERE customer_id = $1"))
        .bind(customer_id)
        .fetch_all(&mut *conn)
        .await?;
    for row in customer.iter().chain(addresses.iter()) {
        for i in 0..row.len() {
            if let Ok(Some(s)) = row.try_get::<Option<String>, _>(i) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

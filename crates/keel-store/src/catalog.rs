//! Products, variants, prices, components and sales channels.

use crate::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct ProductRow {
    pub id: String,
    pub handle: String,
    pub title: String,
    pub description: Option<String>,
    pub status: String,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct VariantRow {
    pub id: String,
    pub product_id: String,
    pub sku: String,
    pub title: String,
    /// JSON object of option name → value.
    pub options: String,
    pub position: i64,
    pub archived_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub prices: Vec<(String, i64)>,
    pub components: Vec<Component>,
}

#[derive(Debug, Clone)]
pub struct Component {
    pub inventory_item_id: String,
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone)]
pub struct ChannelRow {
    pub id: String,
    pub handle: String,
    pub name: String,
    pub archived_at: Option<i64>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const CHANNEL_COLUMNS: &str = "id, handle, name, archived_at, version, created_at, updated_at";

pub(crate) const PRODUCT_COLUMNS: &str =
    "id, handle, title, description, status, seo_title, seo_description, version, created_at, updated_at";

pub(crate) fn product_from_row(r: &AnyRow) -> Result<ProductRow> {
    Ok(ProductRow {
        id: r.try_get("id")?,
        handle: r.try_get("handle")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        status: r.try_get("status")?,
        seo_title: r.try_get("seo_title")?,
        seo_description: r.try_get("seo_description")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert_product(conn: &mut AnyConnection, p: &ProductRow) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO products ({PRODUCT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(&p.id)
    .bind(&p.handle)
    .bind(&p.title)
    .bind(&p.description)
    .bind(&p.status)
    .bind(&p.seo_title)
    .bind(&p.seo_description)
    .bind(p.version)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes every mutable field and bumps the version; returns the new version.
pub async fn update_product(conn: &mut AnyConnection, p: &ProductRow) -> Result<Option<i64>> {
    let row = sqlx::query(
        "UPDATE products SET handle = $2, title = $3, description = $4, status = $5, seo_title = $6, \
         seo_description = $7, version = version + 1, updated_at = $8 WHERE id = $1 RETURNING version",
    )
    .bind(&p.id)
    .bind(&p.handle)
    .bind(&p.title)
    .bind(&p.description)
    .bind(&p.status)
    .bind(&p.seo_title)
    .bind(&p.seo_description)
    .bind(p.updated_at)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("version")?),
        None => None,
    })
}

pub async fn get_product(conn: &mut AnyConnection, id: &str) -> Result<Option<ProductRow>> {
    let row = sqlx::query(&format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(product_from_row).transpose()
}

/// Newest first; `before` is the id the previous page ended on.
pub async fn list_products(
    conn: &mut AnyConnection,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<ProductRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(status)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(product_from_row).collect()
}

pub async fn insert_variant(conn: &mut AnyConnection, v: &VariantRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO variants (id, product_id, sku, title, options, position, archived_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&v.id)
    .bind(&v.product_id)
    .bind(&v.sku)
    .bind(&v.title)
    .bind(&v.options)
    .bind(v.position)
    .bind(v.archived_at)
    .bind(v.created_at)
    .bind(v.updated_at)
    .execute(&mut *conn)
    .await?;
    set_prices(conn, &v.id, &v.prices).await
}

pub async fn update_variant(conn: &mut AnyConnection, v: &VariantRow) -> Result<()> {
    sqlx::query(
        "UPDATE variants SET title = $2, options = $3, position = $4, archived_at = $5, updated_at = $6 WHERE id = $1",
    )
    .bind(&v.id)
    .bind(&v.title)
    .bind(&v.options)
    .bind(v.position)
    .bind(v.archived_at)
    .bind(v.updated_at)
    .execute(&mut *conn)
    .await?;
    set_prices(conn, &v.id, &v.prices).await
}

/// Replaces a variant's price list.
pub async fn set_prices(conn: &mut AnyConnection, variant_id: &str, prices: &[(String, i64)]) -> Result<()> {
    sqlx::query("DELETE FROM variant_prices WHERE variant_id = $1").bind(variant_id).execute(&mut *conn).await?;
    for (currency, amount) in prices {
        sqlx::query("INSERT INTO variant_prices (variant_id, currency, amount) VALUES ($1, $2, $3)")
            .bind(variant_id)
            .bind(currency)
            .bind(*amount)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn insert_component(conn: &mut AnyConnection, variant_id: &str, item_id: &str, quantity: i64) -> Result<()> {
    sqlx::query("INSERT INTO variant_components (variant_id, inventory_item_id, quantity) VALUES ($1, $2, $3)")
        .bind(variant_id)
        .bind(item_id)
        .bind(quantity)
        .execute(conn)
        .await?;
    Ok(())
}

fn variant_from_row(r: &AnyRow) -> Result<VariantRow> {
    Ok(VariantRow {
        id: r.try_get("id")?,
        product_id: r.try_get("product_id")?,
        sku: r.try_get("sku")?,
        title: r.try_get("title")?,
        options: r.try_get("options")?,
        position: r.try_get("position")?,
        archived_at: r.try_get("archived_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        prices: Vec::new(),
        components: Vec::new(),
    })
}

fn placeholders(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Variants of several products with their prices and components, in three
/// queries whatever the number of products (no N+1 behind lists).
pub async fn variants_of(conn: &mut AnyConnection, product_ids: &[String]) -> Result<Vec<VariantRow>> {
    if product_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, product_id, sku, title, options, position, archived_at, created_at, updated_at FROM variants \
         WHERE product_id IN ({}) ORDER BY product_id, position, id",
        placeholders(1, product_ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in product_ids {
        q = q.bind(id.as_str());
    }
    let mut variants: Vec<VariantRow> =
        q.fetch_all(&mut *conn).await?.iter().map(variant_from_row).collect::<Result<_>>()?;
    fill_details(conn, &mut variants).await?;
    Ok(variants)
}

pub async fn variant_by_sku(conn: &mut AnyConnection, sku: &str) -> Result<Option<VariantRow>> {
    let row = sqlx::query(
        "SELECT id, product_id, sku, title, options, position, archived_at, created_at, updated_at FROM variants \
         WHERE sku = $1",
    )
    .bind(sku)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut v = vec![variant_from_row(&row)?];
    fill_details(conn, &mut v).await?;
    Ok(v.pop())
}

pub async fn variant_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<VariantRow>> {
    let row = sqlx::query(
        "SELECT id, product_id, sku, title, options, position, archived_at, created_at, updated_at FROM variants \
         WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut v = vec![variant_from_row(&row)?];
    fill_details(conn, &mut v).await?;
    Ok(v.pop())
}

async fn fill_details(conn: &mut AnyConnection, variants: &mut [VariantRow]) -> Result<()> {
    if variants.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = variants.iter().map(|v| v.id.as_str()).collect();
    let sql = format!(
        "SELECT variant_id, currency, amount FROM variant_prices WHERE variant_id IN ({}) ORDER BY currency",
        placeholders(1, ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in &ids {
        q = q.bind(*id);
    }
    let mut prices: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        prices.entry(r.try_get("variant_id")?).or_default().push((r.try_get("currency")?, r.try_get("amount")?));
    }
    let sql = format!(
        "SELECT c.variant_id, c.inventory_item_id, c.quantity, i.sku FROM variant_components c \
         JOIN inventory_items i ON i.id = c.inventory_item_id WHERE c.variant_id IN ({}) ORDER BY i.sku",
        placeholders(1, ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in &ids {
        q = q.bind(*id);
    }
    let mut components: HashMap<String, Vec<Component>> = HashMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        components.entry(r.try_get("variant_id")?).or_default().push(Component {
            inventory_item_id: r.try_get("inventory_item_id")?,
            sku: r.try_get("sku")?,
            quantity: r.try_get("quantity")?,
        });
    }
    for v in variants.iter_mut() {
        v.prices = prices.remove(&v.id).unwrap_or_default();
        v.components = components.remove(&v.id).unwrap_or_default();
    }
    Ok(())
}

pub async fn product_channels(conn: &mut AnyConnection, product_ids: &[String]) -> Result<HashMap<String, Vec<String>>> {
    if product_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT product_id, channel_id FROM product_channels WHERE product_id IN ({}) ORDER BY channel_id",
        placeholders(1, product_ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in product_ids {
        q = q.bind(id.as_str());
    }
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in q.fetch_all(conn).await? {
        out.entry(r.try_get("product_id")?).or_default().push(r.try_get("channel_id")?);
    }
    Ok(out)
}

pub async fn set_product_channels(conn: &mut AnyConnection, product_id: &str, channel_ids: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM product_channels WHERE product_id = $1").bind(product_id).execute(&mut *conn).await?;
    for c in channel_ids {
        sqlx::query("INSERT INTO product_channels (product_id, channel_id) VALUES ($1, $2)")
            .bind(product_id)
            .bind(c.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn channel_from_row(r: &AnyRow) -> Result<ChannelRow> {
    Ok(ChannelRow {
        id: r.try_get("id")?,
        handle: r.try_get("handle")?,
        name: r.try_get("name")?,
        archived_at: r.try_get("archived_at")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert_channel(conn: &mut AnyConnection, c: &ChannelRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO sales_channels (id, handle, name, archived_at, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.id)
    .bind(&c.handle)
    .bind(&c.name)
    .bind(c.archived_at)
    .bind(c.version)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Returns the new version.
pub async fn update_channel(conn: &mut AnyConnection, c: &ChannelRow) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE sales_channels SET handle = $2, name = $3, archived_at = $4, updated_at = $5, version = version + 1 \
         WHERE id = $1 RETURNING version",
    )
    .bind(&c.id)
    .bind(&c.handle)
    .bind(&c.name)
    .bind(c.archived_at)
    .bind(c.updated_at)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("version")?)
}

pub async fn get_channel(conn: &mut AnyConnection, id: &str) -> Result<Option<ChannelRow>> {
    let row = sqlx::query(&format!("SELECT {CHANNEL_COLUMNS} FROM sales_channels WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(channel_from_row).transpose()
}

pub async fn list_channels(conn: &mut AnyConnection, before: Option<&str>, limit: i64) -> Result<Vec<ChannelRow>> {
    let rows = sqlx::query(
        &format!("SELECT {CHANNEL_COLUMNS} FROM sales_channels WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"),
    )
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(channel_from_row).collect()
}

pub async fn channel_by_handle(conn: &mut AnyConnection, handle: &str) -> Result<Option<ChannelRow>> {
    let row = sqlx::query(
        &format!("SELECT {CHANNEL_COLUMNS} FROM sales_channels WHERE handle = $1"),
    )
    .bind(handle)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(channel_from_row).transpose()
}

pub async fn product_by_handle(conn: &mut AnyConnection, handle: &str) -> Result<Option<ProductRow>> {
    let row = sqlx::query(&format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE handle = $1"))
        .bind(handle)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(product_from_row).transpose()
}

// ------------------------------------------------- admin console reads ---

/// What the admin product list asks for: a status (`None`: every status)
/// and text matched case-insensitively as a substring of the title, the
/// handle or any variant's SKU.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter<'a> {
    pub status: Option<&'a str>,
    pub search: Option<&'a str>,
}

/// Products matching `f`, newest first; `offset`/`limit` page them (one
/// query; variants, prices and images come from the batch reads).
pub async fn filtered_products(conn: &mut AnyConnection, f: &ProductFilter<'_>, offset: i64, limit: i64) -> Result<Vec<ProductRow>> {
    let cols = PRODUCT_COLUMNS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {cols} FROM products p WHERE ($1 IS NULL OR p.status = $1) \
         AND ($2 IS NULL OR LOWER(p.title) LIKE $2 ESCAPE '!' OR p.handle LIKE $2 ESCAPE '!' \
              OR EXISTS (SELECT 1 FROM variants v WHERE v.product_id = p.id AND LOWER(v.sku) LIKE $2 ESCAPE '!')) \
         ORDER BY p.id DESC LIMIT $3 OFFSET $4"
    );
    let rows = sqlx::query(&sql)
        .bind(f.status)
        .bind(f.search.map(crate::inventory::like_pattern))
        .bind(limit)
        .bind(offset)
        .fetch_all(conn)
        .await?;
    rows.iter().map(product_from_row).collect()
}

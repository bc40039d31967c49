//! Collections (curated groups of products) and the storefront's filtered,
//! paginated product listings.

use crate::catalog::{product_from_row, PRODUCT_COLUMNS};
use crate::catalog::ProductRow;
use crate::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct CollectionRow {
    pub id: String,
    pub handle: String,
    pub title: String,
    pub description: Option<String>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub position: i64,
    pub published_at: Option<i64>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, handle, title, description, seo_title, seo_description, position, published_at, version, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<CollectionRow> {
    Ok(CollectionRow {
        id: r.try_get("id")?,
        handle: r.try_get("handle")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        seo_title: r.try_get("seo_title")?,
        seo_description: r.try_get("seo_description")?,
        position: r.try_get("position")?,
        published_at: r.try_get("published_at")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, c: &CollectionRow) -> Result<()> {
    sqlx::query(&format!("INSERT INTO collections ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"))
        .bind(&c.id)
        .bind(&c.handle)
        .bind(&c.title)
        .bind(&c.description)
        .bind(&c.seo_title)
        .bind(&c.seo_description)
        .bind(c.position)
        .bind(c.published_at)
        .bind(c.version)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes every mutable field and bumps the version; returns the new version.
pub async fn update(conn: &mut AnyConnection, c: &CollectionRow) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE collections SET handle = $2, title = $3, description = $4, seo_title = $5, seo_description = $6, \
         position = $7, published_at = $8, updated_at = $9, version = version + 1 WHERE id = $1 RETURNING version",
    )
    .bind(&c.id)
    .bind(&c.handle)
    .bind(&c.title)
    .bind(&c.description)
    .bind(&c.seo_title)
    .bind(&c.seo_description)
    .bind(c.position)
    .bind(c.published_at)
    .bind(c.updated_at)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("version")?)
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<CollectionRow>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM collections WHERE id = $1")).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_handle(conn: &mut AnyConnection, handle: &str) -> Result<Option<CollectionRow>> {
    let row =
        sqlx::query(&format!("SELECT {COLUMNS} FROM collections WHERE handle = $1")).bind(handle).fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// Newest first, for the API; `before` is the id the previous page ended on.
pub async fn list(conn: &mut AnyConnection, before: Option<&str>, limit: i64) -> Result<Vec<CollectionRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM collections WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Published collections in display order (position, then id).
pub async fn published(conn: &mut AnyConnection, limit: i64) -> Result<Vec<CollectionRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM collections WHERE published_at IS NOT NULL ORDER BY position, id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Product ids of a collection in display order.
pub async fn product_ids(conn: &mut AnyConnection, collection_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT product_id FROM collection_products WHERE collection_id = $1 ORDER BY position, product_id",
    )
    .bind(collection_id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("product_id")?)).collect()
}

/// Replaces the membership with `product_ids`, in that order.
pub async fn set_products(conn: &mut AnyConnection, collection_id: &str, product_ids: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM collection_products WHERE collection_id = $1")
        .bind(collection_id)
        .execute(&mut *conn)
        .await?;
    for (i, p) in product_ids.iter().enumerate() {
        sqlx::query("INSERT INTO collection_products (collection_id, product_id, position) VALUES ($1, $2, $3)")
            .bind(collection_id)
            .bind(p.as_str())
            .bind(i as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Units of one inventory item available at sellable (not archived)
/// locations, each location counted at 0 when it is short. Correlated on
/// `c.inventory_item_id` of the enclosing query.
const ITEM_AVAILABLE: &str = "(SELECT COALESCE(SUM(CASE WHEN l.on_hand - l.reserved - l.safety_stock - l.damaged - \
     l.quality_control > 0 THEN l.on_hand - l.reserved - l.safety_stock - l.damaged - l.quality_control ELSE 0 END), 0) \
     FROM inventory_levels l JOIN locations loc ON loc.id = l.location_id \
     WHERE loc.archived_at IS NULL AND l.inventory_item_id = c.inventory_item_id)";

/// What a storefront listing shows: active products, optionally of one
/// collection, priced in `currency`.
#[derive(Debug, Clone, Default)]
pub struct ListingFilter<'a> {
    pub collection_id: Option<&'a str>,
    pub currency: &'a str,
    /// Inclusive bounds in minor units: some live variant is priced within.
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Only products with at least one variant that can be sold now.
    pub in_stock: bool,
}

enum Arg<'a> {
    Text(&'a str),
    Int(i64),
}

fn listing_where<'a>(f: &ListingFilter<'a>) -> (String, String, Vec<Arg<'a>>) {
    let mut args = Vec::new();
    let mut from = "products p".to_owned();
    let mut conds = vec!["p.status = 'active'".to_owned()];
    if let Some(c) = f.collection_id {
        args.push(Arg::Text(c));
        from.push_str(&format!(" JOIN collection_products cp ON cp.product_id = p.id AND cp.collection_id = ${}", args.len()));
    }
    if f.min_price.is_some() || f.max_price.is_some() {
        args.push(Arg::Text(f.currency));
        let mut price = format!(
            "EXISTS (SELECT 1 FROM variants v JOIN variant_prices vp ON vp.variant_id = v.id WHERE v.product_id = p.id \
             AND v.archived_at IS NULL AND vp.currency = ${}",
            args.len()
        );
        if let Some(min) = f.min_price {
            args.push(Arg::Int(min));
            price.push_str(&format!(" AND vp.amount >= ${}", args.len()));
        }
        if let Some(max) = f.max_price {
            args.push(Arg::Int(max));
            price.push_str(&format!(" AND vp.amount <= ${}", args.len()));
        }
        price.push(')');
        conds.push(price);
    }
    if f.in_stock {
        conds.push(format!(
            "EXISTS (SELECT 1 FROM variants v WHERE v.product_id = p.id AND v.archived_at IS NULL \
             AND EXISTS (SELECT 1 FROM variant_components c WHERE c.variant_id = v.id) \
             AND NOT EXISTS (SELECT 1 FROM variant_components c WHERE c.variant_id = v.id AND {ITEM_AVAILABLE} < c.quantity))"
        ));
    }
    (from, conds.join(" AND "), args)
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(*s),
            Arg::Int(n) => q.bind(*n),
        };
    }
    q
}

/// One page of a listing plus the number of matching products; the filters
/// run in SQL, so only the page is fetched.
pub async fn listing(
    conn: &mut AnyConnection,
    f: &ListingFilter<'_>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ProductRow>, i64)> {
    let (from, conds, args) = listing_where(f);
    let count_sql = format!("SELECT COUNT(*) AS n FROM {from} WHERE {conds}");
    let total: i64 = bind_all(sqlx::query(&count_sql), &args).fetch_one(&mut *conn).await?.try_get("n")?;
    let order = if f.collection_id.is_some() { "cp.position, p.id" } else { "p.id DESC" };
    let cols = PRODUCT_COLUMNS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {cols} FROM {from} WHERE {conds} ORDER BY {order} LIMIT ${} OFFSET ${}",
        args.len() + 1,
        args.len() + 2
    );
    let rows = bind_all(sqlx::query(&sql), &args).bind(limit).bind(offset).fetch_all(&mut *conn).await?;
    Ok((rows.iter().map(product_from_row).collect::<Result<_>>()?, total))
}

/// Units each of these variants can sell now, from the levels of the items
/// they consume, in one query whatever the number of variants. Variants
/// without components are absent.
pub async fn variant_stock(conn: &mut AnyConnection, variant_ids: &[&str]) -> Result<Vec<(String, i64, i64)>> {
    if variant_ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = (1..=variant_ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT c.variant_id, c.quantity, CAST({ITEM_AVAILABLE} AS BIGINT) AS available FROM variant_components c \
         WHERE c.variant_id IN ({marks})"
    );
    let mut q = sqlx::query(&sql);
    for v in variant_ids {
        q = q.bind(*v);
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter()
        .map(|r| Ok((r.try_get("variant_id")?, r.try_get("quantity")?, r.try_get("available")?)))
        .collect()
}

/// A cheap fingerprint of everything a product page shows: the product's
/// version (bumped by every product or variant write), and the versions and
/// latest change of the stock levels its variants consume, plus the latest
/// location change (archiving one changes what is sellable). Any committed
/// change to any of them changes the stamp, on every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProductStamp {
    pub product_version: i64,
    pub stock_versions: i64,
    pub stock_rows: i64,
    pub locations_changed_at: i64,
    /// The latest change, in microseconds: the page's `Last-Modified`.
    pub changed_at: i64,
}

/// The product with `handle` (id, status) and its stamp, in one indexed query.
pub async fn product_stamp(conn: &mut AnyConnection, handle: &str) -> Result<Option<(String, String, ProductStamp)>> {
    let row = sqlx::query(
        "SELECT p.id, p.status, p.version, p.updated_at, \
         CAST(COALESCE(SUM(l.version), 0) AS BIGINT) AS stock_versions, \
         CAST(COUNT(l.version) AS BIGINT) AS stock_rows, \
         CAST(COALESCE(MAX(l.updated_at), 0) AS BIGINT) AS stock_changed_at, \
         CAST(COALESCE((SELECT MAX(updated_at) FROM locations), 0) AS BIGINT) AS locations_changed_at \
         FROM products p \
         LEFT JOIN variants v ON v.product_id = p.id \
         LEFT JOIN variant_components c ON c.variant_id = v.id \
         LEFT JOIN inventory_levels l ON l.inventory_item_id = c.inventory_item_id \
         WHERE p.handle = $1 GROUP BY p.id, p.status, p.version, p.updated_at",
    )
    .bind(handle)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let updated_at: i64 = r.try_get("updated_at")?;
    let stock_changed_at: i64 = r.try_get("stock_changed_at")?;
    let locations_changed_at: i64 = r.try_get("locations_changed_at")?;
    let stamp = ProductStamp {
        product_version: r.try_get("version")?,
        stock_versions: r.try_get("stock_versions")?,
        stock_rows: r.try_get("stock_rows")?,
        locations_changed_at,
        changed_at: updated_at.max(stock_changed_at).max(locations_changed_at),
    };
    Ok(Some((r.try_get("id")?, r.try_get("status")?, stamp)))
}

/// Active products for the sitemap: (handle, last change), newest first.
pub async fn active_product_handles(conn: &mut AnyConnection, limit: i64) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT handle, updated_at FROM products WHERE status = 'active' ORDER BY id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok((r.try_get("handle")?, r.try_get("updated_at")?))).collect()
}

/// Member product ids of several collections, in display order, in one query.
pub async fn products_of(
    conn: &mut AnyConnection,
    collection_ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let mut out: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    if collection_ids.is_empty() {
        return Ok(out);
    }
    let marks = (1..=collection_ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT collection_id, product_id FROM collection_products WHERE collection_id IN ({marks}) \
         ORDER BY collection_id, position, product_id"
    );
    let mut q = sqlx::query(&sql);
    for id in collection_ids {
        q = q.bind(id.as_str());
    }
    for r in q.fetch_all(conn).await? {
        out.entry(r.try_get("collection_id")?).or_default().push(r.try_get("product_id")?);
    }
    Ok(out)
}

/// Which of these product ids exist, in one query.
pub async fn existing_products(conn: &mut AnyConnection, ids: &[String]) -> Result<std::collections::HashSet<String>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let marks = (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!("SELECT id FROM products WHERE id IN ({marks})");
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(id.as_str());
    }
    q.fetch_all(conn).await?.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

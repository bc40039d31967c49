//! Shipping methods (flat rates per zone) and tax rates per region.

use crate::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct ShippingMethodRow {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub amount: i64,
    pub countries: String,
    pub archived_at: Option<i64>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ShippingMethodRow {
    pub fn serves(&self, country: &str) -> bool {
        self.countries == "*" || self.countries.split(',').any(|c| c == country)
    }
}

const SHIP_COLUMNS: &str = "id, name, currency, amount, countries, archived_at, version, created_at, updated_at";

fn ship_from_row(r: &AnyRow) -> Result<ShippingMethodRow> {
    Ok(ShippingMethodRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        currency: r.try_get("currency")?,
        amount: r.try_get("amount")?,
        countries: r.try_get("countries")?,
        archived_at: r.try_get("archived_at")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert_method(conn: &mut AnyConnection, m: &ShippingMethodRow) -> Result<()> {
    sqlx::query(&format!("INSERT INTO shipping_methods ({SHIP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
        .bind(&m.id)
        .bind(&m.name)
        .bind(&m.currency)
        .bind(m.amount)
        .bind(&m.countries)
        .bind(m.archived_at)
        .bind(m.version)
        .bind(m.created_at)
        .bind(m.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn update_method(conn: &mut AnyConnection, m: &ShippingMethodRow) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE shipping_methods SET name = $2, amount = $3, countries = $4, archived_at = $5, updated_at = $6, \
         version = version + 1 WHERE id = $1 RETURNING version",
    )
    .bind(&m.id)
    .bind(&m.name)
    .bind(m.amount)
    .bind(&m.countries)
    .bind(m.archived_at)
    .bind(m.updated_at)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("version")?)
}

pub async fn get_method(conn: &mut AnyConnection, id: &str) -> Result<Option<ShippingMethodRow>> {
    let row = sqlx::query(&format!("SELECT {SHIP_COLUMNS} FROM shipping_methods WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(ship_from_row).transpose()
}

pub async fn list_methods(conn: &mut AnyConnection) -> Result<Vec<ShippingMethodRow>> {
    let rows = sqlx::query(&format!("SELECT {SHIP_COLUMNS} FROM shipping_methods ORDER BY amount, id"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(ship_from_row).collect()
}

#[derive(Debug, Clone)]
pub struct TaxRateRow {
    pub id: String,
    pub country: String,
    pub region: String,
    pub rate_bps: i64,
    pub inclusive: bool,
    pub shipping_taxable: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const TAX_COLUMNS: &str = "id, country, region, rate_bps, inclusive, shipping_taxable, created_at, updated_at";

fn tax_from_row(r: &AnyRow) -> Result<TaxRateRow> {
    Ok(TaxRateRow {
        id: r.try_get("id")?,
        country: r.try_get("country")?,
        region: r.try_get("region")?,
        rate_bps: r.try_get("rate_bps")?,
        inclusive: r.try_get::<i64, _>("inclusive")? != 0,
        shipping_taxable: r.try_get::<i64, _>("shipping_taxable")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Creates or replaces the rate for a country (and region).
pub async fn upsert_rate(conn: &mut AnyConnection, t: &TaxRateRow) -> Result<TaxRateRow> {
    let row = sqlx::query(&format!(
        "INSERT INTO tax_rates ({TAX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (country, region) DO UPDATE SET rate_bps = excluded.rate_bps, inclusive = excluded.inclusive, \
         shipping_taxable = excluded.shipping_taxable, updated_at = excluded.updated_at RETURNING {TAX_COLUMNS}"
    ))
    .bind(&t.id)
    .bind(&t.country)
    .bind(&t.region)
    .bind(t.rate_bps)
    .bind(i64::from(t.inclusive))
    .bind(i64::from(t.shipping_taxable))
    .bind(t.created_at)
    .bind(t.updated_at)
    .fetch_one(conn)
    .await?;
    tax_from_row(&row)
}

pub async fn list_rates(conn: &mut AnyConnection) -> Result<Vec<TaxRateRow>> {
    let rows = sqlx::query(&format!("SELECT {TAX_COLUMNS} FROM tax_rates ORDER BY country, region")).fetch_all(conn).await?;
    rows.iter().map(tax_from_row).collect()
}

/// The most specific rate: the region's, else the country's.
pub async fn rate_for(conn: &mut AnyConnection, country: &str, region: Option<&str>) -> Result<Option<TaxRateRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {TAX_COLUMNS} FROM tax_rates WHERE country = $1 AND (region = '' OR region = $2) ORDER BY region DESC"
    ))
    .bind(country)
    .bind(region.unwrap_or(""))
    .fetch_all(conn)
    .await?;
    rows.first().map(tax_from_row).transpose()
}

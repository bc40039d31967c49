//! Shipping methods (flat rates per zone) and tax rates per region.

use crate::{in_tx, Actor, App, AppError, Result};
use keel_domain::catalog::{country, text};
use keel_domain::ids::{ShippingMethodId, TaxRateId};
use keel_domain::money::{Currency, Money};
use keel_domain::time::{now_micros, to_rfc3339};
use keel_domain::Invalid;
use keel_store::outbox;
use keel_store::shipping::{self as db, ShippingMethodRow, TaxRateRow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShippingMethod {
    pub name: String,
    pub currency: String,
    /// Flat rate in minor units.
    pub amount: i64,
    /// ISO countries served; omit or `["*"]` for everywhere.
    #[serde(default)]
    pub countries: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingMethodChanges {
    pub name: Option<String>,
    pub amount: Option<i64>,
    pub countries: Option<Vec<String>>,
    pub archived: Option<bool>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShippingMethodView {
    pub id: String,
    #[schema(example = "shipping_method")]
    pub object: &'static str,
    pub name: String,
    pub currency: String,
    pub amount: i64,
    pub countries: Vec<String>,
    pub archived: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<ShippingMethodRow> for ShippingMethodView {
    fn from(m: ShippingMethodRow) -> Self {
        ShippingMethodView {
            id: m.id,
            object: "shipping_method",
            name: m.name,
            currency: m.currency,
            amount: m.amount,
            countries: m.countries.split(',').map(str::to_owned).collect(),
            archived: m.archived_at.is_some(),
            version: m.version,
            created_at: to_rfc3339(m.created_at),
            updated_at: to_rfc3339(m.updated_at),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxRateInput {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Optional region or state code; the country rate applies otherwise.
    pub region: Option<String>,
    /// Basis points: 2000 = 20 %.
    pub rate_bps: i64,
    /// Prices in this region already include the tax.
    #[serde(default)]
    pub inclusive: bool,
    #[serde(default = "yes")]
    pub shipping_taxable: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaxRateView {
    pub id: String,
    #[schema(example = "tax_rate")]
    pub object: &'static str,
    pub country: String,
    pub region: Option<String>,
    pub rate_bps: i64,
    pub inclusive: bool,
    pub shipping_taxable: bool,
    pub updated_at: String,
}

impl From<TaxRateRow> for TaxRateView {
    fn from(t: TaxRateRow) -> Self {
        TaxRateView {
            id: t.id,
            object: "tax_rate",
            country: t.country,
            region: Some(t.region).filter(|r| !r.is_empty()),
            rate_bps: t.rate_bps,
            inclusive: t.inclusive,
            shipping_taxable: t.shipping_taxable,
            updated_at: to_rfc3339(t.updated_at),
        }
    }
}

fn check_countries(list: &[String]) -> Result<String, Invalid> {
    if list.is_empty() || list.iter().any(|c| c == "*") {
        return Ok("*".into());
    }
    if list.len() > 250 {
        return Err(Invalid::new("countries", "too_many_countries", "at most 250 countries"));
    }
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let c = country(&format!("countries[{i}]"), c)?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out.join(","))
}

fn region(s: Option<&str>) -> Result<String, Invalid> {
    match s.map(str::trim) {
        None | Some("") => Ok(String::new()),
        Some(r) if r.len() <= 10 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => Ok(r.to_ascii_uppercase()),
        Some(_) => Err(Invalid::new("region", "invalid_region", "up to 10 letters, digits or '-'")),
    }
}

impl App {
    pub async fn create_shipping_method(&self, actor: &Actor, input: NewShippingMethod) -> Result<ShippingMethodView> {
        let name = text("name", &input.name, 100)?;
        let currency = Currency::parse("currency", &input.currency)?;
        Money::new("amount", input.amount, currency)?;
        let countries = check_countries(&input.countries)?;
        in_tx!(self, |tx| {
            let now = now_micros();
            let row = ShippingMethodRow {
                id: ShippingMethodId::generate().to_string(),
                name: name.clone(),
                currency: currency.code().to_owned(),
                amount: input.amount,
                countries: countries.clone(),
                archived_at: None,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            db::insert_method(&mut tx, &row).await?;
            let view = ShippingMethodView::from(row);
            outbox::append(
                &mut tx,
                outbox::NewEvent {
                    kind: "shipping_method.created",
                    aggregate_type: "shipping_method",
                    aggregate_id: &view.id,
                    aggregate_seq: 1,
                    payload: json!({ "object": view, "actor": actor.0 }),
                },
            )
            .await?;
            Ok(view)
        })
    }

    pub async fn update_shipping_method(&self, actor: &Actor, id: &str, changes: ShippingMethodChanges) -> Result<ShippingMethodView> {
        ShippingMethodId::parse("id", id).map_err(|_| AppError::not_found("shipping_method", id))?;
        let name = changes.name.as_deref().map(|n| text("name", n, 100)).transpose()?;
        let countries = changes.countries.as_deref().map(check_countries).transpose()?;
        in_tx!(self, |tx| {
            let mut m = db::get_method(&mut tx, id).await?.ok_or_else(|| AppError::not_found("shipping_method", id))?;
            let now = now_micros();
            if let Some(n) = &name {
                m.name = n.clone();
            }
            if let Some(a) = changes.amount {
                let c = Currency::parse("currency", &m.currency)?;
                m.amount = Money::new("amount", a, c)?.amount;
            }
            if let Some(c) = &countries {
                m.countries = c.clone();
            }
            if let Some(a) = changes.archived {
                m.archived_at = if a { m.archived_at.or(Some(now)) } else { None };
            }
            m.updated_at = now;
            m.version = db::update_method(&mut tx, &m).await?;
            let view = ShippingMethodView::from(m);
            outbox::append(
                &mut tx,
                outbox::NewEvent {
                    kind: "shipping_method.updated",
                    aggregate_type: "shipping_method",
                    aggregate_id: &view.id,
                    aggregate_seq: view.version,
                    payload: json!({ "object": view, "actor": actor.0 }),
                },
            )
            .await?;
            Ok(view)
        })
    }

    pub async fn list_shipping_methods(&self) -> Result<Vec<ShippingMethodView>> {
        let mut conn = self.store.reader().await?;
        Ok(db::list_methods(&mut conn).await?.into_iter().map(ShippingMethodView::from).collect())
    }

    pub async fn set_tax_rate(&self, actor: &Actor, input: TaxRateInput) -> Result<TaxRateView> {
        let c = country("country", &input.country)?;
        let r = region(input.region.as_deref())?;
        if !(0..=10_000).contains(&input.rate_bps) {
            return Err(Invalid::new("rate_bps", "invalid_rate", "must be between 0 and 10000 basis points").into());
        }
        in_tx!(self, |tx| {
            let now = now_micros();
            let row = TaxRateRow {
                id: TaxRateId::generate().to_string(),
                country: c.clone(),
                region: r.clone(),
                rate_bps: input.rate_bps,
                inclusive: input.inclusive,
                shipping_taxable: input.shipping_taxable,
                created_at: now,
                updated_at: now,
            };
            let saved = db::upsert_rate(&mut tx, &row).await?;
            let view = TaxRateView::from(saved);
            outbox::append(
                &mut tx,
                outbox::NewEvent {
                    kind: "tax_rate.updated",
                    aggregate_type: "tax_rate",
                    aggregate_id: &view.id,
                    aggregate_seq: now,
                    payload: json!({ "object": view, "actor": actor.0 }),
                },
            )
            .await?;
            Ok(view)
        })
    }

    pub async fn list_tax_rates(&self) -> Result<Vec<TaxRateView>> {
        let mut conn = self.store.reader().await?;
        Ok(db::list_rates(&mut conn).await?.into_iter().map(TaxRateView::from).collect())
    }
}

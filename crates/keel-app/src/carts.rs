//! Carts: lines with price snapshots, a shipping address and method, and
//! totals computed by `keel_domain::pricing`.

use crate::{in_tx, Actor, App, AppError, Result};
use keel_domain::catalog::{country, optional_text, text, Sku};
use keel_domain::ids::{CartId, CartLineId, CustomerId, ShippingMethodId};
use keel_domain::money::Currency;
use keel_domain::pricing::{self, PriceLine, TaxRate, Totals, TotalsInput};
use keel_domain::time::{now_micros, to_rfc3339};
use keel_domain::Invalid;
use keel_store::carts::{self as db, CartLineRow, CartRow};
use keel_store::{catalog, outbox, shipping, Conn};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// An open cart expires after a week without changes.
pub const CART_TTL_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;
const MAX_LINES: usize = 100;
const MAX_LINE_QUANTITY: i64 = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub phone: Option<String>,
}

impl Address {
    fn checked(&self, field: &str) -> Result<Address, Invalid> {
        let f = |n: &str| format!("{field}.{n}");
        let phone = optional_text(&f("phone"), self.phone.as_deref(), 32)?;
        if let Some(p) = &phone {
            if !p.bytes().all(|b| b.is_ascii_digit() || b" +()-".contains(&b)) {
                return Err(Invalid::new(f("phone"), "invalid_phone", "digits, spaces and + ( ) - only"));
            }
        }
        Ok(Address {
            name: text(&f("name"), &self.name, 100)?,
            line1: text(&f("line1"), &self.line1, 200)?,
            line2: optional_text(&f("line2"), self.line2.as_deref(), 200)?,
            city: text(&f("city"), &self.city, 100)?,
            region: optional_text(&f("region"), self.region.as_deref(), 10)?.map(|r| r.to_ascii_uppercase()),
            postal_code: text(&f("postal_code"), &self.postal_code, 20)?,
            country: country(&f("country"), &self.country)?,
            phone,
        })
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCart {
    pub currency: String,
    pub customer_id: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartChanges {
    pub email: Option<String>,
    pub customer_id: Option<String>,
    pub shipping_address: Option<Address>,
    pub shipping_method_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartLineInput {
    /// Variant SKU.
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartLineChanges {
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CartLineView {
    pub id: String,
    pub sku: String,
    pub variant_id: String,
    pub title: String,
    /// Price per unit when the line was added, in minor units.
    pub unit_amount: i64,
    pub quantity: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TotalsView {
    pub subtotal: i64,
    pub discount_total: i64,
    pub shipping_total: i64,
    pub tax_total: i64,
    pub total: i64,
    /// Whether tax_total is already included in the prices.
    pub tax_inclusive: bool,
}

impl From<Totals> for TotalsView {
    fn from(t: Totals) -> Self {
        TotalsView {
            subtotal: t.subtotal,
            discount_total: t.discount_total,
            shipping_total: t.shipping_total,
            tax_total: t.tax_total,
            total: t.total,
            tax_inclusive: t.tax_inclusive,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CartView {
    pub id: String,
    #[schema(example = "cart")]
    pub object: &'static str,
    /// `open`, `completing`, `completed` or `expired`.
    pub status: String,
    pub currency: String,
    pub customer_id: Option<String>,
    /// Personal data: `null` unless the caller's role holds `customers.read`.
    pub email: Option<String>,
    /// Personal data: `null` unless the caller's role holds `customers.read`.
    pub shipping_address: Option<Address>,
    pub shipping_method_id: Option<String>,
    pub lines: Vec<CartLineView>,
    pub totals: TotalsView,
    pub order_id: Option<String>,
    pub version: i64,
    pub expires_at: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A cart with everything needed to price and check it out.
pub(crate) struct PricedCart {
    pub row: CartRow,
    pub lines: Vec<CartLineRow>,
    pub totals: Totals,
    pub email: Option<String>,
    pub address: Option<Address>,
}

impl PricedCart {
    pub fn view(&self) -> CartView {
        let r = &self.row;
        CartView {
            id: r.id.clone(),
            object: "cart",
            status: r.status.clone(),
            currency: r.currency.clone(),
            customer_id: r.customer_id.clone(),
            email: self.email.clone(),
            shipping_address: self.address.clone(),
            shipping_method_id: r.shipping_method_id.clone(),
            lines: self
                .lines
                .iter()
                .map(|l| CartLineView {
                    id: l.id.clone(),
                    sku: l.sku.clone(),
                    variant_id: l.variant_id.clone(),
                    title: l.title.clone(),
                    unit_amount: l.unit_amount,
                    quantity: l.quantity,
                    total: l.unit_amount.saturating_mul(l.quantity),
                })
                .collect(),
            totals: self.totals.into(),
            order_id: r.order_id.clone(),
            version: r.version,
            expires_at: to_rfc3339(r.expires_at),
            created_at: to_rfc3339(r.created_at),
            updated_at: to_rfc3339(r.updated_at),
        }
    }
}

pub(crate) fn normalise_email(field: &str, email: &str) -> Result<String, Invalid> {
    let e = email.trim().to_ascii_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@')
        })
        && !e.contains(char::is_whitespace);
    if ok {
        Ok(e)
    } else {
        Err(Invalid::new(field, "invalid_email", "must be an email address"))
    }
}

impl App {
    /// Loads and prices a cart (in the caller's transaction or a reader).
    pub(crate) async fn priced_cart(&self, conn: &mut Conn, id: &str) -> Result<PricedCart> {
        let row = db::get(conn, id).await?.ok_or_else(|| AppError::not_found("cart", id))?;
        let lines = db::lines(conn, id).await?;
        let price_lines: Vec<PriceLine> =
            lines.iter().map(|l| PriceLine { unit_amount: l.unit_amount, quantity: l.quantity }).collect();
        let mut shipping_amount = 0;
        if let Some(m) = &row.shipping_method_id {
            if let Some(method) = shipping::get_method(conn, m).await? {
                shipping_amount = method.amount;
            }
        }
        let rate = match &row.shipping_country {
            Some(c) => shipping::rate_for(conn, c, row.shipping_region.as_deref()).await?,
            None => None,
        };
        let totals = pricing::totals(&TotalsInput {
            lines: &price_lines,
            discount: 0,
            shipping: shipping_amount,
            tax: rate.as_ref().map(|r| TaxRate { rate_bps: r.rate_bps, inclusive: r.inclusive }),
            shipping_taxable: rate.as_ref().is_none_or(|r| r.shipping_taxable),
        })?;
        let email = self.secrets.decrypt_opt(row.email_enc.as_deref()).map_err(keel_store::StoreError::corrupt)?;
        let address = match self.secrets.decrypt_opt(row.shipping_address_enc.as_deref()) {
            Ok(Some(json)) => Some(serde_json::from_str(&json).map_err(keel_store::StoreError::corrupt)?),
            Ok(None) => None,
            Err(e) => return Err(keel_store::StoreError::corrupt(e).into()),
        };
        Ok(PricedCart { row, lines, totals, email, address })
    }

    pub async fn create_cart(&self, actor: &Actor, input: NewCart) -> Result<CartView> {
        let currency = Currency::parse("currency", &input.currency)?;
        let email = input.email.as_deref().map(|e| normalise_email("email", e)).transpose()?;
        if let Some(c) = &input.customer_id {
            CustomerId::parse("customer_id", c)?;
        }
        in_tx!(self, |tx| {
            if let Some(c) = &input.customer_id {
                ensure_customer(&mut tx, c).await?;
            }
            let now = now_micros();
            let row = CartRow {
                id: CartId::generate().to_string(),
                status: "open".into(),
                currency: currency.code().to_owned(),
                customer_id: input.customer_id.clone(),
                email_enc: email.as_deref().map(|e| self.secrets.encrypt(e)),
                email_index: email.as_deref().map(|e| self.secrets.blind_index(e)),
                shipping_address_enc: None,
                shipping_country: None,
                shipping_region: None,
                shipping_method_id: None,
                order_id: None,
                version: 1,
                expires_at: now + CART_TTL_MICROS,
                created_at: now,
                updated_at: now,
            };
            db::insert(&mut tx, &row).await?;
            let cart = self.priced_cart(&mut tx, &row.id).await?;
            emit(&mut tx, "cart.created", &cart, actor).await?;
            Ok(cart.view())
        })
    }

    pub async fn get_cart(&self, id: &str) -> Result<CartView> {
        CartId::parse("id", id).map_err(|_| AppError::not_found("cart", id))?;
        let mut conn = self.store.reader().await?;
        Ok(self.priced_cart(&mut conn, id).await?.view())
    }

    pub async fn update_cart(&self, actor: &Actor, id: &str, changes: CartChanges) -> Result<CartView> {
        CartId::parse("id", id).map_err(|_| AppError::not_found("cart", id))?;
        let email = changes.email.as_deref().map(|e| normalise_email("email", e)).transpose()?;
        let address = changes.shipping_address.as_ref().map(|a| a.checked("shipping_address")).transpose()?;
        if let Some(c) = &changes.customer_id {
            CustomerId::parse("customer_id", c)?;
        }
        if let Some(m) = &changes.shipping_method_id {
            ShippingMethodId::parse("shipping_method_id", m)?;
        }
        in_tx!(self, |tx| {
            let mut row = open_cart(&mut tx, id).await?;
            if let Some(e) = &email {
                row.email_enc = Some(self.secrets.encrypt(e));
                row.email_index = Some(self.secrets.blind_index(e));
            }
            if let Some(c) = &changes.customer_id {
                ensure_customer(&mut tx, c).await?;
                row.customer_id = Some(c.clone());
            }
            if let Some(a) = &address {
                let json = serde_json::to_string(a).map_err(keel_store::StoreError::corrupt)?;
                row.shipping_address_enc = Some(self.secrets.encrypt(&json));
                row.shipping_country = Some(a.country.clone());
                row.shipping_region = a.region.clone();
            }
            if let Some(m) = &changes.shipping_method_id {
                let method = shipping::get_method(&mut tx, m)
                    .await?
                    .ok_or_else(|| AppError::not_found_at("shipping_method", m, "shipping_method_id"))?;
                check_method_fits(&method, &row)?;
                row.shipping_method_id = Some(m.clone());
            } else if let Some(current) = row.shipping_method_id.clone() {
                // A new address may leave the chosen method's zone.
                if let Some(method) = shipping::get_method(&mut tx, &current).await? {
                    if check_method_fits(&method, &row).is_err() {
                        row.shipping_method_id = None;
                    }
                }
            }
            self.save_open_cart(&mut tx, row, actor).await
        })
    }

    pub async fn add_cart_line(&self, actor: &Actor, id: &str, input: CartLineInput) -> Result<CartView> {
        CartId::parse("id", id).map_err(|_| AppError::not_found("cart", id))?;
        let sku = Sku::parse("sku", &input.sku)?;
        check_quantity("quantity", input.quantity)?;
        in_tx!(self, |tx| {
            let row = open_cart(&mut tx, id).await?;
            let lines = db::lines(&mut tx, &row.id).await?;
            let variant = catalog::variant_by_sku(&mut tx, sku.as_str())
                .await?
                .ok_or_else(|| AppError::not_found_at("variant", sku.as_str(), "sku"))?;
            let product = catalog::get_product(&mut tx, &variant.product_id)
                .await?
                .ok_or_else(|| AppError::not_found_at("variant", sku.as_str(), "sku"))?;
            if variant.archived_at.is_some() || product.status != "active" {
                return Err(AppError::conflict("not_for_sale", format!("{sku} is not for sale"), Some("sku")));
            }
            let Some((_, amount)) = variant.prices.iter().find(|(c, _)| *c == row.currency) else {
                return Err(Invalid::new("sku", "no_price", format!("{sku} has no price in {}", row.currency)).into());
            };
            // The same variant again adds to its line: the added quantity
            // was checked above, the line's new total is checked here.
            if let Some(line) = lines.iter().find(|l| l.variant_id == variant.id) {
                let total = line.quantity.saturating_add(input.quantity);
                check_quantity("quantity", total)?;
                if !db::set_line_quantity(&mut tx, &row.id, &line.id, total).await? {
                    return Err(AppError::Contended);
                }
                return self.save_open_cart(&mut tx, row, actor).await;
            }
            if lines.len() >= MAX_LINES {
                return Err(Invalid::new("sku", "too_many_lines", format!("a cart holds at most {MAX_LINES} lines")).into());
            }
            let title = if variant.title == "Default" { product.title.clone() } else { format!("{} — {}", product.title, variant.title) };
            let line = CartLineRow {
                id: CartLineId::generate().to_string(),
                cart_id: row.id.clone(),
                variant_id: variant.id.clone(),
                sku: variant.sku.clone(),
                title,
                unit_amount: *amount,
                quantity: input.quantity,
                created_at: now_micros(),
            };
            db::insert_line(&mut tx, &line).await?;
            self.save_open_cart(&mut tx, row, actor).await
        })
    }

    pub async fn update_cart_line(&self, actor: &Actor, id: &str, line_id: &str, changes: CartLineChanges) -> Result<CartView> {
        CartId::parse("id", id).map_err(|_| AppError::not_found("cart", id))?;
        CartLineId::parse("line_id", line_id).map_err(|_| AppError::not_found("cart_line", line_id))?;
        check_quantity("quantity", changes.quantity)?;
        in_tx!(self, |tx| {
            let row = open_cart(&mut tx, id).await?;
            if !db::set_line_quantity(&mut tx, &row.id, line_id, changes.quantity).await? {
                return Err(AppError::not_found("cart_line", line_id));
            }
            self.save_open_cart(&mut tx, row, actor).await
        })
    }

    pub async fn remove_cart_line(&self, actor: &Actor, id: &str, line_id: &str) -> Result<CartView> {
        CartId::parse("id", id).map_err(|_| AppError::not_found("cart", id))?;
        CartLineId::parse("line_id", line_id).map_err(|_| AppError::not_found("cart_line", line_id))?;
        in_tx!(self, |tx| {
            let row = open_cart(&mut tx, id).await?;
            if !db::delete_line(&mut tx, &row.id, line_id).await? {
                return Err(AppError::not_found("cart_line", line_id));
            }
            self.save_open_cart(&mut tx, row, actor).await
        })
    }

    /// Shipping methods usable for this cart: its currency and destination.
    pub async fn cart_shipping_methods(&self, id: &str) -> Result<Vec<crate::shipping::ShippingMethodView>> {
        CartId::parse("id", id).map_err(|_| AppError::not_found("cart", id))?;
        let mut conn = self.store.reader().await?;
        let row = db::get(&mut conn, id).await?.ok_or_else(|| AppError::not_found("cart", id))?;
        Ok(shipping::list_methods(&mut conn)
            .await?
            .into_iter()
            .filter(|m| check_method_fits(m, &row).is_ok())
            .map(Into::into)
            .collect())
    }

    /// Saves a changed open cart, refreshes its expiry, records
    /// `cart.updated` and returns the priced view.
    async fn save_open_cart(&self, tx: &mut Conn, mut row: CartRow, actor: &Actor) -> Result<CartView> {
        let now = now_micros();
        row.updated_at = now;
        row.expires_at = now + CART_TTL_MICROS;
        db::update(tx, &row, "open").await?.ok_or(AppError::Contended)?;
        let cart = self.priced_cart(tx, &row.id).await?;
        emit(tx, "cart.updated", &cart, actor).await?;
        Ok(cart.view())
    }

    /// Marks open carts past their expiry as expired; returns how many.
    pub async fn expire_carts(&self, now: i64) -> Result<u64> {
        let ids = {
            let mut conn = self.store.reader().await?;
            db::expired(&mut conn, now, 500).await?
        };
        let actor = Actor::system("cart-expiry");
        let mut n = 0;
        for id in ids {
            let done = in_tx!(self, |tx| {
                let Some(mut row) = db::get(&mut tx, &id).await? else { return Ok(false) };
                if row.status != "open" || row.expires_at > now {
                    return Ok(false);
                }
                row.status = "expired".into();
                row.updated_at = now_micros();
                if db::update(&mut tx, &row, "open").await?.is_none() {
                    return Ok(false);
                }
                let cart = self.priced_cart(&mut tx, &id).await?;
                emit(&mut tx, "cart.expired", &cart, &actor).await?;
                Ok(true)
            })?;
            n += u64::from(done);
        }
        Ok(n)
    }
}

async fn ensure_customer(tx: &mut Conn, id: &str) -> Result<()> {
    match keel_store::customers::get(tx, id).await? {
        Some(_) => Ok(()),
        None => Err(AppError::not_found_at("customer", id, "customer_id")),
    }
}

/// The cart, if it can still change.
async fn open_cart(tx: &mut Conn, id: &str) -> Result<CartRow> {
    let row = db::get(tx, id).await?.ok_or_else(|| AppError::not_found("cart", id))?;
    if row.status != "open" {
        return Err(AppError::conflict("cart_not_open", format!("cart {id} is {}", row.status), None));
    }
    Ok(row)
}

fn check_quantity(field: &str, q: i64) -> Result<(), Invalid> {
    if (1..=MAX_LINE_QUANTITY).contains(&q) {
        Ok(())
    } else {
        Err(Invalid::new(field, "invalid_quantity", format!("must be between 1 and {MAX_LINE_QUANTITY}")))
    }
}

fn check_method_fits(m: &shipping::ShippingMethodRow, cart: &CartRow) -> Result<(), AppError> {
    if m.archived_at.is_some() {
        return Err(AppError::conflict("shipping_method_archived", "this shipping method is no longer offered", Some("shipping_method_id")));
    }
    if m.currency != cart.currency {
        return Err(Invalid::new("shipping_method_id", "currency_mismatch", format!("the method charges {}, the cart is in {}", m.currency, cart.currency)).into());
    }
    if let Some(c) = &cart.shipping_country {
        if !m.serves(c) {
            return Err(Invalid::new("shipping_method_id", "not_shippable", format!("this method does not ship to {c}")).into());
        }
    }
    Ok(())
}

/// Cart events carry ids, status and totals, never the email or address.
async fn emit(conn: &mut Conn, kind: &str, cart: &PricedCart, actor: &Actor) -> Result<()> {
    let r = &cart.row;
    outbox::append(
        conn,
        outbox::NewEvent {
            kind,
            aggregate_type: "cart",
            aggregate_id: &r.id,
            aggregate_seq: r.version,
            payload: json!({
                "id": r.id,
                "status": r.status,
                "currency": r.currency,
                "customer_id": r.customer_id,
                "line_count": cart.lines.len(),
                "totals": TotalsView::from(cart.totals),
                "actor": actor.0,
            }),
        },
    )
    .await?;
    Ok(())
}

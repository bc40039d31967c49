//! Catalog use cases: products, variants, prices, sales channels.

use crate::images::ImageView;
use crate::views::{ChannelView, Page, ProductView, VariantView};
use crate::{in_tx, page_limit, Actor, App, AppError, Result};
use keel_domain::catalog::{self as rules, ProductStatus, Sku};
use keel_domain::ids::{ChannelId, ProductId, VariantId};
use keel_domain::money::{Currency, Money};
use keel_domain::time::now_micros;
use keel_domain::Invalid;
use keel_store::catalog::{self as db, ChannelRow, ProductRow, VariantRow};
use keel_store::{inventory, outbox, search, Conn};
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    /// ISO-4217 code, any case.
    pub currency: String,
    /// Integer minor units, 0 or more.
    pub amount: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentInput {
    /// SKU of an existing inventory item.
    pub sku: String,
    /// Units of that item in one unit of the variant.
    pub quantity: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    pub sku: String,
    pub title: Option<String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub prices: Vec<PriceInput>,
    /// For bundles and kits: the inventory items one unit consumes. Omit for
    /// a plain variant, which gets its own inventory item with its SKU.
    pub components: Option<Vec<ComponentInput>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    pub title: String,
    /// URL handle; derived from the title when omitted.
    pub handle: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<String>, example = "active")]
    pub status: Option<ProductStatus>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    #[serde(default)]
    pub channel_ids: Vec<String>,
    #[serde(default)]
    pub variants: Vec<VariantInput>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductChanges {
    pub title: Option<String>,
    pub handle: Option<String>,
    /// An empty string clears it.
    pub description: Option<String>,
    #[schema(value_type = Option<String>, example = "archived")]
    pub status: Option<ProductStatus>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub channel_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantChanges {
    pub title: Option<String>,
    pub options: Option<BTreeMap<String, String>>,
    /// Replaces the whole price list.
    pub prices: Option<Vec<PriceInput>>,
    pub position: Option<i64>,
    pub archived: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    pub name: String,
    pub handle: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelChanges {
    pub name: Option<String>,
    pub handle: Option<String>,
    pub archived: Option<bool>,
}

/// A variant input after validation.
struct CheckedVariant {
    sku: Sku,
    title: String,
    options: BTreeMap<String, String>,
    prices: Vec<(String, i64)>,
    components: Option<Vec<(String, i64)>>,
}

fn check_prices(field: &str, prices: &[PriceInput]) -> Result<Vec<(String, i64)>, Invalid> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, p) in prices.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let currency = Currency::parse(&format!("{f}.currency"), &p.currency)?;
        let money = Money::new(&format!("{f}.amount"), p.amount, currency)?;
        if !seen.insert(currency.code()) {
            return Err(Invalid::new(format!("{f}.currency"), "duplicate_currency", "one price per currency"));
        }
        out.push((currency.code().to_owned(), money.amount));
    }
    Ok(out)
}

fn check_variant(field: &str, v: &VariantInput) -> Result<CheckedVariant, Invalid> {
    let sku = Sku::parse(&format!("{field}.sku"), &v.sku)?;
    let options = rules::options(&format!("{field}.options"), &v.options)?;
    let title = match &v.title {
        Some(t) => rules::text(&format!("{field}.title"), t, 255)?,
        None if options.is_empty() => "Default".to_owned(),
        None => options.values().cloned().collect::<Vec<_>>().join(" / "),
    };
    let prices = check_prices(&format!("{field}.prices"), &v.prices)?;
    let components = match &v.components {
        None => None,
        Some(list) => {
            if list.is_empty() || list.len() > 50 {
                return Err(Invalid::new(format!("{field}.components"), "invalid_components", "between 1 and 50 components"));
            }
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for (i, c) in list.iter().enumerate() {
                let f = format!("{field}.components[{i}]");
                let csku = Sku::parse(&format!("{f}.sku"), &c.sku)?;
                if !(1..=1000).contains(&c.quantity) {
                    return Err(Invalid::new(format!("{f}.quantity"), "invalid_quantity", "must be between 1 and 1000"));
                }
                if !seen.insert(csku.to_string()) {
                    return Err(Invalid::new(format!("{f}.sku"), "duplicate_component", "each item once per variant"));
                }
                out.push((csku.to_string(), c.quantity));
            }
            Some(out)
        }
    };
    Ok(CheckedVariant { sku, title, options, prices, components })
}

fn check_channel_ids(field: &str, ids: &[String]) -> Result<Vec<String>, Invalid> {
    let mut out = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        out.insert(ChannelId::parse(&format!("{field}[{i}]"), id)?.to_string());
    }
    Ok(out.into_iter().collect())
}

async fn ensure_channels_exist(conn: &mut Conn, field: &str, ids: &[String]) -> Result<()> {
    for (i, id) in ids.iter().enumerate() {
        if db::get_channel(conn, id).await?.is_none() {
            return Err(AppError::not_found_at("sales_channel", id, format!("{field}[{i}]")));
        }
    }
    Ok(())
}

/// Inserts one validated variant with its inventory wiring.
async fn insert_variant(
    conn: &mut Conn,
    field: &str,
    product_id: &str,
    position: i64,
    v: &CheckedVariant,
    now: i64,
) -> Result<VariantRow> {
    if db::variant_by_sku(conn, v.sku.as_str()).await?.is_some() {
        return Err(AppError::conflict("duplicate_sku", format!("SKU `{}` already exists", v.sku), Some(&format!("{field}.sku"))));
    }
    let row = VariantRow {
        id: VariantId::generate().to_string(),
        product_id: product_id.to_owned(),
        sku: v.sku.to_string(),
        title: v.title.clone(),
        options: serde_json::to_string(&v.options).unwrap_or_else(|_| "{}".into()),
        position,
        archived_at: None,
        created_at: now,
        updated_at: now,
        prices: v.prices.clone(),
        components: Vec::new(),
    };
    db::insert_variant(conn, &row).await.map_err(|e| {
        if e.is_unique_violation("variants", "sku") {
            AppError::conflict("duplicate_sku", format!("SKU `{}` already exists", v.sku), Some(&format!("{field}.sku")))
        } else {
            e.into()
        }
    })?;
    match &v.components {
        None => {
            let item = match inventory::item_by_sku(conn, v.sku.as_str()).await? {
                Some(item) => item,
                None => inventory::create_item(conn, &v.sku).await?,
            };
            db::insert_component(conn, &row.id, &item.id, 1).await?;
        }
        Some(components) => {
            for (i, (sku, qty)) in components.iter().enumerate() {
                let Some(item) = inventory::item_by_sku(conn, sku).await? else {
                    return Err(AppError::not_found_at("inventory_item", sku, format!("{field}.components[{i}].sku")));
                };
                db::insert_component(conn, &row.id, &item.id, *qty).await?;
            }
        }
    }
    Ok(row)
}

async fn unique_handle(conn: &mut Conn, wanted: Option<&str>, title: &str, own_id: Option<&str>) -> Result<String> {
    if let Some(h) = wanted {
        let h = rules::handle("handle", h)?;
        if let Some(other) = db::product_by_handle(conn, &h).await? {
            if Some(other.id.as_str()) != own_id {
                return Err(AppError::conflict("duplicate_handle", format!("handle `{h}` is taken"), Some("handle")));
            }
        }
        return Ok(h);
    }
    let base = rules::slugify(title);
    let mut candidate = base.clone();
    for n in 2..1000 {
        match db::product_by_handle(conn, &candidate).await? {
            Some(other) if Some(other.id.as_str()) != own_id => candidate = format!("{base}-{n}"),
            _ => return Ok(candidate),
        }
    }
    Err(AppError::conflict("duplicate_handle", "could not derive a free handle; pass one", Some("handle")))
}

async fn load_view(conn: &mut Conn, id: &str) -> Result<ProductView> {
    let p = db::get_product(conn, id).await?.ok_or_else(|| AppError::not_found("product", id))?;
    let ids = vec![p.id.clone()];
    let variants = db::variants_of(conn, &ids).await?;
    let channels = db::product_channels(conn, &ids).await?.remove(&p.id).unwrap_or_default();
    Ok(ProductView::from_rows(p, variants, channels))
}

async fn emit_product(conn: &mut Conn, kind: &str, view: &ProductView, actor: &Actor) -> Result<()> {
    outbox::append(
        conn,
        outbox::NewEvent {
            kind,
            aggregate_type: "product",
            aggregate_id: &view.id,
            aggregate_seq: view.version,
            payload: json!({ "object": view, "actor": actor.0 }),
        },
    )
    .await?;
    Ok(())
}

impl App {
    pub async fn create_product(&self, actor: &Actor, input: NewProduct) -> Result<ProductView> {
        let title = rules::text("title", &input.title, 255)?;
        let description = rules::optional_text("description", input.description.as_deref(), 20_000)?;
        let seo_title = rules::optional_text("seo_title", input.seo_title.as_deref(), 255)?;
        let seo_description = rules::optional_text("seo_description", input.seo_description.as_deref(), 1000)?;
        let channel_ids = check_channel_ids("channel_ids", &input.channel_ids)?;
        if input.variants.len() > 100 {
            return Err(Invalid::new("variants", "too_many_variants", "at most 100 variants per product").into());
        }
        let mut variants = Vec::new();
        let mut skus = BTreeSet::new();
        for (i, v) in input.variants.iter().enumerate() {
            let field = format!("variants[{i}]");
            let checked = check_variant(&field, v)?;
            if !skus.insert(checked.sku.to_string()) {
                return Err(AppError::conflict("duplicate_sku", format!("SKU `{}` appears twice", checked.sku), Some(&format!("{field}.sku"))));
            }
            variants.push(checked);
        }
        let status = input.status.unwrap_or(ProductStatus::Draft);
        in_tx!(self, |tx| {
            let now = now_micros();
            let handle = unique_handle(&mut tx, input.handle.as_deref(), &title, None).await?;
            ensure_channels_exist(&mut tx, "channel_ids", &channel_ids).await?;
            let product = ProductRow {
                id: ProductId::generate().to_string(),
                handle,
                title: title.clone(),
                description: description.clone(),
                status: status.as_str().to_owned(),
                seo_title: seo_title.clone(),
                seo_description: seo_description.clone(),
                version: 1,
                created_at: now,
                updated_at: now,
            };
            db::insert_product(&mut tx, &product).await?;
            for (i, v) in variants.iter().enumerate() {
                insert_variant(&mut tx, &format!("variants[{i}]"), &product.id, i as i64, v, now).await?;
            }
            db::set_product_channels(&mut tx, &product.id, &channel_ids).await?;
            search::reindex_product(&mut tx, &product.id).await?;
            let view = load_view(&mut tx, &product.id).await?;
            emit_product(&mut tx, "product.created", &view, actor).await?;
            Ok(view)
        })
    }

    pub async fn update_product(&self, actor: &Actor, id: &str, changes: ProductChanges) -> Result<ProductView> {
        ProductId::parse("id", id).map_err(|_| AppError::not_found("product", id))?;
        let title = changes.title.as_deref().map(|t| rules::text("title", t, 255)).transpose()?;
        let description = changes.description.as_deref().map(|d| rules::optional_text("description", Some(d), 20_000)).transpose()?;
        let seo_title = changes.seo_title.as_deref().map(|d| rules::optional_text("seo_title", Some(d), 255)).transpose()?;
        let seo_description =
            changes.seo_description.as_deref().map(|d| rules::optional_text("seo_description", Some(d), 1000)).transpose()?;
        let channel_ids = changes.channel_ids.as_deref().map(|c| check_channel_ids("channel_ids", c)).transpose()?;
        in_tx!(self, |tx| {
            let mut p = db::get_product(&mut tx, id).await?.ok_or_else(|| AppError::not_found("product", id))?;
            let was_archived = p.status == "archived";
            if let Some(t) = &title {
                p.title = t.clone();
            }
            if let Some(h) = &changes.handle {
                p.handle = unique_handle(&mut tx, Some(h), &p.title, Some(id)).await?;
            }
            if let Some(d) = &description {
                p.description = d.clone();
            }
            if let Some(s) = changes.status {
                p.status = s.as_str().to_owned();
            }
            if let Some(s) = &seo_title {
                p.seo_title = s.clone();
            }
            if let Some(s) = &seo_description {
                p.seo_description = s.clone();
            }
            p.updated_at = now_micros();
            db::update_product(&mut tx, &p).await?;
            if let Some(c) = &channel_ids {
                ensure_channels_exist(&mut tx, "channel_ids", c).await?;
                db::set_product_channels(&mut tx, id, c).await?;
            }
            search::reindex_product(&mut tx, id).await?;
            let view = load_view(&mut tx, id).await?;
            let kind = if !was_archived && view.status == "archived" { "product.archived" } else { "product.updated" };
            emit_product(&mut tx, kind, &view, actor).await?;
            Ok(view)
        })
    }

    pub async fn archive_product(&self, actor: &Actor, id: &str) -> Result<ProductView> {
        let changes = ProductChanges { status: Some(ProductStatus::Archived), ..Default::default() };
        self.update_product(actor, id, changes).await
    }

    pub async fn add_variant(&self, actor: &Actor, product_id: &str, input: VariantInput) -> Result<ProductView> {
        ProductId::parse("id", product_id).map_err(|_| AppError::not_found("product", product_id))?;
        let v = check_variant("", &input).map_err(strip_leading_dot)?;
        in_tx!(self, |tx| {
            let mut p = db::get_product(&mut tx, product_id).await?.ok_or_else(|| AppError::not_found("product", product_id))?;
            let now = now_micros();
            let position = db::variants_of(&mut tx, &[p.id.clone()]).await?.len() as i64;
            insert_variant(&mut tx, "", product_id, position, &v, now).await.map_err(strip_app_dot)?;
            p.updated_at = now;
            db::update_product(&mut tx, &p).await?;
            search::reindex_product(&mut tx, product_id).await?;
            let view = load_view(&mut tx, product_id).await?;
            emit_product(&mut tx, "product.updated", &view, actor).await?;
            Ok(view)
        })
    }

    pub async fn update_variant(
        &self,
        actor: &Actor,
        product_id: &str,
        variant_id: &str,
        changes: VariantChanges,
    ) -> Result<ProductView> {
        ProductId::parse("id", product_id).map_err(|_| AppError::not_found("product", product_id))?;
        VariantId::parse("variant_id", variant_id).map_err(|_| AppError::not_found("variant", variant_id))?;
        let title = changes.title.as_deref().map(|t| rules::text("title", t, 255)).transpose()?;
        let options = changes.options.as_ref().map(|o| rules::options("options", o)).transpose()?;
        let prices = changes.prices.as_deref().map(|p| check_prices("prices", p)).transpose()?;
        if changes.position.is_some_and(|p| !(0..=10_000).contains(&p)) {
            return Err(Invalid::new("position", "invalid_position", "must be between 0 and 10000").into());
        }
        in_tx!(self, |tx| {
            let mut p = db::get_product(&mut tx, product_id).await?.ok_or_else(|| AppError::not_found("product", product_id))?;
            let mut v = db::variants_of(&mut tx, &[p.id.clone()])
                .await?
                .into_iter()
                .find(|v| v.id == variant_id)
                .ok_or_else(|| AppError::not_found("variant", variant_id))?;
            let now = now_micros();
            if let Some(t) = &title {
                v.title = t.clone();
            }
            if let Some(o) = &options {
                v.options = serde_json::to_string(o).unwrap_or_else(|_| "{}".into());
            }
            if let Some(pr) = &prices {
                v.prices = pr.clone();
            }
            if let Some(pos) = changes.position {
                v.position = pos;
            }
            if let Some(a) = changes.archived {
                v.archived_at = if a { v.archived_at.or(Some(now)) } else { None };
            }
            v.updated_at = now;
            db::update_variant(&mut tx, &v).await?;
            p.updated_at = now;
            db::update_product(&mut tx, &p).await?;
            let view = load_view(&mut tx, product_id).await?;
            emit_product(&mut tx, "product.updated", &view, actor).await?;
            Ok(view)
        })
    }

    pub async fn get_product(&self, id: &str) -> Result<ProductView> {
        ProductId::parse("id", id).map_err(|_| AppError::not_found("product", id))?;
        let mut conn = self.store.reader().await?;
        load_view(&mut conn, id).await
    }

    pub async fn list_products(
        &self,
        status: Option<ProductStatus>,
        starting_after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<ProductView>> {
        if let Some(c) = starting_after {
            ProductId::parse("starting_after", c)?;
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let rows = db::list_products(&mut conn, status.map(|s| s.as_str()), starting_after, limit + 1).await?;
        let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
        let mut variants: BTreeMap<String, Vec<VariantRow>> = BTreeMap::new();
        for v in db::variants_of(&mut conn, &ids).await? {
            variants.entry(v.product_id.clone()).or_default().push(v);
        }
        let mut channels = db::product_channels(&mut conn, &ids).await?;
        let views = rows
            .into_iter()
            .map(|p| {
                let vs = variants.remove(&p.id).unwrap_or_default();
                let cs = channels.remove(&p.id).unwrap_or_default();
                ProductView::from_rows(p, vs, cs)
            })
            .collect();
        Ok(Page::from_overfetch(views, limit))
    }

    pub async fn variant_by_sku(&self, sku: &str) -> Result<VariantView> {
        let mut conn = self.store.reader().await?;
        let v = db::variant_by_sku(&mut conn, sku).await?.ok_or_else(|| AppError::not_found_at("variant", sku, "sku"))?;
        Ok(VariantView::from_row(v))
    }

    /// A variant by id (the storefront's add-to-cart form sends ids).
    pub async fn variant_by_id(&self, id: &str) -> Result<VariantView> {
        keel_domain::ids::VariantId::parse("variant_id", id).map_err(|_| AppError::not_found_at("variant", id, "variant_id"))?;
        let mut conn = self.store.reader().await?;
        let v = db::variant_by_id(&mut conn, id).await?.ok_or_else(|| AppError::not_found_at("variant", id, "variant_id"))?;
        Ok(VariantView::from_row(v))
    }

    pub async fn create_channel(&self, actor: &Actor, input: NewChannel) -> Result<ChannelView> {
        let name = rules::text("name", &input.name, 255)?;
        let handle = match &input.handle {
            Some(h) => rules::handle("handle", h)?,
            None => rules::slugify(&name),
        };
        in_tx!(self, |tx| {
            if db::channel_by_handle(&mut tx, &handle).await?.is_some() {
                return Err(AppError::conflict("duplicate_handle", format!("handle `{handle}` is taken"), Some("handle")));
            }
            let now = now_micros();
            let row = ChannelRow {
                id: ChannelId::generate().to_string(),
                handle: handle.clone(),
                name: name.clone(),
                archived_at: None,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            db::insert_channel(&mut tx, &row).await?;
            let view = ChannelView::from(row);
            emit_channel(&mut tx, "sales_channel.created", &view, actor).await?;
            Ok(view)
        })
    }

    pub async fn update_channel(&self, actor: &Actor, id: &str, changes: ChannelChanges) -> Result<ChannelView> {
        ChannelId::parse("id", id).map_err(|_| AppError::not_found("sales_channel", id))?;
        let name = changes.name.as_deref().map(|n| rules::text("name", n, 255)).transpose()?;
        let handle = changes.handle.as_deref().map(|h| rules::handle("handle", h)).transpose()?;
        in_tx!(self, |tx| {
            let mut c = db::get_channel(&mut tx, id).await?.ok_or_else(|| AppError::not_found("sales_channel", id))?;
            let now = now_micros();
            if let Some(n) = &name {
                c.name = n.clone();
            }
            if let Some(h) = &handle {
                if db::channel_by_handle(&mut tx, h).await?.is_some_and(|o| o.id != c.id) {
                    return Err(AppError::conflict("duplicate_handle", format!("handle `{h}` is taken"), Some("handle")));
                }
                c.handle = h.clone();
            }
            if let Some(a) = changes.archived {
                c.archived_at = if a { c.archived_at.or(Some(now)) } else { None };
            }
            c.updated_at = now;
            c.version = db::update_channel(&mut tx, &c).await?;
            let view = ChannelView::from(c);
            emit_channel(&mut tx, "sales_channel.updated", &view, actor).await?;
            Ok(view)
        })
    }

    pub async fn get_channel(&self, id: &str) -> Result<ChannelView> {
        ChannelId::parse("id", id).map_err(|_| AppError::not_found("sales_channel", id))?;
        let mut conn = self.store.reader().await?;
        Ok(db::get_channel(&mut conn, id).await?.ok_or_else(|| AppError::not_found("sales_channel", id))?.into())
    }

    pub async fn list_channels(&self, starting_after: Option<&str>, limit: Option<i64>) -> Result<Page<ChannelView>> {
        if let Some(c) = starting_after {
            ChannelId::parse("starting_after", c)?;
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let rows = db::list_channels(&mut conn, starting_after, limit + 1).await?;
        Ok(Page::from_overfetch(rows.into_iter().map(ChannelView::from).collect(), limit))
    }
}

async fn emit_channel(conn: &mut Conn, kind: &str, view: &ChannelView, actor: &Actor) -> Result<()> {
    outbox::append(
        conn,
        outbox::NewEvent {
            kind,
            aggregate_type: "sales_channel",
            aggregate_id: &view.id,
            aggregate_seq: view.version,
            payload: json!({ "object": view, "actor": actor.0 }),
        },
    )
    .await?;
    Ok(())
}

/// Field paths built with an empty parent start with `.`; drop it.
fn strip_leading_dot(mut e: Invalid) -> Invalid {
    if let Some(rest) = e.field.strip_prefix('.') {
        e.field = rest.to_owned();
    }
    e
}

fn strip_app_dot(e: AppError) -> AppError {
    match e {
        AppError::Invalid(i) => AppError::Invalid(strip_leading_dot(i)),
        AppError::NotFound { resource, id, param } => {
            AppError::NotFound { resource, id, param: param.map(|p| p.trim_start_matches('.').to_owned()) }
        }
        AppError::Conflict { code, message, param } => {
            AppError::Conflict { code, message, param: param.map(|p| p.trim_start_matches('.').to_owned()) }
        }
        other => other,
    }
}

// ------------------------------------------------- admin console reads ---

/// The longest search text the admin product list accepts.
pub const MAX_SEARCH_CHARS: usize = 100;

/// A product as the admin list shows it.
#[derive(Debug, Clone)]
pub struct ProductSummary {
    pub id: String,
    pub handle: String,
    pub title: String,
    pub status: ProductStatus,
    /// Variants not archived.
    pub variant_count: usize,
    /// The lowest and highest price of those variants in the currency asked
    /// for; `None` when none has a price in it.
    pub price_range: Option<(i64, i64)>,
    /// Units those variants can sell now (a bundle counts its own units).
    pub available: i64,
    /// The first image in display order.
    pub image: Option<ImageView>,
}

/// One product for its admin page: the product, its images, and how many
/// units each live variant can sell now.
#[derive(Debug, Clone)]
pub struct ProductOverview {
    pub product: ProductView,
    pub images: Vec<ImageView>,
    /// By variant id; absent for a variant with nothing to sell.
    pub available: HashMap<String, i64>,
}

impl App {
    /// A page of the admin product list with each product's variant count,
    /// price range in `currency`, available units and first image, in a
    /// fixed number of queries whatever the page size.
    pub async fn product_summaries(
        &self,
        status: Option<ProductStatus>,
        search: &str,
        currency: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ProductSummary>> {
        let search: String = search.trim().chars().take(MAX_SEARCH_CHARS).collect();
        let filter = db::ProductFilter { status: status.map(|s| s.as_str()), search: Some(search.as_str()).filter(|s| !s.is_empty()) };
        let mut conn = self.store.reader().await?;
        let rows = db::filtered_products(&mut conn, &filter, offset.max(0), limit.clamp(1, 500)).await?;
        let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
        let mut variants: BTreeMap<String, Vec<VariantRow>> = BTreeMap::new();
        for v in db::variants_of(&mut conn, &ids).await?.into_iter().filter(|v| v.archived_at.is_none()) {
            variants.entry(v.product_id.clone()).or_default().push(v);
        }
        let variant_ids: Vec<&str> = variants.values().flatten().map(|v| v.id.as_str()).collect();
        let stock = crate::storefront::sellable(&mut conn, &variant_ids).await?;
        let mut images = keel_store::images::images_of(&mut conn, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|p| {
                let vs = variants.get(&p.id).map(Vec::as_slice).unwrap_or_default();
                let prices: Vec<i64> =
                    vs.iter().flat_map(|v| v.prices.iter()).filter(|(c, _)| c == currency).map(|(_, a)| *a).collect();
                let price_range = prices.iter().min().zip(prices.iter().max()).map(|(lo, hi)| (*lo, *hi));
                ProductSummary {
                    variant_count: vs.len(),
                    price_range,
                    available: vs.iter().map(|v| stock.get(&v.id).copied().unwrap_or(0).max(0)).sum(),
                    image: images.remove(&p.id).and_then(|v| v.into_iter().next()).map(ImageView::from_row),
                    status: ProductStatus::from_db(&p.status),
                    id: p.id,
                    handle: p.handle,
                    title: p.title,
                }
            })
            .collect())
    }

    /// A product with its images and per-variant available units.
    pub async fn product_overview(&self, id: &str) -> Result<ProductOverview> {
        ProductId::parse("id", id).map_err(|_| AppError::not_found("product", id))?;
        let mut conn = self.store.reader().await?;
        let product = load_view(&mut conn, id).await?;
        let variant_ids: Vec<&str> = product.variants.iter().filter(|v| !v.archived).map(|v| v.id.as_str()).collect();
        let available = crate::storefront::sellable(&mut conn, &variant_ids).await?;
        let images = keel_store::images::images_of(&mut conn, std::slice::from_ref(&product.id))
            .await?
            .remove(&product.id)
            .unwrap_or_default()
            .into_iter()
            .map(ImageView::from_row)
            .collect();
        Ok(ProductOverview { product, images, available })
    }
}

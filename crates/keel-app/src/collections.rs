//! Collections: curated, ordered groups of products shown in the storefront.

use crate::views::Page;
use crate::{in_tx, page_limit, Actor, App, AppError, Result};
use keel_domain::catalog as rules;
use keel_domain::ids::{CollectionId, ProductId};
use keel_domain::time::{now_micros, to_rfc3339};
use keel_domain::Invalid;
use keel_store::collections::{self as db, CollectionRow};
use keel_store::{outbox, Conn};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;
use utoipa::ToSchema;

/// At most this many products per collection (and per request).
pub const MAX_PRODUCTS: usize = 1000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectionView {
    pub id: String,
    #[schema(example = "collection")]
    pub object: &'static str,
    pub handle: String,
    pub title: String,
    pub description: Option<String>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    /// Display order among collections (ascending).
    pub position: i64,
    /// Whether the storefront shows it.
    pub published: bool,
    /// Member product ids in display order.
    pub product_ids: Vec<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl CollectionView {
    fn from_row(c: CollectionRow, product_ids: Vec<String>) -> CollectionView {
        CollectionView {
            id: c.id,
            object: "collection",
            handle: c.handle,
            title: c.title,
            description: c.description,
            seo_title: c.seo_title,
            seo_description: c.seo_description,
            position: c.position,
            published: c.published_at.is_some(),
            product_ids,
            version: c.version,
            created_at: to_rfc3339(c.created_at),
            updated_at: to_rfc3339(c.updated_at),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    pub title: String,
    /// URL handle; derived from the title when omitted.
    pub handle: Option<String>,
    pub description: Option<String>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    /// Default 0.
    pub position: Option<i64>,
    /// Default true.
    pub published: Option<bool>,
    #[serde(default)]
    pub product_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionChanges {
    pub title: Option<String>,
    pub handle: Option<String>,
    /// An empty string clears it.
    pub description: Option<String>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub position: Option<i64>,
    pub published: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionProducts {
    pub product_ids: Vec<String>,
    /// `true` replaces the membership with `product_ids` in that order;
    /// `false` (default) appends those not already in the collection.
    #[serde(default)]
    pub replace: bool,
}

fn check_position(p: Option<i64>) -> Result<Option<i64>, Invalid> {
    match p {
        Some(p) if !(0..=1_000_000).contains(&p) => {
            Err(Invalid::new("position", "invalid_position", "must be between 0 and 1000000"))
        }
        p => Ok(p),
    }
}

fn check_product_ids(ids: &[String]) -> Result<Vec<String>, Invalid> {
    if ids.len() > MAX_PRODUCTS {
        return Err(Invalid::new("product_ids", "too_many_products", format!("at most {MAX_PRODUCTS} products")));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let id = ProductId::parse(&format!("product_ids[{i}]"), id)?.to_string();
        if seen.insert(id.clone()) {
            out.push(id);
        }
    }
    Ok(out)
}

async fn ensure_products_exist(conn: &mut Conn, ids: &[String]) -> Result<()> {
    let existing = db::existing_products(conn, ids).await?;
    match ids.iter().enumerate().find(|(_, id)| !existing.contains(*id)) {
        Some((i, id)) => Err(AppError::not_found_at("product", id, format!("product_ids[{i}]"))),
        None => Ok(()),
    }
}

async fn free_handle(conn: &mut Conn, wanted: &str, own_id: Option<&str>) -> Result<()> {
    match db::by_handle(conn, wanted).await? {
        Some(other) if Some(other.id.as_str()) != own_id => {
            Err(AppError::conflict("duplicate_handle", format!("handle `{wanted}` is taken"), Some("handle")))
        }
        _ => Ok(()),
    }
}

async fn load(conn: &mut Conn, id: &str) -> Result<CollectionView> {
    let row = db::get(conn, id).await?.ok_or_else(|| AppError::not_found("collection", id))?;
    let products = db::product_ids(conn, id).await?;
    Ok(CollectionView::from_row(row, products))
}

async fn emit(conn: &mut Conn, kind: &str, view: &CollectionView, actor: &Actor) -> Result<()> {
    outbox::append(
        conn,
        outbox::NewEvent {
            kind,
            aggregate_type: "collection",
            aggregate_id: &view.id,
            aggregate_seq: view.version,
            payload: json!({ "object": view, "actor": actor.0 }),
        },
    )
    .await?;
    Ok(())
}

impl App {
    pub async fn create_collection(&self, actor: &Actor, input: NewCollection) -> Result<CollectionView> {
        let title = rules::text("title", &input.title, 255)?;
        let handle = match &input.handle {
            Some(h) => rules::handle("handle", h)?,
            None => rules::slugify(&title),
        };
        let description = rules::optional_text("description", input.description.as_deref(), 20_000)?;
        let seo_title = rules::optional_text("seo_title", input.seo_title.as_deref(), 255)?;
        let seo_description = rules::optional_text("seo_description", input.seo_description.as_deref(), 1000)?;
        let position = check_position(input.position)?.unwrap_or(0);
        let products = check_product_ids(&input.product_ids)?;
        in_tx!(self, |tx| {
            free_handle(&mut tx, &handle, None).await?;
            ensure_products_exist(&mut tx, &products).await?;
            let now = now_micros();
            let row = CollectionRow {
                id: CollectionId::generate().to_string(),
                handle: handle.clone(),
                title: title.clone(),
                description: description.clone(),
                seo_title: seo_title.clone(),
                seo_description: seo_description.clone(),
                position,
                published_at: input.published.unwrap_or(true).then_some(now),
                version: 1,
                created_at: now,
                updated_at: now,
            };
            db::insert(&mut tx, &row).await.map_err(|e| {
                if e.is_unique_violation("collections", "handle") {
                    AppError::conflict("duplicate_handle", format!("handle `{handle}` is taken"), Some("handle"))
                } else {
                    e.into()
                }
            })?;
            db::set_products(&mut tx, &row.id, &products).await?;
            let view = CollectionView::from_row(row, products.clone());
            emit(&mut tx, "collection.created", &view, actor).await?;
            Ok(view)
        })
    }

    pub async fn update_collection(&self, actor: &Actor, id: &str, changes: CollectionChanges) -> Result<CollectionView> {
        CollectionId::parse("id", id).map_err(|_| AppError::not_found("collection", id))?;
        let title = changes.title.as_deref().map(|t| rules::text("title", t, 255)).transpose()?;
        let handle = changes.handle.as_deref().map(|h| rules::handle("handle", h)).transpose()?;
        let description = changes.description.as_deref().map(|d| rules::optional_text("description", Some(d), 20_000)).transpose()?;
        let seo_title = changes.seo_title.as_deref().map(|d| rules::optional_text("seo_title", Some(d), 255)).transpose()?;
        let seo_description =
            changes.seo_description.as_deref().map(|d| rules::optional_text("seo_description", Some(d), 1000)).transpose()?;
        let position = check_position(changes.position)?;
        in_tx!(self, |tx| {
            let mut c = db::get(&mut tx, id).await?.ok_or_else(|| AppError::not_found("collection", id))?;
            let now = now_micros();
            if let Some(t) = &title {
                c.title = t.clone();
            }
            if let Some(h) = &handle {
                free_handle(&mut tx, h, Some(id)).await?;
                c.handle = h.clone();
            }
            if let Some(d) = &description {
                c.description = d.clone();
            }
            if let Some(s) = &seo_title {
                c.seo_title = s.clone();
            }
            if let Some(s) = &seo_description {
                c.seo_description = s.clone();
            }
            if let Some(p) = position {
                c.position = p;
            }
            if let Some(p) = changes.published {
                c.published_at = if p { c.published_at.or(Some(now)) } else { None };
            }
            c.updated_at = now;
            db::update(&mut tx, &c).await?;
            let view = load(&mut tx, id).await?;
            emit(&mut tx, "collection.updated", &view, actor).await?;
            Ok(view)
        })
    }

    /// Sets or extends the products of a collection.
    pub async fn set_collection_products(&self, actor: &Actor, id: &str, input: CollectionProducts) -> Result<CollectionView> {
        CollectionId::parse("id", id).map_err(|_| AppError::not_found("collection", id))?;
        let wanted = check_product_ids(&input.product_ids)?;
        in_tx!(self, |tx| {
            let mut c = db::get(&mut tx, id).await?.ok_or_else(|| AppError::not_found("collection", id))?;
            ensure_products_exist(&mut tx, &wanted).await?;
            let products = if input.replace {
                wanted.clone()
            } else {
                let mut current = db::product_ids(&mut tx, id).await?;
                let have: BTreeSet<String> = current.iter().cloned().collect();
                current.extend(wanted.iter().filter(|p| !have.contains(*p)).cloned());
                current
            };
            if products.len() > MAX_PRODUCTS {
                return Err(Invalid::new("product_ids", "too_many_products", format!("at most {MAX_PRODUCTS} products")).into());
            }
            db::set_products(&mut tx, id, &products).await?;
            c.updated_at = now_micros();
            db::update(&mut tx, &c).await?;
            let view = load(&mut tx, id).await?;
            emit(&mut tx, "collection.updated", &view, actor).await?;
            Ok(view)
        })
    }

    pub async fn get_collection(&self, id: &str) -> Result<CollectionView> {
        CollectionId::parse("id", id).map_err(|_| AppError::not_found("collection", id))?;
        let mut conn = self.store.reader().await?;
        load(&mut conn, id).await
    }

    pub async fn list_collections(&self, starting_after: Option<&str>, limit: Option<i64>) -> Result<Page<CollectionView>> {
        if let Some(c) = starting_after {
            CollectionId::parse("starting_after", c)?;
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let rows = db::list(&mut conn, starting_after, limit + 1).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut members = db::products_of(&mut conn, &ids).await?;
        let views = rows
            .into_iter()
            .map(|row| {
                let products = members.remove(&row.id).unwrap_or_default();
                CollectionView::from_row(row, products)
            })
            .collect();
        Ok(Page::from_overfetch(views, limit))
    }
}

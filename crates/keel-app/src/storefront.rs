//! What the storefront reads: active products with live availability,
//! published collections, filtered listings and search. Reads only.

use crate::images::ImageView;
use crate::views::{ProductView, VariantView};
use crate::{App, AppError, Result};
use keel_domain::storefront::{sellable_units, StockStatus};
use keel_store::catalog::{self, ProductRow, VariantRow};
use keel_store::collections::{self as db, CollectionRow, ListingFilter};
pub use keel_store::collections::ProductStamp;
use keel_store::{search, Conn};
use std::collections::{BTreeMap, HashMap};

/// The longest search text accepted; longer input is cut at a character
/// boundary.
pub const MAX_QUERY_CHARS: usize = 100;
/// Products per listing page.
pub const PER_PAGE: i64 = 12;
/// The deepest page a listing serves (offsets stay cheap).
pub const MAX_PAGE: i64 = 500;

/// A product as a card in a grid.
#[derive(Debug, Clone)]
pub struct Card {
    pub id: String,
    pub handle: String,
    pub title: String,
    /// The lowest price of a live variant in the shop currency.
    pub from_price: Option<i64>,
    /// Whether some live variant can be sold now.
    pub available: bool,
    /// The product's first image in display order.
    pub image: Option<ImageView>,
}

/// A collection as the storefront shows it.
#[derive(Debug, Clone)]
pub struct CollectionSummary {
    pub id: String,
    pub handle: String,
    pub title: String,
    pub description: Option<String>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub updated_at: i64,
}

impl From<CollectionRow> for CollectionSummary {
    fn from(c: CollectionRow) -> Self {
        CollectionSummary {
            id: c.id,
            handle: c.handle,
            title: c.title,
            description: c.description,
            seo_title: c.seo_title,
            seo_description: c.seo_description,
            updated_at: c.updated_at,
        }
    }
}

/// One page of products.
#[derive(Debug, Clone)]
pub struct Listing {
    pub cards: Vec<Card>,
    pub total: i64,
    /// 1-based.
    pub page: i64,
    pub pages: i64,
}

#[derive(Debug, Clone)]
pub struct Home {
    pub collections: Vec<CollectionSummary>,
    /// Products of the `featured` collection, or the newest products.
    pub featured: Vec<Card>,
}

/// Listing filters as the shopper gave them, already validated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filters {
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: bool,
}

#[derive(Debug, Clone)]
pub struct VariantStock {
    pub variant: VariantView,
    pub available: i64,
    pub status: StockStatus,
}

#[derive(Debug, Clone)]
pub struct ProductPage {
    pub product: ProductView,
    /// Live (not archived) variants in position order, with availability.
    pub variants: Vec<VariantStock>,
    /// In display order.
    pub images: Vec<ImageView>,
}

/// The handle of the collection the home page features.
pub const FEATURED: &str = "featured";

/// Units each variant can sell now (absent: no components, nothing to sell).
pub(crate) async fn sellable(conn: &mut Conn, variant_ids: &[&str]) -> Result<HashMap<String, i64>> {
    let mut per_variant: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for (variant, per_unit, available) in db::variant_stock(conn, variant_ids).await? {
        per_variant.entry(variant).or_default().push((per_unit, available));
    }
    Ok(per_variant.into_iter().map(|(v, parts)| (v, sellable_units(&parts))).collect())
}

/// Cards for these products, with prices, availability and first image, in
/// a fixed number of queries whatever the number of products.
async fn cards(conn: &mut Conn, rows: Vec<ProductRow>, currency: &str) -> Result<Vec<Card>> {
    let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
    let mut images = keel_store::images::images_of(conn, &ids).await?;
    let mut variants: BTreeMap<String, Vec<VariantRow>> = BTreeMap::new();
    for v in catalog::variants_of(conn, &ids).await?.into_iter().filter(|v| v.archived_at.is_none()) {
        variants.entry(v.product_id.clone()).or_default().push(v);
    }
    let variant_ids: Vec<&str> = variants.values().flatten().map(|v| v.id.as_str()).collect();
    let stock = sellable(conn, &variant_ids).await?;
    Ok(rows
        .into_iter()
        .map(|p| {
            let vs = variants.get(&p.id).map(Vec::as_slice).unwrap_or_default();
            Card {
                from_price: vs
                    .iter()
                    .flat_map(|v| v.prices.iter())
                    .filter(|(c, _)| c == currency)
                    .map(|(_, amount)| *amount)
                    .min(),
                available: vs.iter().any(|v| stock.get(&v.id).copied().unwrap_or(0) > 0),
                image: images.remove(&p.id).and_then(|v| v.into_iter().next()).map(ImageView::from_row),
                id: p.id,
                handle: p.handle,
                title: p.title,
            }
        })
        .collect())
}

fn pages(total: i64) -> i64 {
    ((total + PER_PAGE - 1) / PER_PAGE).clamp(1, MAX_PAGE)
}

/// A page number as the shopper gave it, kept within what exists.
fn clamp_page(page: i64) -> i64 {
    page.clamp(1, MAX_PAGE)
}

/// Cuts search text to [`MAX_QUERY_CHARS`] characters, trimmed.
pub fn bound_query(text: &str) -> String {
    text.trim().chars().take(MAX_QUERY_CHARS).collect::<String>().trim().to_owned()
}

impl App {
    pub async fn storefront_home(&self, currency: &str) -> Result<Home> {
        let mut conn = self.store.reader().await?;
        let collections: Vec<CollectionSummary> =
            db::published(&mut conn, 50).await?.into_iter().map(CollectionSummary::from).collect();
        let filter = ListingFilter { currency, ..Default::default() };
        let featured = match collections.iter().find(|c| c.handle == FEATURED) {
            Some(c) => db::listing(&mut conn, &ListingFilter { collection_id: Some(&c.id), ..filter.clone() }, 0, PER_PAGE).await?,
            None => db::listing(&mut conn, &filter, 0, PER_PAGE).await?,
        };
        let featured = cards(&mut conn, featured.0, currency).await?;
        Ok(Home { collections, featured })
    }

    /// A published collection by handle.
    pub async fn storefront_collection(&self, handle: &str) -> Result<CollectionSummary> {
        let mut conn = self.store.reader().await?;
        match db::by_handle(&mut conn, handle).await? {
            Some(c) if c.published_at.is_some() => Ok(c.into()),
            _ => Err(AppError::not_found("collection", handle)),
        }
    }

    /// One page of a collection's active products, filtered in SQL.
    pub async fn storefront_listing(
        &self,
        collection_id: &str,
        filters: Filters,
        page: i64,
        currency: &str,
    ) -> Result<Listing> {
        let page = clamp_page(page);
        let mut conn = self.store.reader().await?;
        let filter = ListingFilter {
            collection_id: Some(collection_id),
            currency,
            min_price: filters.min_price,
            max_price: filters.max_price,
            in_stock: filters.in_stock,
        };
        let (rows, total) = db::listing(&mut conn, &filter, (page - 1) * PER_PAGE, PER_PAGE).await?;
        let cards = cards(&mut conn, rows, currency).await?;
        Ok(Listing { cards, total, page, pages: pages(total) })
    }

    /// Active products matching `text` (title, description, SKUs).
    pub async fn storefront_search(&self, text: &str, page: i64, currency: &str) -> Result<Listing> {
        let text = bound_query(text);
        let page = clamp_page(page);
        let mut conn = self.store.reader().await?;
        let (rows, total) = search::search_products(&mut conn, &text, (page - 1) * PER_PAGE, PER_PAGE).await?;
        let cards = cards(&mut conn, rows, currency).await?;
        Ok(Listing { cards, total, page, pages: pages(total) })
    }

    /// The product with `handle` (id and status) and its version stamp: one
    /// cheap query that says whether a rendered page is still current.
    pub async fn storefront_stamp(&self, handle: &str) -> Result<Option<(String, String, ProductStamp)>> {
        let mut conn = self.store.reader().await?;
        Ok(db::product_stamp(&mut conn, handle).await?)
    }

    /// An active product with the live availability of each variant.
    pub async fn storefront_product(&self, id: &str) -> Result<ProductPage> {
        let mut conn = self.store.reader().await?;
        let p = catalog::get_product(&mut conn, id).await?.filter(|p| p.status == "active");
        let p = p.ok_or_else(|| AppError::not_found("product", id))?;
        let ids = vec![p.id.clone()];
        let rows: Vec<VariantRow> =
            catalog::variants_of(&mut conn, &ids).await?.into_iter().filter(|v| v.archived_at.is_none()).collect();
        let variant_ids: Vec<&str> = rows.iter().map(|v| v.id.as_str()).collect();
        let stock = sellable(&mut conn, &variant_ids).await?;
        let variants = rows
            .iter()
            .map(|v| {
                let available = stock.get(&v.id).copied().unwrap_or(0);
                VariantStock { variant: VariantView::from_row(v.clone()), available, status: StockStatus::of(available) }
            })
            .collect();
        let images = keel_store::images::images_of(&mut conn, &ids)
            .await?
            .remove(&p.id)
            .unwrap_or_default()
            .into_iter()
            .map(ImageView::from_row)
            .collect();
        let product = ProductView::from_rows(p, rows, Vec::new());
        Ok(ProductPage { product, variants, images })
    }

    /// Published collections and active products, for the sitemap.
    pub async fn storefront_sitemap(&self) -> Result<(Vec<CollectionSummary>, Vec<(String, i64)>)> {
        let mut conn = self.store.reader().await?;
        let collections = db::published(&mut conn, 1000).await?.into_iter().map(CollectionSummary::from).collect();
        let products = db::active_product_handles(&mut conn, 50_000).await?;
        Ok((collections, products))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_bounded() {
        assert_eq!(bound_query("  tee  "), "tee");
        assert_eq!(bound_query(&"é".repeat(300)).chars().count(), MAX_QUERY_CHARS);
    }

    #[test]
    fn page_counts() {
        assert_eq!(pages(0), 1);
        assert_eq!(pages(12), 1);
        assert_eq!(pages(13), 2);
        assert_eq!(clamp_page(-3), 1);
        assert_eq!(clamp_page(10_000), MAX_PAGE);
    }
}

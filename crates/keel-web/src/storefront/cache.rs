//! The in-process cache of rendered product pages.
//!
//! An entry is keyed by product id and holds the page data, the pages
//! rendered from it (one per preselected variant) and the version stamp they
//! were rendered at. Every request first reads the product's current stamp
//! (one indexed query, see `keel_store::collections::product_stamp`); the
//! cached page is served only when the stamps are equal, so a stock change
//! committed by any node shows on the very next request, with no time window
//! and no invalidation message to lose. Size is bounded: when full, the least
//! recently used entries are dropped.

use bytes::Bytes;
use keel_app::storefront::{ProductPage, ProductStamp};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One rendered page, ready to serve.
#[derive(Clone)]
pub struct Rendered {
    pub body: Bytes,
    /// Strong validator, computed once when the page was rendered.
    pub etag: String,
}

struct Entry {
    stamp: ProductStamp,
    data: Arc<ProductPage>,
    /// Rendered pages by preselected variant (`None`: the default choice).
    pages: HashMap<Option<String>, Rendered>,
    used: u64,
}

/// What a lookup found for a product at a given stamp.
pub enum Lookup {
    /// The page for this variant choice, current.
    Hit(Rendered),
    /// The data is current but this variant choice was not rendered yet.
    Data(Arc<ProductPage>),
    /// Nothing current.
    Miss,
}

pub struct FragmentCache {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
    clock: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl FragmentCache {
    pub fn new(capacity: usize) -> FragmentCache {
        FragmentCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached page of `product_id` for `variant`, if rendered at `stamp`.
    pub fn get(&self, product_id: &str, stamp: &ProductStamp, variant: Option<&str>) -> Lookup {
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(product_id).filter(|e| e.stamp == *stamp) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss;
        };
        entry.used = tick;
        let key = known_variant(&entry.data, variant);
        match entry.pages.get(&key) {
            Some(page) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Lookup::Hit(page.clone())
            }
            None => Lookup::Data(entry.data.clone()),
        }
    }

    /// Stores a page rendered from `data` at `stamp`. An entry at another
    /// stamp is replaced, pages and all.
    pub fn put(&self, product_id: &str, stamp: ProductStamp, data: Arc<ProductPage>, variant: Option<&str>, page: Rendered) {
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.lock();
        if !entries.contains_key(product_id) && entries.len() >= self.capacity {
            evict_oldest(&mut entries, self.capacity / 8 + 1);
        }
        let entry = entries
            .entry(product_id.to_owned())
            .and_modify(|e| {
                if e.stamp != stamp {
                    e.stamp = stamp;
                    e.data = data.clone();
                    e.pages.clear();
                }
            })
            .or_insert_with(|| Entry { stamp, data: data.clone(), pages: HashMap::new(), used: tick });
        entry.used = tick;
        // Each product has at most a few hundred variants; bound anyway.
        let key = known_variant(&entry.data, variant);
        if entry.pages.len() < 256 {
            entry.pages.insert(key, page);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

/// A preselected variant that is one of the product's live variants;
/// anything else renders (and caches) as the default choice, so made-up
/// `?variant=` values cannot fill the cache.
pub fn known_variant(data: &ProductPage, variant: Option<&str>) -> Option<String> {
    variant.filter(|v| data.variants.iter().any(|x| x.variant.id == *v)).map(str::to_owned)
}

fn evict_oldest(entries: &mut HashMap<String, Entry>, n: usize) {
    let mut by_age: Vec<(u64, String)> = entries.iter().map(|(k, e)| (e.used, k.clone())).collect();
    by_age.sort_unstable();
    for (_, k) in by_age.into_iter().take(n) {
        entries.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_app::views::ProductView;

    fn stamp(v: i64) -> ProductStamp {
        ProductStamp { product_version: 1, stock_versions: v, stock_rows: 1, locations_changed_at: 0, changed_at: v }
    }

    fn data() -> Arc<ProductPage> {
        let product = ProductView {
            id: "prod_x".into(),
            object: "product",
            handle: "x".into(),
            title: "X".into(),
            description: None,
            status: "active".into(),
            seo_title: None,
            seo_description: None,
            channel_ids: Vec::new(),
            variants: Vec::new(),
            version: 1,
            created_at: String::new(),
            updated_at: String::new(),
        };
        Arc::new(ProductPage { product, variants: Vec::new(), images: Vec::new() })
    }

    fn page(s: &str) -> Rendered {
        Rendered { body: Bytes::from(s.to_owned()), etag: format!("\"{s}\"") }
    }

    #[test]
    fn a_page_is_served_only_at_the_stamp_it_was_rendered_at() {
        let c = FragmentCache::new(10);
        c.put("p1", stamp(1), data(), None, page("a"));
        assert!(matches!(c.get("p1", &stamp(1), None), Lookup::Hit(r) if r.body == "a"));
        assert!(matches!(c.get("p1", &stamp(2), None), Lookup::Miss));
        // An unknown variant is the default page.
        assert!(matches!(c.get("p1", &stamp(1), Some("var_1")), Lookup::Hit(r) if r.body == "a"));
        c.put("p1", stamp(2), data(), None, page("b"));
        assert!(matches!(c.get("p1", &stamp(1), None), Lookup::Miss));
        assert!(matches!(c.get("p1", &stamp(2), None), Lookup::Hit(r) if r.body == "b"));
    }

    #[test]
    fn the_cache_stays_bounded_and_keeps_recent_entries() {
        let c = FragmentCache::new(8);
        for i in 0..8 {
            c.put(&format!("p{i}"), stamp(1), data(), None, page("x"));
        }
        assert!(matches!(c.get("p0", &stamp(1), None), Lookup::Hit(_)));
        for i in 8..40 {
            c.put(&format!("p{i}"), stamp(1), data(), None, page("x"));
        }
        assert!(c.len() <= 8);
        assert!(matches!(c.get("p39", &stamp(1), None), Lookup::Hit(_)));
    }
}

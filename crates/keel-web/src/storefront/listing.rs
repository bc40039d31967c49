//! Pieces shared by the pages that list products: cards, pagination and
//! tolerant query-string parsing.

use super::format_money;
use crate::media::{picture_html, Picture};
use keel_app::storefront::{Card, Listing};
use std::collections::HashMap;

/// One product as a card in a grid.
pub struct ProductCard {
    pub handle: String,
    pub title: String,
    /// "From $28.00", or empty when there is no price in the shop currency.
    pub price: String,
    pub available: bool,
    /// Pre-rendered `<picture>` for the product's first image, or empty.
    /// The card reserves a square for it either way, so nothing shifts.
    pub picture: String,
}

/// Cards fill half the width on phones, a third from 40em, a quarter from 64em.
const CARD_SIZES: &str = "(min-width: 64em) 18rem, (min-width: 40em) 33vw, 50vw";
/// Cards in the first row on a phone load at once; the rest lazily.
const EAGER_CARDS: usize = 2;

impl ProductCard {
    pub fn from_card(c: &Card, currency: &str, eager: bool) -> ProductCard {
        let picture = c.image.as_ref().and_then(Picture::from_image).map(|p| {
            let p = if p.alt.trim().is_empty() { p.with_alt(c.title.clone()) } else { p };
            picture_html(&p, CARD_SIZES, eager)
        });
        ProductCard {
            handle: c.handle.clone(),
            title: c.title.clone(),
            price: c.from_price.map(|a| format_money(a, currency)).unwrap_or_default(),
            available: c.available,
            picture: picture.unwrap_or_default(),
        }
    }
}

pub fn cards(cards: &[Card], currency: &str) -> Vec<ProductCard> {
    cards.iter().enumerate().map(|(i, c)| ProductCard::from_card(c, currency, i < EAGER_CARDS)).collect()
}

/// Purge keys for a listing: its products, plus `products` for "any product".
pub fn product_keys(cards: &[Card]) -> impl Iterator<Item = String> + '_ {
    cards.iter().map(|c| c.id.clone()).chain(["products".to_owned()])
}

/// A query string as name → first value; malformed input yields what it can.
pub fn params(raw: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// `?page=` as given, 1 when absent or not a positive number.
pub fn page_number(params: &HashMap<String, String>) -> i64 {
    params.get("page").and_then(|p| p.trim().parse::<i64>().ok()).filter(|p| *p >= 1).unwrap_or(1)
}

pub struct PageLink {
    pub number: i64,
    pub href: String,
    pub current: bool,
}

/// Previous/next and numbered links, each keeping the page's other
/// parameters; long ranges are elided around the current page.
pub struct Pagination {
    pub prev: Option<String>,
    pub next: Option<String>,
    /// `None` stands for an elided run ("…").
    pub links: Vec<Option<PageLink>>,
    pub page: i64,
    pub pages: i64,
}

impl Pagination {
    pub fn new(path: &str, keep: &[(&str, String)], listing: &Listing) -> Pagination {
        let href = |n: i64| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in keep.iter().filter(|(_, v)| !v.is_empty()) {
                q.append_pair(k, v);
            }
            if n > 1 {
                q.append_pair("page", &n.to_string());
            }
            let q = q.finish();
            if q.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{q}")
            }
        };
        let (page, pages) = (listing.page, listing.pages);
        let mut links = Vec::new();
        let mut last = 0;
        for n in 1..=pages {
            if n == 1 || n == pages || (n - page).abs() <= 2 {
                if n - last > 1 {
                    links.push(None);
                }
                links.push(Some(PageLink { number: n, href: href(n), current: n == page }));
                last = n;
            }
        }
        Pagination {
            prev: (page > 1).then(|| href(page - 1)),
            next: (page < pages).then(|| href(page + 1)),
            links,
            page,
            pages,
        }
    }

    pub fn needed(&self) -> bool {
        self.pages > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(page: i64, pages: i64) -> Listing {
        Listing { cards: Vec::new(), total: pages * 12, page, pages }
    }

    #[test]
    fn pagination_keeps_filters_and_elides_long_ranges() {
        let p = Pagination::new("/collections/all", &[("in_stock", "1".into()), ("min_price", String::new())], &listing(5, 10));
        assert_eq!(p.prev.as_deref(), Some("/collections/all?in_stock=1&page=4"));
        assert_eq!(p.next.as_deref(), Some("/collections/all?in_stock=1&page=6"));
        let numbers: Vec<Option<i64>> = p.links.iter().map(|l| l.as_ref().map(|l| l.number)).collect();
        assert_eq!(numbers, vec![Some(1), None, Some(3), Some(4), Some(5), Some(6), Some(7), None, Some(10)]);
        assert_eq!(p.links[0].as_ref().unwrap().href, "/collections/all?in_stock=1");
        assert!(p.links[4].as_ref().unwrap().current);
    }

    #[test]
    fn first_page_has_no_prev() {
        let p = Pagination::new("/search", &[("q", "tee".into())], &listing(1, 2));
        assert_eq!(p.prev, None);
        assert_eq!(p.next.as_deref(), Some("/search?q=tee&page=2"));
        assert!(!Pagination::new("/x", &[], &listing(1, 1)).needed());
    }

    #[test]
    fn malformed_query_strings_are_tolerated() {
        let p = params(Some("page=abc&page=2&q=%ZZ&&="));
        assert_eq!(page_number(&p), 1);
        assert_eq!(page_number(&params(Some("page=3"))), 3);
        assert_eq!(page_number(&params(Some("page=-1"))), 1);
    }
}

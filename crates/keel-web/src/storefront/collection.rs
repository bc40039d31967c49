use super::listing::{self, Pagination, ProductCard};
use super::{parse_amount, respond, Cache, Page, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use keel_app::storefront::Filters;
use std::collections::HashMap;

/// The filter form as the shopper filled it, with an error per bad field.
/// A bad value is shown with its error and ignored; the page still renders.
#[derive(Default)]
pub struct FilterForm {
    pub min_price: String,
    pub max_price: String,
    pub in_stock: bool,
    pub min_error: Option<&'static str>,
    pub max_error: Option<&'static str>,
    pub filters: Filters,
}

const BAD_PRICE: &str = "Enter an amount such as 20 or 19.99.";

impl FilterForm {
    pub fn parse(params: &HashMap<String, String>, currency: &str) -> FilterForm {
        let mut f = FilterForm {
            min_price: params.get("min_price").map(|s| s.trim().chars().take(20).collect()).unwrap_or_default(),
            max_price: params.get("max_price").map(|s| s.trim().chars().take(20).collect()).unwrap_or_default(),
            in_stock: params.get("in_stock").is_some_and(|v| v == "1" || v == "on" || v == "true"),
            ..FilterForm::default()
        };
        let parse = |text: &str, error: &mut Option<&'static str>| {
            if text.is_empty() {
                return None;
            }
            let amount = parse_amount(text, currency);
            if amount.is_none() {
                *error = Some(BAD_PRICE);
            }
            amount
        };
        let mut min_error = None;
        let mut max_error = None;
        let min = parse(&f.min_price, &mut min_error);
        let max = parse(&f.max_price, &mut max_error);
        let (min, max) = match (min, max) {
            (Some(a), Some(b)) if a > b => {
                max_error = Some("The maximum must not be below the minimum.");
                (Some(a), None)
            }
            other => other,
        };
        f.min_error = min_error;
        f.max_error = max_error;
        f.filters = Filters { min_price: min, max_price: max, in_stock: f.in_stock };
        f
    }

    fn keep(&self) -> Vec<(&'static str, String)> {
        vec![
            ("min_price", if self.min_error.is_none() { self.min_price.clone() } else { String::new() }),
            ("max_price", if self.max_error.is_none() { self.max_price.clone() } else { String::new() }),
            ("in_stock", if self.in_stock { "1".to_owned() } else { String::new() }),
        ]
    }
}

#[derive(Template)]
#[template(path = "storefront/collection.html", whitespace = "minimize")]
struct CollectionPage {
    shell: Shell,
    title: String,
    description: String,
    path: String,
    currency: String,
    form: FilterForm,
    total: i64,
    cards: Vec<ProductCard>,
    pagination: Pagination,
}

pub async fn show(
    State(s): State<AppState>,
    Path(handle): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let settings = &s.storefront;
    let collection = match s.app.storefront_collection(&handle).await {
        Ok(c) => c,
        Err(e) => return super::failure(&headers, "collection", e),
    };
    let params = listing::params(raw.as_deref());
    let form = FilterForm::parse(&params, &settings.currency);
    let page_no = listing::page_number(&params);
    let listing = match s.app.storefront_listing(&collection.id, form.filters, page_no, &settings.currency).await {
        Ok(l) => l,
        Err(e) => return super::failure(&headers, "collection", e),
    };
    let path = format!("/collections/{}", collection.handle);
    let pagination = Pagination::new(&path, &form.keep(), &listing);
    let title = collection.seo_title.clone().unwrap_or_else(|| collection.title.clone());
    let title = if listing.page > 1 { format!("{title} – page {}", listing.page) } else { title };
    let description = collection
        .seo_description
        .clone()
        .or_else(|| collection.description.clone())
        .unwrap_or_else(|| format!("Shop {} at Keel Shop.", collection.title));
    // Filtered views are variations of the collection: one canonical URL
    // per page number, without filters.
    let canonical = if listing.page > 1 { format!("{path}?page={}", listing.page) } else { path.clone() };
    let mut shell = Shell::new(title, description).canonical(settings.url(&canonical));
    shell.noindex = listing.page > listing.pages;
    let keys: Vec<String> = [collection.id.clone()].into_iter().chain(listing::product_keys(&listing.cards)).collect();
    let page = CollectionPage {
        shell,
        title: collection.title,
        description: collection.description.unwrap_or_default(),
        path,
        currency: settings.currency.clone(),
        total: listing.total,
        cards: listing::cards(&listing.cards, &settings.currency),
        form,
        pagination,
    };
    respond(&headers, Page::render(&page, Cache::CATALOG).keys(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(q: &str) -> FilterForm {
        FilterForm::parse(&listing::params(Some(q)), "USD")
    }

    #[test]
    fn filters_parse_and_bad_values_are_reported_not_applied() {
        let f = form("min_price=10&max_price=50.5&in_stock=1");
        assert_eq!(f.filters, Filters { min_price: Some(1000), max_price: Some(5050), in_stock: true });
        assert!(f.min_error.is_none() && f.max_error.is_none());
        let f = form("min_price=abc&max_price=-3");
        assert_eq!(f.filters, Filters::default());
        assert!(f.min_error.is_some() && f.max_error.is_some());
        let f = form("min_price=50&max_price=10");
        assert_eq!(f.filters.min_price, Some(5000));
        assert_eq!(f.filters.max_price, None);
        assert!(f.max_error.is_some());
    }
}

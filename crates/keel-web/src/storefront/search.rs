use super::listing::{self, Pagination, ProductCard};
use super::{respond, Cache, Page, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use keel_app::storefront::{bound_query, MAX_QUERY_CHARS};

#[derive(Template)]
#[template(path = "storefront/search.html", whitespace = "minimize")]
struct SearchPage {
    shell: Shell,
    query: String,
    max_chars: usize,
    /// Whether a search ran (a non-empty query).
    searched: bool,
    total: i64,
    cards: Vec<ProductCard>,
    pagination: Option<Pagination>,
}

pub async fn show(State(s): State<AppState>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let settings = &s.storefront;
    let params = listing::params(raw.as_deref());
    let query = bound_query(params.get("q").map(String::as_str).unwrap_or(""));
    let mut shell = Shell::new("Search", "Search the shop by product name, description or SKU.").canonical(settings.url("/search"));
    if query.is_empty() {
        let page = SearchPage { shell, query, max_chars: MAX_QUERY_CHARS, searched: false, total: 0, cards: Vec::new(), pagination: None };
        return respond(&headers, Page::render(&page, Cache::CATALOG));
    }
    let listing = match s.app.storefront_search(&query, listing::page_number(&params), &settings.currency).await {
        Ok(l) => l,
        Err(e) => return super::failure(&headers, "search", e),
    };
    shell.title = format!("Search results for “{query}”");
    let canonical: String = form_urlencoded::Serializer::new(String::new()).append_pair("q", &query).finish();
    shell.canonical = Some(settings.url(&format!("/search?{canonical}")));
    let pagination = Pagination::new("/search", &[("q", query.clone())], &listing);
    let keys: Vec<String> = listing::product_keys(&listing.cards).collect();
    let page = SearchPage {
        shell,
        max_chars: MAX_QUERY_CHARS,
        searched: true,
        total: listing.total,
        cards: listing::cards(&listing.cards, &settings.currency),
        pagination: Some(pagination),
        query,
    };
    respond(&headers, Page::render(&page, Cache::CATALOG).keys(keys))
}

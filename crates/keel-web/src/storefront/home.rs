use super::listing::{self, ProductCard};
use super::{respond, Cache, Page, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

pub struct CollectionLink {
    pub handle: String,
    pub title: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "storefront/home.html", whitespace = "minimize")]
struct Home {
    shell: Shell,
    cards: Vec<ProductCard>,
    collections: Vec<CollectionLink>,
}

pub async fn show(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let settings = &s.storefront;
    let home = match s.app.storefront_home(&settings.currency).await {
        Ok(h) => h,
        Err(e) => return super::failure(&headers, "home", e),
    };
    let keys: Vec<String> =
        listing::product_keys(&home.featured).chain(home.collections.iter().map(|c| c.id.clone())).collect();
    let page = Home {
        shell: Shell::new("Everyday goods, shipped fast", "Clothing, homeware and accessories made to last, shipped from stock.")
            .canonical(settings.url("/")),
        cards: listing::cards(&home.featured, &settings.currency),
        collections: home
            .collections
            .into_iter()
            .map(|c| CollectionLink { handle: c.handle, title: c.title, description: c.description.unwrap_or_default() })
            .collect(),
    };
    respond(&headers, Page::render(&page, Cache::CATALOG).keys(keys))
}

use super::{format_money, respond, Cache, Page, Shell};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use keel_domain::catalog::ProductStatus;

/// One product as a card in a grid.
pub struct ProductCard {
    pub handle: String,
    pub title: String,
    pub price: String,
}

#[derive(Template)]
#[template(path = "storefront/home.html")]
struct Home {
    shell: Shell,
    products: Vec<ProductCard>,
}

pub async fn show(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let products = match s.app.list_products(Some(ProductStatus::Active), None, Some(24)).await {
        Ok(page) => page.data,
        Err(e) => {
            tracing::error!(error = %e, "home page: listing products failed");
            return super::server_error(&headers);
        }
    };
    let keys = products.iter().map(|p| p.id.clone()).chain(["products".to_owned()]);
    let cards = products
        .iter()
        .map(|p| ProductCard {
            handle: p.handle.clone(),
            title: p.title.clone(),
            price: p
                .variants
                .iter()
                .flat_map(|v| v.prices.iter())
                .min_by_key(|pr| pr.amount)
                .map(|pr| format_money(pr.amount, &pr.currency))
                .unwrap_or_default(),
        })
        .collect();
    let page = Home { shell: Shell::new("Home", "Everyday goods, shipped fast.").canonical("/"), products: cards };
    respond(&headers, Page::render(&page, Cache::CATALOG).keys(keys))
}

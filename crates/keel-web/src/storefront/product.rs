//! The product page: variant choice as a plain form, live availability from
//! the system of record, schema.org Product/Offer JSON-LD. Rendered pages
//! are cached in-process and revalidated against the product's version
//! stamp on every request (see `cache`).

use super::cache::{known_variant, Lookup, Rendered};
use super::listing;
use super::{decimal_amount, etag_of, format_money, respond, Cache, Page, Settings, Shell};
use crate::media::{picture_html, Picture};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use keel_app::storefront::ProductPage;
use keel_domain::storefront::StockStatus;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// One choice in the variant radio group.
pub struct Choice {
    pub id: String,
    pub title: String,
    pub price: String,
    pub stock: String,
    /// `in`, `low` or `out`, for styling.
    pub stock_class: &'static str,
    pub available: bool,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "storefront/product.html", whitespace = "minimize")]
struct ProductTemplate {
    shell: Shell,
    title: String,
    description: String,
    price: String,
    /// Pre-rendered `<picture>` of the main image, or empty (the frame keeps
    /// its square either way).
    picture: String,
    legend: String,
    choices: Vec<Choice>,
    any_available: bool,
}

#[derive(Serialize)]
struct LdOffer<'a> {
    #[serde(rename = "@type")]
    kind: &'static str,
    sku: &'a str,
    name: &'a str,
    price: String,
    #[serde(rename = "priceCurrency")]
    price_currency: &'a str,
    availability: &'static str,
    url: String,
}

/// The main image fills the width on phones and half of it from 40em.
const PRODUCT_SIZES: &str = "(min-width: 72rem) 36rem, (min-width: 40em) 50vw, 100vw";

#[derive(Serialize)]
struct LdProduct<'a> {
    #[serde(rename = "@context")]
    context: &'static str,
    #[serde(rename = "@type")]
    kind: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sku: Option<&'a str>,
    url: String,
    /// Absolute URLs of the product's images.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    image: Vec<String>,
    offers: Vec<LdOffer<'a>>,
}

/// JSON that is safe inside `<script>`: `<`, `>` and `&` only occur in
/// strings, where their `\u` escapes mean the same, so no `</script>` or
/// `<!--` can end or confuse the block.
pub fn script_safe_json(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "{}".to_owned())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn price_in(prices: &[keel_app::views::PriceView], currency: &str) -> Option<i64> {
    prices.iter().find(|p| p.currency == currency).map(|p| p.amount)
}

fn render(data: &ProductPage, variant: Option<&str>, settings: &Settings) -> Rendered {
    let p = &data.product;
    let currency = settings.currency.as_str();
    let path = format!("/products/{}", p.handle);
    let canonical = settings.url(&path);
    let preselected = variant.filter(|v| data.variants.iter().any(|x| x.variant.id == *v && x.status.is_available()));
    let checked = preselected.or_else(|| data.variants.iter().find(|v| v.status.is_available()).map(|v| v.variant.id.as_str()));
    let choices: Vec<Choice> = data
        .variants
        .iter()
        .map(|v| Choice {
            id: v.variant.id.clone(),
            title: v.variant.title.clone(),
            price: price_in(&v.variant.prices, currency).map(|a| format_money(a, currency)).unwrap_or_default(),
            stock: v.status.label(),
            stock_class: match v.status {
                StockStatus::InStock => "in",
                StockStatus::Low(_) => "low",
                StockStatus::OutOfStock => "out",
            },
            available: v.status.is_available(),
            checked: Some(v.variant.id.as_str()) == checked,
        })
        .collect();
    let prices: BTreeSet<i64> = data.variants.iter().filter_map(|v| price_in(&v.variant.prices, currency)).collect();
    let price = match (prices.first(), prices.len()) {
        (Some(a), 1) => format_money(*a, currency),
        (Some(a), _) => format!("From {}", format_money(*a, currency)),
        (None, _) => String::new(),
    };
    let names: BTreeSet<&str> = data.variants.iter().flat_map(|v| v.variant.options.keys().map(String::as_str)).collect();
    let legend = if names.is_empty() { "Option".to_owned() } else { names.into_iter().collect::<Vec<_>>().join(" / ") };
    let ld = LdProduct {
        context: "https://schema.org",
        kind: "Product",
        name: &p.title,
        description: p.description.as_deref(),
        sku: data.variants.first().map(|v| v.variant.sku.as_str()),
        url: canonical.clone(),
        image: data.images.iter().filter_map(Picture::from_image).map(|pic| settings.url(&pic.fallback_src)).collect(),
        offers: data
            .variants
            .iter()
            .filter_map(|v| {
                Some(LdOffer {
                    kind: "Offer",
                    sku: &v.variant.sku,
                    name: &v.variant.title,
                    price: decimal_amount(price_in(&v.variant.prices, currency)?, currency),
                    price_currency: currency,
                    availability: v.status.schema_org(),
                    url: format!("{canonical}?variant={}", v.variant.id),
                })
            })
            .collect(),
    };
    let description = p.seo_description.clone().or_else(|| p.description.clone()).unwrap_or_else(|| format!("{} at Keel Shop.", p.title));
    let mut shell = Shell::new(p.seo_title.clone().unwrap_or_else(|| p.title.clone()), description).canonical(canonical);
    shell.json_ld = Some(script_safe_json(&ld));
    let page = ProductTemplate {
        shell,
        title: p.title.clone(),
        description: p.description.clone().unwrap_or_default(),
        price,
        picture: Picture::first_of(&data.images)
            .map(|pic| {
                let pic = if pic.alt.trim().is_empty() { pic.with_alt(p.title.clone()) } else { pic };
                picture_html(&pic, PRODUCT_SIZES, true)
            })
            .unwrap_or_default(),
        legend,
        any_available: choices.iter().any(|c| c.available),
        choices,
    };
    let html = page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "product template failed to render");
        String::new()
    });
    let body = Bytes::from(html);
    Rendered { etag: etag_of(&body), body }
}

pub async fn show(
    State(s): State<AppState>,
    Path(handle): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let settings = &s.storefront;
    let (id, stamp) = match s.app.storefront_stamp(&handle).await {
        Ok(Some((id, status, stamp))) if status == "active" => (id, stamp),
        Ok(_) => return super::not_found(&headers),
        Err(e) => return super::failure(&headers, "product", e),
    };
    let params = listing::params(raw.as_deref());
    let variant = params.get("variant").map(String::as_str);
    let rendered = match settings.cache.get(&id, &stamp, variant) {
        Lookup::Hit(r) => r,
        found => {
            let data = match found {
                Lookup::Data(d) => d,
                _ => match s.app.storefront_product(&id).await {
                    Ok(d) => Arc::new(d),
                    Err(e) => return super::failure(&headers, "product", e),
                },
            };
            let key = known_variant(&data, variant);
            let r = render(&data, key.as_deref(), settings);
            settings.cache.put(&id, stamp, data, key.as_deref(), r.clone());
            r
        }
    };
    let page = Page::new(rendered.body, "text/html; charset=utf-8", Cache::CATALOG)
        .etag(rendered.etag)
        .last_modified(stamp.changed_at)
        .keys([id, "products".to_owned()]);
    respond(&headers, page)
}

#[cfg(test)]
mod tests {
    use super::script_safe_json;

    #[test]
    fn json_ld_cannot_close_its_script() {
        let s = script_safe_json(&serde_json::json!({"name": "</script><script>alert(1)</script> & <!--"}));
        assert!(!s.contains('<') && !s.contains('>'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["name"], "</script><script>alert(1)</script> & <!--");
    }
}

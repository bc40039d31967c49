//! `/sitemap.xml` and `/robots.txt`, with absolute URLs from the configured
//! public URL (never from the request's `Host`, which a client controls).

use super::{respond, Cache, Page};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use keel_domain::time::to_rfc3339;

/// Escapes text for XML character data and attribute values.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn url_entry(out: &mut String, loc: &str, lastmod: Option<i64>) {
    out.push_str("<url><loc>");
    out.push_str(&xml_escape(loc));
    out.push_str("</loc>");
    if let Some(t) = lastmod {
        out.push_str("<lastmod>");
        out.push_str(&to_rfc3339(t)[..10]);
        out.push_str("</lastmod>");
    }
    out.push_str("</url>\n");
}

pub async fn sitemap(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let settings = &s.storefront;
    let (collections, products) = match s.app.storefront_sitemap().await {
        Ok(x) => x,
        Err(e) => return super::failure(&headers, "sitemap", e),
    };
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    url_entry(&mut xml, &settings.url("/"), None);
    for c in &collections {
        url_entry(&mut xml, &settings.url(&format!("/collections/{}", c.handle)), Some(c.updated_at));
    }
    for (handle, updated_at) in &products {
        url_entry(&mut xml, &settings.url(&format!("/products/{handle}")), Some(*updated_at));
    }
    xml.push_str("</urlset>\n");
    let keys = ["products".to_owned()].into_iter().chain(collections.iter().map(|c| c.id.clone()));
    let page = Page::new(Bytes::from(xml), "application/xml; charset=utf-8", Cache::CATALOG).keys(keys);
    respond(&headers, page)
}

/// Everything is crawlable except per-shopper pages and machine routes.
pub fn robots_txt(public_url: &str) -> String {
    format!(
        "User-agent: *\nAllow: /\nDisallow: /cart\nDisallow: /checkout\nDisallow: /account\nDisallow: /orders\n\
         Disallow: /api/\n\nSitemap: {public_url}/sitemap.xml\n"
    )
}

pub async fn robots(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let body = robots_txt(&s.storefront.public_url);
    respond(&headers, Page::new(Bytes::from(body), "text/plain; charset=utf-8", Cache::CATALOG))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_escaped() {
        assert_eq!(xml_escape("a&b<c>\"'"), "a&amp;b&lt;c&gt;&quot;&apos;");
    }

    #[test]
    fn robots_points_at_the_sitemap() {
        let r = robots_txt("https://shop.example.com");
        assert!(r.contains("Disallow: /checkout\n"));
        assert!(r.ends_with("Sitemap: https://shop.example.com/sitemap.xml\n"));
    }
}

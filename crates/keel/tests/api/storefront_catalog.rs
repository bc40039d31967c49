//! The catalog half of the storefront over real HTTP: pages, filters,
//! search, caching headers and validators, live stock through the page
//! cache (one node and two), SEO files, compression, and the collections API.

use keel_testkit::{json, spawn_app, TestApp};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

struct Html {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Html {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn count(&self, needle: &str) -> usize {
        self.body.matches(needle).count()
    }

    /// The JSON-LD block of a product page.
    fn json_ld(&self) -> Value {
        let start = self.body.find("<script type=\"application/ld+json\">").expect("json-ld") + 35;
        let end = start + self.body[start..].find("</script>").expect("end of json-ld");
        serde_json::from_str(&self.body[start..end]).expect("json-ld parses")
    }
}

async fn page_at(t: &TestApp, base: &str, path: &str, headers: &[(&str, &str)]) -> Html {
    let mut req = t.http.get(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.text().await.expect("body");
    Html { status, headers, body }
}

async fn page(t: &TestApp, path: &str) -> Html {
    page_at(t, &t.base, path, &[]).await
}

async fn page_with(t: &TestApp, path: &str, headers: &[(&str, &str)]) -> Html {
    page_at(t, &t.base, path, headers).await
}

/// An active product with one variant per (sku, USD price).
async fn priced_product(t: &TestApp, title: &str, variants: &[(&str, i64)]) -> Value {
    let variants: Vec<Value> = variants
        .iter()
        .map(|(sku, amount)| json!({"sku": sku, "options": {"Size": sku}, "prices": [{"currency": "USD", "amount": amount}]}))
        .collect();
    t.ok("/products", json!({"title": title, "status": "active", "description": format!("About {title}."), "variants": variants})).await
}

async fn collection(t: &TestApp, handle: &str, products: &[&Value]) -> Value {
    let ids: Vec<&Value> = products.iter().map(|p| &p["id"]).collect();
    t.ok("/collections", json!({"title": handle.to_uppercase(), "handle": handle, "product_ids": ids})).await
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

#[tokio::test]
async fn home_collection_and_product_pages_render_the_catalog() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    let tee = priced_product(&t, "Everyday Tee", &[("TEE-S", 2800), ("TEE-M", 2800), ("TEE-L", 3000)]).await;
    let mug = priced_product(&t, "Stoneware Mug", &[("MUG-1", 2200)]).await;
    t.receive("TEE-M", &loc, 40).await;
    t.receive("TEE-L", &loc, 3).await;
    let featured = collection(&t, "featured", &[&tee, &mug]).await;

    let home = page(&t, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.header("content-type").starts_with("text/html"));
    assert!(home.body.contains("Everyday Tee") && home.body.contains("Stoneware Mug"));
    assert!(home.body.contains("href=\"/collections/featured\""));
    assert_eq!(home.count("<h1"), 1);
    assert!(home.body.contains("<html lang=\"en\">") && home.body.contains("class=\"skip\" href=\"#main\""));
    assert!(home.body.contains("<link rel=\"canonical\" href=\"http://127.0.0.1:7300/\">"), "absolute canonical");

    let listing = page(&t, "/collections/featured").await;
    assert_eq!(listing.status, StatusCode::OK);
    assert!(listing.body.contains("<h1>FEATURED</h1>"));
    assert!(listing.body.contains("href=\"/products/everyday-tee\""));
    assert!(listing.body.contains("<span class=\"stock out\">Out of stock</span>"), "the mug has no stock");
    assert!(listing.header("surrogate-key").split(' ').any(|k| k == id(&featured)));

    let p = page(&t, "/products/everyday-tee").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(p.count("<h1"), 1);
    assert!(p.body.contains("<form method=\"post\" action=\"/cart/lines\">"));
    assert!(p.body.contains("<button type=\"submit\">Add to cart</button>"));
    assert!(p.body.contains("<label for=\"quantity\">Quantity</label>"));
    assert!(p.body.contains("name=\"quantity\" type=\"number\" inputmode=\"numeric\" min=\"1\" value=\"1\""));
    assert_eq!(p.count("name=\"variant_id\""), 3);
    let (s, m, l) = (id(&tee["variants"][0]), id(&tee["variants"][1]), id(&tee["variants"][2]));
    assert!(p.body.contains(&format!("value=\"{s}\" disabled>")), "out of stock is disabled");
    assert!(p.body.contains(&format!("value=\"{m}\" checked>")), "the first available variant is chosen");
    assert!(p.body.contains("<span class=\"stock in\">In stock</span>"));
    assert!(p.body.contains("<span class=\"stock low\">Only 3 left</span>"));
    assert!(p.body.contains("<span class=\"stock out\">Out of stock</span>"));
    assert!(p.body.contains("From $28.00"));
    let ld = p.json_ld();
    assert_eq!(ld["@type"], "Product");
    assert_eq!(ld["name"], "Everyday Tee");
    assert_eq!(ld["url"], "http://127.0.0.1:7300/products/everyday-tee");
    assert_eq!(ld["offers"][0]["availability"], "https://schema.org/OutOfStock");
    assert_eq!(ld["offers"][1]["availability"], "https://schema.org/InStock");
    assert_eq!(ld["offers"][2]["availability"], "https://schema.org/LimitedAvailability");
    assert_eq!(ld["offers"][2]["price"], "30.00");
    assert_eq!(ld["offers"][2]["priceCurrency"], "USD");
    assert_eq!(ld["offers"][2]["sku"], "TEE-L");

    let pre = page(&t, &format!("/products/everyday-tee?variant={l}")).await;
    assert!(pre.body.contains(&format!("value=\"{l}\" checked>")), "?variant= preselects");
    assert!(pre.body.contains(&format!("value=\"{m}\">")));
    let sold_out = page(&t, &format!("/products/everyday-tee?variant={s}")).await;
    assert!(sold_out.body.contains(&format!("value=\"{m}\" checked>")), "a sold-out variant is not preselected");
}

#[tokio::test]
async fn unknown_draft_and_archived_products_are_html_404s() {
    let t = spawn_app().await;
    t.ok("/products", json!({"title": "Secret", "variants": [{"sku": "SEC-1"}]})).await;
    let gone = priced_product(&t, "Gone", &[("GONE-1", 100)]).await;
    t.ok(&format!("/products/{}/archive", id(&gone)), json!({})).await;
    for path in ["/products/nope", "/products/secret", "/products/gone", "/collections/nope", "/no/such/page"] {
        let r = page(&t, path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.header("content-type").starts_with("text/html"), "{path}");
        assert!(r.body.contains("<h1>Page not found</h1>"), "{path}");
        assert_eq!(r.header("cache-control"), "private, no-store", "{path}");
    }
    let hidden = t.ok("/collections", json!({"title": "Hidden", "published": false})).await;
    assert_eq!(hidden["published"], false);
    assert_eq!(page(&t, "/collections/hidden").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn collection_listing_paginates_and_filters_in_sql() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    let mut products = Vec::new();
    for i in 0..15i64 {
        let sku = format!("ITEM-{i:02}");
        products.push(priced_product(&t, &format!("Item {i:02}"), &[(&sku, 1000 + i * 100)]).await);
        if i % 3 == 0 {
            t.receive(&sku, &loc, 2).await;
        }
    }
    let refs: Vec<&Value> = products.iter().collect();
    collection(&t, "all", &refs).await;

    let p1 = page(&t, "/collections/all").await;
    assert_eq!(p1.count("class=\"card\""), 12);
    assert!(p1.body.contains("15 products, page 1 of 2"));
    assert!(p1.body.contains("href=\"/collections/all?page=2\" rel=\"next\""));
    assert!(!p1.body.contains("rel=\"prev\""));
    assert!(p1.body.contains("href=\"/collections/all\" aria-current=\"page\""));
    assert!(p1.body.contains("Item 00") && p1.body.contains("Item 11") && !p1.body.contains("Item 12"), "collection order");
    let p2 = page(&t, "/collections/all?page=2").await;
    assert_eq!(p2.count("class=\"card\""), 3);
    assert!(p2.body.contains("href=\"/collections/all\" rel=\"prev\""));
    assert!(p2.body.contains("href=\"/collections/all?page=2\" aria-current=\"page\""));
    assert!(p2.body.contains("<link rel=\"canonical\" href=\"http://127.0.0.1:7300/collections/all?page=2\">"));

    // $15.00–$20.00 inclusive: items 05..10.
    let priced = page(&t, "/collections/all?min_price=15&max_price=20.00").await;
    assert_eq!(priced.count("class=\"card\""), 6, "{}", priced.body);
    assert!(priced.body.contains("Item 05") && priced.body.contains("Item 10") && !priced.body.contains("Item 04"));
    assert!(priced.body.contains("value=\"15\"") && priced.body.contains("value=\"20.00\""), "the form keeps its values");

    let stocked = page(&t, "/collections/all?in_stock=1").await;
    assert_eq!(stocked.count("class=\"card\""), 5);
    assert!(stocked.body.contains("5 products"));
    assert!(stocked.body.contains("id=\"in_stock\" name=\"in_stock\" type=\"checkbox\" value=\"1\" checked"));
    let both = page(&t, "/collections/all?in_stock=1&min_price=14").await;
    assert_eq!(both.count("class=\"card\""), 3, "items 06, 09 and 12");
    let paged = page(&t, "/collections/all?in_stock=1&page=1").await;
    assert!(!paged.body.contains("rel=\"next\""));

    // Bad values are reported next to their field and ignored; never a 500.
    for q in ["min_price=abc", "min_price=-5", "max_price=1e9", "min_price=30&max_price=10", "page=zzz", "page=-4", "page=999999",
              "min_price=%FF%FE", "in_stock=maybe"] {
        let r = page(&t, &format!("/collections/all?{q}")).await;
        assert_eq!(r.status, StatusCode::OK, "{q}");
    }
    let bad = page(&t, "/collections/all?min_price=abc").await;
    assert!(bad.body.contains("aria-invalid=\"true\" aria-describedby=\"min_price-error\""));
    assert!(bad.body.contains("<p class=\"error\" id=\"min_price-error\">"));
    assert_eq!(bad.count("class=\"card\""), 12);
    let inverted = page(&t, "/collections/all?min_price=30&max_price=10").await;
    assert!(inverted.body.contains("id=\"max_price-error\""));
}

#[tokio::test]
async fn search_finds_active_products_by_title_description_and_sku() {
    let t = spawn_app().await;
    priced_product(&t, "Linen Shirt", &[("LIN-SHIRT-S", 6800), ("LIN-SHIRT-M", 6800)]).await;
    priced_product(&t, "Stoneware Mug", &[("MUG-SAND", 2200)]).await;
    t.ok("/products", json!({"title": "Draft Mug", "variants": [{"sku": "MUG-DRAFT"}]})).await;
    let cap = priced_product(&t, "Cotton Cap", &[("CAP-1", 2600)]).await;

    let empty = page(&t, "/search").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("<label for=\"q\">"));
    assert!(empty.body.contains("Type a word"));
    assert_eq!(empty.count("class=\"card\""), 0);

    let by_title = page(&t, "/search?q=mug").await;
    assert!(by_title.body.contains("1 result for “mug”"), "{}", by_title.body);
    assert!(by_title.body.contains("Stoneware Mug") && !by_title.body.contains("Draft Mug"), "drafts are not found");
    let by_sku = page(&t, "/search?q=LIN-SHIRT-M").await;
    assert!(by_sku.body.contains("Linen Shirt"), "{}", by_sku.body);
    assert_eq!(by_sku.count("class=\"card\""), 1);
    let partial = page(&t, "/search?q=LIN-SHIRT").await;
    assert_eq!(partial.count("class=\"card\""), 1, "a partial SKU finds its product");
    let stemmed = page(&t, "/search?q=shirts").await;
    assert!(stemmed.body.contains("Linen Shirt"), "{}", stemmed.body);
    let by_description = page(&t, "/search?q=about+cotton").await;
    assert!(by_description.body.contains("Cotton Cap"));
    let nothing = page(&t, "/search?q=zebra").await;
    assert!(nothing.body.contains("0 results"));

    // The index follows product writes in the same transaction.
    t.ok(&format!("/products/{}", id(&cap)), json!({"title": "Baseball Hat"})).await;
    assert!(page(&t, "/search?q=baseball").await.body.contains("Baseball Hat"));
    t.ok(&format!("/products/{}/variants", id(&cap)), json!({"sku": "HAT-XYZ"})).await;
    assert!(page(&t, "/search?q=HAT-XYZ").await.body.contains("Baseball Hat"));
    t.ok(&format!("/products/{}/archive", id(&cap)), json!({})).await;
    assert!(page(&t, "/search?q=baseball").await.body.contains("0 results"));

    // Operators and quotes are plain text; overlong input is cut, not refused.
    for q in ["%22", "title%3Amug", "mug%20OR%20NOT", "*", "(((", "NEAR(a%20b)", &"x".repeat(5000)] {
        let r = page(&t, &format!("/search?q={q}")).await;
        assert_eq!(r.status, StatusCode::OK, "{q}");
    }
    let long = page(&t, &format!("/search?q={}", "a".repeat(500))).await;
    assert!(long.body.contains(&format!("value=\"{}\"", "a".repeat(100))));
}

#[tokio::test]
async fn catalog_pages_are_publicly_cacheable_with_validators() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    let p = priced_product(&t, "Wool Beanie", &[("BEANIE-1", 3400)]).await;
    t.receive("BEANIE-1", &loc, 10).await;
    let c = collection(&t, "hats", &[&p]).await;

    for path in ["/", "/collections/hats", "/products/wool-beanie", "/search?q=wool", "/sitemap.xml", "/robots.txt"] {
        let r = page(&t, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("cache-control"), "public, max-age=60, stale-while-revalidate=600", "{path}");
        let etag = r.header("etag").to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{path}: strong etag {etag}");
        let again = page_with(&t, path, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
        assert_eq!(again.header("etag"), etag);
        let other = page_with(&t, path, &[("if-none-match", "\"something-else\"")]).await;
        assert_eq!(other.status, StatusCode::OK, "{path}");
    }

    let r = page(&t, "/products/wool-beanie").await;
    let keys: Vec<&str> = r.header("surrogate-key").split(' ').collect();
    assert!(keys.contains(&id(&p)) && keys.contains(&"products"), "{keys:?}");
    let listing = page(&t, "/collections/hats").await;
    let keys: Vec<&str> = listing.header("surrogate-key").split(' ').collect();
    assert!(keys.contains(&id(&c)) && keys.contains(&id(&p)) && keys.contains(&"products"), "{keys:?}");
    assert!(r.header("content-security-policy").contains("script-src 'self'"));
    assert!(!r.header("content-security-policy").contains("unsafe-inline"));
    assert!(r.header("content-security-policy").contains("connect-src 'self'"), "audits fetch /robots.txt from the page");
    assert_eq!(r.header("x-content-type-options"), "nosniff");

    // Last-Modified / If-Modified-Since on the product page. A change in the
    // current second has no Last-Modified yet (HTTP dates have one-second
    // precision); move this product's changes into the past.
    t.db.execute_raw("UPDATE products SET updated_at = updated_at - 5000000").await;
    t.db.execute_raw("UPDATE inventory_levels SET updated_at = updated_at - 5000000").await;
    t.db.execute_raw("UPDATE locations SET updated_at = updated_at - 5000000").await;
    let r = page(&t, "/products/wool-beanie").await;
    let lm = r.header("last-modified").to_owned();
    assert!(lm.ends_with(" GMT"), "{lm}");
    let since = page_with(&t, "/products/wool-beanie", &[("if-modified-since", &lm)]).await;
    assert_eq!(since.status, StatusCode::NOT_MODIFIED);
    let old = page_with(&t, "/products/wool-beanie", &[("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT")]).await;
    assert_eq!(old.status, StatusCode::OK);
    let junk = page_with(&t, "/products/wool-beanie", &[("if-modified-since", "last tuesday")]).await;
    assert_eq!(junk.status, StatusCode::OK);
    // If-None-Match wins over If-Modified-Since.
    let both = page_with(&t, "/products/wool-beanie", &[("if-none-match", "\"x\""), ("if-modified-since", &lm)]).await;
    assert_eq!(both.status, StatusCode::OK);
}

#[tokio::test]
async fn a_stock_change_through_the_api_shows_on_the_next_product_page_load() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    priced_product(&t, "Desk Lamp", &[("LAMP-BLACK", 8900)]).await;
    t.db.execute_raw("UPDATE products SET updated_at = updated_at - 5000000").await;
    t.db.execute_raw("UPDATE locations SET updated_at = updated_at - 5000000").await;
    let first = page(&t, "/products/desk-lamp").await;
    assert!(!first.header("last-modified").is_empty());
    assert!(first.body.contains("<span class=\"stock out\">Out of stock</span>"));
    assert!(first.body.contains("disabled aria-describedby=\"sold-out\">Add to cart</button>"));
    assert_eq!(first.json_ld()["offers"][0]["availability"], "https://schema.org/OutOfStock");
    // Warm: the second load is served from the page cache.
    let warm = page(&t, "/products/desk-lamp").await;
    assert_eq!(warm.header("etag"), first.header("etag"));
    assert_eq!(warm.body, first.body);

    t.receive("LAMP-BLACK", &loc, 2).await;
    let low = page_with(&t, "/products/desk-lamp", &[("if-modified-since", first.header("last-modified"))]).await;
    assert_eq!(low.status, StatusCode::OK, "If-Modified-Since never hides a change");
    assert!(low.body.contains("<span class=\"stock low\">Only 2 left</span>"), "no time window");
    assert_ne!(low.header("etag"), first.header("etag"));
    assert_eq!(low.json_ld()["offers"][0]["availability"], "https://schema.org/LimitedAvailability");
    let stale = page_with(&t, "/products/desk-lamp", &[("if-none-match", first.header("etag"))]).await;
    assert_eq!(stale.status, StatusCode::OK, "an old validator no longer matches");

    t.receive("LAMP-BLACK", &loc, 30).await;
    let lots = page(&t, "/products/desk-lamp").await;
    assert!(lots.body.contains("<span class=\"stock in\">In stock</span>"));
    assert_eq!(lots.json_ld()["offers"][0]["availability"], "https://schema.org/InStock");

    // A reservation takes stock too; so does safety stock.
    let r = t.post("/reservations", json!({"sku": "LAMP-BLACK", "quantity": 29})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(page(&t, "/products/desk-lamp").await.body.contains("Only 3 left"));
    t.ok("/inventory/adjustments", json!({"sku": "LAMP-BLACK", "location_id": loc, "kind": "safety_stock", "quantity_delta": 3})).await;
    let none = page(&t, "/products/desk-lamp").await;
    assert!(none.body.contains("<span class=\"stock out\">Out of stock</span>"));

    // Product edits show immediately as well.
    let pid = t.get("/products?limit=1").await.body["data"][0]["id"].as_str().unwrap().to_owned();
    t.ok(&format!("/products/{pid}"), json!({"title": "Brass Desk Lamp"})).await;
    assert!(page(&t, "/products/desk-lamp").await.body.contains("<h1>Brass Desk Lamp</h1>"));
}

#[tokio::test]
async fn bundles_sell_as_many_as_their_scarcest_part_allows() {
    let t = spawn_app().await;
    let a = t.location("A", 1).await;
    let b = t.location("B", 2).await;
    priced_product(&t, "Tee", &[("PART-TEE", 2800)]).await;
    priced_product(&t, "Mug", &[("PART-MUG", 2200)]).await;
    t.ok(
        "/products",
        json!({"title": "Gift Box", "status": "active", "variants": [{"sku": "BOX-1", "title": "Box",
            "prices": [{"currency": "USD", "amount": 4500}],
            "components": [{"sku": "PART-TEE", "quantity": 2}, {"sku": "PART-MUG", "quantity": 1}]}]}),
    )
    .await;
    t.receive("PART-TEE", &a, 5).await;
    t.receive("PART-TEE", &b, 4).await; // 9 tees over two locations → 4 boxes
    t.receive("PART-MUG", &b, 20).await;
    let p = page(&t, "/products/gift-box").await;
    assert!(p.body.contains("Only 4 left"), "{}", p.body);
    // A part's stock change changes the bundle's page.
    t.receive("PART-TEE", &a, 10).await;
    assert!(page(&t, "/products/gift-box").await.body.contains("<span class=\"stock in\">In stock</span>"));
}

#[tokio::test]
async fn a_stock_change_on_one_node_shows_on_another_nodes_warm_cache() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    priced_product(&t, "Rain Jacket", &[("RAIN-M", 18900)]).await;
    t.receive("RAIN-M", &loc, 50).await;
    // A second node on the same database, with its own page cache.
    let app = t.db.open().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let router = keel_web::router(keel_web::AppState::new(app));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    for _ in 0..2 {
        assert!(page_at(&t, &other, "/products/rain-jacket", &[]).await.body.contains("In stock"));
    }
    t.ok("/inventory/adjustments", json!({"sku": "RAIN-M", "location_id": loc, "kind": "adjust", "quantity_delta": -47})).await;
    let after = page_at(&t, &other, "/products/rain-jacket", &[]).await;
    assert!(after.body.contains("Only 3 left"), "{}", after.body);
    server.abort();
}

#[tokio::test]
async fn sitemap_and_robots() {
    let t = spawn_app().await;
    priced_product(&t, "Notebook", &[("NOTE-1", 1800)]).await;
    t.ok("/products", json!({"title": "Draft Thing", "variants": [{"sku": "DRAFT-1"}]})).await;
    t.ok("/collections", json!({"title": "Paper", "handle": "paper"})).await;
    t.ok("/collections", json!({"title": "Hidden", "handle": "hidden", "published": false})).await;
    let s = page(&t, "/sitemap.xml").await;
    assert_eq!(s.status, StatusCode::OK);
    assert!(s.header("content-type").starts_with("application/xml"));
    assert!(s.body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(s.body.contains("<loc>http://127.0.0.1:7300/</loc>"));
    assert!(s.body.contains("<loc>http://127.0.0.1:7300/products/notebook</loc><lastmod>"));
    assert!(s.body.contains("<loc>http://127.0.0.1:7300/collections/paper</loc>"));
    assert!(!s.body.contains("draft-thing") && !s.body.contains("/collections/hidden"));
    // The Host header does not leak into absolute URLs.
    let forged = page_with(&t, "/sitemap.xml", &[("host", "evil.example")]).await;
    assert!(!forged.body.contains("evil.example"));

    let r = page(&t, "/robots.txt").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/plain"));
    for line in ["User-agent: *", "Allow: /", "Disallow: /cart", "Disallow: /checkout", "Disallow: /account", "Disallow: /api/",
                 "Sitemap: http://127.0.0.1:7300/sitemap.xml"] {
        assert!(r.body.lines().any(|l| l == line), "{line}");
    }
}

#[tokio::test]
async fn pages_are_compressed_with_brotli_or_gzip() {
    let t = spawn_app().await;
    priced_product(&t, "Enamel Pin", &[("PIN-1", 900)]).await;
    for path in ["/", "/products/enamel-pin", "/sitemap.xml"] {
        let plain = page(&t, path).await;
        assert_eq!(plain.header("content-encoding"), "", "{path}");
        assert!(plain.header("vary").to_ascii_lowercase().contains("accept-encoding"), "{path}");
        for (accept, expect) in [("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br", "br")] {
            let res = t.http.get(format!("{}{path}", t.base)).header("accept-encoding", accept).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.headers()["content-encoding"], expect, "{path} {accept}");
            let compressed = res.bytes().await.unwrap();
            assert!(compressed.len() < plain.body.len(), "{path}: {} vs {}", compressed.len(), plain.body.len());
        }
    }
    // The API is not part of the storefront's compression.
    let api = t.http.get(t.url("/products")).bearer_auth(&t.key).header("accept-encoding", "br").send().await.unwrap();
    assert!(api.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn collections_api_creates_updates_and_orders_products_with_events() {
    let t = spawn_app().await;
    let a = priced_product(&t, "A", &[("A-1", 100)]).await;
    let b = priced_product(&t, "B", &[("B-1", 100)]).await;
    let c = priced_product(&t, "C", &[("C-1", 100)]).await;
    let r = t.post("/collections", json!({"title": "Summer Picks", "description": "Hot.", "product_ids": [a["id"], b["id"]]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let coll = r.body;
    let cid = id(&coll).to_owned();
    assert!(cid.starts_with("coll_"));
    assert_eq!(coll["object"], "collection");
    assert_eq!(coll["handle"], "summer-picks");
    assert_eq!(coll["published"], true);
    assert_eq!(coll["product_ids"], json!([a["id"], b["id"]]));
    assert_eq!(coll["version"], 1);

    let dup = t.post("/collections", json!({"title": "Other", "handle": "summer-picks"})).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(dup.error_code(), "duplicate_handle");
    let bad = t.post("/collections", json!({"title": "X", "product_ids": ["prod_nothex"]})).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.error_param(), "product_ids[0]");
    let missing = t.post("/collections", json!({"title": "Y", "product_ids": ["prod_0190f0f0f0f07000800000000000abcd"]})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let empty_title = t.post("/collections", json!({"title": ""})).await;
    assert_eq!(empty_title.status, StatusCode::UNPROCESSABLE_ENTITY);

    let added = t.ok(&format!("/collections/{cid}/products"), json!({"product_ids": [c["id"], a["id"]]})).await;
    assert_eq!(added["product_ids"], json!([a["id"], b["id"], c["id"]]), "add appends new ones only");
    let replaced = t.ok(&format!("/collections/{cid}/products"), json!({"product_ids": [c["id"], a["id"]], "replace": true})).await;
    assert_eq!(replaced["product_ids"], json!([c["id"], a["id"]]));
    assert_eq!(replaced["version"], 3);
    let upd = t.ok(&format!("/collections/{cid}"), json!({"title": "Summer", "handle": "summer", "position": 2})).await;
    assert_eq!(upd["title"], "Summer");
    assert_eq!(upd["handle"], "summer");
    assert_eq!(upd["position"], 2);

    let got = t.get(&format!("/collections/{cid}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, upd);
    assert_eq!(t.get("/collections/coll_0190f0f0f0f07000800000000000abcd").await.status, StatusCode::NOT_FOUND);
    let list = t.get("/collections?limit=10").await;
    assert_eq!(list.body["data"][0]["id"], cid.as_str());
    assert_eq!(list.body["data"][0]["product_ids"], json!([c["id"], a["id"]]));

    let page_html = page(&t, "/collections/summer").await;
    let c_at = page_html.body.find("href=\"/products/c\"").expect("C shown");
    let a_at = page_html.body.find("href=\"/products/a\"").expect("A shown");
    assert!(c_at < a_at, "listing follows the collection's order");

    let events = t.events("type=collection.*", 4).await;
    let kinds: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["collection.created", "collection.updated", "collection.updated", "collection.updated"]);
    assert_eq!(events["data"][3]["data"]["object"]["handle"], "summer");

    let doc = t.http.get(format!("{}/api/v1/openapi.json", t.base)).send().await.unwrap().json::<Value>().await.unwrap();
    assert!(doc["paths"]["/collections/{id}/products"]["post"].is_object());
}

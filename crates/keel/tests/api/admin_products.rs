//! Admin product pages: the list with search and status filter, creating a
//! product, editing it and its variants, images over a multipart form,
//! archiving; refusals by role, without CSRF and on bad input; the audit
//! entry.

use crate::admin_client::{between, signed_in, Browser, Page};
use crate::images::png;
use keel_testkit::{json, spawn_app, TestApp};
use keel_web::access::Role;
use reqwest::StatusCode;
use serde_json::Value;

const BOUNDARY: &str = "keel-test-boundary-7d1f";

/// A `multipart/form-data` body as a browser sends it: text fields, then
/// the file (`name`, file name, content type, bytes), in the order given.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    if let Some((file_name, content_type, bytes)) = file {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

async fn upload(b: &mut Browser, product: &str, fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Page {
    let (content_type, body) = multipart(fields, file);
    b.post_body(&format!("/admin/products/{product}/images"), &content_type, body).await
}

async fn product(t: &TestApp, id: &str) -> Value {
    let r = t.get(&format!("/products/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn images(t: &TestApp, id: &str) -> Vec<Value> {
    t.get(&format!("/products/{id}/images")).await.body["data"].as_array().unwrap().clone()
}

async fn product_count(t: &TestApp) -> usize {
    t.get("/products?limit=100").await.body["data"].as_array().unwrap().len()
}

/// An image uploaded through the API; returns its id.
async fn api_image(t: &TestApp, product: &str) -> String {
    let res = t
        .http
        .post(t.url(&format!("/products/{product}/images?alt=Front")))
        .bearer_auth(&t.key)
        .header("content-type", "image/png")
        .body(png(40, 30))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// The table row (`<tr>…</tr>`) that mentions `text`.
fn row_of(body: &str, text: &str) -> String {
    body.split("<tr>").find(|r| r.contains(text)).and_then(|r| r.split("</tr>").next()).expect("a row").to_owned()
}

/// The product details form.
fn details<'a>(csrf: &'a str, handle: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("csrf", csrf), ("title", "Tee Shirt"), ("handle", handle), ("status", "draft"), ("description", "Soft."), ("seo_title", "Best tee"), ("seo_description", "")]
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_list_searches_filters_and_sums_stock() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    let shirt = t
        .ok(
            "/products",
            json!({"title": "Linen Shirt", "status": "active", "variants": [
                {"sku": "SHIRT-S", "prices": [{"currency": "USD", "amount": 1000}]},
                {"sku": "SHIRT-M", "prices": [{"currency": "USD", "amount": 2550}]}]}),
        )
        .await;
    t.receive("SHIRT-S", &loc, 3).await;
    t.receive("SHIRT-M", &loc, 4).await;
    api_image(&t, &id(&shirt)).await;
    t.ok("/products", json!({"title": "Wool Hat", "status": "draft", "variants": [{"sku": "HAT-1"}]})).await;
    let mug = t.product("Old Mug", &["MUG-1"]).await;
    t.ok(&format!("/products/{}/archive", id(&mug)), json!({})).await;

    let mut b = signed_in(&t, Role::CatalogManager).await;
    let p = b.get("/admin/products").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    for title in ["Linen Shirt", "Wool Hat", "Old Mug"] {
        assert!(p.body.contains(title), "{title}");
    }
    assert!(p.body.contains("href=\"/admin/products/new\""), "writers get the New product link");
    let row = row_of(&p.body, "Linen Shirt");
    assert!(row.contains("$10.00 – $25.50"), "{row}");
    assert!(row.contains("<td class=\"num\">2</td>"), "two variants: {row}");
    assert!(row.contains("<td class=\"num\">7</td>"), "3 + 4 available: {row}");
    assert!(row.contains("Active"), "{row}");
    let thumb = between(&row, "<td class=\"thumb\">", "</td>").unwrap();
    assert!(thumb.contains("/media/") && thumb.contains("alt=\"\""), "a decorative thumbnail: {thumb}");
    let hat = row_of(&p.body, "Wool Hat");
    assert!(hat.contains("Draft") && hat.contains("No price"), "{hat}");
    assert!(!hat.contains("<picture>"), "no image, no thumbnail");

    // Search: title, SKU, handle (case-insensitive); status filter.
    let p = b.get("/admin/products?q=HAT").await;
    assert!(p.body.contains("Wool Hat") && !p.body.contains("Linen Shirt"));
    let p = b.get("/admin/products?q=shirt-m").await;
    assert!(p.body.contains("Linen Shirt") && !p.body.contains("Wool Hat"));
    let p = b.get("/admin/products?q=old-mug").await;
    assert!(p.body.contains("Old Mug") && !p.body.contains("Linen Shirt"));
    let p = b.get("/admin/products?status=archived").await;
    assert!(p.body.contains("Old Mug") && !p.body.contains("Wool Hat") && !p.body.contains("Linen Shirt"));
    for wildcard in ["%25", "_"] {
        // Unescaped, either would match every product.
        let p = b.get(&format!("/admin/products?q={wildcard}")).await;
        assert!(p.body.contains("No products match these filters"), "LIKE wildcard {wildcard} is literal");
    }
    let long = "x".repeat(5000);
    let p = b.get(&format!("/admin/products?q={long}")).await;
    assert_eq!(p.status, StatusCode::OK, "long search text is cut, not refused");

    // Every role reads the catalog; only writers get the link.
    let mut a = signed_in(&t, Role::Analyst).await;
    let p = a.get("/admin/products").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.body.contains("href=\"/admin/products/new\""));
    assert_eq!(a.get("/admin/products/new").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn creating_a_product_checks_its_fields_and_duplicates() {
    let t = spawn_app().await;
    t.product("Tee", &["TEE-M"]).await;
    let mut b = signed_in(&t, Role::CatalogManager).await;
    let p = b.get("/admin/products/new").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let csrf = p.csrf();
    let before = product_count(&t).await;

    // Without the token nothing is made.
    let r = b.post("/admin/products/new", &[("title", "Shirt"), ("status", "active"), ("sku", "SHIRT-1"), ("price", "19.99")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Missing title and a bad price: 422 naming both.
    let r = b.post("/admin/products/new", &[("csrf", &csrf), ("title", ""), ("status", "active"), ("sku", "SHIRT-1"), ("price", "19.999")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("id=\"f-title-error\"") && r.body.contains("id=\"f-price-error\""), "{}", r.body);
    assert!(r.body.contains("href=\"#f-title\""), "the summary links to the field");
    assert!(r.body.contains("value=\"SHIRT-1\""), "values are kept");
    // A SKU the rules refuse, a handle the rules refuse.
    let r = b.post("/admin/products/new", &[("csrf", &csrf), ("title", "Shirt"), ("status", "active"), ("sku", "has space"), ("price", "5")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"f-sku-error\""), "{}", r.body);
    let r = b
        .post("/admin/products/new", &[("csrf", &csrf), ("title", "Shirt"), ("handle", "Bad Handle"), ("status", "active"), ("sku", "SHIRT-1"), ("price", "5")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"f-handle-error\""), "{}", r.body);
    // Duplicates are shown on their field.
    let r = b.post("/admin/products/new", &[("csrf", &csrf), ("title", "Shirt"), ("status", "active"), ("sku", "TEE-M"), ("price", "5")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let err = between(&r.body, "id=\"f-sku-error\">", "</p>").expect("an error on the SKU field");
    assert!(err.contains("already used"), "{err}");
    let r = b
        .post("/admin/products/new", &[("csrf", &csrf), ("title", "Shirt"), ("handle", "tee"), ("status", "active"), ("sku", "SHIRT-1"), ("price", "5")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("id=\"f-handle-error\""), "{}", r.body);
    assert_eq!(product_count(&t).await, before, "nothing was made");

    let r = b
        .post(
            "/admin/products/new",
            &[("csrf", &csrf), ("title", "Linen Shirt"), ("description", "Cool linen."), ("status", "active"), ("sku", "SHIRT-1"), ("price", "19.99"), ("variant_title", "Small"), ("options", "Size: S")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let pid = r.location().strip_prefix("/admin/products/").unwrap().to_owned();
    let p = product(&t, &pid).await;
    assert_eq!((p["title"].as_str(), p["handle"].as_str(), p["status"].as_str()), (Some("Linen Shirt"), Some("linen-shirt"), Some("active")));
    assert_eq!(p["description"], "Cool linen.");
    assert_eq!(p["variants"][0]["sku"], "SHIRT-1");
    assert_eq!(p["variants"][0]["title"], "Small");
    assert_eq!(p["variants"][0]["options"], json!({"Size": "S"}));
    assert_eq!(p["variants"][0]["prices"], json!([{"currency": "USD", "amount": 1999}]));
    let page = b.get(&format!("/admin/products/{pid}")).await;
    assert!(page.body.contains("Product created: Linen Shirt."), "the flash shows once");
}

#[tokio::test]
async fn editing_a_product_its_variants_and_archiving_it() {
    let t = spawn_app().await;
    let created = t
        .ok(
            "/products",
            json!({"title": "Tee", "status": "active", "variants": [
                {"sku": "TEE-S", "prices": [{"currency": "USD", "amount": 1000}, {"currency": "EUR", "amount": 900}]}]}),
        )
        .await;
    let pid = id(&created);
    let vid = created["variants"][0]["id"].as_str().unwrap().to_owned();
    let web = id(&t.ok("/sales-channels", json!({"name": "Web shop"})).await);
    let pos = id(&t.ok("/sales-channels", json!({"name": "Market stall"})).await);
    let mut b = signed_in(&t, Role::CatalogManager).await;
    let path = format!("/admin/products/{pid}");
    let p = b.get(&path).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("href=\"/admin/inventory/lookup?sku=TEE-S\""), "the SKU links to its stock");
    assert!(p.body.contains("enctype=\"multipart/form-data\""));
    let csrf = p.csrf();

    // Details: a bad handle is refused on its field; then saved.
    let r = b.post(&path, &details(&csrf, "Bad Handle")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("id=\"f-handle-error\""), "{}", r.body);
    assert_eq!(product(&t, &pid).await["title"], "Tee", "nothing changed");
    // A channel that does not exist (a forged form) is named, not a missing product.
    let mut forged = details(&csrf, "tee-shirt");
    forged.extend([("channel_shown", "chan_00000000000000000000000000000000"), ("channel_ids", "chan_00000000000000000000000000000000")]);
    let r = b.post(&path, &forged).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("href=\"#f-channel_ids\""), "{}", r.body);
    assert_eq!(product(&t, &pid).await["title"], "Tee", "nothing changed");
    let mut form = details(&csrf, "tee-shirt");
    form.extend([("channel_shown", web.as_str()), ("channel_shown", pos.as_str()), ("channel_ids", web.as_str())]);
    let r = b.post(&path, &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let p = product(&t, &pid).await;
    assert_eq!((p["title"].as_str(), p["handle"].as_str(), p["status"].as_str()), (Some("Tee Shirt"), Some("tee-shirt"), Some("draft")));
    assert_eq!((p["description"].as_str(), p["seo_title"].as_str()), (Some("Soft."), Some("Best tee")));
    assert_eq!(p["channel_ids"], json!([web]));
    let page = b.get(&path).await;
    assert!(page.body.contains(&format!("id=\"ch-{web}\" name=\"channel_ids\" value=\"{web}\" checked")), "{}", page.body);

    // A variant's price: a bad one is refused on its field, a good one
    // saved, and the EUR price is kept.
    let vpath = format!("{path}/variants/{vid}");
    let r = b.post(&vpath, &[("csrf", &csrf), ("title", "Small"), ("price", "abc")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(&format!("id=\"v-{vid}-price-error\"")), "{}", r.body);
    assert!(r.body.contains(&format!("href=\"#v-{vid}-price\"")));
    let r = b.post(&vpath, &[("csrf", &csrf), ("title", "Small"), ("options", "Size S"), ("price", "12.50")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(&format!("id=\"v-{vid}-options-error\"")), "{}", r.body);
    let r = b.post(&vpath, &[("csrf", &csrf), ("title", "Small"), ("options", "Size: S, Color: White"), ("price", "12.50")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let v = &product(&t, &pid).await["variants"][0];
    assert_eq!(v["title"], "Small");
    assert_eq!(v["options"], json!({"Color": "White", "Size": "S"}));
    assert_eq!(v["prices"], json!([{"currency": "EUR", "amount": 900}, {"currency": "USD", "amount": 1250}]));
    assert_eq!(v["archived"], false);

    // Add a variant; a taken SKU is refused on its field.
    let r = b.post(&format!("{path}/variants"), &[("csrf", &csrf), ("sku", "TEE-S"), ("variant_title", "Again"), ("price", "5")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("id=\"f-sku-error\""), "{}", r.body);
    let r = b.post(&format!("{path}/variants"), &[("csrf", &csrf), ("sku", "TEE-L"), ("options", "Size: L, Color: White"), ("price", "15")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let p = product(&t, &pid).await;
    assert_eq!(p["variants"].as_array().unwrap().len(), 2);
    assert_eq!(p["variants"][1]["sku"], "TEE-L");
    assert_eq!(p["variants"][1]["prices"], json!([{"currency": "USD", "amount": 1500}]));
    assert_eq!(p["variants"][1]["title"], "White / L", "a title made from the options");
    let page = b.get(&path).await;
    assert!(page.body.contains("Variant TEE-L added."));

    // Archive.
    let r = b.post(&format!("{path}/archive"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(product(&t, &pid).await["status"], "archived");
    let page = b.get(&path).await;
    assert!(page.body.contains("is archived"), "{}", page.body);
    assert!(!page.body.contains("Archive product"), "no second archive button");

    // The gate's audit entry names the staff user.
    let audit = t.get("/audit-log?action_contains=archive").await;
    let entries = audit.body["data"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["status"] == 303 && e["actor"] == format!("staff:{}", b.user_id)), "{entries:?}");

    // Unknown ids are a 404 page, not a router 404.
    let r = b.get("/admin/products/prod_00000000000000000000000000000000").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("There is no such product"));
    let r = b.post(&format!("{path}/variants/var_00000000000000000000000000000000"), &[("csrf", &csrf), ("title", "X"), ("price", "1")]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn images_upload_over_multipart_with_csrf_and_are_edited_and_deleted() {
    let t = spawn_app().await;
    let pid = id(&t.product("Tee", &["TEE-S"]).await);
    let mut b = signed_in(&t, Role::CatalogManager).await;
    let path = format!("/admin/products/{pid}");
    let csrf = b.get(&path).await.csrf();
    let bytes = png(64, 48);

    // Without the token, with a wrong one, or with the token after the
    // file: refused, nothing stored.
    let r = upload(&mut b, &pid, &[("alt", "A tee")], Some(("tee.png", "image/png", &bytes))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = upload(&mut b, &pid, &[("csrf", "forged"), ("alt", "A tee")], Some(("tee.png", "image/png", &bytes))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = upload(&mut b, &pid, &[("alt", "A tee"), ("csrf", &csrf)], Some(("tee.png", "image/png", &bytes))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the token must come first");
    // Not an image, no file: 422 naming the file field.
    let r = upload(&mut b, &pid, &[("csrf", &csrf), ("alt", "A tee")], Some(("notes.png", "image/png", b"hello, not a picture"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("id=\"f-file-error\"") && r.body.contains("not a JPEG, PNG or WebP"), "{}", r.body);
    assert!(r.body.contains("value=\"A tee\""), "the alt text is kept");
    let r = upload(&mut b, &pid, &[("csrf", &csrf), ("alt", "A tee")], Some(("", "application/octet-stream", b""))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose an image file"), "{}", r.body);
    // Alt text over the limit: refused on the alt field.
    let long_alt = "x".repeat(1001);
    let r = upload(&mut b, &pid, &[("csrf", &csrf), ("alt", &long_alt)], Some(("tee.png", "image/png", &bytes))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"f-alt-error\""), "{}", r.body);
    // Over 20 MiB: 413 naming the file field.
    let mut huge = png(1, 1);
    huge.resize(20 * 1024 * 1024 + 1, 0);
    let r = upload(&mut b, &pid, &[("csrf", &csrf), ("alt", "A tee")], Some(("huge.png", "image/png", &huge))).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert!(r.body.contains("id=\"f-file-error\"") && r.body.contains("larger than 20 MiB"), "{}", r.body);
    assert!(images(&t, &pid).await.is_empty());

    // A photograph-sized file (over axum's default 2 MB body limit) is taken.
    let photo = crate::images::noisy_png(1100, 1000);
    assert!(photo.len() > 3 * 1024 * 1024, "{} bytes", photo.len());
    let r = upload(&mut b, &pid, &[("csrf", &csrf), ("alt", "Noise")], Some(("photo.png", "image/png", &photo))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let noise = images(&t, &pid).await;
    assert_eq!(noise.len(), 1);
    let noise_id = noise[0]["id"].as_str().unwrap().to_owned();
    let r = b.post(&format!("{path}/images/{noise_id}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(images(&t, &pid).await.is_empty());

    // Uploaded: the browser's content type does not matter, the bytes do.
    let r = upload(&mut b, &pid, &[("csrf", &csrf), ("alt", "A red tee")], Some(("tee.png", "application/octet-stream", &bytes))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let imgs = images(&t, &pid).await;
    assert_eq!(imgs.len(), 1);
    assert_eq!((imgs[0]["alt"].as_str(), imgs[0]["width"].as_i64()), (Some("A red tee"), Some(64)));
    let img = id(&imgs[0]);
    let page = b.get(&path).await;
    assert!(page.body.contains("Image uploaded."));
    assert!(page.body.contains(&format!("id=\"alt-{img}\" name=\"alt\" value=\"A red tee\"")), "{}", page.body);

    // Alt text: refused when too long, then saved.
    let ipath = format!("{path}/images/{img}");
    let r = b.post(&ipath, &[("csrf", &csrf), ("alt", &long_alt)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(&format!("id=\"alt-{img}-error\"")), "{}", r.body);
    let r = b.post(&ipath, &[("alt", "Front")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(images(&t, &pid).await[0]["alt"], "A red tee");
    let r = b.post(&ipath, &[("csrf", &csrf), ("alt", "Front of a red tee")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(images(&t, &pid).await[0]["alt"], "Front of a red tee");

    // Delete.
    let r = b.post(&format!("{ipath}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(images(&t, &pid).await.is_empty());
    let r = b.post(&format!("{ipath}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("There is no such image"));
    let audit = t.get("/audit-log?action_contains=images").await;
    let entries = audit.body["data"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["status"] == 303 && e["action"] == "POST /admin/products/{product_id}/images"), "{entries:?}");
}

#[tokio::test]
async fn roles_without_catalog_write_may_look_but_change_nothing() {
    let t = spawn_app().await;
    let created = t.product("Tee", &["TEE-S"]).await;
    let pid = id(&created);
    let vid = created["variants"][0]["id"].as_str().unwrap().to_owned();
    let img = api_image(&t, &pid).await;
    let before = product(&t, &pid).await;
    let path = format!("/admin/products/{pid}");
    // Every role holds catalog.read (keel_domain::access), so each may look.
    for role in [Role::InventoryManager, Role::Analyst, Role::Fulfillment, Role::SupportAgent] {
        let mut b = signed_in(&t, role).await;
        let p = b.get("/admin/products").await;
        assert_eq!(p.status, StatusCode::OK, "{role:?}");
        let p = b.get(&path).await;
        assert_eq!(p.status, StatusCode::OK, "{role:?}");
        assert!(!p.body.contains("Save product") && !p.body.contains("Archive product"), "{role:?}: no forms to write");
        assert!(p.body.contains("TEE-S"));
        let csrf = p.csrf(); // the sign-out form's token
        let writes: [(String, Vec<(&str, &str)>); 6] = [
            (path.clone(), vec![("csrf", &csrf), ("title", "Hacked"), ("handle", "tee"), ("status", "active")]),
            (format!("{path}/archive"), vec![("csrf", &csrf)]),
            (format!("{path}/variants"), vec![("csrf", &csrf), ("sku", "NEW-1"), ("price", "1")]),
            (format!("{path}/variants/{vid}"), vec![("csrf", &csrf), ("title", "Hacked"), ("price", "0.01")]),
            (format!("{path}/images/{img}"), vec![("csrf", &csrf), ("alt", "Hacked")]),
            (format!("{path}/images/{img}/delete"), vec![("csrf", &csrf)]),
        ];
        for (to, form) in &writes {
            let r = b.post(to, form).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{role:?} POST {to}");
            assert!(r.body.contains("catalog.write"), "{}", r.body);
        }
        let r = upload(&mut b, &pid, &[("csrf", &csrf)], Some(("tee.png", "image/png", &png(8, 8)))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role:?} upload");
        let r = b.post("/admin/products/new", &[("csrf", &csrf), ("title", "X"), ("status", "active"), ("sku", "X-1"), ("price", "1")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role:?} create");
    }
    let after = product(&t, &pid).await;
    assert_eq!(after["version"], before["version"], "nothing changed");
    assert_eq!(after["variants"], before["variants"]);
    assert_eq!(images(&t, &pid).await.len(), 1);
    assert_eq!(product_count(&t).await, 1);
}

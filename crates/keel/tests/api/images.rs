use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use keel_testkit::{json, spawn_app, Res, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use std::io::Cursor;

fn encode(img: RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img).write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 140]))
}

pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
    encode(gradient(w, h), ImageFormat::Png)
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    encode(gradient(w, h), ImageFormat::Jpeg)
}

/// Noise compresses badly: a PNG well over the 1 MiB JSON limit.
pub(crate) fn noisy_png(w: u32, h: u32) -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    let img = RgbImage::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let b = state.to_le_bytes();
        Rgb([b[0], b[1], b[2]])
    });
    encode(img, ImageFormat::Png)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A valid 1×1 PNG whose header claims `w`×`h`: decoding it would need
/// gigabytes, so refusing it proves the header was checked first.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut b = png(1, 1);
    assert_eq!(&b[12..16], b"IHDR");
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

async fn upload_with(t: &TestApp, product: &str, query: &str, content_type: Option<&str>, body: Vec<u8>, headers: &[(&str, &str)]) -> Res {
    let mut req = t.http.post(t.url(&format!("/products/{product}/images{query}"))).bearer_auth(&t.key).body(body);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Res { status, headers, body }
}

async fn upload(t: &TestApp, product: &str, query: &str, content_type: &str, body: Vec<u8>) -> Res {
    upload_with(t, product, query, Some(content_type), body, &[]).await
}

fn files(img: &Value, format: &str) -> Vec<(i64, i64)> {
    img["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["format"] == format)
        .map(|v| (v["width"].as_i64().unwrap(), v["height"].as_i64().unwrap()))
        .collect()
}

/// Fetches every generated file of `img` without credentials and checks
/// headers and that the bytes decode to the stated size.
async fn check_served(t: &TestApp, img: &Value) {
    for v in img["variants"].as_array().unwrap() {
        let url = format!("{}{}", t.base, v["url"].as_str().unwrap());
        let res = reqwest::get(&url).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        let h = res.headers().clone();
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        let mime = if v["format"] == "webp" { "image/webp" } else { "image/jpeg" };
        assert_eq!(h["content-type"], mime);
        let etag = h["etag"].to_str().unwrap().to_owned();
        assert!(url.contains(etag.trim_matches('"')), "the ETag is the hash in the name: {etag} {url}");
        let bytes = res.bytes().await.unwrap();
        assert_eq!(bytes.len() as i64, v["byte_size"].as_i64().unwrap());
        let format = if v["format"] == "webp" { ImageFormat::WebP } else { ImageFormat::Jpeg };
        let decoded = image::load_from_memory_with_format(&bytes, format).unwrap();
        assert_eq!(i64::from(decoded.width()), v["width"].as_i64().unwrap());
        assert_eq!(i64::from(decoded.height()), v["height"].as_i64().unwrap());

        let again = t.http.get(&url).header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()["cache-control"], "public, max-age=31536000, immutable");
    }
}

#[tokio::test]
async fn uploads_get_responsive_variants_that_are_served_immutable() {
    let t = spawn_app().await;
    let p = t.product("Stoneware Mug", &["MUG-SAND"]).await;
    let id = p["id"].as_str().unwrap();

    let r = upload(&t, id, "?alt=Sand%20mug%2C%20side", "image/png", png(1000, 600)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let first = r.body;
    assert!(first["id"].as_str().unwrap().starts_with("img_"));
    assert_eq!(first["object"], "product_image");
    assert_eq!(first["alt"], "Sand mug, side");
    assert_eq!((first["format"].as_str(), first["width"].as_i64(), first["height"].as_i64()), (Some("png"), Some(1000), Some(600)));
    assert_eq!(first["position"], 0);
    assert_eq!(first["content_hash"].as_str().unwrap().len(), 64);
    assert_eq!(files(&first, "webp"), [(320, 192), (640, 384), (960, 576)], "never upscaled past 1000 px");
    assert_eq!(files(&first, "jpeg"), [(320, 192), (640, 384), (960, 576)]);

    let var = p["variants"][0]["id"].as_str().unwrap();
    let r = upload(&t, id, &format!("?variant_id={var}"), "image/jpeg", jpeg(1600, 800)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let second = r.body;
    assert_eq!(second["format"], "jpeg");
    assert_eq!(second["variant_id"], var);
    assert_eq!(second["position"], 1, "appended after the first");
    assert_eq!(files(&second, "webp"), [(320, 160), (640, 320), (960, 480), (1440, 720)]);
    assert_eq!(files(&second, "jpeg"), [(320, 160), (640, 320), (960, 480), (1440, 720)]);

    let r = upload(&t, id, "?position=5", "image/png", png(200, 120)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let small = r.body;
    assert_eq!(files(&small, "webp"), [(200, 120)], "smaller than 320: its own width only");
    assert_eq!(files(&small, "jpeg"), [(200, 120)]);

    let list = t.get(&format!("/products/{id}/images")).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["object"], "list");
    let ids: Vec<&Value> = list.body["data"].as_array().unwrap().iter().map(|i| &i["id"]).collect();
    assert_eq!(ids, [&first["id"], &second["id"], &small["id"]]);
    assert_eq!(list.body["data"][0], first);

    for img in [&first, &second, &small] {
        check_served(&t, img).await;
    }

    let events = t.events("type=product.image_created", 3).await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["aggregate_id"], id);
    assert_eq!(events[0]["data"]["object"]["id"], first["id"]);
    let product = t.get(&format!("/products/{id}")).await;
    assert_eq!(product.body["version"], 4, "each image change is a product change");
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing_behind() {
    let t = spawn_app().await;
    let p = t.product("Tee", &["TEE"]).await;
    let id = p["id"].as_str().unwrap();

    let r = upload(&t, id, "", "image/png", b"this is not a picture at all".to_vec()).await;
    assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_image", "body"), "{}", r.body);

    let mut truncated = png(600, 600);
    truncated.truncate(truncated.len() / 2);
    let r = upload(&t, id, "", "image/png", truncated).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_image"), "{}", r.body);

    let mut truncated = jpeg(600, 600);
    truncated.truncate(truncated.len() * 2 / 3);
    let r = upload(&t, id, "", "image/jpeg", truncated).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_image"), "{}", r.body);

    let r = upload(&t, id, "", "image/jpeg", png(50, 50)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_image"), "a PNG sent as JPEG: {}", r.body);

    let r = upload(&t, id, "", "image/gif", b"GIF89a".to_vec()).await;
    assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Content-Type"));
    let r = upload_with(&t, id, "", None, png(50, 50), &[]).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);

    let started = std::time::Instant::now();
    let r = upload(&t, id, "", "image/png", png_claiming(20_000, 20_000)).await;
    assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "image_too_large", "body"), "{}", r.body);
    let r = upload(&t, id, "", "image/png", png_claiming(9_000, 9_000)).await;
    assert_eq!(r.error_code(), "image_too_large", "81 megapixels: {}", r.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused from the header, not decoded");

    let r = upload(&t, id, "", "image/png", Vec::new()).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_image"));

    let r = upload(&t, id, "", "image/png", vec![0u8; 21 * 1024 * 1024]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"), "{}", r.body);

    let r = upload(&t, id, "?position=-1", "image/png", png(50, 50)).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "position"));
    let r = upload(&t, id, "?position=first", "image/png", png(50, 50)).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "position"));
    let r = upload(&t, id, "?caption=x", "image/png", png(50, 50)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_field"));
    let r = upload(&t, id, &format!("?alt={}", "a".repeat(1001)), "image/png", png(50, 50)).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "alt"));

    let list = t.get(&format!("/products/{id}/images")).await;
    assert_eq!(list.body["data"], json!([]));
    let media = t.db.dir.join("media");
    let leftovers = std::fs::read_dir(&media).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "no files for refused uploads");
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM product_images").await, 0);
}

#[tokio::test]
async fn unknown_products_and_variants_are_404() {
    let t = spawn_app().await;
    let p = t.product("Tee", &["TEE"]).await;
    let other = t.product("Cap", &["CAP"]).await;
    let id = p["id"].as_str().unwrap();

    let r = upload(&t, "prod_0193aaaaaaaa7aaa8aaaaaaaaaaaaaaa", "", "image/png", png(50, 50)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = upload(&t, "nope", "", "image/png", png(50, 50)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(t.get("/products/prod_0193aaaaaaaa7aaa8aaaaaaaaaaaaaaa/images").await.status, StatusCode::NOT_FOUND);

    let foreign = other["variants"][0]["id"].as_str().unwrap();
    let r = upload(&t, id, &format!("?variant_id={foreign}"), "image/png", png(50, 50)).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::NOT_FOUND, "variant_id"), "{}", r.body);
    let r = upload(&t, id, "?variant_id=prod_x", "image/png", png(50, 50)).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "variant_id"));

    // An image is only reachable through its own product.
    let img = upload(&t, id, "", "image/png", png(50, 50)).await.body;
    let img_id = img["id"].as_str().unwrap();
    let oid = other["id"].as_str().unwrap();
    let r = t.post(&format!("/products/{oid}/images/{img_id}"), json!({"alt": "x"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t.send(reqwest::Method::DELETE, &format!("/products/{oid}/images/{img_id}"), None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn images_are_updated_and_deleted_with_their_files() {
    let t = spawn_app().await;
    let p = t.product("Tee", &["TEE"]).await;
    let id = p["id"].as_str().unwrap();
    let img = upload(&t, id, "?alt=old", "image/png", png(700, 700)).await.body;
    let img_id = img["id"].as_str().unwrap();

    let r = t.post(&format!("/products/{id}/images/{img_id}"), json!({"alt": "Front <view>", "position": 3})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["alt"].as_str(), r.body["position"].as_i64()), (Some("Front <view>"), Some(3)));
    assert_eq!(r.body["variants"], img["variants"], "files are unchanged");
    let r = t.post(&format!("/products/{id}/images/{img_id}"), json!({"position": 10_001})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "position"));

    let url = format!("{}{}", t.base, img["variants"][0]["url"].as_str().unwrap());
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK);

    let r = t.send(reqwest::Method::DELETE, &format!("/products/{id}/images/{img_id}"), None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"id": img_id, "object": "product_image", "deleted": true}));
    assert_eq!(t.get(&format!("/products/{id}/images")).await.body["data"], json!([]));
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::NOT_FOUND, "files go with the image");
    assert!(!t.db.dir.join("media").join(img_id).exists());
    let r = t.post(&format!("/products/{id}/images/{img_id}/delete"), json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let types: Vec<String> = t.events("type=product.image_*", 3).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["product.image_created", "product.image_updated", "product.image_deleted"]);
}

#[tokio::test]
async fn idempotent_uploads_replay_even_above_the_json_limit() {
    let t = spawn_app().await;
    let p = t.product("Throw", &["THROW"]).await;
    let id = p["id"].as_str().unwrap();
    let body = noisy_png(800, 800);
    assert!(body.len() > 1024 * 1024, "{} bytes", body.len());
    let plain = upload(&t, id, "", "image/png", body.clone()).await;
    assert_eq!(plain.status, StatusCode::CREATED, "the upload route has its own body limit: {}", plain.body);
    let a = upload_with(&t, id, "", Some("image/png"), body.clone(), &[("Idempotency-Key", "img-1")]).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let b = upload_with(&t, id, "", Some("image/png"), body, &[("Idempotency-Key", "img-1")]).await;
    assert_eq!(b.status, StatusCode::CREATED);
    assert_eq!(b.headers["idempotent-replayed"], "true");
    assert_eq!(a.body["id"], b.body["id"]);
    assert_eq!(t.get(&format!("/products/{id}/images")).await.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn image_endpoints_are_in_the_openapi_document() {
    let t = spawn_app().await;
    let doc = t.get("/openapi.json").await.body;
    let paths = &doc["paths"];
    assert!(paths["/products/{id}/images"]["post"]["requestBody"].is_object(), "{}", paths["/products/{id}/images"]);
    assert!(paths["/products/{id}/images"]["get"].is_object());
    assert!(paths["/products/{id}/images/{image_id}"]["delete"].is_object());
    assert!(doc["components"]["schemas"]["ImageView"].is_object());
}

#[tokio::test]
async fn the_sweep_removes_only_files_no_image_refers_to() {
    let t = spawn_app().await;
    let p = t.product("Tee", &["TEE"]).await;
    let id = p["id"].as_str().unwrap();
    let img = upload(&t, id, "", "image/png", png(400, 300)).await.body;
    let media = t.db.dir.join("media");
    let orphan = media.join("img_0193aaaaaaaa7aaa8aaaaaaaaaaaaaaa");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("320-0123456789abcdef.webp"), b"left over").unwrap();
    std::fs::write(media.join("README"), b"not an image directory").unwrap();

    assert_eq!(t.app.sweep_orphan_media(std::time::Duration::from_secs(3600)).await.unwrap(), 0, "too recent to judge");
    assert_eq!(t.app.sweep_orphan_media(std::time::Duration::ZERO).await.unwrap(), 1);
    assert!(!orphan.exists());
    assert!(media.join("README").exists());
    check_served(&t, &img).await;
}

#[tokio::test]
async fn media_names_are_strict() {
    let t = spawn_app().await;
    let p = t.product("Tee", &["TEE"]).await;
    let id = p["id"].as_str().unwrap();
    let img = upload(&t, id, "", "image/png", png(400, 300)).await.body;
    let img_id = img["id"].as_str().unwrap();
    let good = img["variants"][0]["url"].as_str().unwrap().to_owned();
    let (dir, name) = good.rsplit_once('/').unwrap();
    let (width, rest) = name.split_once('-').unwrap();
    let (hash, ext) = rest.split_once('.').unwrap();
    let upper = format!("{dir}/{width}-{}.{ext}", hash.to_ascii_uppercase());
    for path in [
        format!("/media/{img_id}/original.png"),
        format!("/media/{img_id}/..%2F..%2Fkeel.db"),
        "/media/..%2F..%2Fetc/passwd".to_owned(),
        format!("/media/{img_id}/%2e%2e%2fsecret.key"),
        format!("/media/{img_id}/320-0000000000000000.webp"),
        format!("/media/img_0193aaaaaaaa7aaa8aaaaaaaaaaaaaaa/{}", good.rsplit('/').next().unwrap()),
        upper,
        "/media/keel.db".to_owned(),
        "/media/".to_owned(),
    ] {
        let r = reqwest::get(format!("{}{path}", t.base)).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(reqwest::get(format!("{}{good}", t.base)).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn the_demo_shop_has_an_image_per_product() {
    let t = spawn_app().await;
    let started = std::time::Instant::now();
    assert!(t.app.seed_demo().await.unwrap());
    eprintln!("demo seeded in {:?}", started.elapsed());
    let page = t.get("/products?limit=100").await;
    let ids: Vec<String> = page.body["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    let images = t.app.images_for_products(&ids).await.unwrap();
    assert_eq!(images.len(), 20);
    assert_eq!(images.len(), ids.len(), "every product has one");
    let mut hashes = std::collections::BTreeSet::new();
    for imgs in images.values() {
        assert_eq!(imgs.len(), 1);
        assert_eq!((imgs[0].width, imgs[0].height), (1200, 1200));
        assert_eq!(imgs[0].variants.len(), 6, "320, 640 and 960 in two formats");
        hashes.insert(imgs[0].content_hash.clone());
        let picture = keel_web::media::Picture::from_image(&imgs[0]).unwrap();
        assert!(picture.webp_srcset.is_some(), "lossless WebP wins on flat artwork");
    }
    assert_eq!(hashes.len(), images.len(), "a different image per product");
    check_served(&t, &serde_json::to_value(&images.values().next().unwrap()[0]).unwrap()).await;
}

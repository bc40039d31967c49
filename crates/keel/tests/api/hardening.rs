//! Regression tests for an outside security review's smaller findings: each
//! failed before its fix.

use keel_testkit::{json, spawn_app, TestApp};
use reqwest::{Method, StatusCode};

async fn key_with_role(t: &TestApp, role: &str) -> String {
    let b = t.ok("/api-keys", json!({"name": format!("{role} key"), "role": role})).await;
    b["secret"].as_str().unwrap().to_owned()
}

/// `HEAD` is answered by the `GET` handler, so it needs what `GET` needs —
/// including the exceptions (a webhook secret is a write permission).
#[tokio::test]
async fn head_needs_what_get_needs_even_for_a_webhook_secret() {
    let t = spawn_app().await;
    let ep = t.ok("/webhook-endpoints", json!({"url": "https://hooks.example.com/keel"})).await;
    let path = t.url(&format!("/webhook-endpoints/{}/secret", ep["id"].as_str().unwrap()));
    let analyst = key_with_role(&t, "analyst").await;
    for method in [Method::GET, Method::HEAD] {
        let r = t.http.request(method.clone(), &path).bearer_auth(&analyst).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} by an analyst");
        let r = t.http.request(method.clone(), &path).bearer_auth(&t.key).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{method} by the owner");
    }
}

#[tokio::test]
async fn every_response_carries_a_permissions_policy() {
    let t = spawn_app().await;
    for path in ["/", "/admin/login", "/api/v1/products", "/healthz", "/no-such-page"] {
        let r = t.http.get(format!("{}{path}", t.base)).bearer_auth(&t.key).send().await.unwrap();
        let policy = r.headers().get("permissions-policy").map(|v| v.to_str().unwrap().to_owned());
        assert!(policy.as_deref().is_some_and(|p| p.contains("camera=()") && p.contains("geolocation=()")), "{path}: {policy:?}");
    }
}

/// Adding a negative quantity to a line already in the cart used to
/// subtract from it; an added quantity is 1 or more, everywhere.
#[tokio::test]
async fn a_negative_quantity_never_changes_a_cart_line() {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    let product = t.product("Tee", &["NEG-1"]).await;
    t.receive("NEG-1", &loc, 10).await;
    let variant = product["variants"][0]["id"].as_str().unwrap().to_owned();

    // API: the same SKU again adds to its line; a negative one is a 422.
    let cart = t.ok("/carts", json!({"currency": "USD"})).await;
    let id = cart["id"].as_str().unwrap();
    t.ok(&format!("/carts/{id}/lines"), json!({"sku": "NEG-1", "quantity": 2})).await;
    let merged = t.ok(&format!("/carts/{id}/lines"), json!({"sku": "NEG-1", "quantity": 1})).await;
    assert_eq!(merged["lines"].as_array().unwrap().len(), 1, "{merged}");
    assert_eq!(merged["lines"][0]["quantity"], 3);
    let r = t.post(&format!("/carts/{id}/lines"), json!({"sku": "NEG-1", "quantity": -2})).await;
    assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, "quantity"), "{}", r.body);
    assert_eq!(t.get(&format!("/carts/{id}")).await.body["lines"][0]["quantity"], 3);

    // Storefront: the product page's add-to-cart form.
    let shopper = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let add = |q: &str, cookie: Option<String>| {
        let mut req = shopper
            .post(format!("{}/cart/lines", t.base))
            .header("origin", t.base.clone())
            .form(&[("variant_id", variant.as_str()), ("quantity", q)]);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    let first = add("2", None).await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let cookie = first.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_eq!(add("-1", Some(cookie.clone())).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(add("0", Some(cookie.clone())).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(add("1", Some(cookie)).await.unwrap().status(), StatusCode::SEE_OTHER);
    let quantities = t.db.scalar(&format!("SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM cart_lines WHERE variant_id = '{variant}' AND cart_id <> '{id}'")).await;
    assert_eq!(quantities, 3, "2, then 1 more; the refused ones changed nothing");
}

/// Passwords were checked for length only: "aaaaaaaaaaaa" and
/// "password1234" were accepted for a staff owner and for shoppers.
#[tokio::test]
async fn weak_and_common_passwords_are_refused_for_staff_and_shoppers() {
    use keel_app::AppError;
    use keel_web::access::Role;
    let t = spawn_app().await;
    let now = keel_domain::time::now_micros();
    for (password, code) in [("aaaaaaaaaaaa", "password_too_weak"), ("Password1234", "password_too_common"), ("qwertyuiop123", "password_too_common")] {
        let r = t.post("/customers", json!({"email": "ada@example.com", "password": password})).await;
        assert_eq!((r.status, r.error_code(), r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, code, "password"), "{password}: {}", r.body);
        match t.app.create_staff_user("owner2@example.com", Role::Owner, Some(password), now).await {
            Err(AppError::Invalid(i)) => assert_eq!((i.field.as_str(), i.code), ("password", code), "{password}"),
            other => panic!("{password}: {:?}", other.map(|c| c.user.id)),
        }
    }
    // The account's own name is no secret.
    let r = t.post("/customers", json!({"email": "grace.hopper@example.com", "first_name": "Grace", "password": "grace.hopper1906"})).await;
    assert_eq!(r.error_code(), "password_too_weak", "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("guess"), "a clear message: {}", r.body);
    // A phrase of unrelated words is fine for both.
    let r = t.post("/customers", json!({"email": "ada@example.com", "password": "velvet orbit tangerine"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    t.app.create_staff_user("owner2@example.com", Role::Owner, Some("velvet orbit tangerine"), now).await.expect("a strong staff password");
}

/// A headless storefront had to ship a secret key to the browser; a
/// publishable key reads the catalog and drives carts and checkout only.
#[tokio::test]
async fn publishable_keys_reach_only_the_catalog_carts_and_checkout() {
    let (t, _) = crate::checkout::shop(&[("PK-1", 5)]).await;
    let created = t.post("/api-keys", json!({"name": "Shop front", "type": "publishable"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let pk = created.body["secret"].as_str().unwrap().to_owned();
    assert!(pk.starts_with("keel_pk_"), "{pk}");
    assert_eq!((created.body["type"].as_str(), created.body["role"].as_str()), (Some("publishable"), None));
    let send = |m: Method, path: &str, body: Option<serde_json::Value>| {
        let mut req = t.http.request(m, t.url(path)).bearer_auth(&pk);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };

    // The shop front's whole journey.
    assert_eq!(send(Method::GET, "/products", None).await.unwrap().status(), StatusCode::OK);
    let cart: serde_json::Value = send(Method::POST, "/carts", Some(json!({"currency": "USD", "email": "shopper@example.com"}))).await.unwrap().json().await.unwrap();
    let id = cart["id"].as_str().unwrap().to_owned();
    let r = send(Method::POST, &format!("/carts/{id}/lines"), Some(json!({"sku": "PK-1", "quantity": 2}))).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let address = json!({"name": "Sam Shopper", "line1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"});
    assert_eq!(send(Method::POST, &format!("/carts/{id}"), Some(json!({"shipping_address": address}))).await.unwrap().status(), StatusCode::OK);
    let methods: serde_json::Value = send(Method::GET, &format!("/carts/{id}/shipping-methods"), None).await.unwrap().json().await.unwrap();
    let r = send(Method::POST, &format!("/carts/{id}"), Some(json!({"shipping_method_id": methods["data"][0]["id"]}))).await.unwrap();
    let shown: serde_json::Value = r.json().await.unwrap();
    assert_eq!(shown["email"], "shopper@example.com", "the shopper sees their own cart");
    let order = send(Method::POST, &format!("/carts/{id}/complete"), Some(json!({"payment_method": "tok_visa"}))).await.unwrap();
    assert_eq!(order.status(), StatusCode::CREATED);
    let order: serde_json::Value = order.json().await.unwrap();

    // Nothing else: not orders, customers, stock, events, keys, writes to the catalog.
    let order_path = format!("/orders/{}", order["id"].as_str().unwrap());
    for (m, path) in [
        (Method::GET, "/orders"),
        (Method::GET, order_path.as_str()),
        (Method::GET, "/customers"),
        (Method::GET, "/inventory/levels"),
        (Method::GET, "/events"),
        (Method::GET, "/api-keys"),
        (Method::GET, "/webhook-endpoints"),
        (Method::GET, "/audit-log"),
    ] {
        let r = send(m.clone(), path, None).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{m} {path}");
    }
    let r = send(Method::POST, "/products", Some(json!({"title": "Sneaky"}))).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(Method::POST, "/api-keys", Some(json!({"name": "escalate", "role": "owner"}))).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = t.http.get(format!("{}/metrics", t.base)).bearer_auth(&pk).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Bad requests name the field.
    for (body, param) in [
        (json!({"name": "x", "type": "publishable", "role": "analyst"}), "role"),
        (json!({"name": "x", "type": "publishable", "rate_limit_per_min": 100}), "rate_limit_per_min"),
        (json!({"name": "x"}), "role"),
        (json!({"name": "x", "type": "sneaky", "role": "analyst"}), "type"),
        (json!({"name": "x", "role": "analyst", "rate_limit_per_min": 0}), "rate_limit_per_min"),
    ] {
        let r = t.post("/api-keys", body.clone()).await;
        assert_eq!((r.status, r.error_param()), (StatusCode::UNPROCESSABLE_ENTITY, param), "{body}: {}", r.body);
    }
    // Secret keys carry their own limit.
    let sk = t.ok("/api-keys", json!({"name": "ERP", "role": "inventory_manager", "rate_limit_per_min": 120})).await;
    assert_eq!((sk["type"].as_str(), sk["rate_limit_per_min"].as_i64()), (Some("secret"), Some(120)));
    assert!(sk["secret"].as_str().unwrap().starts_with("keel_sk_"));
}

//! Personal data is shown only to roles holding `customers.read`: a sweep
//! over every API route and every admin page with distinctive seeded data.

use crate::checkout::shop;
use keel_web::access::{allows, Permission, Role};
use keel_testkit::{json, TestApp};
use reqwest::StatusCode;

/// Strings that appear nowhere but in the seeded shopper's data.
const SEEDED: &[&str] = &["zephyrine", "quillfeather", "Marrowgate", "Vellmouth", "QX9 7ZZ", "7946-3141", "Wobbleton"];

struct Seeded {
    ids: Vec<(&'static str, String)>,
}

/// A customer, her cart and her paid order, all carrying the seeded strings,
/// plus a webhook endpoint whose log holds the order's events.
async fn seed(t: &TestApp) -> Seeded {
    let endpoint = t.ok("/webhook-endpoints", json!({"url": "https://hooks.example.com/keel"})).await;
    let customer = t
        .ok("/customers", json!({"email": "zephyrine.quillfeather@example.com", "first_name": "Zephyrine", "last_name": "Quillfeather",
            "phone": "+44 20 7946-3141"}))
        .await;
    let cart = t.ok("/carts", json!({"currency": "USD", "email": "zephyrine.quillfeather@example.com"})).await;
    let cart_id = cart["id"].as_str().unwrap().to_owned();
    t.ok(&format!("/carts/{cart_id}/lines"), json!({"sku": "PII-1", "quantity": 1})).await;
    let address = json!({"name": "Zephyrine Quillfeather", "line1": "12 Marrowgate Lane", "line2": "Wobbleton", "city": "Vellmouth",
        "postal_code": "QX9 7ZZ", "country": "US", "phone": "+44 20 7946-3141"});
    t.ok(&format!("/carts/{cart_id}"), json!({"shipping_address": address})).await;
    let methods = t.get(&format!("/carts/{cart_id}/shipping-methods")).await;
    t.ok(&format!("/carts/{cart_id}"), json!({"shipping_method_id": methods.body["data"][0]["id"]})).await;
    let open = t.ok("/carts", json!({"currency": "USD", "email": "zephyrine.quillfeather@example.com"})).await;
    t.ok(&format!("/carts/{}", open["id"].as_str().unwrap()), json!({"shipping_address": address})).await;
    let order = crate::checkout::complete(t, &cart_id, "tok_visa").await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let order_id = order.body["id"].as_str().unwrap().to_owned();
    assert!(order.body.to_string().contains("Marrowgate"), "the owner sees the address");
    let events = t.get("/events?limit=100").await.body;
    let event = events["data"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
    t.app.fan_out_webhooks().await.expect("fan-out");
    let messages = t.get(&format!("/webhook-endpoints/{}/messages", endpoint["id"].as_str().unwrap())).await.body;
    let message = messages["data"][0]["id"].as_str().expect("a message in the delivery log").to_owned();
    Seeded {
        ids: vec![
            ("/orders/{id}", order_id),
            ("/carts/{id}", open["id"].as_str().unwrap().to_owned()),
            ("/customers/{id}", customer["id"].as_str().unwrap().to_owned()),
            ("/events/{id}", event),
            ("/webhook-endpoints/{id}", endpoint["id"].as_str().unwrap().to_owned()),
            ("/webhook-messages/{id}", message),
        ],
    }
}

impl Seeded {
    /// `path` with its `{id}` filled from the seeded object of its kind.
    fn concrete(&self, path: &str) -> String {
        let mut out = path.to_owned();
        for (pattern, id) in &self.ids {
            let prefix = pattern.trim_end_matches("{id}");
            if let Some(rest) = path.strip_prefix(prefix) {
                if rest.starts_with("{id}") {
                    out = format!("{prefix}{id}{}", &rest[4..]);
                }
            }
        }
        out.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/")
    }
}

fn leaks(body: &str) -> Vec<&'static str> {
    let lower = body.to_lowercase();
    SEEDED.iter().copied().filter(|s| lower.contains(&s.to_lowercase())).collect()
}

fn roles_without_customers_read() -> Vec<Role> {
    Role::ALL.into_iter().filter(|r| !allows(*r, Permission::CustomersRead)).collect()
}

#[tokio::test]
async fn no_route_shows_personal_data_to_a_role_without_customers_read() {
    let (t, _) = shop(&[("PII-1", 5)]).await;
    let seeded = seed(&t).await;
    let doc = serde_json::to_value(keel_web::api::openapi::document()).unwrap();
    let gets: Vec<String> =
        doc["paths"].as_object().unwrap().iter().filter(|(_, item)| item.get("get").is_some()).map(|(p, _)| p.clone()).collect();
    assert!(gets.len() > 30, "{} GET routes", gets.len());
    let roles = roles_without_customers_read();
    assert!(roles.contains(&Role::InventoryManager), "orders.read without customers.read");
    let mut seen_ok = 0;
    for role in roles {
        let key = t.ok("/api-keys", json!({"name": format!("{} key", role.as_str()), "role": role.as_str()})).await["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        for path in &gets {
            let url = t.url(&seeded.concrete(path));
            let r = t.http.get(&url).bearer_auth(&key).send().await.unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            assert!(leaks(&body).is_empty(), "{} GET {path} ({status}) shows {:?}", role.as_str(), leaks(&body));
            seen_ok += usize::from(status == StatusCode::OK);
        }
        // Filtering by email would confirm an address: refused, naming the permission.
        let r = t.http.get(t.url("/orders?email=zephyrine.quillfeather%40example.com")).bearer_auth(&key).send().await.unwrap();
        if allows(role, Permission::OrdersRead) {
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{}", role.as_str());
            assert!(r.text().await.unwrap().contains("customers.read"));
        }
        // Writes that answer with the order or cart hide it too.
        if allows(role, Permission::OrdersWrite) {
            let order = &seeded.ids[0].1;
            let r = t.http.post(t.url(&format!("/orders/{order}/capture"))).bearer_auth(&key).json(&json!({})).send().await.unwrap();
            assert!(leaks(&r.text().await.unwrap()).is_empty());
        }
    }
    assert!(seen_ok > 10, "{seen_ok} routes answered 200 (the sweep reached real objects)");

    // Every role holding customers.read still sees it.
    for role in Role::ALL.into_iter().filter(|r| allows(*r, Permission::CustomersRead) && allows(*r, Permission::OrdersRead)) {
        let key = t.ok("/api-keys", json!({"name": "reader", "role": role.as_str()})).await["secret"].as_str().unwrap().to_owned();
        let url = t.url(&seeded.concrete("/orders/{id}"));
        let body = t.http.get(url).bearer_auth(&key).send().await.unwrap().text().await.unwrap();
        assert!(body.contains("Marrowgate"), "{} sees the address", role.as_str());
        let r = t.http.get(t.url("/orders?email=zephyrine.quillfeather%40example.com")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn no_admin_page_shows_personal_data_to_a_role_without_customers_read() {
    use keel_web::access::{admin_routes, Access};
    let (t, _) = shop(&[("PII-1", 5)]).await;
    let seeded = seed(&t).await;
    let order = &seeded.ids[0].1;
    let message = &seeded.ids[5].1;
    let endpoint = &seeded.ids[4].1;
    for role in roles_without_customers_read() {
        let mut b = crate::admin_client::signed_in(&t, role).await;
        let mut looked = 0;
        for (m, path, access) in admin_routes() {
            if *m != "GET" || matches!(access, Access::Needs(p) if !allows(role, *p)) {
                continue;
            }
            let concrete = path
                .replace("{order_id}", order)
                .replace("{message_id}", message)
                .replace("{endpoint_id}", endpoint)
                .split('/')
                .map(|s| if s.starts_with('{') { "x_00000000000000000000000000000000" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let p = b.get(&concrete).await;
            assert!(leaks(&p.body).is_empty(), "{} GET {path} shows {:?}", role.as_str(), leaks(&p.body));
            looked += 1;
        }
        assert!(looked > 3, "{}: {looked} pages", role.as_str());
    }
    let mut owner = crate::admin_client::signed_in(&t, Role::Owner).await;
    assert!(owner.get(&format!("/admin/orders/{order}")).await.body.contains("Marrowgate"));
}

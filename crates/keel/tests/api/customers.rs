use keel_testkit::{json, spawn_app, Res, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;


/// Percent-encodes a query value (emails hold `@` and maybe `+`).
fn q(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn customer(t: &TestApp, body: Value) -> Value {
    let r = t.post("/customers", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(id).collect()
}

fn assert_invalid(r: &Res, param: &str) {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{param}: {}", r.body);
    assert_eq!(r.error_param(), param, "{}", r.body);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
}

async fn delete(t: &TestApp, path: &str) -> Res {
    t.send(Method::DELETE, path, None, &[]).await
}

#[tokio::test]
async fn create_get_update_and_list_by_email() {
    let t = spawn_app().await;
    let ada = customer(
        &t,
        json!({"email": "  Ada@Example.com ", "first_name": "Ada", "last_name": "Lovelace", "phone": "+44 (20) 7946-0000",
               "password": "correct horse battery", "marketing_opt_in": true}),
    )
    .await;
    assert!(id(&ada).starts_with("cus_"));
    assert_eq!(ada["object"], "customer");
    assert_eq!(ada["kind"], "account");
    assert_eq!(ada["email"], "Ada@Example.com", "trimmed, case kept for display");
    assert_eq!(ada["first_name"], "Ada");
    assert_eq!(ada["last_name"], "Lovelace");
    assert_eq!(ada["phone"], "+44 (20) 7946-0000");
    assert_eq!(ada["marketing_opt_in"], true);
    assert_eq!(ada["version"], 1);
    assert!(ada["created_at"].as_str().unwrap().ends_with('Z'));
    for secret in ["password", "password_hash"] {
        assert!(ada.get(secret).is_none(), "{secret} must never be returned");
    }

    let guest = customer(&t, json!({"email": "grace@example.com"})).await;
    assert_eq!(guest["kind"], "guest");
    assert_eq!(guest["first_name"], Value::Null);
    assert_eq!(guest["marketing_opt_in"], false);

    let got = t.get(&format!("/customers/{}", id(&ada))).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, ada);

    // Exact lookup by email, case-insensitive, through the blind index.
    let found = t.get(&format!("/customers?email={}", q("ADA@example.COM"))).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["object"], "list");
    assert_eq!(ids(&found.body), [id(&ada)]);
    let none = t.get(&format!("/customers?email={}", q("nobody@example.com"))).await;
    assert_eq!(ids(&none.body), Vec::<String>::new());
    let all = t.get("/customers").await;
    assert_eq!(ids(&all.body), [id(&guest), id(&ada)], "newest first");

    // Update: changed fields only; "" clears an optional one.
    let path = format!("/customers/{}", id(&ada));
    let up = t.post(&path, json!({"first_name": "Augusta Ada", "phone": "", "marketing_opt_in": false})).await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_eq!(up.body["first_name"], "Augusta Ada");
    assert_eq!(up.body["last_name"], "Lovelace");
    assert_eq!(up.body["phone"], Value::Null);
    assert_eq!(up.body["marketing_opt_in"], false);
    assert_eq!(up.body["version"], 2);
    // Nothing changed: nothing written.
    let same = t.post(&path, json!({"first_name": "Augusta Ada"})).await;
    assert_eq!(same.body["version"], 2);

    // Email change: the index follows it.
    let moved = t.post(&path, json!({"email": "ada@lovelace.example"})).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["email"], "ada@lovelace.example");
    assert_eq!(moved.body["kind"], "account");
    let old = t.get(&format!("/customers?email={}", q("ada@example.com"))).await;
    assert!(ids(&old.body).is_empty());
    let new = t.get(&format!("/customers?email={}", q("Ada@Lovelace.Example"))).await;
    assert_eq!(ids(&new.body), [id(&ada)]);
    assert_eq!(t.get(&path).await.body, moved.body);
}

#[tokio::test]
async fn account_emails_are_unique_but_guests_may_share() {
    let t = spawn_app().await;
    let ada = customer(&t, json!({"email": "ada@example.com", "password": "correct horse battery"})).await;
    let dup = t.post("/customers", json!({"email": " ADA@EXAMPLE.COM", "password": "another long one"})).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    assert_eq!((dup.error_code(), dup.error_param()), ("email_taken", "email"));

    // Guests may repeat an email, also an account's.
    let g1 = customer(&t, json!({"email": "ada@example.com"})).await;
    let g2 = customer(&t, json!({"email": "Ada@Example.com", "first_name": "A."})).await;
    assert_ne!(id(&g1), id(&g2));
    let all = t.get(&format!("/customers?email={}", q("ada@example.com"))).await;
    assert_eq!(ids(&all.body), [id(&g2), id(&g1), id(&ada)]);
    let page = t.get(&format!("/customers?email={}&limit=2", q("ada@example.com"))).await;
    assert_eq!(page.body["has_more"], true);
    let rest = t.get(&format!("/customers?email={}&limit=2&starting_after={}", q("ada@example.com"), id(&g1))).await;
    assert_eq!(ids(&rest.body), [id(&ada)]);
    assert_eq!(rest.body["has_more"], false);

    // Moving another account onto a registered email is refused; guests may.
    let bob = customer(&t, json!({"email": "bob@example.com", "password": "correct horse battery"})).await;
    let clash = t.post(&format!("/customers/{}", id(&bob)), json!({"email": "Ada@example.com"})).await;
    assert_eq!((clash.status, clash.error_code(), clash.error_param()), (StatusCode::CONFLICT, "email_taken", "email"));
    assert_eq!(t.get(&format!("/customers/{}", id(&bob))).await.body["email"], "bob@example.com");
    let g = t.post(&format!("/customers/{}", id(&g1)), json!({"email": "bob@example.com"})).await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.body);
    // An account may change the case of its own email.
    let own = t.post(&format!("/customers/{}", id(&ada)), json!({"email": "ADA@example.com"})).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["email"], "ADA@example.com");
}

#[tokio::test]
async fn concurrent_signups_with_one_email_make_one_account() {
    let t = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (http, url, key) = (t.http.clone(), t.url("/customers"), t.key.clone());
        let body = json!({"email": if i % 2 == 0 { "race@example.com" } else { "RACE@example.com" }, "password": "correct horse battery"});
        tasks.push(tokio::spawn(async move {
            let r = http.post(url).bearer_auth(key).json(&body).send().await.unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            (status, body["error"]["code"].as_str().unwrap_or("").to_owned())
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let created = outcomes.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let taken = outcomes.iter().filter(|(s, c)| *s == StatusCode::CONFLICT && c == "email_taken").count();
    assert_eq!((created, taken), (1, 5), "{outcomes:?}");
    let all = t.get(&format!("/customers?email={}", q("race@example.com"))).await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let t = spawn_app().await;
    let long = |n: usize| "x".repeat(n);
    let cases = [
        (json!({}), "email"),
        (json!({"email": ""}), "email"),
        (json!({"email": "   "}), "email"),
        (json!({"email": "ada"}), "email"),
        (json!({"email": "ada@example"}), "email"),
        (json!({"email": "@example.com"}), "email"),
        (json!({"email": "a@b@example.com"}), "email"),
        (json!({"email": "ada lovelace@example.com"}), "email"),
        (json!({"email": format!("{}@example.com", long(250))}), "email"),
        (json!({"email": 42}), "email"),
        (json!({"email": "a@example.com", "first_name": long(101)}), "first_name"),
        (json!({"email": "a@example.com", "last_name": long(101)}), "last_name"),
        (json!({"email": "a@example.com", "phone": "call me maybe"}), "phone"),
        (json!({"email": "a@example.com", "phone": "1".repeat(33)}), "phone"),
        (json!({"email": "a@example.com", "password": "too short"}), "password"),
        (json!({"email": "a@example.com", "password": long(257)}), "password"),
        (json!({"email": "a@example.com", "password": long(10)}), "password"),
        (json!({"email": "a@example.com", "password": "Password1234"}), "password"),
        (json!({"email": "a@example.com", "marketing_opt_in": "yes"}), "marketing_opt_in"),
        (json!({"email": "a@example.com", "password_hash": "$argon2id$…"}), "password_hash"),
    ];
    for (body, param) in cases {
        let r = t.post("/customers", body.clone()).await;
        assert_invalid(&r, param);
    }
    let ok = customer(&t, json!({"email": "a@example.com", "first_name": long(100), "password": "Xq7#mP2v!L"})).await;
    assert_eq!(ok["kind"], "account");
    let path = format!("/customers/{}", id(&ok));
    assert_invalid(&t.post(&path, json!({"email": "nope"})).await, "email");
    assert_invalid(&t.post(&path, json!({"last_name": long(101)})).await, "last_name");
    assert_invalid(&t.post(&path, json!({"phone": "+1 abc"})).await, "phone");
    assert_invalid(&t.post(&path, json!({"password": long(20)})).await, "password");
    assert_invalid(&t.get("/customers?limit=0").await, "limit");
    assert_invalid(&t.get("/customers?starting_after=prod_x").await, "starting_after");
    assert_invalid(&t.get("/customers?email=").await, "email");

    let addr = format!("{path}/addresses");
    let base = json!({"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London", "country": "GB"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("name", json!("")), "name"),
        (with("name", json!(long(101))), "name"),
        (with("line1", json!(" ")), "line1"),
        (with("line1", json!(long(201))), "line1"),
        (with("line2", json!(long(201))), "line2"),
        (with("city", json!(long(101))), "city"),
        (with("region", json!(long(101))), "region"),
        (with("postal_code", json!(long(21))), "postal_code"),
        (with("country", json!("GBR")), "country"),
        (with("phone", json!("phone")), "phone"),
        (with("is_default_shipping", json!("yes")), "is_default_shipping"),
        (json!({"line1": "1 Main St", "city": "X", "country": "US"}), "name"),
    ];
    for (body, param) in cases {
        assert_invalid(&t.post(&addr, body).await, param);
    }
    let a = t.post(&addr, base.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let apath = format!("{addr}/{}", id(&a.body));
    assert_invalid(&t.post(&apath, json!({"city": ""})).await, "city");
    assert_invalid(&t.post(&apath, json!({"postal_code": long(21)})).await, "postal_code");
    assert_invalid(&t.post(&apath, json!({"country": "X1"})).await, "country");
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let t = spawn_app().await;
    let c = customer(&t, json!({"email": "ada@example.com"})).await;
    let missing = "cus_0190f0d3a1b27c4e8f3a5b6c7d8e9f00";
    for path in [
        format!("/customers/{missing}"),
        "/customers/prod_0190f0d3a1b27c4e8f3a5b6c7d8e9f00".to_owned(),
        "/customers/nonsense".to_owned(),
        format!("/customers/{missing}/addresses"),
        format!("/customers/{}/addresses/addr_0190f0d3a1b27c4e8f3a5b6c7d8e9f00", id(&c)),
        format!("/customers/{}/addresses/nonsense", id(&c)),
    ] {
        let r = t.get(&path).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::NOT_FOUND, "resource_missing"), "{path}: {}", r.body);
    }
    let r = t.post(&format!("/customers/{missing}"), json!({"first_name": "X"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = t.post(&format!("/customers/{missing}/addresses"), json!({"name": "A", "line1": "B", "city": "C", "country": "US"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn addresses_can_be_added_listed_changed_and_removed() {
    let t = spawn_app().await;
    let c = customer(&t, json!({"email": "ada@example.com", "first_name": "Ada"})).await;
    let other = customer(&t, json!({"email": "bob@example.com"})).await;
    let base = format!("/customers/{}/addresses", id(&c));

    let home = t
        .post(
            &base,
            json!({"name": "Ada Lovelace", "line1": "12 St James's Square", "line2": "Flat 2", "city": "London",
                   "region": "Greater London", "postal_code": "SW1Y 4LB", "country": "gb", "phone": "+44 20 7946 0000"}),
        )
        .await;
    assert_eq!(home.status, StatusCode::CREATED, "{}", home.body);
    let home = home.body;
    assert!(id(&home).starts_with("addr_"));
    assert_eq!(home["object"], "customer_address");
    assert_eq!(home["customer_id"], c["id"]);
    assert_eq!(home["name"], "Ada Lovelace");
    assert_eq!(home["line1"], "12 St James's Square");
    assert_eq!(home["line2"], "Flat 2");
    assert_eq!(home["city"], "London");
    assert_eq!(home["region"], "Greater London");
    assert_eq!(home["postal_code"], "SW1Y 4LB");
    assert_eq!(home["country"], "GB");
    assert_eq!(home["phone"], "+44 20 7946 0000");
    assert_eq!(home["is_default_shipping"], true, "the first address is the default");

    let work = t.post(&base, json!({"name": "A. Lovelace", "line1": "1 Analytical Way", "city": "Paris", "country": "FR"})).await;
    assert_eq!(work.status, StatusCode::CREATED, "{}", work.body);
    let work = work.body;
    assert_eq!(work["is_default_shipping"], false);
    assert_eq!(work["line2"], Value::Null);

    let list = t.get(&base).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(ids(&list.body), [id(&work), id(&home)], "newest first");
    let page = t.get(&format!("{base}?limit=1")).await;
    assert_eq!((ids(&page.body), page.body["has_more"].clone()), (vec![id(&work)], json!(true)));
    let next = t.get(&format!("{base}?limit=1&starting_after={}", id(&work))).await;
    assert_eq!((ids(&next.body), next.body["has_more"].clone()), (vec![id(&home)], json!(false)));
    let one = t.get(&format!("{base}/{}", id(&home))).await;
    assert_eq!(one.body, home);

    // Moving the default clears it elsewhere; "" clears optional fields.
    let up = t
        .post(&format!("{base}/{}", id(&work)), json!({"is_default_shipping": true, "city": "Lyon", "line2": "", "postal_code": "69001"}))
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_eq!(up.body["is_default_shipping"], true);
    assert_eq!(up.body["city"], "Lyon");
    assert_eq!(up.body["postal_code"], "69001");
    assert_eq!(up.body["name"], "A. Lovelace");
    let home_now = t.get(&format!("{base}/{}", id(&home))).await.body;
    assert_eq!(home_now["is_default_shipping"], false);
    let cleared = t.post(&format!("{base}/{}", id(&home)), json!({"line2": "", "region": ""})).await;
    assert_eq!((cleared.body["line2"].clone(), cleared.body["region"].clone()), (Value::Null, Value::Null));
    let defaults: Vec<bool> =
        t.get(&base).await.body["data"].as_array().unwrap().iter().map(|a| a["is_default_shipping"].as_bool().unwrap()).collect();
    assert_eq!(defaults, [true, false]);
    // A new default address takes over on create too.
    let third = t.post(&base, json!({"name": "Ada", "line1": "3 Rue X", "city": "Nice", "country": "FR", "is_default_shipping": true})).await;
    assert_eq!(third.body["is_default_shipping"], true);
    assert_eq!(t.get(&format!("{base}/{}", id(&work))).await.body["is_default_shipping"], false);

    // Addresses are scoped to their customer.
    let foreign = t.get(&format!("/customers/{}/addresses/{}", id(&other), id(&home))).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let foreign = delete(&t, &format!("/customers/{}/addresses/{}", id(&other), id(&home))).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(ids(&t.get(&format!("/customers/{}/addresses", id(&other))).await.body).is_empty());

    // Removal: DELETE, or POST …/delete.
    let gone = delete(&t, &format!("{base}/{}", id(&home))).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert_eq!(gone.body, json!({"id": id(&home), "object": "customer_address", "deleted": true}));
    assert_eq!(t.get(&format!("{base}/{}", id(&home))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(delete(&t, &format!("{base}/{}", id(&home))).await.status, StatusCode::NOT_FOUND);
    let gone = t.post(&format!("{base}/{}/delete", id(&work)), json!({})).await;
    assert_eq!((gone.status, gone.body["deleted"].clone()), (StatusCode::OK, json!(true)));
    assert_eq!(ids(&t.get(&base).await.body), [id(&third.body)]);

    // The customer's version counts address changes (one aggregate).
    let v = t.get(&format!("/customers/{}", id(&c))).await.body["version"].as_i64().unwrap();
    assert_eq!(v, 1 + 3 + 2 + 2, "3 creates, 2 updates, 2 deletes");
}

#[tokio::test]
async fn passwords_verify_with_argon2id() {
    let t = spawn_app().await;
    let ada = customer(&t, json!({"email": "Ada@Example.com", "first_name": "Ada", "password": "correct horse battery"})).await;
    customer(&t, json!({"email": "guest@example.com"})).await;

    let ok = t.app.verify_customer_password(" ada@example.COM ", "correct horse battery").await.unwrap();
    let ok = ok.expect("right password verifies");
    assert_eq!(ok.id, id(&ada));
    assert_eq!(ok.first_name.as_deref(), Some("Ada"));
    assert!(t.app.verify_customer_password("ada@example.com", "correct horse battery!").await.unwrap().is_none());
    assert!(t.app.verify_customer_password("ada@example.com", "").await.unwrap().is_none());
    assert!(t.app.verify_customer_password("ada@example.com", &"x".repeat(10_000)).await.unwrap().is_none());
    assert!(t.app.verify_customer_password("nobody@example.com", "correct horse battery").await.unwrap().is_none());
    assert!(t.app.verify_customer_password("not an email", "correct horse battery").await.unwrap().is_none());
    assert!(t.app.verify_customer_password("guest@example.com", "").await.unwrap().is_none(), "guests cannot log in");

    // The email may change; the password stays with the account.
    t.ok(&format!("/customers/{}", id(&ada)), json!({"email": "ada@lovelace.example"})).await;
    assert!(t.app.verify_customer_password("ada@example.com", "correct horse battery").await.unwrap().is_none());
    assert!(t.app.verify_customer_password("ada@lovelace.example", "correct horse battery").await.unwrap().is_some());
}

#[tokio::test]
async fn guest_checkout_finds_the_account_or_reuses_the_latest_guest() {
    let t = spawn_app().await;
    let first = t.app.find_or_create_guest("New@Example.com", Some("Nina"), None).await.unwrap();
    assert_eq!(first.kind, "guest");
    assert_eq!(first.email, "New@Example.com");
    assert_eq!(first.first_name.as_deref(), Some("Nina"));
    let again = t.app.find_or_create_guest(" new@example.com", Some("Someone"), Some("Else")).await.unwrap();
    assert_eq!(again.id, first.id, "the latest guest with the email is reused");
    assert_eq!(again.first_name.as_deref(), Some("Nina"), "and not overwritten");

    let later = customer(&t, json!({"email": "new@example.com", "first_name": "Later"})).await;
    let reused = t.app.find_or_create_guest("new@example.com", None, None).await.unwrap();
    assert_eq!(reused.id, id(&later), "the newest guest wins");

    let ada = customer(&t, json!({"email": "ada@example.com", "password": "correct horse battery"})).await;
    customer(&t, json!({"email": "ada@example.com"})).await;
    let acc = t.app.find_or_create_guest("ADA@example.com", Some("X"), None).await.unwrap();
    assert_eq!((acc.id.as_str(), acc.kind.as_str()), (id(&ada).as_str(), "account"), "an account takes precedence");

    let err = t.app.find_or_create_guest("broken", None, None).await.unwrap_err();
    assert!(matches!(err, keel_app::AppError::Invalid(ref i) if i.field == "email"), "{err:?}");
    let all = t.get(&format!("/customers?email={}", q("new@example.com"))).await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 2);
}

// Personal values are chosen so they cannot occur by chance in hex ids,
// blind indexes or base64 ciphertexts (spaces, dots, long words).
const PII: [&str; 10] = [
    "Lovelace",
    "Augusta",
    "ada.lovelace@example.com",
    "ada.lovelace",
    "St James",
    "Analytical",
    "SW1Y 4LB",
    "7946 000",
    "Marylebone",
    "correct horse battery",
];

async fn pii_customer(t: &TestApp) -> (Value, Value) {
    let c = customer(
        t,
        json!({"email": "Ada.Lovelace@Example.com", "first_name": "Augusta", "last_name": "Lovelace",
               "phone": "+44 20 7946 0000", "password": "correct horse battery", "marketing_opt_in": true}),
    )
    .await;
    let path = format!("/customers/{}/addresses", id(&c));
    let a = t
        .ok(
            &path,
            json!({"name": "Augusta Lovelace", "line1": "12 St James Square", "line2": "Analytical Engine Room",
                   "city": "Marylebone", "region": "Greater Lovelace", "postal_code": "SW1Y 4LB", "country": "GB",
                   "phone": "+44 20 7946 0001"}),
        )
        .await;
    (c, a)
}

#[tokio::test]
async fn no_personal_data_in_clear_at_rest() {
    let t = spawn_app().await;
    let (c, a) = pii_customer(&t).await;
    // Second address and an update, so updates are covered too.
    t.ok(&format!("/customers/{}/addresses/{}", id(&c), id(&a)), json!({"line1": "14 St James Square"})).await;
    t.ok(&format!("/customers/{}", id(&c)), json!({"last_name": "Lovelace-King"})).await;

    let mut conn = t.app.store.reader().await.unwrap();
    let stored = keel_store::customers::stored_text(&mut conn, &id(&c)).await.unwrap();
    drop(conn);
    assert!(stored.iter().any(|s| s == &id(&a)), "the address row is read too");
    let dump = stored.join("\n");
    for p in PII {
        assert!(!dump.to_lowercase().contains(&p.to_lowercase()), "{p:?} stored in clear:\n{dump}");
    }
    assert!(dump.contains("$argon2id$"), "the password is an argon2id PHC string");
    let encrypted = stored.iter().filter(|s| s.starts_with("v1:")).count();
    assert_eq!(encrypted, 4 + 7, "email, names, phone; 7 address fields");
    assert!(stored.iter().any(|s| s == "GB"), "the country is kept in clear");
    // The blind index is a keyed hash, not the email.
    assert!(stored.iter().any(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())));

    // On SQLite, nothing in the database files either (tables, indexes, WAL).
    if let keel_app::Location::SqliteFile(path) = &t.db.location {
        let dir = path.parent().unwrap();
        let mut scanned = 0;
        let mut control = false;
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("keel.db") {
                continue;
            }
            let bytes = std::fs::read(entry.path()).unwrap();
            scanned += bytes.len();
            // Positive control: the scan does see live rows (ids are in clear).
            control |= contains(&bytes, id(&a).as_bytes());
            for p in PII {
                assert!(!contains(&bytes, p.as_bytes()), "{p:?} found in clear in {name}");
            }
        }
        assert!(scanned > 0 && control, "the database files were not scanned");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let lower: Vec<u8> = hay.iter().map(u8::to_ascii_lowercase).collect();
    let needle: Vec<u8> = needle.iter().map(u8::to_ascii_lowercase).collect();
    lower.windows(needle.len()).any(|w| w == needle.as_slice())
}

#[tokio::test]
async fn events_carry_ids_and_field_names_but_no_personal_data() {
    let t = spawn_app().await;
    let (c, a) = pii_customer(&t).await;
    let cid = id(&c);
    t.ok(&format!("/customers/{cid}"), json!({"first_name": "Ada", "phone": "+44 20 7946 9999", "marketing_opt_in": false})).await;
    t.ok(&format!("/customers/{cid}/addresses/{}", id(&a)), json!({"line1": "1 Lovelace Road", "country": "IE"})).await;
    t.ok(&format!("/customers/{cid}/addresses/{}/delete", id(&a)), json!({})).await;
    t.app.find_or_create_guest("guest.lovelace@example.com", Some("Augusta"), None).await.unwrap();

    let events = t.events("type=customer.*&limit=100", 6).await;
    let list = events["data"].as_array().unwrap();
    let types: Vec<&str> = list.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "customer.address_created",
            "customer.updated",
            "customer.address_updated",
            "customer.address_deleted",
            "customer.created"
        ]
    );
    let seqs: Vec<i64> = list[..5].iter().map(|e| e["aggregate_seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "one aggregate, one sequence");
    assert!(list[..5].iter().all(|e| e["aggregate_type"] == "customer" && e["aggregate_id"] == cid.as_str()));

    let created = &list[0]["data"];
    assert_eq!(created["object"]["id"], cid.as_str());
    assert_eq!(created["object"]["kind"], "account");
    let updated = &list[2]["data"];
    assert_eq!(updated["changed"], json!(["first_name", "phone", "marketing_opt_in"]));
    let addr = &list[3]["data"];
    assert_eq!(addr["object"]["id"], a["id"]);
    assert_eq!(addr["object"]["country"], "IE");
    assert_eq!(addr["changed"], json!(["line1", "country"]));
    assert_eq!(list[5]["data"]["object"]["kind"], "guest");

    let text = serde_json::to_string(&events).unwrap().to_lowercase();
    for p in PII.iter().chain(["+44", "7946 9999", "guest.lovelace", "lovelace road"].iter()) {
        assert!(!text.contains(&p.to_lowercase()), "{p:?} leaked into events: {text}");
    }
}

#[tokio::test]
async fn openapi_lists_the_customer_paths() {
    let t = spawn_app().await;
    let doc = t.get("/openapi.json").await.body;
    for path in [
        "/customers",
        "/customers/{id}",
        "/customers/{id}/addresses",
        "/customers/{id}/addresses/{address_id}",
        "/customers/{id}/addresses/{address_id}/delete",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from OpenAPI");
    }
    assert!(doc["paths"]["/customers/{id}/addresses/{address_id}"].get("delete").is_some());
    let schema = doc["components"]["schemas"]["CustomerView"]["properties"].as_object().unwrap();
    assert!(!schema.contains_key("password_hash"));
}

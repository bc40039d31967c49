//! The storefront's shopping half over real HTTP, as a browser without
//! JavaScript would use it: forms, redirects and one session cookie,
//! handled by hand so every `Set-Cookie` is visible to the test.

use keel_testkit::{json, spawn_app, TestApp};
use reqwest::header::{HeaderMap, CACHE_CONTROL, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;

/// A shop with one location, a US shipping method, a 10 % US tax and a
/// two-variant product; returns the app, the location and the variant ids
/// (`TEE-M`, `TEE-L`).
async fn shop(stock_m: i64) -> (TestApp, String, String, String) {
    let t = spawn_app().await;
    let loc = t.location("Main", 1).await;
    let variants: Vec<Value> = ["M", "L"]
        .iter()
        .map(|size| json!({"sku": format!("TEE-{size}"), "options": {"Size": size}, "prices": [{"currency": "USD", "amount": 2500}]}))
        .collect();
    let product = t.ok("/products", json!({"title": "Everyday Tee", "status": "active", "variants": variants})).await;
    if stock_m > 0 {
        t.receive("TEE-M", &loc, stock_m).await;
    }
    t.receive("TEE-L", &loc, 5).await;
    t.ok("/shipping-methods", json!({"name": "Standard", "currency": "USD", "amount": 500, "countries": ["US"]})).await;
    t.ok("/tax-rates", json!({"country": "US", "rate_bps": 1000})).await;
    let id = |sku: &str| {
        product["variants"].as_array().unwrap().iter().find(|v| v["sku"] == sku).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let (m, l) = (id("TEE-M"), id("TEE-L"));
    (t, loc, m, l)
}

/// One browser: a cookie jar of one cookie, no automatic redirects, and an
/// `Origin` header on POSTs like a real browser's same-origin form.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn set_cookie(&self) -> Option<String> {
        self.headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    fn cache_control(&self) -> &str {
        self.headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The first CSRF token on the page.
    fn csrf(&self) -> String {
        between(&self.body, "name=\"csrf\" value=\"", "\"").unwrap_or_else(|| panic!("no csrf token in {}", self.body))
    }
}

fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(s[from..from + len].to_owned())
}

impl Browser {
    fn new(t: &TestApp) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, base: t.base.clone(), cookie: None }
    }

    fn session_token(&self) -> Option<String> {
        self.cookie.as_deref().and_then(|c| c.strip_prefix("keel_session=")).map(str::to_owned)
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let res = req.send().await.expect("request");
        let page = Page { status: res.status(), headers: res.headers().clone(), body: res.text().await.unwrap() };
        if let Some(sc) = page.set_cookie() {
            let pair = sc.split(';').next().unwrap().trim().to_owned();
            self.cookie = if sc.contains("Max-Age=0") { None } else { Some(pair) };
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_with(path, fields, &[("origin", &origin)]).await
    }

    async fn post_with(&mut self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(fields);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// Adds a variant from the product page's form (no token).
    async fn add(&mut self, variant_id: &str, quantity: &str) -> Page {
        self.post("/cart/lines", &[("variant_id", variant_id), ("quantity", quantity)]).await
    }

    /// Fills in contact and address and saves them.
    async fn details(&mut self, email: &str) -> Page {
        let csrf = self.get("/checkout").await.csrf();
        let fields = [
            ("csrf", csrf.as_str()),
            ("email", email),
            ("name", "Ada Lovelace"),
            ("line1", "1 Main St"),
            ("line2", ""),
            ("city", "Springfield"),
            ("region", "IL"),
            ("postal_code", "62701"),
            ("country", "US"),
        ];
        self.post("/checkout/details", &fields).await
    }

    /// Places the order with the form as the checkout page shows it.
    async fn pay(&mut self, token: &str) -> Page {
        let page = self.get("/checkout").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let version = between(&page.body, "name=\"cart_version\" value=\"", "\"").expect("the payment form is shown");
        self.post("/checkout/complete", &[("csrf", &page.csrf()), ("cart_version", &version), ("payment_method", token)]).await
    }
}

fn levels(v: &Value) -> (i64, i64, i64) {
    (v["on_hand"].as_i64().unwrap(), v["reserved"].as_i64().unwrap(), v["available"].as_i64().unwrap())
}

#[tokio::test]
async fn a_shopper_adds_to_cart_checks_out_and_sees_the_confirmation() {
    let (t, loc, tee_m, tee_l) = shop(10).await;
    let mut b = Browser::new(&t);

    // Browsing sets no cookie; adding to the cart creates the session.
    assert!(b.get("/cart").await.set_cookie().is_none());
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM storefront_sessions").await, 0);
    let added = b.add(&tee_m, "2").await;
    assert_eq!((added.status, added.location()), (StatusCode::SEE_OTHER, "/cart"), "{}", added.body);
    let cookie = added.set_cookie().expect("a session cookie");
    assert!(cookie.starts_with("keel_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: no Secure flag");
    // Only the token's hash is stored.
    let token = b.session_token().unwrap();
    assert_eq!(t.db.scalar(&format!("SELECT COUNT(*) FROM storefront_sessions WHERE id = '{token}'")).await, 0);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM storefront_sessions").await, 1);

    // The same variant again adds to its line; another variant is a new line.
    b.add(&tee_m, "1").await;
    b.add(&tee_l, "").await;
    let cart = b.get("/cart").await;
    assert_eq!(cart.status, StatusCode::OK);
    assert_eq!(cart.cache_control(), "private, no-store");
    assert!(cart.body.contains("Everyday Tee"), "{}", cart.body);
    assert!(cart.body.contains("value=\"3\""), "quantities merge: {}", cart.body);
    assert!(cart.body.contains("href=\"/checkout\""));
    // Change the first line's quantity and remove the second, by their forms.
    let line = between(&cart.body, "action=\"/cart/lines/", "\"").unwrap();
    let r = b.post(&format!("/cart/lines/{line}"), &[("csrf", &cart.csrf()), ("quantity", "2")]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/cart"));
    let cart = b.get("/cart").await;
    let lines: Vec<&str> = cart.body.match_indices("action=\"/cart/lines/").map(|(i, _)| &cart.body[i + 20..i + 20 + 36]).collect();
    let other = lines.iter().find(|l| **l != line).unwrap();
    let r = b.post(&format!("/cart/lines/{other}/remove"), &[("csrf", &cart.csrf())]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cart = b.get("/cart").await;
    assert!(cart.body.contains("$50.00"), "2 × $25.00: {}", cart.body);
    assert!(!cart.body.contains("TEE-L"));

    // Checkout: details, then the shipping method is preselected, then pay.
    let r = b.details("Ada@Example.com").await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/checkout#shipping"), "{}", r.body);
    let page = b.get("/checkout").await;
    assert_eq!(page.cache_control(), "private, no-store");
    assert!(page.body.contains("Standard — $5.00"));
    assert!(page.body.contains("value=\"tok_visa\" checked"), "visa preselected");
    // $50 + $5 shipping + 10 % tax = $60.50
    assert!(page.body.contains("$60.50"), "{}", page.body);
    let placed = b.pay("tok_visa").await;
    assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.body);
    let confirmation_url = placed.location().to_owned();
    assert!(confirmation_url.starts_with("/orders/ord_") && confirmation_url.ends_with("/confirmation"), "{confirmation_url}");

    let confirmation = b.get(&confirmation_url).await;
    assert_eq!(confirmation.status, StatusCode::OK);
    assert_eq!(confirmation.cache_control(), "private, no-store");
    for text in ["order 1001 is confirmed", "ada@example.com", "Ada Lovelace", "1 Main St", "$60.50", "What happens next", "Everyday Tee"] {
        assert!(confirmation.body.contains(text), "{text} missing: {}", confirmation.body);
    }
    let order_id = confirmation_url.trim_start_matches("/orders/").trim_end_matches("/confirmation").to_owned();
    let order = t.get(&format!("/orders/{order_id}")).await.body;
    assert_eq!((order["status"].as_str(), order["totals"]["total"].as_i64()), (Some("paid"), Some(6050)));
    assert_eq!(order["customer_id"], Value::Null, "a guest order");
    assert_eq!(levels(&t.level("TEE-M", &loc).await), (10, 2, 8), "the order holds its stock");

    // The status page works for the same session, with a timeline.
    let status = b.get(&format!("/orders/{order_id}")).await;
    assert!(status.body.contains("Order placed") && status.body.contains("Payment received"), "{}", status.body);

    // Submitting again (back button, double click) lands on the same order.
    let again = b.post("/checkout/complete", &[("csrf", &page.csrf()), ("payment_method", "tok_visa")]).await;
    assert_eq!((again.status, again.location()), (StatusCode::SEE_OTHER, confirmation_url.as_str()));
    assert_eq!(b.get("/checkout").await.location(), confirmation_url);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM orders").await, 1);

    // Another browser cannot see the order.
    let mut stranger = Browser::new(&t);
    assert_eq!(stranger.get(&confirmation_url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(stranger.get(&format!("/orders/{order_id}")).await.status, StatusCode::NOT_FOUND);

    // The next add starts a fresh cart.
    b.add(&tee_l, "1").await;
    let cart = b.get("/cart").await;
    assert!(cart.body.contains("TEE-L") && !cart.body.contains("TEE-M"), "{}", cart.body);
    t.assert_consistent().await;
}

#[tokio::test]
async fn a_declined_card_shows_the_error_and_keeps_the_cart_and_stock() {
    let (t, loc, tee_m, _) = shop(3).await;
    let mut b = Browser::new(&t);
    b.add(&tee_m, "2").await;
    b.details("ada@example.com").await;
    let before = levels(&t.level("TEE-M", &loc).await);
    for (token, words) in [("tok_chargeDeclined", "Your card was declined"), ("tok_chargeDeclinedInsufficientFunds", "insufficient funds")] {
        let r = b.pay(token).await;
        assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
        assert!(r.body.contains(words), "{words}: {}", r.body);
        assert!(r.body.contains("There is a problem") && r.body.contains("href=\"#f-payment_method\""), "{}", r.body);
        assert!(r.body.contains("aria-describedby=\"payment-hint f-payment_method-error\""));
        assert!(r.body.contains(&format!("value=\"{token}\" checked")), "the choice is kept");
        assert_eq!(levels(&t.level("TEE-M", &loc).await), before, "stock exactly as before");
        assert!(b.get("/cart").await.body.contains("TEE-M"), "the cart is kept");
    }
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM orders").await, 0);
    let r = b.pay("tok_visa").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM orders").await, 1);
    t.assert_consistent().await;
}

#[tokio::test]
async fn not_enough_stock_is_explained_on_the_checkout_page() {
    let (t, loc, tee_m, _) = shop(1).await;
    let mut b = Browser::new(&t);
    b.add(&tee_m, "2").await;
    b.details("ada@example.com").await;
    let r = b.pay("tok_visa").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("enough Everyday Tee"), "{}", r.body);
    assert!(r.body.contains("href=\"/cart\""));
    assert_eq!(levels(&t.level("TEE-M", &loc).await), (1, 0, 1));
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM orders").await, 0);
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let (t, _, tee_m, _) = shop(5).await;
    let mut b = Browser::new(&t);
    let form = [("variant_id", tee_m.as_str()), ("quantity", "1")];
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("sec-fetch-site", "cross-site"), ("origin", t.base.as_str())],
        vec![("origin", "null")],
        vec![],
    ] {
        let r = b.post_with("/cart/lines", &form, &headers).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(r.set_cookie().is_none());
    }
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM storefront_sessions").await, 0);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM carts").await, 0);
    // Sec-Fetch-Site alone is enough proof, as a browser sends it.
    let r = b.post_with("/cart/lines", &form, &[("sec-fetch-site", "same-origin")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A token-carrying form from another site is refused even with the token.
    let cart = b.get("/cart").await;
    let line = between(&cart.body, "action=\"/cart/lines/", "\"").unwrap();
    let r = b.post_with(&format!("/cart/lines/{line}"), &[("csrf", &cart.csrf()), ("quantity", "7")], &[("origin", "https://evil.example")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!b.get("/cart").await.body.contains("value=\"7\""));
}

#[tokio::test]
async fn forms_need_the_session_csrf_token() {
    let (t, _, tee_m, _) = shop(5).await;
    let mut b = Browser::new(&t);
    b.add(&tee_m, "1").await;
    let cart = b.get("/cart").await;
    let line = between(&cart.body, "action=\"/cart/lines/", "\"").unwrap();
    let other_session = {
        let mut o = Browser::new(&t);
        o.add(&tee_m, "1").await;
        o.get("/cart").await.csrf()
    };
    for token in [None, Some("forged"), Some(other_session.as_str())] {
        let mut fields = vec![("quantity", "9")];
        if let Some(tok) = token {
            fields.push(("csrf", tok));
        }
        let r = b.post(&format!("/cart/lines/{line}"), &fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{token:?}");
        assert!(r.body.contains("This form has expired"));
        let r = b.post(&format!("/cart/lines/{line}/remove"), &fields[1..]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // The add-to-cart form may omit a token, but a wrong one is refused.
        if let Some(token) = token {
            let r = b.post("/cart/lines", &[("variant_id", tee_m.as_str()), ("quantity", "1"), ("csrf", token)]).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN);
        }
    }
    let after = b.get("/cart").await;
    assert!(after.body.contains("value=\"1\"") && !after.body.contains("value=\"9\""), "nothing changed");
    let r = b.post("/checkout/details", &[("email", "ada@example.com")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post("/checkout/complete", &[("csrf", "x"), ("payment_method", "tok_visa")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Every token a session is shown verifies, however many pages it saw.
    let r = b.post(&format!("/cart/lines/{line}"), &[("csrf", &cart.csrf()), ("quantity", "4")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn accounts_sign_in_with_a_new_session_and_list_their_orders() {
    let (t, _, tee_m, _) = shop(5).await;
    let mut b = Browser::new(&t);
    assert_eq!(b.get("/account").await.location(), "/account/login");

    // A cart first, then register: the cart comes along.
    b.add(&tee_m, "1").await;
    let guest_token = b.session_token().unwrap();
    let form = b.get("/account/register").await;
    assert_eq!(form.cache_control(), "private, no-store");
    for (label, attr) in [("First name", "given-name"), ("Email address", "email"), ("Password", "new-password")] {
        assert!(form.body.contains(label) && form.body.contains(&format!("autocomplete=\"{attr}\"")), "{label}");
    }
    let short = b.post("/account/register", &[("csrf", &form.csrf()), ("first_name", "Ada"), ("email", "ada@example.com"), ("password", "short")]).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("at least 10 characters") && short.body.contains("aria-describedby=\"f-password-hint f-password-error\""));
    assert!(short.body.contains("value=\"ada@example.com\""), "values kept");
    let r = b
        .post("/account/register", &[("csrf", &short.csrf()), ("first_name", "Ada"), ("last_name", "Lovelace"), ("email", "Ada@Example.com"), ("password", "correct horse battery")])
        .await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/account"), "{}", r.body);
    let member_token = b.session_token().unwrap();
    assert_ne!(member_token, guest_token, "a new session on sign-in");
    let mut old = Browser::new(&t);
    old.cookie = Some(format!("keel_session={guest_token}"));
    assert_eq!(old.get("/account").await.location(), "/account/login", "the old token is dead");
    assert!(!old.get("/cart").await.body.contains("TEE-M"));
    assert!(b.get("/cart").await.body.contains("TEE-M"), "the cart came along");

    // An order placed while signed in is the customer's and is listed.
    b.details("ada@example.com").await;
    let placed = b.pay("tok_visa").await;
    let order_id = placed.location().trim_start_matches("/orders/").trim_end_matches("/confirmation").to_owned();
    let customer = t.get("/customers?email=ada@example.com").await.body["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(t.get(&format!("/orders/{order_id}")).await.body["customer_id"].as_str(), Some(customer.as_str()));
    let account = b.get("/account").await;
    assert_eq!(account.cache_control(), "private, no-store");
    assert!(account.body.contains("Ada Lovelace") && account.body.contains("Order 1001"), "{}", account.body);
    assert!(account.body.contains(&format!("href=\"/orders/{order_id}\"")));

    // Sign out: the cookie is cleared and the session is gone.
    let r = b.post("/account/logout", &[("csrf", &account.csrf())]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/"));
    assert!(r.set_cookie().unwrap().contains("Max-Age=0"));
    assert!(b.cookie.is_none());
    let mut replay = Browser::new(&t);
    replay.cookie = Some(format!("keel_session={member_token}"));
    assert_eq!(replay.get("/account").await.location(), "/account/login");

    // Wrong password and unknown email get the same answer.
    let form = b.get("/account/login").await;
    let wrong = b.post("/account/login", &[("csrf", &form.csrf()), ("email", "ada@example.com"), ("password", "not the password")]).await;
    let unknown = b.post("/account/login", &[("csrf", &form.csrf()), ("email", "nobody@example.com"), ("password", "not the password")]).await;
    assert_eq!((wrong.status, unknown.status), (StatusCode::UNPROCESSABLE_ENTITY, StatusCode::UNPROCESSABLE_ENTITY));
    let message = "The email address or password is incorrect";
    assert!(wrong.body.contains(message) && unknown.body.contains(message));
    let before = b.session_token().unwrap();
    let r = b.post("/account/login", &[("csrf", &form.csrf()), ("email", "ADA@example.com"), ("password", "correct horse battery")]).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/account"));
    assert_ne!(b.session_token().unwrap(), before, "login rotates the session");
    assert!(b.get("/account").await.body.contains("Order 1001"));
    // The owner sees the status page from the new session.
    assert_eq!(b.get(&format!("/orders/{order_id}")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn order_lookup_does_not_tell_a_wrong_email_from_a_wrong_number() {
    let (t, _, tee_m, _) = shop(5).await;
    let mut buyer = Browser::new(&t);
    buyer.add(&tee_m, "1").await;
    buyer.details("ada@example.com").await;
    let placed = buyer.pay("tok_visa").await;
    let order_id = placed.location().trim_start_matches("/orders/").trim_end_matches("/confirmation").to_owned();

    let mut b = Browser::new(&t);
    let form = b.get("/orders/lookup").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("Order number") && form.body.contains("Email address"));
    let csrf = form.csrf();
    let wrong_email = b.post("/orders/lookup", &[("csrf", &csrf), ("number", "1001"), ("email", "eve@example.com")]).await;
    let wrong_number = b.post("/orders/lookup", &[("csrf", &csrf), ("number", "1002"), ("email", "ada@example.com")]).await;
    assert_eq!((wrong_email.status, wrong_number.status), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    let strip = |p: &Page| {
        let body = p.body.replace(&p.csrf(), "");
        body.replace("eve@example.com", "").replace("ada@example.com", "").replace("1001", "").replace("1002", "")
    };
    assert_eq!(strip(&wrong_email), strip(&wrong_number), "the same answer");
    assert!(wrong_email.body.contains("could not find an order"));
    assert_eq!(b.get(&format!("/orders/{order_id}")).await.status, StatusCode::NOT_FOUND);

    let found = b.post("/orders/lookup", &[("csrf", &csrf), ("number", "#1001"), ("email", " ADA@example.com ")]).await;
    assert_eq!((found.status, found.location()), (StatusCode::SEE_OTHER, format!("/orders/{order_id}").as_str()));
    let status = b.get(&format!("/orders/{order_id}")).await;
    assert_eq!(status.status, StatusCode::OK);
    assert_eq!(status.cache_control(), "private, no-store");
    assert!(status.body.contains("Order 1001") && status.body.contains("Timeline") && status.body.contains("<time datetime="), "{}", status.body);
    assert!(!status.body.contains("Expected delivery"), "no ETA is known yet");
    // A lookup shows the status, not the confirmation.
    assert_eq!(b.get(&format!("/orders/{order_id}/confirmation")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validation_errors_name_the_field_and_are_tied_to_it() {
    let (t, _, tee_m, _) = shop(5).await;
    let mut b = Browser::new(&t);
    b.add(&tee_m, "1").await;
    let csrf = b.get("/checkout").await.csrf();
    let r = b
        .post("/checkout/details", &[("csrf", &csrf), ("email", "not-an-email"), ("name", "Ada Lovelace"), ("line1", "1 Main St"), ("city", ""), ("postal_code", "62701"), ("country", "US")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = &r.body;
    assert!(body.contains("id=\"error-summary-title\" tabindex=\"-1\" autofocus"), "the summary takes focus");
    assert!(body.contains("<a href=\"#f-email\">Enter an email address like name@example.com</a>"), "{body}");
    assert!(body.contains("<a href=\"#f-city\">Enter your town or city</a>"));
    assert!(body.contains("id=\"f-email\" name=\"email\" type=\"email\" value=\"not-an-email\" autocomplete=\"email\" required aria-invalid=\"true\" aria-describedby=\"f-email-hint f-email-error\""), "{body}");
    assert!(body.contains("id=\"f-city-error\""));
    assert!(body.contains("aria-invalid=\"true\" aria-describedby=\"f-city-error\""));
    assert!(body.contains("value=\"Ada Lovelace\""), "values are kept");
    for attr in ["name", "address-line1", "address-level2", "postal-code", "country"] {
        assert!(body.contains(&format!("autocomplete=\"{attr}\"")), "{attr}");
    }
    assert!(!body.contains("tabindex=\"1\""), "no positive tabindex");
    assert!(!body.contains("id=\"payment\""), "no payment before an address");
    // A value the use case refuses is reported on its field too.
    let long = "x".repeat(300);
    let r = b
        .post("/checkout/details", &[("csrf", &csrf), ("email", "ada@example.com"), ("name", "Ada"), ("line1", &long), ("city", "Springfield"), ("postal_code", "62701"), ("country", "US")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("<a href=\"#f-line1\">Address line 1 must be at most 200 characters</a>"), "{}", r.body);
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM carts WHERE shipping_address_enc IS NOT NULL").await, 0, "nothing saved");
}

// ------------------------------------------------------------ throttling ---

async fn customer_account(t: &TestApp, email: &str) {
    let input = keel_app::customers::NewCustomer {
        email: email.into(),
        first_name: Some("Ada".into()),
        last_name: None,
        phone: None,
        password: Some("correct horse battery".into()),
        marketing_opt_in: None,
    };
    t.app.create_customer(&keel_app::Actor("test".into()), input).await.unwrap();
}

fn retry_after(p: &Page) -> u64 {
    p.headers.get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn customer_sign_in_slows_down_then_refuses_even_the_right_password() {
    let t = spawn_app().await;
    customer_account(&t, "ada@example.com").await;
    let mut b = Browser::new(&t);
    let csrf = b.get("/account/login").await.csrf();
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let r = b.post("/account/login", &[("csrf", &csrf), ("email", "ada@example.com"), ("password", "not the password")]).await;
        statuses.push(r.status);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry_after(&r) >= 1);
            assert!(r.body.contains("Too many attempts"), "{}", r.body);
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY).count(), 3, "{statuses:?}");
    let r = b.post("/account/login", &[("csrf", &csrf), ("email", "ada@example.com"), ("password", "correct horse battery")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the right password waits too");
    assert!(b.get("/account").await.location().ends_with("/account/login"), "not signed in");
}

#[tokio::test]
async fn customer_accounts_lock_after_ten_failures_and_registration_is_throttled() {
    let t = spawn_app().await;
    customer_account(&t, "ada@example.com").await;
    let mut at = keel_domain::time::now_micros();
    for _ in 0..10 {
        at += 61_000_000;
        assert!(t.app.customer_sign_in("ada@example.com", "not the password", "192.0.2.3", at).await.unwrap().is_none());
    }
    match t.app.customer_sign_in("ada@example.com", "correct horse battery", "198.51.100.3", at + 61_000_000).await {
        Err(keel_app::AppError::TooManyAttempts { retry_after_secs }) => assert!(retry_after_secs > 800),
        other => panic!("expected the lock, got {:?}", other.map(|c| c.map(|c| c.id))),
    }
    // No plain email is kept in the counters: the key is a blind index.
    assert_eq!(t.db.scalar("SELECT COUNT(*) FROM login_failures WHERE key LIKE '%ada%'").await, 0);

    // Registration counts every attempt per address; over the limit, the 429 page.
    let mut b = Browser::new(&t);
    let csrf = b.get("/account/register").await.csrf();
    let fields = |email: &'static str| [("first_name", "Bo"), ("email", email), ("password", "correct horse battery")];
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend(fields("bo@example.com"));
    let r = b.post("/account/register", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(t.db.scalar("SELECT failures FROM login_failures WHERE scope = 'register_ip'").await, 1);
    let until = keel_domain::time::now_micros() + 900_000_000;
    t.db.execute_raw(&format!("UPDATE login_failures SET failures = 100, locked_until = {until} WHERE scope = 'register_ip'")).await;
    let mut b = Browser::new(&t);
    let csrf = b.get("/account/register").await.csrf();
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend(fields("cy@example.com"));
    let r = b.post("/account/register", &form).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&r) > 800);
}

#[tokio::test]
async fn order_lookups_are_throttled_and_hide_the_address_until_the_postal_code() {
    let (t, _, tee_m, _) = shop(5).await;
    let mut buyer = Browser::new(&t);
    buyer.add(&tee_m, "1").await;
    buyer.details("ada@example.com").await;
    let placed = buyer.pay("tok_visa").await;
    let order_id = placed.location().trim_start_matches("/orders/").trim_end_matches("/confirmation").to_owned();
    // The session that placed it sees everything.
    let own = buyer.get(&format!("/orders/{order_id}")).await;
    assert!(own.body.contains("1 Main St") && own.body.contains("Ada Lovelace"), "{}", own.body);

    // Walking the numbers with the victim's email stops after a few misses.
    let mut eve = Browser::new(&t);
    let csrf = eve.get("/orders/lookup").await.csrf();
    let mut answers = Vec::new();
    for n in 1002..1027 {
        let number = n.to_string();
        answers.push(eve.post("/orders/lookup", &[("csrf", &csrf), ("number", &number), ("email", "ada@example.com")]).await.status);
    }
    assert_eq!(answers.iter().filter(|s| **s == StatusCode::NOT_FOUND).count(), 3, "{answers:?}");
    let r = eve.post("/orders/lookup", &[("csrf", &csrf), ("number", "1001"), ("email", "ada@example.com")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&r) >= 1);

    // A lookup (another browser and email count) opens the status without the address.
    t.db.execute_raw("DELETE FROM login_failures").await;
    let mut b = Browser::new(&t);
    let csrf = b.get("/orders/lookup").await.csrf();
    let found = b.post("/orders/lookup", &[("csrf", &csrf), ("number", "1001"), ("email", "ada@example.com")]).await;
    assert_eq!(found.status, StatusCode::SEE_OTHER);
    let status = b.get(&format!("/orders/{order_id}")).await;
    assert_eq!(status.status, StatusCode::OK);
    assert!(status.body.contains("Order 1001"));
    assert!(!status.body.contains("1 Main St") && !status.body.contains("Ada Lovelace") && !status.body.contains("62701"), "{}", status.body);
    assert!(status.body.contains("name=\"postal_code\""));
    let path = format!("/orders/{order_id}/verify");
    let wrong = b.post(&path, &[("csrf", &status.csrf()), ("postal_code", "10001")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!wrong.body.contains("1 Main St"));
    let right = b.post(&path, &[("csrf", &status.csrf()), ("postal_code", " 62701 ")]).await;
    assert_eq!((right.status, right.location()), (StatusCode::SEE_OTHER, format!("/orders/{order_id}").as_str()));
    let shown = b.get(&format!("/orders/{order_id}")).await;
    assert!(shown.body.contains("1 Main St") && shown.body.contains("Ada Lovelace"), "{}", shown.body);
    // Without a lookup, the proof form is a 404 like the order.
    let mut stranger = Browser::new(&t);
    let csrf = stranger.get("/orders/lookup").await.csrf();
    assert_eq!(stranger.post(&path, &[("csrf", &csrf), ("postal_code", "62701")]).await.status, StatusCode::NOT_FOUND);
}

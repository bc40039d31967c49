//! Checkout on one page in three short forms, each a POST answered with a
//! redirect: contact and address (`/checkout/details`), shipping method
//! (`/checkout/shipping`, chosen automatically when the address is saved),
//! and payment (`/checkout/complete`). Later sections appear once the
//! earlier ones are saved; everything works without JavaScript.

use super::cart::{cart_totals, failed, line_rows, open_cart, LineRow, TotalsRows};
use super::form::{self, Errors, Field, FormData, Problem};
use super::session::Visitor;
use super::{csrf, format_money, respond, Cache, Page, Shell};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keel_app::carts::{Address, CartChanges, CartView};
use keel_app::checkout::CompleteInput;
use keel_app::sessions::OrderAccess;
use keel_app::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/checkout", get(show))
        .route("/checkout/details", post(details))
        .route("/checkout/shipping", post(shipping))
        .route("/checkout/complete", post(complete))
}

/// The built-in test provider's tokens, as the payment choices.
const TEST_CARDS: &[(&str, &str)] = &[
    ("tok_visa", "Visa — succeeds"),
    ("tok_chargeDeclined", "Declined"),
    ("tok_chargeDeclinedInsufficientFunds", "Insufficient funds"),
];

/// Offered when a shipping method serves every country.
const COUNTRIES: &[(&str, &str)] = &[
    ("AU", "Australia"), ("AT", "Austria"), ("BE", "Belgium"), ("CA", "Canada"), ("DK", "Denmark"),
    ("FI", "Finland"), ("FR", "France"), ("DE", "Germany"), ("IE", "Ireland"), ("IT", "Italy"),
    ("JP", "Japan"), ("LU", "Luxembourg"), ("NL", "Netherlands"), ("NZ", "New Zealand"), ("NO", "Norway"),
    ("PL", "Poland"), ("PT", "Portugal"), ("ES", "Spain"), ("SE", "Sweden"), ("CH", "Switzerland"),
    ("GB", "United Kingdom"), ("US", "United States"),
];

fn country_name(code: &str) -> String {
    COUNTRIES.iter().find(|(c, _)| *c == code).map(|(_, n)| (*n).to_owned()).unwrap_or_else(|| code.to_owned())
}

/// The contact and address fields, as submitted or as saved on the cart.
#[derive(Default)]
struct Values {
    email: String,
    name: String,
    line1: String,
    line2: String,
    city: String,
    region: String,
    postal_code: String,
    country: String,
}

impl Values {
    fn from_cart(cart: &CartView, fallback_email: Option<String>) -> Values {
        let a = cart.shipping_address.clone();
        Values {
            email: cart.email.clone().or(fallback_email).unwrap_or_default(),
            name: a.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
            line1: a.as_ref().map(|a| a.line1.clone()).unwrap_or_default(),
            line2: a.as_ref().and_then(|a| a.line2.clone()).unwrap_or_default(),
            city: a.as_ref().map(|a| a.city.clone()).unwrap_or_default(),
            region: a.as_ref().and_then(|a| a.region.clone()).unwrap_or_default(),
            postal_code: a.as_ref().map(|a| a.postal_code.clone()).unwrap_or_default(),
            country: a.as_ref().map(|a| a.country.clone()).unwrap_or_default(),
        }
    }

    fn from_form(f: &FormData) -> Values {
        Values {
            email: f.get("email").to_owned(),
            name: f.get("name").to_owned(),
            line1: f.get("line1").to_owned(),
            line2: f.get("line2").to_owned(),
            city: f.get("city").to_owned(),
            region: f.get("region").to_owned(),
            postal_code: f.get("postal_code").to_owned(),
            country: f.get("country").to_ascii_uppercase(),
        }
    }
}

fn label_of(field: &str) -> &'static str {
    match field {
        "email" => "Email address",
        "name" => "Full name",
        "line1" => "Address line 1",
        "line2" => "Address line 2",
        "city" => "Town or city",
        "region" => "State, province or region",
        "postal_code" => "Postal code",
        "country" => "Country",
        _ => "This field",
    }
}

pub struct MethodOption {
    pub id: String,
    pub name: String,
    pub price: String,
    pub checked: bool,
}

pub struct CardOption {
    pub token: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "storefront/checkout.html")]
struct CheckoutPage {
    shell: Shell,
    csrf: String,
    problems: Vec<Problem>,
    email: Field,
    address: Vec<Field>,
    /// The address is saved: the shipping section is shown.
    has_address: bool,
    methods: Vec<MethodOption>,
    method_error: Option<String>,
    /// Ready to pay: the payment section is shown.
    can_pay: bool,
    cards: Vec<CardOption>,
    stripe: Option<Field>,
    payment_error: Option<String>,
    lines: Vec<LineRow>,
    totals: TotalsRows,
    cart_version: i64,
}

#[derive(Template)]
#[template(path = "storefront/checkout_processing.html")]
struct Processing {
    shell: Shell,
}

fn private_shell(title: &str, description: &str) -> Shell {
    let mut shell = Shell::new(title, description);
    shell.noindex = true;
    shell
}

/// The visitor's open, non-empty cart — or the response that replaces the
/// checkout: its order's confirmation once completed (so a repeated submit
/// lands on the order, never on a second one), a "being placed" page while
/// completing, else the cart.
async fn checkout_cart(s: &AppState, headers: &HeaderMap, visitor: &Visitor) -> Result<CartView, Response> {
    match open_cart(&s.app, visitor).await {
        Ok(Some(c)) if !c.lines.is_empty() => return Ok(c),
        Ok(Some(_)) => return Err(form::see_other("/cart")),
        Ok(None) => {}
        Err(e) => return Err(failed(headers, "loading the cart", e)),
    }
    let (Some(session), Some(cart_id)) = (visitor.session(), visitor.session().and_then(|s| s.cart_id.clone())) else {
        return Err(form::see_other("/cart"));
    };
    match s.app.get_cart(&cart_id).await {
        Ok(c) if c.status == "completed" => match c.order_id {
            Some(order_id) => {
                // This session's cart became this order: it placed it.
                if let Err(e) = s.app.grant_session_order(session, &order_id, OrderAccess::Placed).await {
                    return Err(failed(headers, "recording an order for the session", e));
                }
                Err(form::see_other(&format!("/orders/{order_id}/confirmation")))
            }
            None => Err(form::see_other("/cart")),
        },
        Ok(c) if c.status == "completing" => {
            let page = Processing { shell: private_shell("Placing your order", "Your order is being placed.") };
            Err(respond(headers, Page::render(&page, Cache::Private).status(StatusCode::ACCEPTED)))
        }
        Ok(_) | Err(AppError::NotFound { .. }) => Err(form::see_other("/cart")),
        Err(e) => Err(failed(headers, "loading the cart", e)),
    }
}

struct View {
    values: Values,
    errors: Errors,
    /// The payment choice to keep selected.
    payment: String,
    status: StatusCode,
}

async fn render(s: &AppState, headers: &HeaderMap, visitor: &Visitor, cart: &CartView, view: View) -> Response {
    let Some(session) = visitor.session() else { return form::see_other("/cart") };
    let has_address = cart.shipping_address.is_some();
    let methods = if has_address {
        match s.app.cart_shipping_methods(&cart.id).await {
            Ok(m) => m,
            Err(e) => return failed(headers, "listing shipping methods", e),
        }
    } else {
        Vec::new()
    };
    let countries = match country_options(s, &cart.currency, &view.values.country).await {
        Ok(c) => c,
        Err(e) => return failed(headers, "listing shipping countries", e),
    };
    let v = &view.values;
    let mut email = Field::new("email", label_of("email"), "email", "email").value(&v.email).hint("For your receipt and order updates.");
    let mut address = vec![
        Field::new("name", label_of("name"), "text", "name").value(&v.name),
        Field::new("line1", label_of("line1"), "text", "address-line1").value(&v.line1),
        Field::new("line2", label_of("line2"), "text", "address-line2").value(&v.line2).optional(),
        Field::new("city", label_of("city"), "text", "address-level2").value(&v.city),
        Field::new("region", label_of("region"), "text", "address-level1").value(&v.region).optional(),
        Field::new("postal_code", label_of("postal_code"), "text", "postal-code").value(&v.postal_code),
        Field::new("country", label_of("country"), "select", "country").value(&v.country).options(countries),
    ];
    let mut problems = {
        let mut fields: Vec<&mut Field> = std::iter::once(&mut email).chain(address.iter_mut()).collect();
        view.errors.apply(&mut fields)
    };
    problems.extend(view.errors.entry("shipping_method_id"));
    let stripe = s.app.payments.name() == "stripe";
    let mut stripe_field = stripe.then(|| {
        Field::new("payment_method", "Stripe payment method ID", "text", "off")
            .value(if view.payment.starts_with("tok_") { "" } else { view.payment.as_str() })
            .hint("Payments go through Stripe: create a PaymentMethod with Stripe (for example pm_card_visa in test mode) and paste its id, which starts with pm_.")
    });
    if let Some(f) = stripe_field.as_mut() {
        problems.extend(view.errors.apply(&mut [f]));
    } else {
        problems.extend(view.errors.entry("payment_method"));
    }
    problems.extend(view.errors.links());
    let chosen = if view.payment.is_empty() { "tok_visa" } else { view.payment.as_str() };
    let page = CheckoutPage {
        shell: private_shell("Checkout", "Enter your details and pay."),
        csrf: csrf::token(&session.csrf_secret),
        problems,
        email,
        address,
        has_address,
        can_pay: has_address && (cart.shipping_method_id.is_some() || methods.is_empty()),
        methods: methods
            .iter()
            .map(|m| MethodOption {
                id: m.id.clone(),
                name: m.name.clone(),
                price: if m.amount == 0 { "Free".into() } else { format_money(m.amount, &m.currency) },
                checked: cart.shipping_method_id.as_deref() == Some(m.id.as_str()),
            })
            .collect(),
        method_error: view.errors.get("shipping_method_id"),
        cards: TEST_CARDS.iter().map(|(token, label)| CardOption { token, label, checked: *token == chosen }).collect(),
        stripe: stripe_field,
        payment_error: if stripe { None } else { view.errors.get("payment_method") },
        lines: line_rows(cart),
        totals: cart_totals(cart),
        cart_version: cart.version,
    };
    visitor.finish(respond(headers, Page::render(&page, Cache::Private).status(view.status)))
}

/// Countries the shop ships to in this currency, as select options.
async fn country_options(s: &AppState, currency: &str, current: &str) -> keel_app::Result<Vec<(String, String)>> {
    let methods = s.app.list_shipping_methods().await?;
    let mut codes: Vec<String> = Vec::new();
    let mut everywhere = methods.is_empty();
    for m in methods.iter().filter(|m| !m.archived && m.currency == currency) {
        for c in &m.countries {
            if c == "*" {
                everywhere = true;
            } else if !codes.contains(c) {
                codes.push(c.clone());
            }
        }
    }
    if everywhere {
        codes.extend(COUNTRIES.iter().map(|(c, _)| (*c).to_owned()).filter(|c| !codes.contains(c)).collect::<Vec<_>>());
    }
    if !current.is_empty() && !codes.iter().any(|c| c == current) {
        codes.push(current.to_owned());
    }
    let mut options: Vec<(String, String)> = codes.into_iter().map(|c| (country_name(&c), c)).map(|(n, c)| (c, n)).collect();
    options.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(options)
}

async fn customer_email(s: &AppState, visitor: &Visitor) -> Option<String> {
    let id = visitor.customer_id()?;
    s.app.get_customer(id).await.ok().map(|c| c.email)
}

pub async fn show(State(s): State<AppState>, headers: HeaderMap, visitor: Visitor) -> Response {
    let cart = match checkout_cart(&s, &headers, &visitor).await {
        Ok(c) => c,
        Err(r) => return visitor.finish(r),
    };
    let values = Values::from_cart(&cart, customer_email(&s, &visitor).await);
    render(&s, &headers, &visitor, &cart, View { values, errors: Errors::default(), payment: String::new(), status: StatusCode::OK }).await
}

/// `POST /checkout/details`: email and shipping address.
pub async fn details(State(s): State<AppState>, headers: HeaderMap, visitor: Visitor, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = form::guard(&s, &visitor, &headers, &form) {
        return r;
    }
    let cart = match checkout_cart(&s, &headers, &visitor).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let values = Values::from_form(&form);
    let mut errors = Errors::default();
    for (field, value, message) in [
        ("email", &values.email, "Enter your email address"),
        ("name", &values.name, "Enter your full name"),
        ("line1", &values.line1, "Enter the first line of your address"),
        ("city", &values.city, "Enter your town or city"),
        ("postal_code", &values.postal_code, "Enter your postal code"),
        ("country", &values.country, "Choose a country"),
    ] {
        if value.is_empty() {
            errors.add(field, message);
        }
    }
    if !values.email.is_empty() && keel_app::customers::email("email", &values.email).is_err() {
        errors.add("email", "Enter an email address like name@example.com");
    }
    let unprocessable = |values, errors| View { values, errors, payment: String::new(), status: StatusCode::UNPROCESSABLE_ENTITY };
    if !errors.is_empty() {
        return render(&s, &headers, &visitor, &cart, unprocessable(values, errors)).await;
    }
    let some = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    let changes = CartChanges {
        email: Some(values.email.clone()),
        customer_id: if cart.customer_id.is_none() { visitor.customer_id().map(str::to_owned) } else { None },
        shipping_address: Some(Address {
            name: values.name.clone(),
            line1: values.line1.clone(),
            line2: some(&values.line2),
            city: values.city.clone(),
            region: some(&values.region),
            postal_code: values.postal_code.clone(),
            country: values.country.clone(),
            phone: None,
        }),
        shipping_method_id: None,
    };
    let actor = visitor.actor();
    let saved = match s.app.update_cart(&actor, &cart.id, changes).await {
        Ok(c) => c,
        Err(AppError::Invalid(i)) => {
            let field = i.field.strip_prefix("shipping_address.").unwrap_or(&i.field).to_owned();
            errors.add(field.clone(), form::message(label_of(&field), &i));
            return render(&s, &headers, &visitor, &cart, unprocessable(values, errors)).await;
        }
        Err(e) => return refused_change(&s, &headers, &visitor, e).await,
    };
    // Preselect the first method that fits, so the shopper can pay at once.
    if saved.shipping_method_id.is_none() {
        match s.app.cart_shipping_methods(&saved.id).await {
            Ok(methods) => {
                if let Some(first) = methods.first() {
                    let pick = CartChanges { shipping_method_id: Some(first.id.clone()), ..CartChanges::default() };
                    if let Err(e) = s.app.update_cart(&actor, &saved.id, pick).await {
                        return refused_change(&s, &headers, &visitor, e).await;
                    }
                }
            }
            Err(e) => return failed(&headers, "listing shipping methods", e),
        }
    }
    form::see_other("/checkout#shipping")
}

/// A change refused for a reason other than a field (the cart is being
/// checked out elsewhere, …): back to the page, which shows the state.
async fn refused_change(s: &AppState, headers: &HeaderMap, visitor: &Visitor, e: AppError) -> Response {
    match e {
        AppError::Conflict { .. } | AppError::NotFound { .. } => match checkout_cart(s, headers, visitor).await {
            Ok(_) => form::see_other("/checkout"),
            Err(r) => r,
        },
        e => failed(headers, "saving checkout details", e),
    }
}

/// `POST /checkout/shipping`: the shipping method.
pub async fn shipping(State(s): State<AppState>, headers: HeaderMap, visitor: Visitor, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = form::guard(&s, &visitor, &headers, &form) {
        return r;
    }
    let cart = match checkout_cart(&s, &headers, &visitor).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let method = form.get("shipping_method_id");
    let mut errors = Errors::default();
    if method.is_empty() {
        errors.add("shipping_method_id", "Choose a shipping method");
    } else {
        let changes = CartChanges { shipping_method_id: Some(method.to_owned()), ..CartChanges::default() };
        match s.app.update_cart(&visitor.actor(), &cart.id, changes).await {
            Ok(_) => return form::see_other("/checkout#payment"),
            Err(AppError::Invalid(_) | AppError::NotFound { .. } | AppError::Conflict { code: "shipping_method_archived", .. }) => {
                errors.add("shipping_method_id", "Choose one of the shipping methods offered for your address");
            }
            Err(e) => return refused_change(&s, &headers, &visitor, e).await,
        }
    }
    let values = Values::from_cart(&cart, None);
    render(&s, &headers, &visitor, &cart, View { values, errors, payment: String::new(), status: StatusCode::UNPROCESSABLE_ENTITY }).await
}

/// `POST /checkout/complete`: pay and place the order.
pub async fn complete(State(s): State<AppState>, headers: HeaderMap, visitor: Visitor, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    let session = match form::guard(&s, &visitor, &headers, &form) {
        Ok(session) => session.clone(),
        Err(r) => return r,
    };
    let cart = match checkout_cart(&s, &headers, &visitor).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let payment = form.get("payment_method").to_owned();
    let mut errors = Errors::default();
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if payment.is_empty() {
        errors.add("payment_method", if s.app.payments.name() == "stripe" { "Enter a Stripe payment method ID" } else { "Choose a test card" });
    } else if form.get("cart_version") != cart.version.to_string() {
        status = StatusCode::CONFLICT;
        errors.link("#summary", "Your cart changed since this page was shown. Check the order summary and place your order again.");
    } else {
        let input = CompleteInput { payment_method: payment.clone() };
        match s.app.complete_cart(&visitor.actor(), &cart.id, input, None).await {
            Ok(order) => {
                if let Err(e) = s.app.grant_session_order(&session, &order.id, OrderAccess::Placed).await {
                    return failed(&headers, "recording an order for the session", e);
                }
                return form::see_other(&format!("/orders/{}/confirmation", order.id));
            }
            // Submitted twice: the first submit placed (or is placing) it.
            Err(AppError::Conflict { code: "cart_completed" | "cart_not_open", .. }) => {
                return checkout_cart(&s, &headers, &visitor).await.map_or_else(|r| r, |_| form::see_other("/checkout"));
            }
            Err(AppError::PaymentDeclined { code, decline_code, .. }) => {
                status = StatusCode::PAYMENT_REQUIRED;
                let message = match (code.as_str(), decline_code.as_deref()) {
                    (_, Some("insufficient_funds")) => "Your card has insufficient funds. Nothing was charged: try another card.",
                    ("card_declined", _) => "Your card was declined. Nothing was charged: try another card.",
                    _ => "This payment method cannot be used. Nothing was charged: try another one.",
                };
                errors.add("payment_method", message);
            }
            Err(AppError::Conflict { code: "insufficient_stock", param, .. }) => {
                status = StatusCode::CONFLICT;
                let line = param
                    .as_deref()
                    .and_then(|p| p.strip_prefix("lines[")?.split(']').next()?.parse::<usize>().ok())
                    .and_then(|i| cart.lines.get(i));
                let message = match line {
                    Some(l) => format!("We don't have enough {} in stock for your order. Reduce the quantity in your cart, then try again; nothing was charged.", l.title),
                    None => "Some items are no longer in stock in the quantity you chose. Review your cart, then try again; nothing was charged.".into(),
                };
                errors.link("/cart", message);
            }
            Err(AppError::Conflict { code: "cart_changed", .. }) => {
                status = StatusCode::CONFLICT;
                errors.link("#summary", "Your cart changed while the order was being placed. Check the order summary and place your order again.");
            }
            Err(AppError::InProgress { code: "payment_unavailable", .. }) => {
                status = StatusCode::SERVICE_UNAVAILABLE;
                errors.add("payment_method", "The payment provider did not answer. Please try again in a minute; you will not be charged twice.");
            }
            Err(AppError::Invalid(i)) => {
                let (field, message) = match i.field.as_str() {
                    "payment_method" => ("payment_method".to_owned(), "Enter a valid payment method".to_owned()),
                    "shipping_method_id" => ("shipping_method_id".to_owned(), "Choose a shipping method".to_owned()),
                    "email" => ("email".to_owned(), "Enter your email address".to_owned()),
                    f if f.starts_with("shipping_address") => ("line1".to_owned(), "Enter your shipping address".to_owned()),
                    _ => ("payment_method".to_owned(), "Your order could not be placed; check your details".to_owned()),
                };
                errors.add(field, message);
            }
            Err(AppError::Conflict { message, .. }) => {
                status = StatusCode::CONFLICT;
                errors.link("#summary", format!("Your order could not be placed: {message}."));
            }
            Err(e) => return failed(&headers, "placing an order", e),
        }
    }
    // Declines and stock problems reopen the cart: show it as it is now.
    let cart = match s.app.get_cart(&cart.id).await {
        Ok(c) => c,
        Err(e) => return failed(&headers, "loading the cart", e),
    };
    let values = Values::from_cart(&cart, None);
    render(&s, &headers, &visitor, &cart, View { values, errors, payment, status }).await
}

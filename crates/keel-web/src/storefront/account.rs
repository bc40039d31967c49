//! Customer accounts: register, sign in, sign out, and the account page
//! with the customer's orders. Signing in or registering replaces the
//! session with a new token (the old one stops working), and the cart comes
//! along and is attached to the customer, so the order is theirs.
//!
//! Sign-in and registration are throttled per account and per client
//! address (`keel_app::throttle`); a throttled attempt gets the 429 page
//! with `Retry-After`.

use super::cart::{failed, open_cart};
use super::form::{self, Errors, Field, FormData, Problem};
use super::orders::{human_time, status_words};
use super::session::Visitor;
use super::{csrf, format_money, respond, too_many, Cache, Page, Shell};
use crate::edge::ClientIp;
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keel_app::carts::CartChanges;
use keel_app::customers::NewCustomer;
use keel_app::AppError;
use keel_domain::time::now_micros;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/register", get(register_form).post(register))
        .route("/account/login", get(login_form).post(login))
        .route("/account/logout", post(logout))
}

fn private_shell(title: &str, description: &str) -> Shell {
    let mut shell = Shell::new(title, description);
    shell.noindex = true;
    shell
}

#[derive(Template)]
#[template(path = "storefront/account_register.html")]
struct Register {
    shell: Shell,
    csrf: String,
    problems: Vec<Problem>,
    fields: Vec<Field>,
}

#[derive(Template)]
#[template(path = "storefront/account_login.html")]
struct Login {
    shell: Shell,
    csrf: String,
    problems: Vec<Problem>,
    fields: Vec<Field>,
}

fn register_page(csrf: String, form: Option<&FormData>, errors: &Errors) -> Register {
    let v = |name: &str| form.map(|f| f.get(name).to_owned()).unwrap_or_default();
    let mut fields = vec![
        Field::new("first_name", "First name", "text", "given-name").value(v("first_name")),
        Field::new("last_name", "Last name", "text", "family-name").value(v("last_name")).optional(),
        Field::new("email", "Email address", "email", "email").value(v("email")),
        Field::new("password", "Password", "password", "new-password").hint("At least 10 characters."),
    ];
    let mut problems = errors.apply(&mut fields.iter_mut().collect::<Vec<_>>());
    problems.extend(errors.links());
    Register { shell: private_shell("Create an account", "Create a customer account."), csrf, problems, fields }
}

fn login_page(csrf: String, email: &str, errors: &Errors) -> Login {
    let mut fields = vec![
        Field::new("email", "Email address", "email", "email").value(email),
        Field::new("password", "Password", "password", "current-password"),
    ];
    let mut problems = errors.apply(&mut fields.iter_mut().collect::<Vec<_>>());
    problems.extend(errors.links());
    Login { shell: private_shell("Sign in", "Sign in to your account."), csrf, problems, fields }
}

pub async fn register_form(State(s): State<AppState>, headers: HeaderMap, mut visitor: Visitor) -> Response {
    if visitor.customer_id().is_some() {
        return form::see_other("/account");
    }
    let token = match visitor.ensure(&s.app).await {
        Ok(session) => csrf::token(&session.csrf_secret),
        Err(e) => return failed(&headers, "starting a session", e),
    };
    let page = register_page(token, None, &Errors::default());
    visitor.finish(respond(&headers, Page::render(&page, Cache::Private)))
}

pub async fn login_form(State(s): State<AppState>, headers: HeaderMap, mut visitor: Visitor) -> Response {
    if visitor.customer_id().is_some() {
        return form::see_other("/account");
    }
    let token = match visitor.ensure(&s.app).await {
        Ok(session) => csrf::token(&session.csrf_secret),
        Err(e) => return failed(&headers, "starting a session", e),
    };
    let page = login_page(token, "", &Errors::default());
    visitor.finish(respond(&headers, Page::render(&page, Cache::Private)))
}

/// Signs `customer_id` in under a new session token and attaches the cart.
async fn sign_in(s: &AppState, headers: &HeaderMap, visitor: &mut Visitor, customer_id: &str) -> Response {
    if let Err(e) = visitor.rotate(&s.app, Some(customer_id)).await {
        return failed(headers, "signing in", e);
    }
    match open_cart(&s.app, visitor).await {
        Ok(Some(cart)) if cart.customer_id.as_deref() != Some(customer_id) => {
            let changes = CartChanges { customer_id: Some(customer_id.to_owned()), ..CartChanges::default() };
            if let Err(e) = s.app.update_cart(&visitor.actor(), &cart.id, changes).await {
                // Signing in still worked; the cart stays a guest's.
                tracing::warn!(error = %e, "could not attach the cart to the customer who signed in");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not load the cart of a customer who signed in"),
    }
    visitor.finish(form::see_other("/account"))
}

/// `POST /account/register`: `first_name`, `last_name`, `email`, `password`.
pub async fn register(State(s): State<AppState>, headers: HeaderMap, ip: ClientIp, mut visitor: Visitor, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    let secret = match form::guard(&s, &visitor, &headers, &form) {
        Ok(session) => session.csrf_secret.clone(),
        Err(r) => return r,
    };
    let mut errors = Errors::default();
    if form.get("first_name").is_empty() {
        errors.add("first_name", "Enter your first name");
    }
    if form.get("email").is_empty() {
        errors.add("email", "Enter your email address");
    }
    if form.raw("password").chars().count() < keel_app::customers::MIN_PASSWORD {
        errors.add("password", "Choose a password of at least 10 characters");
    }
    if errors.is_empty() {
        let some = |name: &str| Some(form.get(name).to_owned()).filter(|v| !v.is_empty());
        let input = NewCustomer {
            email: form.get("email").to_owned(),
            first_name: some("first_name"),
            last_name: some("last_name"),
            phone: None,
            password: Some(form.raw("password").to_owned()),
            marketing_opt_in: None,
        };
        match s.app.register_customer(&visitor.actor(), input, &ip.text(), now_micros()).await {
            Ok(customer) => return sign_in(&s, &headers, &mut visitor, &customer.id).await,
            Err(AppError::TooManyAttempts { retry_after_secs }) => return too_many(&headers, retry_after_secs),
            Err(AppError::Conflict { code: "email_taken", .. }) => {
                errors.add("email", "An account with this email address already exists: sign in instead");
            }
            Err(AppError::Invalid(i)) => {
                let label = match i.field.as_str() {
                    "first_name" => "First name",
                    "last_name" => "Last name",
                    "password" => "Password",
                    _ => "Email address",
                };
                let field = if ["first_name", "last_name", "password"].contains(&i.field.as_str()) { i.field.clone() } else { "email".into() };
                errors.add(field, form::message(label, &i));
            }
            Err(e) => return failed(&headers, "registering a customer", e),
        }
    }
    let page = register_page(csrf::token(&secret), Some(&form), &errors);
    respond(&headers, Page::render(&page, Cache::Private).status(StatusCode::UNPROCESSABLE_ENTITY))
}

/// `POST /account/login`: `email`, `password`. One message for every
/// failure, so the form does not tell which emails have accounts.
pub async fn login(State(s): State<AppState>, headers: HeaderMap, ip: ClientIp, mut visitor: Visitor, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    let secret = match form::guard(&s, &visitor, &headers, &form) {
        Ok(session) => session.csrf_secret.clone(),
        Err(r) => return r,
    };
    let (email, password) = (form.get("email"), form.raw("password"));
    let mut errors = Errors::default();
    if email.is_empty() {
        errors.add("email", "Enter your email address");
    }
    if password.is_empty() {
        errors.add("password", "Enter your password");
    }
    if errors.is_empty() {
        match s.app.customer_sign_in(email, password, &ip.text(), now_micros()).await {
            Ok(Some(customer)) => return sign_in(&s, &headers, &mut visitor, &customer.id).await,
            Ok(None) => errors.add("email", "The email address or password is incorrect"),
            Err(AppError::TooManyAttempts { retry_after_secs }) => return too_many(&headers, retry_after_secs),
            Err(e) => return failed(&headers, "signing in", e),
        }
    }
    let page = login_page(csrf::token(&secret), email, &errors);
    respond(&headers, Page::render(&page, Cache::Private).status(StatusCode::UNPROCESSABLE_ENTITY))
}

/// `POST /account/logout`: ends the session (and its cart link).
pub async fn logout(State(s): State<AppState>, headers: HeaderMap, mut visitor: Visitor, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = form::guard(&s, &visitor, &headers, &form) {
        return r;
    }
    if let Err(e) = visitor.end(&s.app).await {
        return failed(&headers, "signing out", e);
    }
    visitor.finish(form::see_other("/"))
}

pub struct OrderRow {
    pub id: String,
    pub number: i64,
    pub placed: String,
    pub status: &'static str,
    pub total: String,
}

#[derive(Template)]
#[template(path = "storefront/account.html")]
struct Account {
    shell: Shell,
    csrf: String,
    name: String,
    email: String,
    orders: Vec<OrderRow>,
    more: bool,
}

pub async fn show(State(s): State<AppState>, headers: HeaderMap, visitor: Visitor) -> Response {
    let (Some(session), Some(customer_id)) = (visitor.session(), visitor.customer_id()) else {
        return form::see_other("/account/login");
    };
    let customer = match s.app.get_customer(customer_id).await {
        Ok(c) => c,
        Err(e) => return failed(&headers, "loading a customer", e),
    };
    let orders = match s.app.list_orders(None, Some(customer_id), None, None, Some(50)).await {
        Ok(page) => page,
        Err(e) => return failed(&headers, "listing a customer's orders", e),
    };
    let name = [customer.first_name.clone(), customer.last_name.clone()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let page = Account {
        shell: private_shell("Your account", "Your orders and details."),
        csrf: csrf::token(&session.csrf_secret),
        name,
        email: customer.email,
        more: orders.has_more,
        orders: orders
            .data
            .iter()
            .map(|o| OrderRow {
                id: o.id.clone(),
                number: o.number,
                placed: human_time(&o.created_at),
                status: status_words(&o.status),
                total: format_money(o.totals.total, &o.currency),
            })
            .collect(),
    };
    visitor.finish(respond(&headers, Page::render(&page, Cache::Private)))
}

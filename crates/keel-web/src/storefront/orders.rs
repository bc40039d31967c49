//! Orders as shoppers see them: the confirmation after checkout, the status
//! page with its timeline, and the lookup form (order number + email).
//!
//! An order is shown only to whoever may see it: the session that placed it
//! (confirmation and status), a session that gave its number and email
//! (status), or its signed-in owner. Anyone else gets the same 404 as for
//! an order that does not exist. Order numbers are sequential, so knowing an
//! email and a number is not much: a lookup is throttled per email and per
//! client address, and the status page it opens leaves out the name and
//! address the order ships to until the shopper also gives the shipping
//! address's postal code (a second small form, throttled per order).

use super::cart::{failed, LineRow, TotalsRows};
use super::form::{self, Errors, Field, FormData, Problem};
use super::session::Visitor;
use super::{csrf, format_money, not_found, respond, too_many, Cache, Page, Shell};
use crate::edge::ClientIp;
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keel_app::orders::OrderView;
use keel_app::sessions::OrderAccess;
use keel_app::AppError;
use keel_domain::time::now_micros;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders/lookup", get(lookup_form).post(lookup))
        .route("/orders/{id}", get(status))
        .route("/orders/{id}/verify", post(verify))
        .route("/orders/{id}/confirmation", get(confirmation))
}

/// An order's status in words.
pub fn status_words(status: &str) -> &'static str {
    match status {
        "pending" => "Awaiting payment",
        "authorized" => "Confirmed — payment authorized, being prepared",
        "paid" => "Confirmed — paid, being prepared for shipping",
        "partially_fulfilled" => "Partly shipped",
        "fulfilled" => "Shipped",
        "delivered" => "Delivered",
        "completed" => "Completed",
        "cancelled" => "Cancelled",
        _ => "In progress",
    }
}

fn event_words(kind: &str) -> String {
    match kind {
        "order.created" => "Order placed".into(),
        "order.paid" => "Payment received".into(),
        "order.cancelled" => "Order cancelled".into(),
        "order.refunded" => "Refund issued".into(),
        "order.updated" => "Order updated".into(),
        other => {
            let s = other.strip_prefix("order.").unwrap_or(other).replace('_', " ");
            let mut c = s.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        }
    }
}

/// `2026-12-02T02:40:11.123Z` → `2 December 2026, 02:40 UTC`.
pub fn human_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono::Utc).format("%-d %B %Y, %H:%M UTC").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

pub struct TimelineRow {
    pub when: String,
    pub datetime: String,
    pub what: String,
}

/// What the confirmation and status pages show of an order.
pub struct OrderSummary {
    pub id: String,
    pub number: i64,
    pub placed: String,
    pub status: &'static str,
    pub email: String,
    pub address: Vec<String>,
    pub shipping_method: Option<String>,
    pub lines: Vec<LineRow>,
    pub totals: TotalsRows,
    pub timeline: Vec<TimelineRow>,
    /// Expected delivery, when one is known. Keel records no ETA yet, so
    /// this stays empty until fulfilment provides one.
    pub eta: Option<String>,
}

async fn summary(s: &AppState, o: &OrderView) -> keel_app::Result<OrderSummary> {
    let shipping_method = match &o.shipping_method_id {
        Some(id) => s.app.list_shipping_methods().await?.into_iter().find(|m| &m.id == id).map(|m| m.name),
        None => None,
    };
    let address = o
        .shipping_address
        .as_ref()
        .map(|a| {
            let mut lines = vec![a.name.clone(), a.line1.clone()];
            lines.extend(a.line2.clone());
            let region = a.region.as_deref().map(|r| format!(" {r}")).unwrap_or_default();
            lines.push(format!("{}{region} {}", a.city, a.postal_code));
            lines.push(a.country.clone());
            lines
        })
        .unwrap_or_default();
    Ok(OrderSummary {
        id: o.id.clone(),
        number: o.number,
        placed: human_time(&o.created_at),
        status: status_words(&o.status),
        email: o.email.clone().unwrap_or_default(),
        address,
        shipping_method,
        lines: o
            .lines
            .iter()
            .map(|l| LineRow {
                id: l.variant_id.clone(),
                title: l.title.clone(),
                sku: l.sku.clone(),
                unit_price: format_money(l.unit_amount, &o.currency),
                quantity: l.quantity,
                total: format_money(l.total, &o.currency),
            })
            .collect(),
        totals: TotalsRows::new(&o.totals, &o.currency, true, true),
        timeline: o
            .timeline
            .iter()
            .map(|e| TimelineRow { when: human_time(&e.occurred_at), datetime: e.occurred_at.clone(), what: event_words(&e.kind) })
            .collect(),
        eta: None,
    })
}

/// The order if this visitor may see it with `access`; else the 404 page.
async fn visible_order(s: &AppState, headers: &HeaderMap, visitor: &Visitor, id: &str, access: OrderAccess) -> Result<OrderView, Response> {
    let order = match s.app.get_order(id).await {
        Ok(o) => o,
        Err(AppError::NotFound { .. }) => return Err(not_found(headers)),
        Err(e) => return Err(failed(headers, "loading an order", e)),
    };
    let owner = visitor.customer_id().is_some() && visitor.customer_id() == order.customer_id.as_deref();
    let granted = match visitor.session() {
        Some(session) if !owner => match s.app.session_may_show_order(session, id, access).await {
            Ok(g) => g,
            Err(e) => return Err(failed(headers, "checking order access", e)),
        },
        _ => false,
    };
    if owner || granted {
        Ok(order)
    } else {
        Err(not_found(headers))
    }
}

fn private_shell(title: String, description: &str) -> Shell {
    let mut shell = Shell::new(title, description);
    shell.noindex = true;
    shell
}

#[derive(Template)]
#[template(path = "storefront/order_confirmation.html")]
struct Confirmation {
    shell: Shell,
    order: OrderSummary,
}

pub async fn confirmation(State(s): State<AppState>, headers: HeaderMap, visitor: Visitor, Path(id): Path<String>) -> Response {
    let order = match visible_order(&s, &headers, &visitor, &id, OrderAccess::Placed).await {
        Ok(o) => o,
        Err(r) => return visitor.finish(r),
    };
    let order = match summary(&s, &order).await {
        Ok(o) => o,
        Err(e) => return failed(&headers, "summarising an order", e),
    };
    let page = Confirmation { shell: private_shell(format!("Order {} confirmed", order.number), "Thank you for your order."), order };
    visitor.finish(respond(&headers, Page::render(&page, Cache::Private)))
}

#[derive(Template)]
#[template(path = "storefront/order_status.html")]
struct Status {
    shell: Shell,
    order: OrderSummary,
    /// Whether the postal-code form is shown (the shipping address is
    /// withheld), with its token, problems and field.
    proof: bool,
    csrf: String,
    problems: Vec<Problem>,
    postal_code: Field,
}

/// Whether this visitor sees where the order ships: its owner, the session
/// that placed it, or one that proved the postal code.
async fn address_shown(s: &AppState, visitor: &Visitor, order: &OrderView) -> keel_app::Result<bool> {
    if visitor.customer_id().is_some() && visitor.customer_id() == order.customer_id.as_deref() {
        return Ok(true);
    }
    match visitor.session() {
        Some(session) => s.app.session_may_show_order(session, &order.id, OrderAccess::Verified).await,
        None => Ok(false),
    }
}

async fn status_page(s: &AppState, headers: &HeaderMap, visitor: &Visitor, order: &OrderView, errors: &Errors) -> Response {
    let shown = match address_shown(s, visitor, order).await {
        Ok(v) => v,
        Err(e) => return failed(headers, "checking order access", e),
    };
    let mut summary = match summary(s, order).await {
        Ok(o) => o,
        Err(e) => return failed(headers, "summarising an order", e),
    };
    let mut postal_code =
        Field::new("postal_code", "Postal code", "text", "postal-code").hint("The postal code of the address the order ships to.");
    let mut problems = errors.apply(&mut [&mut postal_code]);
    problems.extend(errors.links());
    let session = visitor.session().filter(|_| !shown);
    let csrf = session.map(|s| csrf::token(&s.csrf_secret)).unwrap_or_default();
    if !shown {
        summary.address.clear();
    }
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let shell = private_shell(format!("Order {}", summary.number), "The status of your order.");
    let page = Status { shell, order: summary, proof: session.is_some(), csrf, problems, postal_code };
    respond(headers, Page::render(&page, Cache::Private).status(status))
}

pub async fn status(State(s): State<AppState>, headers: HeaderMap, visitor: Visitor, Path(id): Path<String>) -> Response {
    let order = match visible_order(&s, &headers, &visitor, &id, OrderAccess::Lookup).await {
        Ok(o) => o,
        Err(r) => return visitor.finish(r),
    };
    let page = status_page(&s, &headers, &visitor, &order, &Errors::default()).await;
    visitor.finish(page)
}

/// `POST /orders/{id}/verify` with `postal_code`: after a lookup, shows the
/// shipping address once the shopper gives its postal code.
pub async fn verify(State(s): State<AppState>, headers: HeaderMap, ip: ClientIp, visitor: Visitor, Path(id): Path<String>, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    let session = match form::guard(&s, &visitor, &headers, &form) {
        Ok(session) => session.clone(),
        Err(r) => return r,
    };
    let order = match visible_order(&s, &headers, &visitor, &id, OrderAccess::Lookup).await {
        Ok(o) => o,
        Err(r) => return visitor.finish(r),
    };
    let mut errors = Errors::default();
    let code = form.get("postal_code");
    if code.is_empty() {
        errors.add("postal_code", "Enter the postal code of the shipping address");
    } else {
        match s.app.prove_order(&session, &order.id, code, &ip.text(), now_micros()).await {
            Ok(true) => return form::see_other(&format!("/orders/{}", order.id)),
            Ok(false) => errors.add("postal_code", "That is not the postal code of this order's shipping address"),
            Err(AppError::TooManyAttempts { retry_after_secs }) => return too_many(&headers, retry_after_secs),
            Err(e) => return failed(&headers, "checking a postal code", e),
        }
    }
    let page = status_page(&s, &headers, &visitor, &order, &errors).await;
    visitor.finish(page)
}

#[derive(Template)]
#[template(path = "storefront/order_lookup.html")]
struct Lookup {
    shell: Shell,
    csrf: String,
    problems: Vec<Problem>,
    number: Field,
    email: Field,
}

fn lookup_page(csrf: String, number: &str, email: &str, errors: &Errors) -> Lookup {
    let mut number = Field::new("number", "Order number", "text", "off")
        .value(number)
        .inputmode("numeric")
        .hint("It is in your order confirmation, for example 1001.");
    let mut email = Field::new("email", "Email address", "email", "email").value(email).hint("The email address the order was placed with.");
    let mut problems = errors.apply(&mut [&mut number, &mut email]);
    problems.extend(errors.links());
    Lookup { shell: private_shell("Order status".into(), "Look up the status of an order."), csrf, problems, number, email }
}

pub async fn lookup_form(State(s): State<AppState>, headers: HeaderMap, mut visitor: Visitor) -> Response {
    // The form needs a CSRF token, and so a session.
    let token = match visitor.ensure(&s.app).await {
        Ok(session) => csrf::token(&session.csrf_secret),
        Err(e) => return failed(&headers, "starting a session", e),
    };
    let page = lookup_page(token, "", "", &Errors::default());
    visitor.finish(respond(&headers, Page::render(&page, Cache::Private)))
}

/// `POST /orders/lookup` with `number` and `email`. A wrong number and a
/// wrong email get the same answer, so the form tells nothing about which
/// orders exist; misses are throttled (429 page with `Retry-After`).
pub async fn lookup(State(s): State<AppState>, headers: HeaderMap, ip: ClientIp, visitor: Visitor, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    let session = match form::guard(&s, &visitor, &headers, &form) {
        Ok(session) => session.clone(),
        Err(r) => return r,
    };
    let (number_text, email) = (form.get("number"), form.get("email"));
    let mut errors = Errors::default();
    let number = number_text.trim_start_matches('#').trim().parse::<i64>().ok().filter(|n| *n > 0);
    if number_text.is_empty() {
        errors.add("number", "Enter your order number");
    } else if number.is_none() {
        errors.add("number", "Enter the order number from your confirmation, like 1001");
    }
    if email.is_empty() {
        errors.add("email", "Enter your email address");
    }
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    if let (Some(n), true) = (number, errors.is_empty()) {
        match s.app.lookup_order(&session, n, email, &ip.text(), now_micros()).await {
            Ok(Some(order)) => return form::see_other(&format!("/orders/{}", order.id)),
            Err(AppError::TooManyAttempts { retry_after_secs }) => return too_many(&headers, retry_after_secs),
            Ok(None) => {
                status = StatusCode::NOT_FOUND;
                errors.link("#f-number", "We could not find an order with that number and email address. Check both and try again.");
            }
            Err(AppError::Invalid(_)) => errors.add("email", "Enter an email address like name@example.com"),
            Err(e) => return failed(&headers, "looking up an order", e),
        }
    }
    let page = lookup_page(csrf::token(&session.csrf_secret), number_text, email, &errors);
    respond(&headers, Page::render(&page, Cache::Private).status(status))
}

//! The cart: `POST /cart/lines` (the product page's add-to-cart form),
//! `GET /cart`, and per-line quantity and remove forms.

use super::form::{self, FormData, Problem};
use super::session::Visitor;
use super::{csrf, format_money, respond, Cache, Page, Shell};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keel_app::carts::{CartLineChanges, CartLineInput, CartView, NewCart, TotalsView};
use keel_app::{AppError, App};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cart", get(show))
        .route("/cart/lines", post(add))
        .route("/cart/lines/{line_id}", post(update_line))
        .route("/cart/lines/{line_id}/remove", post(remove_line))
}

/// A cart line as the cart and checkout pages show it.
pub struct LineRow {
    pub id: String,
    pub title: String,
    pub sku: String,
    pub unit_price: String,
    pub quantity: i64,
    pub total: String,
}

/// The money rows under a cart or order.
pub struct TotalsRows {
    pub subtotal: String,
    /// `None` until a shipping method is chosen.
    pub shipping: Option<String>,
    /// `None` until the destination (and so the tax rate) is known.
    pub tax: Option<String>,
    pub tax_inclusive: bool,
    pub total: String,
}

impl TotalsRows {
    pub fn new(t: &TotalsView, currency: &str, shipping_known: bool, tax_known: bool) -> TotalsRows {
        TotalsRows {
            subtotal: format_money(t.subtotal, currency),
            shipping: shipping_known.then(|| if t.shipping_total == 0 { "Free".to_owned() } else { format_money(t.shipping_total, currency) }),
            tax: tax_known.then(|| format_money(t.tax_total, currency)),
            tax_inclusive: t.tax_inclusive,
            total: format_money(t.total, currency),
        }
    }
}

pub fn line_rows(cart: &CartView) -> Vec<LineRow> {
    cart.lines
        .iter()
        .map(|l| LineRow {
            id: l.id.clone(),
            title: l.title.clone(),
            sku: l.sku.clone(),
            unit_price: format_money(l.unit_amount, &cart.currency),
            quantity: l.quantity,
            total: format_money(l.total, &cart.currency),
        })
        .collect()
}

pub fn cart_totals(cart: &CartView) -> TotalsRows {
    TotalsRows::new(&cart.totals, &cart.currency, cart.shipping_method_id.is_some(), cart.shipping_address.is_some())
}

/// The visitor's cart if it can still change. A cart that expired, was
/// completed or vanished counts as none: the next add starts a fresh one.
pub async fn open_cart(app: &App, visitor: &Visitor) -> Result<Option<CartView>, AppError> {
    let Some(id) = visitor.session().and_then(|s| s.cart_id.clone()) else { return Ok(None) };
    match app.get_cart(&id).await {
        Ok(c) if c.status == "open" => Ok(Some(c)),
        Ok(_) | Err(AppError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Logs an unexpected failure and answers with the error page.
pub fn failed(headers: &HeaderMap, what: &str, e: AppError) -> Response {
    super::unexpected(headers, what, &e)
}

#[derive(Template)]
#[template(path = "storefront/cart.html")]
struct CartPage {
    shell: Shell,
    csrf: String,
    problems: Vec<Problem>,
    lines: Vec<LineRow>,
    totals: Option<TotalsRows>,
}

async fn render(state: &AppState, headers: &HeaderMap, visitor: &Visitor, status: StatusCode, problems: Vec<Problem>) -> Response {
    let cart = match open_cart(&state.app, visitor).await {
        Ok(c) => c,
        Err(e) => return failed(headers, "loading the cart", e),
    };
    let mut shell = Shell::new("Your cart", "The items in your cart.");
    shell.noindex = true;
    let page = CartPage {
        shell,
        csrf: visitor.session().map(|s| csrf::token(&s.csrf_secret)).unwrap_or_default(),
        problems,
        lines: cart.as_ref().map(line_rows).unwrap_or_default(),
        totals: cart.as_ref().filter(|c| !c.lines.is_empty()).map(cart_totals),
    };
    visitor.finish(respond(headers, Page::render(&page, Cache::Private).status(status)))
}

pub async fn show(State(s): State<AppState>, headers: HeaderMap, visitor: Visitor) -> Response {
    render(&s, &headers, &visitor, StatusCode::OK, Vec::new()).await
}

fn problem(message: impl Into<String>) -> Vec<Problem> {
    vec![Problem { href: "#cart".into(), message: message.into() }]
}

/// Why an add or change was refused, for the shopper.
fn explain(e: &AppError) -> Option<(StatusCode, String)> {
    Some(match e {
        AppError::Invalid(i) if i.field == "quantity" => (StatusCode::UNPROCESSABLE_ENTITY, "Enter a quantity between 1 and 10000".into()),
        AppError::Invalid(i) if i.code == "no_price" => (StatusCode::UNPROCESSABLE_ENTITY, "This item cannot be bought in this shop's currency".into()),
        AppError::Invalid(i) if i.code == "too_many_lines" => (StatusCode::UNPROCESSABLE_ENTITY, "Your cart is full: remove an item first".into()),
        AppError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "That item could not be added".into()),
        AppError::NotFound { resource: "variant", .. } => (StatusCode::NOT_FOUND, "That item does not exist (any more)".into()),
        AppError::NotFound { resource: "cart_line", .. } => (StatusCode::NOT_FOUND, "That item is no longer in your cart".into()),
        AppError::Conflict { code: "not_for_sale", .. } => (StatusCode::CONFLICT, "That item is no longer for sale".into()),
        AppError::Conflict { code: "cart_not_open", .. } => (StatusCode::CONFLICT, "This cart is being checked out and can no longer change".into()),
        _ => return None,
    })
}

/// `POST /cart/lines` with `variant_id` and `quantity` (default 1). The
/// product page is publicly cached, so this form has no CSRF token: it must
/// be same-origin, and a token is verified only when one is sent.
pub async fn add(State(s): State<AppState>, headers: HeaderMap, mut visitor: Visitor, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if !csrf::same_origin(&headers, &s.storefront) {
        return form::refused(&headers);
    }
    if form.has("csrf") && !visitor.session().is_some_and(|ses| csrf::verify(&ses.csrf_secret, form.get("csrf"))) {
        return form::refused(&headers);
    }
    let quantity = match form.get("quantity") {
        "" => 1,
        q => match q.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return render(&s, &headers, &visitor, StatusCode::UNPROCESSABLE_ENTITY, problem("Enter a quantity between 1 and 10000")).await,
        },
    };
    let variant = match s.app.variant_by_id(form.get("variant_id")).await {
        Ok(v) => v,
        Err(e) => match explain(&e) {
            Some((status, m)) => return render(&s, &headers, &visitor, status, problem(m)).await,
            None => return failed(&headers, "finding a variant", e),
        },
    };
    let actor = visitor.actor();
    let outcome: Result<(), AppError> = async {
        let cart = match open_cart(&s.app, &visitor).await? {
            Some(c) => c,
            None => {
                let customer_id = visitor.customer_id().map(str::to_owned);
                let session = visitor.ensure(&s.app).await?.clone();
                let cart = s.app.create_cart(&actor, NewCart { currency: s.storefront.currency.clone(), customer_id, email: None }).await?;
                s.app.set_session_cart(&session, &cart.id).await?;
                visitor.remember_cart(&cart.id);
                cart
            }
        };
        // The same variant again adds to its line (the app merges them).
        s.app.add_cart_line(&actor, &cart.id, CartLineInput { sku: variant.sku.clone(), quantity }).await?;
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => visitor.finish(form::see_other("/cart")),
        Err(e) => match explain(&e) {
            Some((status, m)) => render(&s, &headers, &visitor, status, problem(m)).await,
            None => visitor.finish(failed(&headers, "adding to the cart", e)),
        },
    }
}

/// `POST /cart/lines/{line_id}` with `quantity` (0 removes the line).
pub async fn update_line(State(s): State<AppState>, headers: HeaderMap, visitor: Visitor, Path(line_id): Path<String>, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = form::guard(&s, &visitor, &headers, &form) {
        return r;
    }
    let Ok(quantity) = form.get("quantity").parse::<i64>() else {
        return render(&s, &headers, &visitor, StatusCode::UNPROCESSABLE_ENTITY, problem("Enter a quantity between 1 and 10000")).await;
    };
    change(&s, &headers, &visitor, &line_id, Some(quantity).filter(|q| *q != 0)).await
}

/// `POST /cart/lines/{line_id}/remove`.
pub async fn remove_line(State(s): State<AppState>, headers: HeaderMap, visitor: Visitor, Path(line_id): Path<String>, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Err(r) = form::guard(&s, &visitor, &headers, &form) {
        return r;
    }
    change(&s, &headers, &visitor, &line_id, None).await
}

async fn change(s: &AppState, headers: &HeaderMap, visitor: &Visitor, line_id: &str, quantity: Option<i64>) -> Response {
    let cart = match open_cart(&s.app, visitor).await {
        Ok(Some(c)) => c,
        Ok(None) => return form::see_other("/cart"),
        Err(e) => return failed(headers, "loading the cart", e),
    };
    let actor = visitor.actor();
    let outcome = match quantity {
        Some(q) => s.app.update_cart_line(&actor, &cart.id, line_id, CartLineChanges { quantity: q }).await,
        None => s.app.remove_cart_line(&actor, &cart.id, line_id).await,
    };
    match outcome {
        Ok(_) => visitor.finish(form::see_other("/cart")),
        Err(e) => match explain(&e) {
            Some((status, m)) => render(s, headers, visitor, status, problem(m)).await,
            None => failed(headers, "changing the cart", e),
        },
    }
}

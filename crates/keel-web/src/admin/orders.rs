//! Orders: the list with filters, the detail page with its timeline, and
//! the capture, cancel and refund actions.
//!
//! Emails and addresses are stored encrypted; the list finds an email
//! through its blind index (exact match), never by searching ciphertext.
//! Roles without `customers.read` see orders without the customer's email
//! and address.

mod detail;

use super::paging::{page_number, Pager, PER_PAGE};
use super::{error_page, html, when, Layout, StaffUser};
use crate::access::{Access, AdminRoute, Permission};
use crate::storefront::form::{Errors, Field, FormData, Problem};
use crate::storefront::format_money;
use crate::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keel_app::orders::admin::{OrderQuery, OrderSummary};
use keel_app::AppError;
use keel_domain::orders::{OrderStatus, PaymentStatus};

pub const ROUTES: &[AdminRoute] = &[
    ("GET", "/admin/orders", Access::Needs(Permission::OrdersRead)),
    ("GET", "/admin/orders/{order_id}", Access::Needs(Permission::OrdersRead)),
    ("POST", "/admin/orders/{order_id}/capture", Access::Needs(Permission::OrdersWrite)),
    ("POST", "/admin/orders/{order_id}/cancel", Access::Needs(Permission::OrdersWrite)),
    ("POST", "/admin/orders/{order_id}/refunds", Access::Needs(Permission::OrdersWrite)),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/orders", get(list))
        .route("/admin/orders/{order_id}", get(detail::show))
        .route("/admin/orders/{order_id}/capture", post(detail::capture))
        .route("/admin/orders/{order_id}/cancel", post(detail::cancel))
        .route("/admin/orders/{order_id}/refunds", post(detail::refund))
}

/// The page of one order.
pub fn order_path(order_id: &str) -> String {
    format!("/admin/orders/{order_id}")
}

/// An order status in words, with its badge class.
pub fn status_words(s: OrderStatus) -> (&'static str, &'static str) {
    match s {
        OrderStatus::Pending => ("Pending", "warn"),
        OrderStatus::Authorized => ("Awaiting payment capture", "warn"),
        OrderStatus::Paid => ("Paid, not yet fulfilled", "ok"),
        OrderStatus::PartiallyFulfilled => ("Partially fulfilled", "warn"),
        OrderStatus::Fulfilled => ("Fulfilled", "ok"),
        OrderStatus::Delivered => ("Delivered", "ok"),
        OrderStatus::Completed => ("Completed", "muted"),
        OrderStatus::Cancelled => ("Cancelled", "bad"),
    }
}

/// A payment status in words, with its badge class.
pub fn payment_words(s: PaymentStatus) -> (&'static str, &'static str) {
    match s {
        PaymentStatus::Pending => ("Pending", "warn"),
        PaymentStatus::Authorized => ("Authorized", "warn"),
        PaymentStatus::Captured => ("Captured", "ok"),
        PaymentStatus::PartiallyRefunded => ("Partially refunded", "warn"),
        PaymentStatus::Refunded => ("Refunded", "muted"),
        PaymentStatus::Voided => ("Voided", "muted"),
        PaymentStatus::Failed => ("Failed", "bad"),
    }
}

/// A status as a page shows it: words and a badge class.
pub struct Badge {
    pub words: &'static str,
    pub class: &'static str,
}

impl Badge {
    fn order(s: OrderStatus) -> Badge {
        let (words, class) = status_words(s);
        Badge { words, class }
    }

    fn payment(s: PaymentStatus) -> Badge {
        let (words, class) = payment_words(s);
        Badge { words, class }
    }
}

/// What the reader of a page may see of the customer.
pub fn customer_email(email: Option<&str>, may_see: bool) -> String {
    match (email, may_see) {
        (_, false) => "Hidden (needs customers.read)".into(),
        (Some(e), true) => e.to_owned(),
        (None, true) => "None given".into(),
    }
}

// ------------------------------------------------------------------ list ---

struct OrderRowView {
    href: String,
    number: i64,
    placed_at: String,
    email: String,
    status: Badge,
    payment: Badge,
    items: i64,
    total: String,
}

impl OrderRowView {
    fn new(o: &OrderSummary, may_see_email: bool) -> OrderRowView {
        OrderRowView {
            href: order_path(&o.id),
            number: o.number,
            placed_at: when(o.created_at),
            email: customer_email(o.email.as_deref(), may_see_email),
            status: Badge::order(o.status),
            payment: Badge::payment(o.payment_status),
            items: o.item_count,
            total: format_money(o.total, &o.currency),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/orders_list.html")]
struct ListPage {
    layout: Layout,
    problems: Vec<Problem>,
    status: Field,
    payment_status: Field,
    search: Field,
    from: Field,
    to: Field,
    rows: Vec<OrderRowView>,
    filtered: bool,
    pager: Pager,
}

/// The most an order-number-or-email search box takes.
const MAX_SEARCH: usize = 254;
const DAY: i64 = 86_400_000_000;

/// The filters asked for, or the errors naming the fields.
fn order_query(q: &FormData, may_search_email: bool) -> Result<OrderQuery, Errors> {
    let mut errors = Errors::default();
    // Unknown statuses (not offered by the selects) are ignored.
    let status = OrderStatus::ALL.into_iter().find(|s| s.as_str() == q.get("status")).map(|s| s.as_str().to_owned());
    let payment_status = PaymentStatus::ALL.into_iter().find(|s| s.as_str() == q.get("payment_status")).map(|s| s.as_str().to_owned());
    let mut query = OrderQuery { status, payment_status, ..Default::default() };
    let search = q.get("q");
    let number = search.strip_prefix('#').unwrap_or(search).trim();
    if search.chars().count() > MAX_SEARCH {
        errors.add("q", format!("Enter at most {MAX_SEARCH} characters"));
    } else if !number.is_empty() && number.len() <= 18 && number.bytes().all(|b| b.is_ascii_digit()) {
        query.number = number.parse().ok();
    } else if search.contains('@') {
        if may_search_email {
            query.email = Some(search.to_owned());
        } else {
            errors.add("q", "Your role cannot search by customer email (it needs customers.read); enter an order number");
        }
    } else if !search.is_empty() {
        errors.add("q", "Enter an order number such as 1001, or a customer's full email address");
    }
    let date = |name: &str, errors: &mut Errors| {
        let raw = q.get(name);
        if raw.is_empty() {
            return None;
        }
        let d = keel_domain::time::parse_date_start(raw);
        if d.is_none() {
            errors.add(name, "Enter a date such as 2026-12-02");
        }
        d
    };
    query.placed_from = date("from", &mut errors);
    let to = date("to", &mut errors);
    query.placed_before = to.map(|d| d + DAY);
    if let (Some(f), Some(t)) = (query.placed_from, to) {
        if t < f {
            errors.add("to", "The end date must not be before the start date");
        }
    }
    if errors.is_empty() {
        Ok(query)
    } else {
        Err(errors)
    }
}

fn options<T: Copy>(all: &[T], value: fn(T) -> &'static str, words: fn(T) -> (&'static str, &'static str), any: &str) -> Vec<(String, String)> {
    let mut o = vec![(String::new(), any.to_owned())];
    o.extend(all.iter().map(|s| (value(*s).to_owned(), words(*s).0.to_owned())));
    o
}

async fn list(State(state): State<AppState>, staff: StaffUser, RawQuery(raw): RawQuery) -> Response {
    let q = FormData::parse(raw.unwrap_or_default().as_bytes());
    let page = page_number(Some(q.get("page")));
    let may_see = staff.viewer().sees_personal_data();
    let parsed = order_query(&q, may_see);
    let keep = |name: &str| q.get(name).chars().take(MAX_SEARCH).collect::<String>();
    let (status_v, payment_v, search_v, from_v, to_v) = (keep("status"), keep("payment_status"), keep("q"), keep("from"), keep("to"));
    let known = |v: &str, all: &[&str]| if all.contains(&v) { v.to_owned() } else { String::new() };
    let status_known = known(&status_v, &OrderStatus::ALL.map(OrderStatus::as_str)[..]);
    let payment_known = known(&payment_v, &PaymentStatus::ALL.map(PaymentStatus::as_str)[..]);
    let mut status = Field::new("status", "Status", "select", "off")
        .value(status_known)
        .options(options(&OrderStatus::ALL, OrderStatus::as_str, status_words, "Any status"))
        .optional();
    let mut payment_status = Field::new("payment_status", "Payment", "select", "off")
        .value(payment_known)
        .options(options(&PaymentStatus::ALL, PaymentStatus::as_str, payment_words, "Any payment status"))
        .optional();
    let search_label = if may_see { "Order number or customer email" } else { "Order number" };
    let mut search = Field::new("q", search_label, "search", "off").value(search_v.clone()).optional();
    if may_see {
        search = search.hint("An email must be typed in full: emails are stored encrypted.");
    }
    let mut from = Field::new("from", "Placed from", "date", "off").value(from_v.clone()).optional();
    let mut to = Field::new("to", "Placed to", "date", "off").value(to_v.clone()).optional();
    let (rows, has_next, problems, status_code) = match parsed {
        Ok(query) => match state.app.order_summaries(&query, Pager::offset(page), PER_PAGE + 1).await {
            Ok(found) => {
                let found = staff.viewer().show(found);
                let has_next = found.len() as i64 > PER_PAGE;
                let rows = found.iter().take(PER_PAGE as usize).map(|o| OrderRowView::new(o, may_see)).collect();
                (rows, has_next, Vec::new(), StatusCode::OK)
            }
            Err(AppError::Invalid(i)) => {
                let mut errors = Errors::default();
                errors.add("q", if i.field == "email" { "Enter a full email address such as name@example.com".to_owned() } else { i.message });
                let problems = errors.apply(&mut [&mut search]);
                (Vec::new(), false, problems, StatusCode::UNPROCESSABLE_ENTITY)
            }
            Err(e) => return error_page(&e),
        },
        Err(errors) => {
            let problems = errors.apply(&mut [&mut status, &mut payment_status, &mut search, &mut from, &mut to]);
            (Vec::new(), false, problems, StatusCode::UNPROCESSABLE_ENTITY)
        }
    };
    let filtered = [&status_v, &payment_v, &search_v, &from_v, &to_v].iter().any(|v| !v.is_empty());
    let pager = Pager::new(
        "/admin/orders",
        &[("status", &status.value), ("payment_status", &payment_status.value), ("q", &search_v), ("from", &from_v), ("to", &to_v)],
        page,
        has_next,
    );
    let page = ListPage { layout: staff.layout("Orders"), problems, status, payment_status, search, from, to, rows, filtered, pager };
    html(status_code, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(s: &str, email: bool) -> Result<OrderQuery, Errors> {
        order_query(&FormData::parse(s.as_bytes()), email)
    }

    #[test]
    fn the_search_box_takes_a_number_or_a_whole_email() {
        assert_eq!(query("q=%231001", true).ok().unwrap().number, Some(1001));
        assert_eq!(query("q=ada%40example.com", true).ok().unwrap().email.as_deref(), Some("ada@example.com"));
        assert!(query("q=ada%40example.com", false).unwrap_err().get("q").is_some(), "no email search without customers.read");
        assert!(query("q=ada", true).unwrap_err().get("q").is_some());
        assert_eq!(query("status=bogus&payment_status=captured", true).ok().unwrap().status, None);
    }

    #[test]
    fn dates_cover_whole_days() {
        let q = query("from=2026-12-01&to=2026-12-01", true).ok().unwrap();
        assert_eq!(q.placed_before.unwrap() - q.placed_from.unwrap(), DAY);
        assert!(query("from=2026-12-02&to=2026-12-01", true).unwrap_err().get("to").is_some());
        assert!(query("from=yesterday", true).unwrap_err().get("from").is_some());
    }
}

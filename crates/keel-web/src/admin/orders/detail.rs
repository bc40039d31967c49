//! One order: what was bought, the money, the refunds and the timeline, and
//! the actions its state allows (capture, cancel, refund) for roles that
//! may change orders. Each action is one keel-app use case; a state that
//! moved on meanwhile is a 409 page, a bad refund amount the form again
//! with 422.

use super::{customer_email, order_path, Badge};
use crate::access::Permission;
use crate::admin::inventory::actor_label;
use crate::admin::{error_page, flash, html, message, when, Layout, StaffForm, StaffUser};
use crate::storefront::form::{Errors, Field, Problem};
use crate::storefront::{decimal_amount, format_money, parse_amount};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use keel_app::orders::admin::{OrderDetail, TimelineLine};
use keel_app::orders::{OrderView, RefundInput};
use keel_app::AppError;
use keel_domain::orders::{apply, OrderEvent, OrderState, OrderStatus, PaymentStatus};
use keel_domain::time::parse_rfc3339;
use serde_json::Value;

/// The most characters a refund reason takes (as the use case).
const MAX_REASON: usize = 500;

struct LineView {
    sku: String,
    title: String,
    quantity: i64,
    unit_price: String,
    total: String,
}

struct RefundRowView {
    when: String,
    amount: String,
    reason: String,
    status: String,
}

struct EventView {
    when: String,
    what: String,
    by: String,
}

/// The totals as the page lists them: (label, amount).
struct TotalView {
    label: &'static str,
    amount: String,
}

#[derive(Template)]
#[template(path = "admin/orders_detail.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    number: i64,
    status: Badge,
    payment_status: Badge,
    placed_at: String,
    updated_at: String,
    email: String,
    customer_id: Option<String>,
    /// Address lines; empty when none was given.
    address: Vec<String>,
    may_see_customer: bool,
    lines: Vec<LineView>,
    totals: Vec<TotalView>,
    total: String,
    provider: String,
    payment_id: String,
    captured: String,
    refunded: String,
    /// Minor units, sent back with the refund form as its guard.
    refunded_minor: i64,
    refundable: String,
    currency: String,
    /// An amount typed as this currency wants it (`12.50`, `1250` for JPY).
    amount_example: String,
    refunds: Vec<RefundRowView>,
    timeline: Vec<EventView>,
    can_write: bool,
    capture: Option<String>,
    cancel: Option<String>,
    can_refund: bool,
    problems: Vec<Problem>,
    amount: Field,
    reason: Field,
}

/// The refund form as submitted (or blank: the refundable remainder).
#[derive(Default)]
struct RefundValues {
    amount: Option<String>,
    reason: String,
}

fn state_of(o: &OrderView) -> Option<OrderState> {
    Some(OrderState {
        status: OrderStatus::parse("status", &o.status).ok()?,
        payment: PaymentStatus::parse("payment_status", &o.payment_status).ok()?,
    })
}

fn refundable(o: &OrderView) -> i64 {
    (o.payment.amount_captured - o.payment.amount_refunded).max(0)
}

/// What cancelling does to this order, said next to the button; `None`
/// when its state does not allow it.
fn cancel_effect(o: &OrderView, st: OrderState) -> Option<String> {
    apply(st, OrderEvent::Cancel).ok()?;
    let mut parts = Vec::new();
    if o.reservation_id.is_some() {
        parts.push("the reserved stock goes back on sale".to_owned());
    }
    let left = refundable(o);
    match st.payment {
        PaymentStatus::Authorized => parts.push(format!(
            "the payment authorization of {} is voided, so the customer is not charged",
            format_money(o.totals.total, &o.currency)
        )),
        PaymentStatus::Captured | PaymentStatus::PartiallyRefunded if left > 0 => {
            parts.push(format!("{} still captured is refunded to the customer", format_money(left, &o.currency)))
        }
        _ => parts.push("no payment changes".to_owned()),
    }
    Some(format!("Cancelling cannot be undone: {}.", parts.join("; ")))
}

/// What capturing does, or `None` unless the payment is only authorized.
fn capture_effect(o: &OrderView, st: OrderState) -> Option<String> {
    if st.payment != PaymentStatus::Authorized || apply(st, OrderEvent::Capture).is_err() {
        return None;
    }
    Some(format!("Charges the customer the authorized {}.", format_money(o.totals.total, &o.currency)))
}

fn money_at(payload: &Value, pointer: &str, currency: &str) -> Option<String> {
    payload.pointer(pointer).and_then(Value::as_i64).map(|n| format_money(n, currency))
}

/// What an order event means, in words.
fn event_words(e: &TimelineLine, currency: &str) -> String {
    let p = &e.payload;
    let money = |ptr: &str| money_at(p, ptr, currency).unwrap_or_else(|| "an amount".into());
    let payment = p.get("payment_status").and_then(Value::as_str).unwrap_or("");
    match e.kind.as_str() {
        "order.created" => format!("Order placed; payment of {} authorized", money("/total")),
        "order.paid" => format!("Payment of {} captured", money("/amount_captured")),
        "refund.created" => match money_at(p, "/detail/amount", currency) {
            Some(a) => format!("Refund of {a} issued"),
            None => format!("Refund recorded by the payment provider; {} refunded in all", money("/amount_refunded")),
        },
        "order.cancelled" => match payment {
            "voided" => "Order cancelled; stock released and the payment authorization voided".into(),
            "refunded" => format!("Order cancelled; stock released and the payment refunded ({} in all)", money("/amount_refunded")),
            _ => "Order cancelled; stock released".into(),
        },
        other => format!("Event {other}"),
    }
}

/// A refund's status as the provider reported it, in words.
fn refund_status_words(s: &str) -> &str {
    match s {
        "succeeded" => "Succeeded",
        "pending" => "Pending",
        "failed" => "Failed",
        "canceled" | "cancelled" => "Cancelled",
        other => other,
    }
}

fn address_lines(a: &keel_app::carts::Address) -> Vec<String> {
    let mut lines = vec![a.name.clone(), a.line1.clone()];
    lines.extend(a.line2.iter().filter(|l| !l.is_empty()).cloned());
    let region = a.region.as_deref().filter(|r| !r.is_empty()).map(|r| format!(", {r}")).unwrap_or_default();
    lines.push(format!("{}{region} {}", a.city, a.postal_code));
    lines.push(a.country.clone());
    lines.extend(a.phone.iter().filter(|p| !p.is_empty()).map(|p| format!("Phone: {p}")));
    lines
}

fn render(staff: &StaffUser, d: OrderDetail, values: RefundValues, errors: &Errors, status: StatusCode) -> Response {
    let o = &d.order;
    let cur = o.currency.as_str();
    let may_see = staff.viewer().sees_personal_data();
    let can_write = staff.can(Permission::OrdersWrite);
    let st = state_of(o);
    let left = refundable(o);
    let can_refund = can_write && st.is_some_and(|s| s.payment.was_captured()) && left > 0;
    let mut amount = Field::new("amount", "Amount", "text", "off")
        .value(values.amount.unwrap_or_else(|| decimal_amount(left, cur)))
        .inputmode("decimal");
    let mut reason = Field::new("reason", "Reason", "text", "off").value(values.reason).optional();
    let problems = errors.apply(&mut [&mut amount, &mut reason]);
    let t = &o.totals;
    let mut totals = vec![TotalView { label: "Subtotal", amount: format_money(t.subtotal, cur) }];
    if t.discount_total != 0 {
        totals.push(TotalView { label: "Discount", amount: format!("\u{2212}{}", format_money(t.discount_total, cur)) });
    }
    totals.push(TotalView { label: "Shipping", amount: format_money(t.shipping_total, cur) });
    totals.push(TotalView { label: if t.tax_inclusive { "Tax (included)" } else { "Tax" }, amount: format_money(t.tax_total, cur) });
    let page = DetailPage {
        layout: staff.layout(format!("Order #{}", o.number)),
        id: o.id.clone(),
        number: o.number,
        status: st.map_or(Badge { words: "Unknown", class: "bad" }, |s| Badge::order(s.status)),
        payment_status: st.map_or(Badge { words: "Unknown", class: "bad" }, |s| Badge::payment(s.payment)),
        placed_at: parse_rfc3339(&o.created_at).map(when).unwrap_or_default(),
        updated_at: parse_rfc3339(&o.updated_at).map(when).unwrap_or_default(),
        email: customer_email(o.email.as_deref(), may_see),
        customer_id: o.customer_id.clone(),
        address: if may_see { o.shipping_address.as_ref().map(address_lines).unwrap_or_default() } else { Vec::new() },
        may_see_customer: may_see,
        lines: o
            .lines
            .iter()
            .map(|l| LineView {
                sku: l.sku.clone(),
                title: l.title.clone(),
                quantity: l.quantity,
                unit_price: format_money(l.unit_amount, cur),
                total: format_money(l.total, cur),
            })
            .collect(),
        totals,
        total: format_money(t.total, cur),
        provider: o.payment.provider.clone(),
        payment_id: o.payment.id.clone().unwrap_or_default(),
        captured: format_money(o.payment.amount_captured, cur),
        refunded: format_money(o.payment.amount_refunded, cur),
        refunded_minor: o.payment.amount_refunded,
        refundable: format_money(left, cur),
        currency: o.currency.clone(),
        amount_example: decimal_amount(1250, cur),
        refunds: o
            .refunds
            .iter()
            .map(|r| RefundRowView {
                when: parse_rfc3339(&r.created_at).map(when).unwrap_or_default(),
                amount: format_money(r.amount, cur),
                reason: r.reason.clone().unwrap_or_default(),
                status: refund_status_words(&r.status).to_owned(),
            })
            .collect(),
        timeline: d
            .timeline
            .iter()
            .map(|e| EventView {
                when: when(e.occurred_at),
                what: event_words(e, cur),
                by: e.actor.as_deref().map_or_else(|| "Not recorded".to_owned(), |a| actor_label(a, e.staff_email.as_deref())),
            })
            .collect(),
        can_write,
        capture: st.filter(|_| can_write).and_then(|s| capture_effect(o, s)),
        cancel: st.filter(|_| can_write).and_then(|s| cancel_effect(o, s)),
        can_refund,
        problems,
        amount,
        reason,
    };
    html(status, &page)
}

async fn load(state: &AppState, staff: &StaffUser, id: &str) -> Result<OrderDetail, Response> {
    match state.app.order_detail(id).await {
        Ok(d) => Ok(staff.viewer().show(d)),
        Err(AppError::NotFound { .. } | AppError::Invalid(_)) => Err(crate::admin::not_found("order")),
        Err(e) => Err(error_page(&e)),
    }
}

pub async fn show(State(state): State<AppState>, staff: StaffUser, Path(order_id): Path<String>) -> Response {
    match load(&state, &staff, &order_id).await {
        Ok(d) => render(&staff, d, RefundValues::default(), &Errors::default(), StatusCode::OK),
        Err(r) => r,
    }
}

/// A use case's refusal: 404, 409 for a state that does not allow the
/// action (or a provider that refused it), anything else as usual.
fn refused(e: &AppError) -> Response {
    match e {
        AppError::Conflict { message: m, .. } => {
            message(StatusCode::CONFLICT, "Not done", format!("The order could not be changed: {m}. Reload the order to see its current state."))
        }
        AppError::PaymentDeclined { message: m, .. } => {
            message(StatusCode::CONFLICT, "Not done", format!("The payment provider refused: {m}. Nothing was changed."))
        }
        _ => error_page(e),
    }
}

pub async fn capture(State(state): State<AppState>, Path(order_id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.capture_order(&staff.actor(), &order_id, None).await {
        Ok(o) => {
            let text = format!("Payment captured: {} for order #{}.", format_money(o.payment.amount_captured, &o.currency), o.number);
            flash(&state, &order_path(&o.id), &text)
        }
        Err(AppError::NotFound { .. }) => crate::admin::not_found("order"),
        Err(e) => refused(&e),
    }
}

pub async fn cancel(State(state): State<AppState>, Path(order_id): Path<String>, StaffForm { staff, .. }: StaffForm) -> Response {
    match state.app.cancel_order(&staff.actor(), &order_id).await {
        Ok(o) => {
            let payment = match o.payment_status.as_str() {
                "voided" => "; the payment authorization was voided",
                "refunded" => "; the captured payment was refunded",
                _ => "",
            };
            let text = format!("Order #{} cancelled: its stock was released{payment}.", o.number);
            flash(&state, &order_path(&o.id), &text)
        }
        Err(AppError::NotFound { .. }) => crate::admin::not_found("order"),
        Err(e) => refused(&e),
    }
}

/// The refund the form asks for in minor units, or the form's errors.
fn refund_input(amount: &str, reason: &str, currency: &str, refundable: i64, expected_refunded: i64) -> Result<RefundInput, Errors> {
    let mut errors = Errors::default();
    let most = format_money(refundable, currency);
    match parse_amount(amount, currency) {
        _ if amount.is_empty() => errors.add("amount", format!("Enter an amount, at most {most}")),
        None => errors.add("amount", format!("Enter an amount such as {}", decimal_amount(refundable.min(1250), currency))),
        Some(0) => errors.add("amount", "Enter an amount above 0"),
        Some(n) if n > refundable => errors.add("amount", format!("The amount must be at most {most}, what is left to refund")),
        Some(_) => {}
    }
    if reason.chars().count() > MAX_REASON {
        errors.add("reason", format!("Reason must be at most {MAX_REASON} characters"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RefundInput {
        amount: parse_amount(amount, currency),
        reason: Some(reason.to_owned()).filter(|r| !r.is_empty()),
        expected_amount_refunded: Some(expected_refunded),
    })
}

pub async fn refund(State(state): State<AppState>, Path(order_id): Path<String>, StaffForm { staff, form }: StaffForm) -> Response {
    let d = match load(&state, &staff, &order_id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let values = RefundValues { amount: Some(form.get("amount").to_owned()), reason: form.get("reason").to_owned() };
    let left = refundable(&d.order);
    if left <= 0 || !state_of(&d.order).is_some_and(|s| s.payment.was_captured()) {
        return message(
            StatusCode::CONFLICT,
            "Not done",
            format!("Order #{} has no captured amount left to refund. Nothing was changed.", d.order.number),
        );
    }
    // The refunded total the form was rendered with: a second submission of
    // the same form (a double click, a resent request) is refused, not paid
    // twice. A form without it is checked against what was read just now.
    let expected = form.get("expected_amount_refunded").parse::<i64>().unwrap_or(d.order.payment.amount_refunded);
    let number = d.order.number;
    let input = match refund_input(form.get("amount"), form.get("reason"), &d.order.currency, left, expected) {
        Ok(i) => i,
        Err(errors) => return render(&staff, d, values, &errors, StatusCode::UNPROCESSABLE_ENTITY),
    };
    let amount = input.amount.unwrap_or(left);
    match state.app.refund_order(&staff.actor(), &order_id, input).await {
        Ok(o) => {
            let text = format!("Refunded {} on order #{}.", format_money(amount, &o.currency), o.number);
            flash(&state, &order_path(&o.id), &text)
        }
        Err(AppError::Invalid(i)) => {
            // The order changed between the read above and the use case.
            let field = if i.field == "reason" { "reason" } else { "amount" };
            let mut errors = Errors::default();
            errors.add(field, format!("{} {}", if field == "reason" { "Reason" } else { "Amount" }, i.message));
            match load(&state, &staff, &order_id).await {
                Ok(d) => render(&staff, d, values, &errors, StatusCode::UNPROCESSABLE_ENTITY),
                Err(r) => r,
            }
        }
        Err(AppError::NotFound { .. }) => crate::admin::not_found("order"),
        Err(AppError::Conflict { code: "stale_refund", .. }) => message(
            StatusCode::CONFLICT,
            "Not done",
            format!(
                "Order #{number} was refunded since this page was shown (perhaps by this form sent twice), so this refund was not made. Reload the order to see what is left to refund."
            ),
        ),
        Err(e) => refused(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_amounts_are_typed_in_the_shop_currency() {
        let ok = refund_input("12.50", "damaged", "USD", 3850, 0).ok().unwrap();
        assert_eq!((ok.amount, ok.reason.as_deref(), ok.expected_amount_refunded), (Some(1250), Some("damaged"), Some(0)));
        assert_eq!(refund_input("38.50", "", "USD", 3850, 0).ok().unwrap().reason, None);
        for bad in ["", "0", "38.51", "12.505", "-1", "abc"] {
            assert!(refund_input(bad, "", "USD", 3850, 0).unwrap_err().get("amount").is_some(), "{bad}");
        }
        assert!(refund_input("1", &"x".repeat(501), "USD", 3850, 0).unwrap_err().get("reason").is_some());
    }
}

//! The order state machine: what an order's status and its payment status
//! become on each event.
//!
//! As on Shopify, an order carries two statuses: how far it has got towards
//! the customer (`OrderStatus`) and what happened to the money
//! (`PaymentStatus`). They move on separate events — a capture can happen
//! before or after fulfilment, a refund at any time after a capture — but they
//! are not independent: a paid order has captured money, a cancelled order's
//! authorization is void. `OrderState::is_consistent` names the combinations
//! that can exist, `apply` only ever moves between them, and it refuses to move
//! from any other, so a corrupt row cannot spread.
//!
//! Orders are created once a payment is authorized, so `Pending` is the brief
//! moment before that authorization (or its failure) is recorded.

use crate::Invalid;
use serde::{Deserialize, Serialize};

/// How far the order has got towards the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Authorized,
    Paid,
    PartiallyFulfilled,
    Fulfilled,
    Delivered,
    Completed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        Self::Pending, Self::Authorized, Self::Paid, Self::PartiallyFulfilled, Self::Fulfilled,
        Self::Delivered, Self::Completed, Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Authorized => "authorized",
            Self::Paid => "paid",
            Self::PartiallyFulfilled => "partially_fulfilled",
            Self::Fulfilled => "fulfilled",
            Self::Delivered => "delivered",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Invalid::new(field, "invalid_status", format!("unknown order status `{s}`")))
    }

    /// Completed and cancelled orders never change status again; refunds can
    /// still move their payment (returns after completion, a paid order
    /// cancelled before shipping).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

/// What happened to the order's money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Authorized,
    Captured,
    PartiallyRefunded,
    Refunded,
    Voided,
    Failed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 7] = [
        Self::Pending, Self::Authorized, Self::Captured, Self::PartiallyRefunded, Self::Refunded,
        Self::Voided, Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Authorized => "authorized",
            Self::Captured => "captured",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Voided => "voided",
            Self::Failed => "failed",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Invalid::new(field, "invalid_status", format!("unknown payment status `{s}`")))
    }

    /// Money was taken from the customer, whether or not some or all of it
    /// has been given back since.
    pub fn was_captured(self) -> bool {
        matches!(self, Self::Captured | Self::PartiallyRefunded | Self::Refunded)
    }
}

/// Something that happened to an order, as reported by the payment provider,
/// the warehouse, the carrier or a merchant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    Authorize,
    Capture,
    FulfillSome,
    FulfillAll,
    Deliver,
    Complete,
    Cancel,
    /// `full` when the refund brings the refunded amount up to the captured
    /// amount; the caller keeps the amounts, this machine only the status.
    Refund { full: bool },
    PaymentFailed,
}

impl OrderEvent {
    pub const ALL: [OrderEvent; 10] = [
        Self::Authorize, Self::Capture, Self::FulfillSome, Self::FulfillAll, Self::Deliver,
        Self::Complete, Self::Cancel, Self::Refund { full: false }, Self::Refund { full: true },
        Self::PaymentFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Capture => "capture",
            Self::FulfillSome => "fulfill_some",
            Self::FulfillAll => "fulfill_all",
            Self::Deliver => "deliver",
            Self::Complete => "complete",
            Self::Cancel => "cancel",
            Self::Refund { full: false } => "partial_refund",
            Self::Refund { full: true } => "refund",
            Self::PaymentFailed => "payment_failed",
        }
    }
}

/// Both statuses of one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderState {
    pub status: OrderStatus,
    pub payment: PaymentStatus,
}

impl OrderState {
    /// A new order: nothing authorized, nothing fulfilled.
    pub const fn new() -> Self {
        Self { status: OrderStatus::Pending, payment: PaymentStatus::Pending }
    }

    /// The combinations `apply` can reach from `new()` (the tests check it is
    /// exactly that set). Anything else is a corrupt row.
    pub fn is_consistent(self) -> bool {
        use OrderStatus as S;
        use PaymentStatus as P;
        match self.status {
            S::Pending => self.payment == P::Pending,
            S::Authorized => self.payment == P::Authorized,
            // Paid means the money was captured; completing needs it too.
            S::Paid | S::Completed => self.payment.was_captured(),
            // Fulfilment may run ahead of the capture (capture on shipment).
            S::PartiallyFulfilled | S::Fulfilled | S::Delivered => {
                self.payment == P::Authorized || self.payment.was_captured()
            }
            // Voided or failed before capture, or captured and maybe refunded.
            S::Cancelled => matches!(self.payment, P::Voided | P::Failed) || self.payment.was_captured(),
        }
    }

    /// No event can change this order any more: its status is terminal and
    /// there is no captured money left to refund.
    pub fn is_terminal(self) -> bool {
        self.status.is_terminal() && !matches!(self.payment, PaymentStatus::Captured | PaymentStatus::PartiallyRefunded)
    }
}

impl Default for OrderState {
    fn default() -> Self {
        Self::new()
    }
}

/// Why an event cannot be applied to an order in its current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot apply {} to an order that is {} with payment {}: {reason}",
    .event.as_str(),
    .from.status.as_str(),
    .from.payment.as_str()
)]
pub struct TransitionRefused {
    pub from: OrderState,
    pub event: OrderEvent,
    pub reason: &'static str,
}

/// The one rule for moving an order: the state after `event`, or why not.
///
/// Allowed moves:
/// - `Authorize`: (pending, pending) → (authorized, authorized).
/// - `PaymentFailed`: (pending, pending) → (cancelled, failed). Orders exist
///   only for authorized payments, so a failure before that ends the order.
/// - `Capture`: payment authorized → captured; an authorized order becomes
///   paid, a (partially) fulfilled or delivered one keeps its status
///   (capture on fulfilment).
/// - `FulfillSome` / `FulfillAll`: from authorized, paid or partially
///   fulfilled → partially fulfilled / fulfilled; the payment is unchanged.
/// - `Deliver`: fulfilled → delivered. `Complete`: delivered → completed, once
///   the money was captured.
/// - `Cancel`: only before anything was fulfilled. A pending or authorized
///   payment becomes voided (nothing will be taken); a captured one stays as
///   it is, because giving money back is a separate `Refund` with an amount.
/// - `Refund`: payment captured or partially refunded → partially refunded or
///   refunded; the order status is unchanged (a cancelled order stays
///   cancelled, a completed one completed).
pub fn apply(state: OrderState, event: OrderEvent) -> Result<OrderState, TransitionRefused> {
    use OrderStatus as S;
    use PaymentStatus as P;
    let refuse = |reason| Err(TransitionRefused { from: state, event, reason });
    let to = |status, payment| Ok(OrderState { status, payment });
    if !state.is_consistent() {
        return refuse("the order's status and payment status contradict each other");
    }
    let OrderState { status, payment } = state;
    match event {
        OrderEvent::Authorize => match status {
            S::Pending => to(S::Authorized, P::Authorized),
            S::Cancelled => refuse("the order is cancelled"),
            _ => refuse("the payment is already authorized"),
        },
        OrderEvent::PaymentFailed => match status {
            S::Pending => to(S::Cancelled, P::Failed),
            _ => refuse("a payment can only fail before it is authorized; later, cancel or refund"),
        },
        OrderEvent::Capture => match (status, payment) {
            (S::Authorized, P::Authorized) => to(S::Paid, P::Captured),
            (S::PartiallyFulfilled | S::Fulfilled | S::Delivered, P::Authorized) => to(status, P::Captured),
            (_, P::Pending) => refuse("there is no authorization to capture"),
            (_, P::Voided) => refuse("the authorization was voided"),
            (_, P::Failed) => refuse("the payment failed"),
            _ => refuse("the payment is already captured"),
        },
        OrderEvent::FulfillSome | OrderEvent::FulfillAll => match status {
            S::Authorized | S::Paid | S::PartiallyFulfilled => {
                let next = if event == OrderEvent::FulfillAll { S::Fulfilled } else { S::PartiallyFulfilled };
                to(next, payment)
            }
            S::Pending => refuse("the payment is not authorized yet"),
            S::Cancelled => refuse("the order is cancelled"),
            S::Fulfilled | S::Delivered | S::Completed => refuse("the order is already fulfilled"),
        },
        OrderEvent::Deliver => match status {
            S::Fulfilled => to(S::Delivered, payment),
            S::PartiallyFulfilled => refuse("only part of the order is fulfilled"),
            S::Delivered | S::Completed => refuse("the order is already delivered"),
            S::Cancelled => refuse("the order is cancelled"),
            S::Pending | S::Authorized | S::Paid => refuse("nothing is fulfilled yet"),
        },
        OrderEvent::Complete => match status {
            S::Delivered if payment.was_captured() => to(S::Completed, payment),
            S::Delivered => refuse("the payment is not captured yet"),
            S::Completed => refuse("the order is already completed"),
            _ => refuse("only a delivered order can be completed"),
        },
        OrderEvent::Cancel => match status {
            S::Pending | S::Authorized => to(S::Cancelled, P::Voided),
            S::Paid => to(S::Cancelled, payment),
            S::PartiallyFulfilled | S::Fulfilled | S::Delivered => {
                refuse("fulfilment has started; refund what is not shipped instead")
            }
            S::Completed => refuse("the order is completed"),
            S::Cancelled => refuse("the order is already cancelled"),
        },
        OrderEvent::Refund { full } => match payment {
            P::Captured | P::PartiallyRefunded => to(status, if full { P::Refunded } else { P::PartiallyRefunded }),
            P::Refunded => refuse("the payment is already fully refunded"),
            P::Authorized => refuse("the payment is only authorized; cancelling voids it, there is nothing to refund"),
            P::Pending | P::Voided | P::Failed => refuse("no money was captured"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashSet, VecDeque};
    use OrderEvent as E;
    use OrderStatus as S;
    use PaymentStatus as P;

    const PART: E = E::Refund { full: false };
    const FULL: E = E::Refund { full: true };

    /// Every allowed move, written out by hand; anything not here is refused.
    #[rustfmt::skip]
    const ALLOWED: &[(S, P, E, S, P)] = &[
        (S::Pending, P::Pending, E::Authorize, S::Authorized, P::Authorized),
        (S::Pending, P::Pending, E::PaymentFailed, S::Cancelled, P::Failed),
        (S::Pending, P::Pending, E::Cancel, S::Cancelled, P::Voided),

        (S::Authorized, P::Authorized, E::Capture, S::Paid, P::Captured),
        (S::Authorized, P::Authorized, E::FulfillSome, S::PartiallyFulfilled, P::Authorized),
        (S::Authorized, P::Authorized, E::FulfillAll, S::Fulfilled, P::Authorized),
        (S::Authorized, P::Authorized, E::Cancel, S::Cancelled, P::Voided),

        (S::Paid, P::Captured, E::FulfillSome, S::PartiallyFulfilled, P::Captured),
        (S::Paid, P::Captured, E::FulfillAll, S::Fulfilled, P::Captured),
        (S::Paid, P::Captured, E::Cancel, S::Cancelled, P::Captured),
        (S::Paid, P::Captured, PART, S::Paid, P::PartiallyRefunded),
        (S::Paid, P::Captured, FULL, S::Paid, P::Refunded),
        (S::Paid, P::PartiallyRefunded, E::FulfillSome, S::PartiallyFulfilled, P::PartiallyRefunded),
        (S::Paid, P::PartiallyRefunded, E::FulfillAll, S::Fulfilled, P::PartiallyRefunded),
        (S::Paid, P::PartiallyRefunded, E::Cancel, S::Cancelled, P::PartiallyRefunded),
        (S::Paid, P::PartiallyRefunded, PART, S::Paid, P::PartiallyRefunded),
        (S::Paid, P::PartiallyRefunded, FULL, S::Paid, P::Refunded),
        (S::Paid, P::Refunded, E::FulfillSome, S::PartiallyFulfilled, P::Refunded),
        (S::Paid, P::Refunded, E::FulfillAll, S::Fulfilled, P::Refunded),
        (S::Paid, P::Refunded, E::Cancel, S::Cancelled, P::Refunded),

        (S::PartiallyFulfilled, P::Authorized, E::Capture, S::PartiallyFulfilled, P::Captured),
        (S::PartiallyFulfilled, P::Authorized, E::FulfillSome, S::PartiallyFulfilled, P::Authorized),
        (S::PartiallyFulfilled, P::Authorized, E::FulfillAll, S::Fulfilled, P::Authorized),
        (S::PartiallyFulfilled, P::Captured, E::FulfillSome, S::PartiallyFulfilled, P::Captured),
        (S::PartiallyFulfilled, P::Captured, E::FulfillAll, S::Fulfilled, P::Captured),
        (S::PartiallyFulfilled, P::Captured, PART, S::PartiallyFulfilled, P::PartiallyRefunded),
        (S::PartiallyFulfilled, P::Captured, FULL, S::PartiallyFulfilled, P::Refunded),
        (S::PartiallyFulfilled, P::PartiallyRefunded, E::FulfillSome, S::PartiallyFulfilled, P::PartiallyRefunded),
        (S::PartiallyFulfilled, P::PartiallyRefunded, E::FulfillAll, S::Fulfilled, P::PartiallyRefunded),
        (S::PartiallyFulfilled, P::PartiallyRefunded, PART, S::PartiallyFulfilled, P::PartiallyRefunded),
        (S::PartiallyFulfilled, P::PartiallyRefunded, FULL, S::PartiallyFulfilled, P::Refunded),
        (S::PartiallyFulfilled, P::Refunded, E::FulfillSome, S::PartiallyFulfilled, P::Refunded),
        (S::PartiallyFulfilled, P::Refunded, E::FulfillAll, S::Fulfilled, P::Refunded),

        (S::Fulfilled, P::Authorized, E::Capture, S::Fulfilled, P::Captured),
        (S::Fulfilled, P::Authorized, E::Deliver, S::Delivered, P::Authorized),
        (S::Fulfilled, P::Captured, E::Deliver, S::Delivered, P::Captured),
        (S::Fulfilled, P::Captured, PART, S::Fulfilled, P::PartiallyRefunded),
        (S::Fulfilled, P::Captured, FULL, S::Fulfilled, P::Refunded),
        (S::Fulfilled, P::PartiallyRefunded, E::Deliver, S::Delivered, P::PartiallyRefunded),
        (S::Fulfilled, P::PartiallyRefunded, PART, S::Fulfilled, P::PartiallyRefunded),
        (S::Fulfilled, P::PartiallyRefunded, FULL, S::Fulfilled, P::Refunded),
        (S::Fulfilled, P::Refunded, E::Deliver, S::Delivered, P::Refunded),

        (S::Delivered, P::Authorized, E::Capture, S::Delivered, P::Captured),
        (S::Delivered, P::Captured, E::Complete, S::Completed, P::Captured),
        (S::Delivered, P::Captured, PART, S::Delivered, P::PartiallyRefunded),
        (S::Delivered, P::Captured, FULL, S::Delivered, P::Refunded),
        (S::Delivered, P::PartiallyRefunded, E::Complete, S::Completed, P::PartiallyRefunded),
        (S::Delivered, P::PartiallyRefunded, PART, S::Delivered, P::PartiallyRefunded),
        (S::Delivered, P::PartiallyRefunded, FULL, S::Delivered, P::Refunded),
        (S::Delivered, P::Refunded, E::Complete, S::Completed, P::Refunded),

        (S::Completed, P::Captured, PART, S::Completed, P::PartiallyRefunded),
        (S::Completed, P::Captured, FULL, S::Completed, P::Refunded),
        (S::Completed, P::PartiallyRefunded, PART, S::Completed, P::PartiallyRefunded),
        (S::Completed, P::PartiallyRefunded, FULL, S::Completed, P::Refunded),

        (S::Cancelled, P::Captured, PART, S::Cancelled, P::PartiallyRefunded),
        (S::Cancelled, P::Captured, FULL, S::Cancelled, P::Refunded),
        (S::Cancelled, P::PartiallyRefunded, PART, S::Cancelled, P::PartiallyRefunded),
        (S::Cancelled, P::PartiallyRefunded, FULL, S::Cancelled, P::Refunded),
    ];

    fn st(status: S, payment: P) -> OrderState {
        OrderState { status, payment }
    }

    fn all_states() -> impl Iterator<Item = OrderState> {
        S::ALL.into_iter().flat_map(|s| P::ALL.into_iter().map(move |p| st(s, p)))
    }

    #[test]
    fn every_combination_matches_the_table() {
        let mut keys = HashSet::new();
        for &(s, p, e, ..) in ALLOWED {
            assert!(keys.insert((s, p, e)), "duplicate table row {s:?} {p:?} {e:?}");
        }
        let mut checked = 0;
        for from in all_states() {
            for event in E::ALL {
                let expected = ALLOWED
                    .iter()
                    .find(|(s, p, e, ..)| (*s, *p, *e) == (from.status, from.payment, event))
                    .map(|&(.., s, p)| st(s, p));
                match (apply(from, event), expected) {
                    (Ok(got), Some(want)) => assert_eq!(got, want, "{from:?} + {event:?}"),
                    (Err(refused), None) => {
                        assert_eq!((refused.from, refused.event), (from, event));
                        assert!(!refused.reason.is_empty());
                    }
                    (got, want) => panic!("{from:?} + {event:?}: got {got:?}, expected {want:?}"),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 8 * 7 * 10);
    }

    /// `is_consistent` is exactly the set reachable from a new order.
    #[test]
    fn consistent_states_are_the_reachable_ones() {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([OrderState::new()]);
        while let Some(s) = queue.pop_front() {
            if !seen.insert(s) {
                continue;
            }
            queue.extend(E::ALL.into_iter().filter_map(|e| apply(s, e).ok()));
        }
        for s in all_states() {
            assert_eq!(seen.contains(&s), s.is_consistent(), "{s:?}");
        }
        assert_eq!(seen.len(), 25);
    }

    #[test]
    fn terminal_means_nothing_applies() {
        for s in all_states().filter(|s| s.is_consistent()) {
            let moves: Vec<_> = E::ALL.into_iter().filter_map(|e| apply(s, e).ok()).collect();
            assert_eq!(s.is_terminal(), moves.is_empty(), "{s:?}");
            if s.status.is_terminal() {
                assert!(moves.iter().all(|m| m.status == s.status), "{s:?}");
            }
        }
        assert!(!OrderState::new().is_terminal());
        assert!(st(S::Completed, P::Refunded).is_terminal());
        assert!(!st(S::Completed, P::Captured).is_terminal());
    }

    #[test]
    fn refusals_say_why() {
        let e = apply(st(S::Authorized, P::Authorized), FULL).unwrap_err();
        assert!(e.reason.contains("only authorized"));
        assert_eq!(
            e.to_string(),
            "cannot apply refund to an order that is authorized with payment authorized: \
             the payment is only authorized; cancelling voids it, there is nothing to refund"
        );
        let e = apply(st(S::Fulfilled, P::Captured), E::Cancel).unwrap_err();
        assert!(e.reason.contains("fulfilment has started"));
        let e = apply(st(S::Paid, P::Authorized), E::Capture).unwrap_err();
        assert!(e.reason.contains("contradict"));
    }

    #[test]
    fn strings_round_trip() {
        for s in S::ALL {
            assert_eq!(S::parse("status", s.as_str()), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for p in P::ALL {
            assert_eq!(P::parse("payment_status", p.as_str()), Ok(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(S::PartiallyFulfilled.as_str(), "partially_fulfilled");
        assert_eq!(P::PartiallyRefunded.as_str(), "partially_refunded");
        let e = S::parse("status", "Paid").unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("status", "invalid_status"));
        let e = P::parse("payment_status", "settled").unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("payment_status", "invalid_status"));
        let json = serde_json::to_string(&st(S::Paid, P::Captured)).unwrap();
        assert_eq!(json, r#"{"status":"paid","payment":"captured"}"#);
    }

    /// Progress towards the customer; cancellation is outside this scale.
    fn progress(s: S) -> u8 {
        match s {
            S::Pending => 0,
            S::Authorized | S::Paid => 1,
            S::PartiallyFulfilled => 2,
            S::Fulfilled => 3,
            S::Delivered => 4,
            S::Completed => 5,
            S::Cancelled => u8::MAX,
        }
    }

    fn captured(p: P) -> bool {
        matches!(p, P::Captured | P::PartiallyRefunded | P::Refunded)
    }

    proptest! {
        /// Whatever events arrive, in whatever order, the order never reaches
        /// a state that contradicts itself, and never moves backwards.
        #[test]
        fn random_events_keep_orders_consistent(events in prop::collection::vec(0..E::ALL.len(), 0..60)) {
            let mut state = OrderState::new();
            for i in events {
                let event = E::ALL[i];
                let Ok(next) = apply(state, event) else { continue };
                let (s, p) = (next.status, next.payment);
                prop_assert!(next.is_consistent());
                prop_assert!(s != S::Pending || p == P::Pending);
                prop_assert!(s != S::Authorized || p == P::Authorized);
                prop_assert!(s != S::Paid || captured(p));
                prop_assert!(s != S::Completed || captured(p));
                prop_assert!(!matches!(p, P::Voided | P::Failed) || s == S::Cancelled);
                if state.status == S::Cancelled {
                    prop_assert!(matches!(event, E::Refund { .. }), "{:?} moved a cancelled order", event);
                    prop_assert_eq!(s, S::Cancelled);
                }
                if s == S::Cancelled {
                    // Cancelling is only possible before anything shipped.
                    prop_assert!(state.status == S::Cancelled || progress(state.status) <= 1);
                } else {
                    prop_assert!(progress(s) >= progress(state.status));
                }
                // Captured money stays captured; a full refund is final.
                prop_assert!(!captured(state.payment) || captured(p));
                prop_assert!(state.payment != P::Refunded || p == P::Refunded);
                state = next;
            }
        }
    }
}

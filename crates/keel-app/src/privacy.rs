//! Who may see customers' personal data, and the one rule that hides it.
//!
//! Personal data (a shopper's email, name, address, phone) is readable only
//! with `customers.read`. Orders, carts and the rest are readable with their
//! own permissions, so a view that carries personal data is passed through
//! [`Viewer::show`] before it leaves Keel, whatever the door (API, console):
//! for a viewer without `customers.read` every personal field is emptied.
//! Searching by a personal field needs the permission too
//! ([`Viewer::may_search_by`]), or a search would confirm what it hides.

use crate::carts::CartView;
use crate::orders::admin::{OrderDetail, OrderSummary};
use crate::orders::OrderView;
use crate::views::{EventView, Page};
use crate::webhooks::WebhookMessageView;
use crate::AppError;
use keel_domain::access::{allows, Permission, Role};
use serde_json::Value;

/// The caller a view is shown to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    personal_data: bool,
}

impl Viewer {
    /// A shopper looking at their own cart or order.
    pub const SHOPPER: Viewer = Viewer { personal_data: true };

    pub fn for_role(role: Role) -> Viewer {
        Viewer { personal_data: allows(role, Permission::CustomersRead) }
    }

    pub fn sees_personal_data(self) -> bool {
        self.personal_data
    }

    /// The view as this viewer may see it.
    pub fn show<T: Personal>(self, mut view: T) -> T {
        if !self.personal_data {
            view.redact();
        }
        view
    }

    /// Refuses (403) a search by the personal field `field`.
    pub fn may_search_by(self, field: &str) -> Result<(), AppError> {
        if self.personal_data {
            return Ok(());
        }
        Err(AppError::Forbidden { message: format!("searching by {field} needs the customers.read permission") })
    }
}

/// A view that may carry personal data; `redact` empties every such field.
pub trait Personal {
    fn redact(&mut self);
}

impl Personal for OrderView {
    fn redact(&mut self) {
        self.email = None;
        self.shipping_address = None;
    }
}

impl Personal for OrderSummary {
    fn redact(&mut self) {
        self.email = None;
    }
}

impl Personal for OrderDetail {
    fn redact(&mut self) {
        self.order.redact();
    }
}

impl Personal for CartView {
    fn redact(&mut self) {
        self.email = None;
        self.shipping_address = None;
    }
}

/// Event payloads are written without personal data (ids and field names
/// only); the keys below are emptied anyway, so a payload that ever gains
/// one is still not shown.
impl Personal for EventView {
    fn redact(&mut self) {
        redact_json(&mut self.data);
    }
}

impl Personal for WebhookMessageView {
    fn redact(&mut self) {
        redact_json(&mut self.payload);
    }
}

impl<T: Personal> Personal for Page<T> {
    fn redact(&mut self) {
        self.data.iter_mut().for_each(Personal::redact);
    }
}

impl<T: Personal> Personal for Vec<T> {
    fn redact(&mut self) {
        self.iter_mut().for_each(Personal::redact);
    }
}

impl<T: Personal> Personal for Option<T> {
    fn redact(&mut self) {
        if let Some(v) = self {
            v.redact();
        }
    }
}

/// Keys whose values are personal data wherever they appear in a JSON
/// document Keel shows.
const PERSONAL_KEYS: &[&str] =
    &["email", "phone", "shipping_address", "billing_address", "address", "first_name", "last_name", "customer_name"];

/// Replaces the value of every [`PERSONAL_KEYS`] key, at any depth, with
/// `null`.
pub fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if PERSONAL_KEYS.contains(&k.as_str()) {
                    *child = Value::Null;
                } else {
                    redact_json(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_roles_with_customers_read_see_personal_data() {
        for role in Role::ALL {
            assert_eq!(Viewer::for_role(role).sees_personal_data(), allows(role, Permission::CustomersRead), "{role:?}");
        }
        assert!(!Viewer::for_role(Role::InventoryManager).sees_personal_data(), "orders.read without customers.read");
        assert!(Viewer::for_role(Role::Fulfillment).sees_personal_data(), "shipping needs the address");
    }

    #[test]
    fn json_personal_keys_are_emptied_at_any_depth() {
        let mut v = json!({
            "id": "ord_1",
            "email": "a@example.com",
            "object": {"shipping_address": {"line1": "1 Main St"}, "lines": [{"sku": "A", "email": "b@example.com"}]},
            "changed": ["email", "phone"],
        });
        redact_json(&mut v);
        assert_eq!(
            v,
            json!({
                "id": "ord_1",
                "email": null,
                "object": {"shipping_address": null, "lines": [{"sku": "A", "email": null}]},
                "changed": ["email", "phone"],
            }),
            "field names listed as values are kept; values under personal keys are not"
        );
    }

    #[test]
    fn a_search_by_email_needs_customers_read() {
        assert!(Viewer::for_role(Role::Analyst).may_search_by("email").is_ok());
        match Viewer::for_role(Role::InventoryManager).may_search_by("email") {
            Err(AppError::Forbidden { message }) => assert!(message.contains("customers.read")),
            other => panic!("{other:?}"),
        }
    }
}

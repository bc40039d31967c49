//! Demo orders for `keel serve --demo`: a handful of shoppers' orders in the
//! states the console shows (paid, partly and fully refunded, cancelled),
//! a declined card left on an open cart, and an abandoned cart, all made
//! through the same use cases a shopper's checkout uses.

use super::{sku_of, KIT_SKU};
use crate::carts::{Address, CartChanges, CartLineInput, NewCart};
use crate::checkout::CompleteInput;
use crate::orders::RefundInput;
use crate::{Actor, App, AppError, Result};

/// What happens to a demo order after it is placed.
#[derive(Clone, Copy)]
enum After {
    Nothing,
    Refund(Option<i64>, &'static str),
    Cancel,
}

/// A line: product title, option value (empty for the kit), quantity.
type Line = (&'static str, &'static str, i64);

/// (shopper, email, street, city, region, postal code, lines, payment token, after)
type DemoOrder = (&'static str, &'static str, &'static str, &'static str, &'static str, &'static str, &'static [Line], &'static str, After);

const ORDERS: &[DemoOrder] = &[
    ("Ada Lovelace", "ada@example.com", "12 Analytical Row", "Springfield", "IL", "62701", &[("Everyday Tee", "M", 2)], "tok_visa", After::Nothing),
    ("Grace Hopper", "grace@example.com", "9 Compiler Court", "Arlington", "VA", "22201", &[("Rain Jacket", "L", 1), ("Trail Socks", "L/XL", 2)], "tok_visa", After::Refund(Some(1900), "One pair of socks returned")),
    ("Alan Turing", "alan@example.com", "4 Enigma Way", "Princeton", "NJ", "08540", &[("Desk Lamp", "Black", 1)], "tok_visa", After::Refund(None, "Arrived damaged")),
    ("Katherine Johnson", "katherine@example.com", "61 Orbit Drive", "Hampton", "VA", "23666", &[("Linen Shirt", "M", 1)], "tok_visa", After::Cancel),
    ("Margaret Hamilton", "margaret@example.com", "11 Apollo Street", "Cambridge", "MA", "02139", &[("Morning Kit", "", 1), ("Notebook", "Dotted", 3)], "tok_visa", After::Nothing),
    ("Hedy Lamarr", "hedy@example.com", "7 Frequency Lane", "Los Angeles", "CA", "90028", &[("Sunglasses", "Grey", 1)], "tok_mastercard", After::Nothing),
];

impl App {
    pub(crate) async fn seed_demo_orders(&self, actor: &Actor) -> Result<usize> {
        let mut placed = 0;
        for (name, email, line1, city, region, postal_code, lines, token, after) in ORDERS {
            let address = Address {
                name: name.to_string(),
                line1: line1.to_string(),
                line2: None,
                city: city.to_string(),
                region: Some(region.to_string()),
                postal_code: postal_code.to_string(),
                country: "US".into(),
                phone: None,
            };
            let cart = self.demo_cart(actor, email, lines, Some(address)).await?;
            let order = self.complete_cart(actor, &cart, CompleteInput { payment_method: token.to_string() }, None).await?;
            match after {
                After::Nothing => {}
                After::Refund(amount, reason) => {
                    let input = RefundInput { amount: *amount, reason: Some(reason.to_string()), expected_amount_refunded: None };
                    self.refund_order(actor, &order.id, input).await?;
                }
                After::Cancel => {
                    self.cancel_order(actor, &order.id).await?;
                }
            }
            placed += 1;
        }
        // A declined card: the payment fails, the cart stays open for another try.
        let address = Address {
            name: "Charles Babbage".into(),
            line1: "3 Difference Street".into(),
            line2: None,
            city: "Boston".into(),
            region: Some("MA".into()),
            postal_code: "02108".into(),
            country: "US".into(),
            phone: None,
        };
        let declined = self.demo_cart(actor, "charles@example.com", &[("Merino Sweater", "M", 1)], Some(address)).await?;
        match self.complete_cart(actor, &declined, CompleteInput { payment_method: "tok_chargeDeclined".into() }, None).await {
            Err(AppError::PaymentDeclined { .. }) => {}
            Err(e) => return Err(e),
            Ok(_) => tracing::warn!("the demo's declined card was accepted"),
        }
        // An abandoned cart: lines, an email, no checkout.
        self.demo_cart(actor, "mary@example.com", &[("Canvas Tote", "Natural", 1), ("Stoneware Mug", "Slate", 2)], None).await?;
        Ok(placed)
    }

    /// A cart with `lines`, and with `address` and the first shipping method
    /// offered for it when an address is given.
    async fn demo_cart(&self, actor: &Actor, email: &str, lines: &[Line], address: Option<Address>) -> Result<String> {
        let cart = self.create_cart(actor, NewCart { currency: "USD".into(), customer_id: None, email: Some(email.into()) }).await?;
        for (title, value, quantity) in lines {
            let sku = if value.is_empty() { KIT_SKU.to_owned() } else { sku_of(title, value) };
            self.add_cart_line(actor, &cart.id, CartLineInput { sku, quantity: *quantity }).await?;
        }
        if let Some(address) = address {
            self.update_cart(actor, &cart.id, CartChanges { shipping_address: Some(address), ..Default::default() }).await?;
            let method = self.cart_shipping_methods(&cart.id).await?.into_iter().next().map(|m| m.id);
            self.update_cart(actor, &cart.id, CartChanges { shipping_method_id: method, ..Default::default() }).await?;
        }
        Ok(cart.id)
    }
}

//! Prefixed, time-sortable identifiers (`prod_0193…`): a type prefix plus a
//! UUIDv7 in lowercase hex, so ids sort by creation time as plain strings.

use crate::Invalid;

/// Declares a typed id. Parsing checks the prefix and the UUID, so an
/// `OrderId` can never hold a product id.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            pub fn parse(field: &str, s: &str) -> Result<Self, Invalid> {
                let ok = s
                    .strip_prefix(concat!($prefix, "_"))
                    .is_some_and(|rest| rest.len() == 32 && uuid::Uuid::try_parse(rest).is_ok());
                if ok {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(Invalid::new(
                        field,
                        "invalid_id",
                        format!("expected an id starting with `{}_`", $prefix),
                    ))
                }
            }

            /// For values read back from the database, which only ever holds
            /// ids this type generated.
            pub fn from_trusted(s: String) -> Self {
                Self(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse("id", &s).map_err(|e| serde::de::Error::custom(e.message))
            }
        }
    };
}

prefixed_id!(ProductId, "prod");
prefixed_id!(AuditId, "aud");
prefixed_id!(VariantId, "var");
prefixed_id!(PriceId, "price");
prefixed_id!(ChannelId, "chan");
prefixed_id!(LocationId, "loc");
prefixed_id!(InventoryItemId, "iitem");
prefixed_id!(MovementId, "mov");
prefixed_id!(ReservationId, "res");
prefixed_id!(TransferId, "xfer");
prefixed_id!(EventId, "evt");
prefixed_id!(ApiKeyId, "key");
prefixed_id!(BatchId, "batch");
prefixed_id!(CustomerId, "cus");
prefixed_id!(AddressId, "addr");
prefixed_id!(ShippingMethodId, "ship");
prefixed_id!(TaxRateId, "txr");
prefixed_id!(CartId, "cart");
prefixed_id!(CartLineId, "cli");
prefixed_id!(CheckoutId, "chk");
prefixed_id!(OrderId, "ord");
prefixed_id!(RefundId, "re");
prefixed_id!(WebhookEndpointId, "ep");
prefixed_id!(WebhookMessageId, "msg");
prefixed_id!(WebhookAttemptId, "atmpt");
prefixed_id!(IntegrationId, "intg");
prefixed_id!(AlertId, "alert");
prefixed_id!(ImageId, "img");
prefixed_id!(CollectionId, "coll");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_time() {
        let a = ProductId::generate();
        let b = ProductId::generate();
        assert!(a < b, "uuidv7 ids sort by creation");
        assert_eq!(ProductId::parse("id", a.as_str()).unwrap(), a);
    }

    #[test]
    fn wrong_prefix_is_refused() {
        let v = VariantId::generate();
        let err = ProductId::parse("product_id", v.as_str()).unwrap_err();
        assert_eq!(err.field, "product_id");
        assert!(ProductId::parse("id", "prod_nothex").is_err());
        assert!(ProductId::parse("id", "").is_err());
    }
}
prefixed_id!(StaffUserId, "usr");
prefixed_id!(
    /// A serving process, for the lease that tells live claims from dead ones.
    NodeId,
    "node"
);

//! What the API returns: plain serialisable views built from store rows.
//! Timestamps are RFC 3339; money is integer minor units.

use keel_domain::inventory::Levels;
use keel_domain::time::to_rfc3339;
use keel_store::catalog::{ChannelRow, ProductRow, VariantRow};
use keel_store::inventory::{LevelRow, Movement};
use keel_store::locations::LocationRow;
use keel_store::reservations::ReservationRow;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PriceView {
    /// ISO-4217 code, upper-case.
    pub currency: String,
    /// Integer minor units (cents for USD).
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComponentView {
    pub sku: String,
    pub inventory_item_id: String,
    /// Units of this item consumed by one unit of the variant.
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VariantView {
    pub id: String,
    #[schema(example = "variant")]
    pub object: &'static str,
    pub sku: String,
    pub title: String,
    pub options: BTreeMap<String, String>,
    pub position: i64,
    pub prices: Vec<PriceView>,
    pub components: Vec<ComponentView>,
    pub archived: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductView {
    pub id: String,
    #[schema(example = "product")]
    pub object: &'static str,
    pub handle: String,
    pub title: String,
    pub description: Option<String>,
    /// `draft`, `active` or `archived`.
    pub status: String,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    pub channel_ids: Vec<String>,
    pub variants: Vec<VariantView>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl VariantView {
    pub fn from_row(v: VariantRow) -> VariantView {
        VariantView {
            id: v.id,
            object: "variant",
            sku: v.sku,
            title: v.title,
            options: serde_json::from_str(&v.options).unwrap_or_default(),
            position: v.position,
            prices: v.prices.into_iter().map(|(currency, amount)| PriceView { currency, amount }).collect(),
            components: v
                .components
                .into_iter()
                .map(|c| ComponentView { sku: c.sku, inventory_item_id: c.inventory_item_id, quantity: c.quantity })
                .collect(),
            archived: v.archived_at.is_some(),
            created_at: to_rfc3339(v.created_at),
            updated_at: to_rfc3339(v.updated_at),
        }
    }
}

impl ProductView {
    pub fn from_rows(p: ProductRow, variants: Vec<VariantRow>, channel_ids: Vec<String>) -> ProductView {
        ProductView {
            id: p.id,
            object: "product",
            handle: p.handle,
            title: p.title,
            description: p.description,
            status: p.status,
            seo_title: p.seo_title,
            seo_description: p.seo_description,
            channel_ids,
            variants: variants.into_iter().map(VariantView::from_row).collect(),
            version: p.version,
            created_at: to_rfc3339(p.created_at),
            updated_at: to_rfc3339(p.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelView {
    pub id: String,
    #[schema(example = "sales_channel")]
    pub object: &'static str,
    pub handle: String,
    pub name: String,
    pub archived: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<ChannelRow> for ChannelView {
    fn from(c: ChannelRow) -> Self {
        ChannelView {
            id: c.id,
            object: "sales_channel",
            handle: c.handle,
            name: c.name,
            archived: c.archived_at.is_some(),
            version: c.version,
            created_at: to_rfc3339(c.created_at),
            updated_at: to_rfc3339(c.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LocationView {
    pub id: String,
    #[schema(example = "location")]
    pub object: &'static str,
    pub name: String,
    /// `warehouse`, `store` or `3pl`.
    pub kind: String,
    /// Lower numbers are allocated first.
    pub priority: i64,
    pub country: String,
    pub archived: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<LocationRow> for LocationView {
    fn from(l: LocationRow) -> Self {
        LocationView {
            id: l.id,
            object: "location",
            name: l.name,
            kind: l.kind,
            priority: l.priority,
            country: l.country,
            archived: l.archived_at.is_some(),
            version: l.version,
            created_at: to_rfc3339(l.created_at),
            updated_at: to_rfc3339(l.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LevelView {
    #[schema(example = "inventory_level")]
    pub object: &'static str,
    pub sku: String,
    pub inventory_item_id: String,
    pub location_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    pub incoming: i64,
    pub damaged: i64,
    pub quality_control: i64,
    /// on_hand − reserved − safety_stock − damaged − quality_control.
    pub available: i64,
    pub version: i64,
    pub updated_at: String,
}

impl LevelView {
    pub fn new(sku: &str, l: &LevelRow) -> LevelView {
        let Levels { on_hand, reserved, safety_stock, incoming, damaged, quality_control } = l.levels;
        LevelView {
            object: "inventory_level",
            sku: sku.to_owned(),
            inventory_item_id: l.inventory_item_id.clone(),
            location_id: l.location_id.clone(),
            on_hand,
            reserved,
            safety_stock,
            incoming,
            damaged,
            quality_control,
            available: l.levels.available(),
            version: l.version,
            updated_at: to_rfc3339(l.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BucketDelta {
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    pub incoming: i64,
    pub damaged: i64,
    pub quality_control: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MovementView {
    pub id: String,
    #[schema(example = "inventory_movement")]
    pub object: &'static str,
    pub sku: String,
    pub inventory_item_id: String,
    pub location_id: String,
    pub kind: String,
    pub quantity: i64,
    pub delta: BucketDelta,
    pub reason: Option<String>,
    pub actor: String,
    pub source: String,
    pub batch_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub reservation_id: Option<String>,
    pub transfer_id: Option<String>,
    pub occurred_at: String,
    pub recorded_at: String,
}

impl MovementView {
    pub fn new(sku: &str, m: Movement) -> MovementView {
        let d = m.delta;
        MovementView {
            id: m.id,
            object: "inventory_movement",
            sku: sku.to_owned(),
            inventory_item_id: m.inventory_item_id,
            location_id: m.location_id,
            kind: m.kind,
            quantity: m.quantity,
            delta: BucketDelta {
                on_hand: d.on_hand,
                reserved: d.reserved,
                safety_stock: d.safety_stock,
                incoming: d.incoming,
                damaged: d.damaged,
                quality_control: d.quality_control,
            },
            reason: m.reason,
            actor: m.actor,
            source: m.source,
            batch_id: m.batch_id,
            idempotency_key: m.idempotency_key,
            reservation_id: m.reservation_id,
            transfer_id: m.transfer_id,
            occurred_at: to_rfc3339(m.occurred_at),
            recorded_at: to_rfc3339(m.recorded_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdjustmentView {
    #[schema(example = "inventory_adjustment")]
    pub object: &'static str,
    pub movement_id: String,
    pub kind: String,
    pub quantity: i64,
    pub level: LevelView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransferView {
    pub id: String,
    #[schema(example = "inventory_transfer")]
    pub object: &'static str,
    pub sku: String,
    pub from_location_id: String,
    pub to_location_id: String,
    pub quantity: i64,
    pub reason: Option<String>,
    pub from_level: LevelView,
    pub to_level: LevelView,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct LineView {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AllocationView {
    pub sku: String,
    pub inventory_item_id: String,
    pub location_id: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservationView {
    pub id: String,
    #[schema(example = "reservation")]
    pub object: &'static str,
    /// `active`, `committed`, `released` or `expired`.
    pub status: String,
    pub lines: Vec<LineView>,
    pub allocations: Vec<AllocationView>,
    pub location_id: Option<String>,
    pub reference: Option<String>,
    pub expires_at: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl ReservationView {
    pub fn from_row(r: ReservationRow) -> ReservationView {
        ReservationView {
            id: r.id,
            object: "reservation",
            status: r.status,
            lines: serde_json::from_str(&r.lines).unwrap_or_default(),
            allocations: r
                .allocations
                .into_iter()
                .map(|a| AllocationView {
                    sku: a.sku,
                    inventory_item_id: a.inventory_item_id,
                    location_id: a.location_id,
                    quantity: a.quantity,
                })
                .collect(),
            location_id: r.location_id,
            reference: r.reference,
            expires_at: r.expires_at.map(to_rfc3339),
            version: r.version,
            created_at: to_rfc3339(r.created_at),
            updated_at: to_rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    #[schema(example = "event")]
    pub object: &'static str,
    #[serde(rename = "type")]
    pub kind: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Per-aggregate sequence: the aggregate's version after the change.
    pub aggregate_seq: i64,
    pub occurred_at: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<keel_store::outbox::Event> for EventView {
    fn from(e: keel_store::outbox::Event) -> Self {
        EventView {
            id: e.id,
            object: "event",
            kind: e.kind,
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            aggregate_seq: e.aggregate_seq,
            occurred_at: to_rfc3339(e.occurred_at),
            data: e.payload,
        }
    }
}

/// A page of a list, Stripe style.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// `rows` were fetched with `limit + 1` to learn whether more exist.
    pub fn from_overfetch(mut rows: Vec<T>, limit: i64) -> Page<T> {
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Page { object: "list", data: rows, has_more }
    }
}

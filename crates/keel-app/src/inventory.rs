//! Inventory use cases: adjustments, counts, transfers, levels and ledger.
//! [`move_stock`] is the one way stock changes: a ledger movement applied
//! through the store's conditional update, plus its `inventory.level_changed`
//! event, in the caller's transaction.

use crate::locations::usable;
use crate::views::{AdjustmentView, LevelView, MovementView, Page, TransferView};
use crate::{in_tx, page_limit, Actor, App, AppError, Result};
use keel_domain::catalog::Sku;
use keel_domain::ids::{MovementId, TransferId};
use keel_domain::inventory::{quantity, MovementKind, Refusal};
use keel_domain::time::parse_rfc3339;
use keel_domain::Invalid;
use keel_store::inventory::{self as db, Applied, Item, LevelRow, NewMovement};
use keel_store::batch::Batch;
use keel_store::{outbox, Conn};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

/// Kinds a client may post as an adjustment; reservations, shipments,
/// transfers and feed syncs have their own paths.
const ADJUSTABLE: &[MovementKind] = &[
    MovementKind::Receive,
    MovementKind::Adjust,
    MovementKind::Return,
    MovementKind::Damage,
    MovementKind::DamageRelease,
    MovementKind::WriteOff,
    MovementKind::QcHold,
    MovementKind::QcRelease,
    MovementKind::SafetyStock,
    MovementKind::Incoming,
];

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentInput {
    /// SKU of the inventory item.
    pub sku: String,
    pub location_id: String,
    /// Signed change for `adjust`, `safety_stock` and `incoming`; a positive
    /// count for the other kinds. Give this or `set_on_hand`.
    pub quantity_delta: Option<i64>,
    /// Sets on_hand to this count (a cycle count); the delta is recorded.
    pub set_on_hand: Option<i64>,
    /// Movement kind, default `adjust`: receive, adjust, return, damage,
    /// damage_release, write_off, qc_hold, qc_release, safety_stock, incoming.
    pub kind: Option<String>,
    pub reason: Option<String>,
    /// Compare-and-swap guard: refused with `stale_quantity` unless on_hand
    /// currently equals this.
    pub expected_on_hand: Option<i64>,
    /// When the change physically happened (RFC 3339); default now.
    pub occurred_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    pub sku: String,
    pub from_location_id: String,
    pub to_location_id: String,
    pub quantity: i64,
    pub reason: Option<String>,
    /// Compare-and-swap guard on the source location's on_hand.
    pub expected_on_hand: Option<i64>,
}

pub(crate) fn refusal_error(r: Refusal, sku: &str, param: &str) -> AppError {
    match r {
        Refusal::StaleQuantity { expected, actual } => AppError::conflict(
            "stale_quantity",
            format!("on_hand of {sku} is {actual}, not the expected {expected}; re-read and retry"),
            Some("expected_on_hand"),
        ),
        Refusal::InsufficientStock { available, requested } => AppError::conflict(
            "insufficient_stock",
            format!("insufficient stock for {sku}: {requested} requested, {available} available"),
            Some(param),
        ),
        Refusal::Inconsistent { bucket } => AppError::conflict(
            "invalid_movement",
            format!("this movement of {sku} would leave {bucket} inconsistent"),
            Some(param),
        ),
    }
}

/// Applies one movement and records its event; a refusal becomes a 409.
pub(crate) async fn move_stock(conn: &mut Conn, sku: &str, m: &NewMovement<'_>, param: &str) -> Result<(LevelRow, MovementId)> {
    let backend = keel_store::Backend::of(conn);
    let event = |batch: &mut Batch, level: &LevelRow, movement_id: &MovementId, before: &keel_domain::inventory::Levels| {
        let view = LevelView::new(sku, level);
        outbox::push(
            batch,
            backend,
            outbox::NewEvent {
                kind: "inventory.level_changed",
                aggregate_type: "inventory_level",
                aggregate_id: &format!("{}:{}", level.inventory_item_id, level.location_id),
                aggregate_seq: level.version,
                payload: json!({
                    "sku": sku,
                    "inventory_item_id": level.inventory_item_id,
                    "location_id": level.location_id,
                    "movement": {
                        "id": movement_id.as_str(),
                        "kind": m.kind.as_str(),
                        "quantity": m.quantity,
                        "reason": m.reason,
                        "actor": m.actor,
                        "source": m.source,
                        "reservation_id": m.reservation_id,
                        "transfer_id": m.transfer_id,
                    },
                    "before": before,
                    "level": view,
                }),
            },
        );
    };
    match db::apply_movement(conn, m, event).await? {
        Applied::Refused { refusal, .. } => Err(refusal_error(refusal, sku, param)),
        Applied::Done { level, movement_id, .. } => Ok((level, movement_id)),
    }
}

pub(crate) async fn item_for(conn: &mut Conn, field: &str, sku: &str) -> Result<Item> {
    Sku::parse(field, sku)?;
    db::item_by_sku(conn, sku).await?.ok_or_else(|| AppError::not_found_at("inventory_item", sku, field))
}

fn check_reason(reason: Option<&str>) -> Result<Option<String>, Invalid> {
    keel_domain::catalog::optional_text("reason", reason, 500)
}

impl App {
    pub async fn adjust_inventory(&self, actor: &Actor, input: AdjustmentInput) -> Result<AdjustmentView> {
        let sku = Sku::parse("sku", &input.sku)?;
        let kind = match input.kind.as_deref() {
            None => MovementKind::Adjust,
            Some(k) => {
                let kind = MovementKind::parse("kind", k)?;
                if !ADJUSTABLE.contains(&kind) {
                    return Err(Invalid::new("kind", "invalid_kind", format!("`{k}` movements are not posted as adjustments")).into());
                }
                kind
            }
        };
        let reason = check_reason(input.reason.as_deref())?;
        let occurred_at = input
            .occurred_at
            .as_deref()
            .map(|s| parse_rfc3339(s).ok_or_else(|| Invalid::new("occurred_at", "invalid_timestamp", "must be RFC 3339")))
            .transpose()?;
        let target = match (input.quantity_delta, input.set_on_hand) {
            (Some(_), Some(_)) => {
                return Err(Invalid::new("set_on_hand", "conflicting_fields", "give quantity_delta or set_on_hand, not both").into())
            }
            (None, None) => return Err(Invalid::new("quantity_delta", "required", "give quantity_delta or set_on_hand").into()),
            (Some(d), None) => Target::Delta(quantity("quantity_delta", kind, d)?),
            (None, Some(n)) => {
                if kind != MovementKind::Adjust {
                    return Err(Invalid::new("set_on_hand", "invalid_kind", "set_on_hand applies to `adjust` only").into());
                }
                if !(0..=keel_domain::inventory::MAX_QUANTITY).contains(&n) {
                    return Err(Invalid::new("set_on_hand", "invalid_quantity", "must be between 0 and 1000000000").into());
                }
                Target::Count(n)
            }
        };
        if input.expected_on_hand.is_some_and(|e| e < 0) {
            return Err(Invalid::new("expected_on_hand", "invalid_quantity", "must not be negative").into());
        }
        in_tx!(self, |tx| {
            let item = item_for(&mut tx, "sku", sku.as_str()).await?;
            usable(&mut tx, "location_id", &input.location_id).await?;
            let (q, guard) = match target {
                Target::Delta(d) => (d, input.expected_on_hand),
                Target::Count(n) => {
                    let current = db::get_level(&mut tx, &item.id, &input.location_id).await?.map(|l| l.levels.on_hand).unwrap_or(0);
                    if let Some(e) = input.expected_on_hand.filter(|e| *e != current) {
                        return Err(refusal_error(Refusal::StaleQuantity { expected: e, actual: current }, sku.as_str(), "set_on_hand"));
                    }
                    if n == current {
                        return Err(AppError::conflict("no_change", format!("on_hand of {sku} is already {n}"), Some("set_on_hand")));
                    }
                    // The count is relative to what was read: guard on it so
                    // a concurrent change makes this retry, not overwrite.
                    (n - current, Some(current))
                }
            };
            let mut m = NewMovement::new(&item.id, &input.location_id, kind, q, &actor.0);
            m.reason = reason.as_deref();
            m.occurred_at = occurred_at;
            m.expected_on_hand = guard;
            let (level, movement_id) = move_stock(&mut tx, sku.as_str(), &m, "quantity_delta").await?;
            Ok(AdjustmentView {
                object: "inventory_adjustment",
                movement_id: movement_id.to_string(),
                kind: kind.as_str().to_owned(),
                quantity: q,
                level: LevelView::new(sku.as_str(), &level),
            })
        })
    }

    pub async fn transfer_inventory(&self, actor: &Actor, input: TransferInput) -> Result<TransferView> {
        let sku = Sku::parse("sku", &input.sku)?;
        let q = quantity("quantity", MovementKind::TransferOut, input.quantity)?;
        let reason = check_reason(input.reason.as_deref())?;
        if input.from_location_id == input.to_location_id {
            return Err(Invalid::new("to_location_id", "same_location", "must differ from from_location_id").into());
        }
        in_tx!(self, |tx| {
            let item = item_for(&mut tx, "sku", sku.as_str()).await?;
            usable(&mut tx, "from_location_id", &input.from_location_id).await?;
            usable(&mut tx, "to_location_id", &input.to_location_id).await?;
            let id = TransferId::generate();
            let row = db::TransferRow {
                id: id.as_str(),
                inventory_item_id: &item.id,
                from_location_id: &input.from_location_id,
                to_location_id: &input.to_location_id,
                quantity: q,
                reason: reason.as_deref(),
                actor: &actor.0,
            };
            db::insert_transfer(&mut tx, &row).await?;
            let mut out = NewMovement::new(&item.id, &input.from_location_id, MovementKind::TransferOut, q, &actor.0);
            out.reason = reason.as_deref();
            out.transfer_id = Some(id.as_str());
            out.expected_on_hand = input.expected_on_hand;
            let mut inn = NewMovement::new(&item.id, &input.to_location_id, MovementKind::TransferIn, q, &actor.0);
            inn.reason = reason.as_deref();
            inn.transfer_id = Some(id.as_str());
            // Rows are always locked in (item, location) order, so opposite
            // transfers cannot deadlock each other.
            let out_first = input.from_location_id < input.to_location_id;
            let (first, second) = if out_first { (&out, &inn) } else { (&inn, &out) };
            let (l1, _) = move_stock(&mut tx, sku.as_str(), first, "quantity").await?;
            let (l2, _) = move_stock(&mut tx, sku.as_str(), second, "quantity").await?;
            let (from_level, to_level) = if out_first { (l1, l2) } else { (l2, l1) };
            Ok(TransferView {
                id: id.to_string(),
                object: "inventory_transfer",
                sku: sku.to_string(),
                from_location_id: input.from_location_id.clone(),
                to_location_id: input.to_location_id.clone(),
                quantity: q,
                reason: reason.clone(),
                from_level: LevelView::new(sku.as_str(), &from_level),
                to_level: LevelView::new(sku.as_str(), &to_level),
            })
        })
    }

    /// Levels of one inventory item at every location (or one).
    pub async fn inventory_levels(&self, sku: &str, location_id: Option<&str>) -> Result<Page<LevelView>> {
        let mut conn = self.store.reader().await?;
        let item = item_for(&mut conn, "sku", sku).await?;
        if let Some(l) = location_id {
            keel_domain::ids::LocationId::parse("location_id", l)?;
        }
        let rows = db::levels_of_item(&mut conn, &item.id).await?;
        let data = rows
            .iter()
            .filter(|l| location_id.is_none_or(|want| l.location_id == want))
            .map(|l| LevelView::new(&item.sku, l))
            .collect();
        Ok(Page { object: "list", data, has_more: false })
    }

    /// Ledger of one inventory item, newest first.
    pub async fn inventory_ledger(
        &self,
        sku: &str,
        location_id: Option<&str>,
        starting_after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<MovementView>> {
        if let Some(l) = location_id {
            keel_domain::ids::LocationId::parse("location_id", l)?;
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let item = item_for(&mut conn, "sku", sku).await?;
        let before = match starting_after {
            None => None,
            Some(c) => {
                MovementId::parse("starting_after", c)?;
                Some(db::movement_seq(&mut conn, c).await?.ok_or_else(|| AppError::not_found_at("inventory_movement", c, "starting_after"))?)
            }
        };
        let rows = db::ledger(&mut conn, &item.id, location_id, before, limit + 1).await?;
        Ok(Page::from_overfetch(rows.into_iter().map(|m| MovementView::new(&item.sku, m)).collect(), limit))
    }
}

#[derive(Clone, Copy)]
enum Target {
    Delta(i64),
    Count(i64),
}

// ------------------------------------------------- admin console reads ---

/// One inventory item with its titles and its level at every location.
#[derive(Debug, Clone)]
pub struct ItemOverview {
    pub item: Item,
    /// (product id, product title, variant title) when a variant has its SKU.
    pub titles: Option<(String, String, String)>,
    pub levels: Vec<db::StockLine>,
}

impl App {
    /// Levels for the admin list: filtered, paged by offset.
    pub async fn stock_lines(&self, filter: &db::StockFilter<'_>, offset: i64, limit: i64) -> Result<Vec<db::StockLine>> {
        let mut conn = self.store.reader().await?;
        Ok(db::stock_lines(&mut conn, filter, offset.max(0), limit.clamp(1, 500)).await?)
    }

    /// An inventory item by id, with its levels at every location.
    pub async fn inventory_item(&self, id: &str) -> Result<ItemOverview> {
        keel_domain::ids::InventoryItemId::parse("inventory_item_id", id)?;
        let mut conn = self.store.reader().await?;
        let item = db::item_by_id(&mut conn, id).await?.ok_or_else(|| AppError::not_found("inventory_item", id))?;
        let titles = db::item_titles(&mut conn, &item.sku).await?;
        let filter = db::StockFilter { inventory_item_id: Some(&item.id), ..Default::default() };
        let levels = db::stock_lines(&mut conn, &filter, 0, 500).await?;
        Ok(ItemOverview { item, titles, levels })
    }

    /// The id of the inventory item with this SKU.
    pub async fn inventory_item_id(&self, sku: &str) -> Result<String> {
        let mut conn = self.store.reader().await?;
        Ok(item_for(&mut conn, "sku", sku).await?.id)
    }

    /// Ledger of one item with running on_hand, newest first, by offset.
    pub async fn ledger_lines(&self, item_id: &str, location_id: Option<&str>, offset: i64, limit: i64) -> Result<Vec<db::LedgerLine>> {
        let mut conn = self.store.reader().await?;
        Ok(db::ledger_lines(&mut conn, item_id, location_id, offset.max(0), limit.clamp(1, 500)).await?)
    }

    /// Transfers, newest first, by offset.
    pub async fn transfer_lines(&self, offset: i64, limit: i64) -> Result<Vec<db::TransferLine>> {
        let mut conn = self.store.reader().await?;
        Ok(db::transfer_lines(&mut conn, offset.max(0), limit.clamp(1, 500)).await?)
    }

    /// Every location, archived ones too, in allocation order.
    pub async fn all_locations(&self) -> Result<Vec<keel_store::locations::LocationRow>> {
        let mut conn = self.store.reader().await?;
        Ok(keel_store::locations::all_by_priority(&mut conn).await?)
    }
}

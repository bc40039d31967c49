//! Inventory items, levels and the ledger.
//!
//! [`apply_movement`] is the only code that changes a level: one conditional
//! `UPDATE` that re-states `keel_domain::inventory::check_apply` in SQL, so
//! the database arbitrates concurrent writers, followed by the ledger row.

use crate::batch::Batch;
use crate::{Result, StoreError};
use keel_domain::catalog::Sku;
use keel_domain::ids::{InventoryItemId, MovementId};
use keel_domain::inventory::{check_apply, Delta, Levels, MovementKind, Refusal};
use keel_domain::time::now_micros;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub sku: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct LevelRow {
    pub inventory_item_id: String,
    pub location_id: String,
    pub levels: Levels,
    pub version: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct Movement {
    pub id: String,
    pub seq: i64,
    pub inventory_item_id: String,
    pub location_id: String,
    pub kind: String,
    pub quantity: i64,
    pub delta: Delta,
    pub reason: Option<String>,
    pub actor: String,
    pub source: String,
    pub batch_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub reservation_id: Option<String>,
    pub transfer_id: Option<String>,
    pub occurred_at: i64,
    pub recorded_at: i64,
}

/// One requested change to one level.
#[derive(Debug, Clone)]
pub struct NewMovement<'a> {
    pub inventory_item_id: &'a str,
    pub location_id: &'a str,
    pub kind: MovementKind,
    pub quantity: i64,
    pub reason: Option<&'a str>,
    pub actor: &'a str,
    pub source: &'a str,
    pub batch_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub reservation_id: Option<&'a str>,
    pub transfer_id: Option<&'a str>,
    pub occurred_at: Option<i64>,
    pub expected_on_hand: Option<i64>,
}

/// Where a movement came from, by who made it (callers with a more precise
/// source, such as a feed's integration, set it themselves).
fn source_of(actor: &str) -> &'static str {
    match actor.split_once(':').map(|(kind, _)| kind) {
        Some("staff") => "admin",
        Some("system") => "system",
        Some("customer" | "storefront") => "storefront",
        Some("provider") => "payment_provider",
        _ => "api",
    }
}

impl<'a> NewMovement<'a> {
    pub fn new(item: &'a str, location: &'a str, kind: MovementKind, quantity: i64, actor: &'a str) -> Self {
        NewMovement {
            inventory_item_id: item,
            location_id: location,
            kind,
            quantity,
            reason: None,
            actor,
            source: source_of(actor),
            batch_id: None,
            idempotency_key: None,
            reservation_id: None,
            transfer_id: None,
            occurred_at: None,
            expected_on_hand: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Applied {
    Done { level: LevelRow, movement_id: MovementId, before: Levels },
    Refused { refusal: Refusal, current: Levels },
}

const LEVEL_COLUMNS: &str = "inventory_item_id, location_id, on_hand, reserved, safety_stock, incoming, damaged, \
     quality_control, version, updated_at";

fn level_from_row(r: &AnyRow) -> Result<LevelRow> {
    Ok(LevelRow {
        inventory_item_id: r.try_get("inventory_item_id")?,
        location_id: r.try_get("location_id")?,
        levels: Levels {
            on_hand: r.try_get("on_hand")?,
            reserved: r.try_get("reserved")?,
            safety_stock: r.try_get("safety_stock")?,
            incoming: r.try_get("incoming")?,
            damaged: r.try_get("damaged")?,
            quality_control: r.try_get("quality_control")?,
        },
        version: r.try_get("version")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn create_item(conn: &mut AnyConnection, sku: &Sku) -> Result<Item> {
    let item = Item { id: InventoryItemId::generate().to_string(), sku: sku.to_string(), created_at: now_micros() };
    sqlx::query("INSERT INTO inventory_items (id, sku, created_at) VALUES ($1, $2, $3)")
        .bind(&item.id)
        .bind(&item.sku)
        .bind(item.created_at)
        .execute(conn)
        .await?;
    Ok(item)
}

fn item_from_row(r: &AnyRow) -> Result<Item> {
    Ok(Item { id: r.try_get("id")?, sku: r.try_get("sku")?, created_at: r.try_get("created_at")? })
}

pub async fn item_by_sku(conn: &mut AnyConnection, sku: &str) -> Result<Option<Item>> {
    let row = sqlx::query("SELECT id, sku, created_at FROM inventory_items WHERE sku = $1")
        .bind(sku)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(item_from_row).transpose()
}

pub async fn get_level(conn: &mut AnyConnection, item: &str, location: &str) -> Result<Option<LevelRow>> {
    let row = sqlx::query(&format!(
        "SELECT {LEVEL_COLUMNS} FROM inventory_levels WHERE inventory_item_id = $1 AND location_id = $2"
    ))
    .bind(item)
    .bind(location)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(level_from_row).transpose()
}

/// Levels of one item at every location, highest priority first.
pub async fn levels_of_item(conn: &mut AnyConnection, item: &str) -> Result<Vec<LevelRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {} FROM inventory_levels l JOIN locations loc ON loc.id = l.location_id \
         WHERE l.inventory_item_id = $1 ORDER BY loc.priority, loc.id",
        LEVEL_COLUMNS.split(", ").map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", ")
    ))
    .bind(item)
    .fetch_all(conn)
    .await?;
    rows.iter().map(level_from_row).collect()
}

/// All levels at one location (for `keel check`, admin views).
pub async fn all_levels(conn: &mut AnyConnection) -> Result<Vec<LevelRow>> {
    let rows = sqlx::query(&format!("SELECT {LEVEL_COLUMNS} FROM inventory_levels")).fetch_all(conn).await?;
    rows.iter().map(level_from_row).collect()
}

const UPDATE_LEVEL: &str = "UPDATE inventory_levels SET \
    on_hand = on_hand + $1, reserved = reserved + $2, safety_stock = safety_stock + $3, \
    incoming = incoming + $4, damaged = damaged + $5, quality_control = quality_control + $6, \
    version = version + 1, updated_at = $7 \
    WHERE inventory_item_id = $8 AND location_id = $9 \
    AND on_hand + $1 >= 0 AND reserved + $2 >= 0 AND safety_stock + $3 >= 0 AND incoming + $4 >= 0 \
    AND damaged + $5 >= 0 AND quality_control + $6 >= 0 \
    AND on_hand + $1 >= reserved + $2 + damaged + $5 + quality_control + $6 \
    AND ($10 = 0 OR on_hand - reserved - safety_stock - damaged - quality_control >= $11) \
    AND ($12 IS NULL OR on_hand = $12) \
    RETURNING on_hand, reserved, safety_stock, incoming, damaged, quality_control, version";

/// Applies one movement if the rules allow it: one conditional UPDATE, then
/// the ledger row plus whatever `then` queues (the caller's event) in one more
/// round trip. A refusal changes nothing.
pub async fn apply_movement(
    conn: &mut AnyConnection,
    m: &NewMovement<'_>,
    then: impl FnOnce(&mut Batch, &LevelRow, &MovementId, &Levels),
) -> Result<Applied> {
    let delta = m.kind.delta(m.quantity);
    let requires_available = i64::from(m.kind.requires_available());
    let needed = -delta.available();
    let now = now_micros();
    let mut created_row = false;
    // A refused update is re-read and re-judged; on PostgreSQL a concurrent
    // commit between the two can flip the verdict, so try a few times.
    for _ in 0..4 {
        let row = sqlx::query(UPDATE_LEVEL)
            .bind(delta.on_hand)
            .bind(delta.reserved)
            .bind(delta.safety_stock)
            .bind(delta.incoming)
            .bind(delta.damaged)
            .bind(delta.quality_control)
            .bind(now)
            .bind(m.inventory_item_id)
            .bind(m.location_id)
            .bind(requires_available)
            .bind(needed)
            .bind(m.expected_on_hand)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(r) = row {
            let after = Levels {
                on_hand: r.try_get("on_hand")?,
                reserved: r.try_get("reserved")?,
                safety_stock: r.try_get("safety_stock")?,
                incoming: r.try_get("incoming")?,
                damaged: r.try_get("damaged")?,
                quality_control: r.try_get("quality_control")?,
            };
            let version: i64 = r.try_get("version")?;
            let before = Levels {
                on_hand: after.on_hand - delta.on_hand,
                reserved: after.reserved - delta.reserved,
                safety_stock: after.safety_stock - delta.safety_stock,
                incoming: after.incoming - delta.incoming,
                damaged: after.damaged - delta.damaged,
                quality_control: after.quality_control - delta.quality_control,
            };
            let level = LevelRow {
                inventory_item_id: m.inventory_item_id.to_owned(),
                location_id: m.location_id.to_owned(),
                levels: after,
                version,
                updated_at: now,
            };
            let mut batch = Batch::new();
            let movement_id = push_movement(&mut batch, m, &delta, now);
            then(&mut batch, &level, &movement_id, &before);
            batch.run(conn).await?;
            return Ok(Applied::Done { level, movement_id, before });
        }
        match get_level(conn, m.inventory_item_id, m.location_id).await? {
            Some(current) => {
                if let Err(refusal) = check_apply(&current.levels, m.kind, &delta, m.expected_on_hand) {
                    return Ok(Applied::Refused { refusal, current: current.levels });
                }
            }
            None if !created_row => {
                sqlx::query(
                    "INSERT INTO inventory_levels (inventory_item_id, location_id, on_hand, reserved, safety_stock, \
                     incoming, damaged, quality_control, version, updated_at) VALUES ($1, $2, 0, 0, 0, 0, 0, 0, 0, $3) \
                     ON CONFLICT (inventory_item_id, location_id) DO NOTHING",
                )
                .bind(m.inventory_item_id)
                .bind(m.location_id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                created_row = true;
            }
            None => return Err(StoreError::corrupt("inventory level vanished during update")),
        }
    }
    let current = get_level(conn, m.inventory_item_id, m.location_id).await?.map(|l| l.levels).unwrap_or_default();
    Ok(Applied::Refused {
        refusal: Refusal::InsufficientStock { available: current.available(), requested: needed.max(0) },
        current,
    })
}

fn push_movement(batch: &mut Batch, m: &NewMovement<'_>, d: &Delta, now: i64) -> MovementId {
    let id = MovementId::generate();
    batch.push(
        "INSERT INTO inventory_movements (id, inventory_item_id, location_id, kind, quantity, d_on_hand, d_reserved, \
         d_safety_stock, d_incoming, d_damaged, d_quality_control, reason, actor, source, batch_id, idempotency_key, \
         reservation_id, transfer_id, occurred_at, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        vec![
            id.as_str().into(),
            m.inventory_item_id.into(),
            m.location_id.into(),
            m.kind.as_str().into(),
            m.quantity.into(),
            d.on_hand.into(),
            d.reserved.into(),
            d.safety_stock.into(),
            d.incoming.into(),
            d.damaged.into(),
            d.quality_control.into(),
            m.reason.into(),
            m.actor.into(),
            m.source.into(),
            m.batch_id.into(),
            m.idempotency_key.into(),
            m.reservation_id.into(),
            m.transfer_id.into(),
            m.occurred_at.unwrap_or(now).into(),
            now.into(),
        ],
    );
    id
}

const MOVEMENT_COLUMNS: &str = "id, seq, inventory_item_id, location_id, kind, quantity, d_on_hand, d_reserved, \
     d_safety_stock, d_incoming, d_damaged, d_quality_control, reason, actor, source, batch_id, idempotency_key, \
     reservation_id, transfer_id, occurred_at, recorded_at";

fn movement_from_row(r: &AnyRow) -> Result<Movement> {
    Ok(Movement {
        id: r.try_get("id")?,
        seq: r.try_get("seq")?,
        inventory_item_id: r.try_get("inventory_item_id")?,
        location_id: r.try_get("location_id")?,
        kind: r.try_get("kind")?,
        quantity: r.try_get("quantity")?,
        delta: Levels {
            on_hand: r.try_get("d_on_hand")?,
            reserved: r.try_get("d_reserved")?,
            safety_stock: r.try_get("d_safety_stock")?,
            incoming: r.try_get("d_incoming")?,
            damaged: r.try_get("d_damaged")?,
            quality_control: r.try_get("d_quality_control")?,
        },
        reason: r.try_get("reason")?,
        actor: r.try_get("actor")?,
        source: r.try_get("source")?,
        batch_id: r.try_get("batch_id")?,
        idempotency_key: r.try_get("idempotency_key")?,
        reservation_id: r.try_get("reservation_id")?,
        transfer_id: r.try_get("transfer_id")?,
        occurred_at: r.try_get("occurred_at")?,
        recorded_at: r.try_get("recorded_at")?,
    })
}

/// Ledger entries of one item, newest first, optionally at one location;
/// `before_seq` continues a previous page.
pub async fn ledger(
    conn: &mut AnyConnection,
    item: &str,
    location: Option<&str>,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<Movement>> {
    let rows = sqlx::query(&format!(
        "SELECT {MOVEMENT_COLUMNS} FROM inventory_movements WHERE inventory_item_id = $1 \
         AND ($2 IS NULL OR location_id = $2) AND ($3 IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4"
    ))
    .bind(item)
    .bind(location)
    .bind(before_seq)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(movement_from_row).collect()
}

pub async fn movement_seq(conn: &mut AnyConnection, id: &str) -> Result<Option<i64>> {
    let row = sqlx::query("SELECT seq FROM inventory_movements WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(match row {
        Some(r) => Some(r.try_get("seq")?),
        None => None,
    })
}

/// Sum of every movement per (item, location): what the levels must equal.
pub async fn ledger_fold(conn: &mut AnyConnection) -> Result<Vec<(String, String, Levels)>> {
    let rows = sqlx::query(
        "SELECT inventory_item_id, location_id, CAST(SUM(d_on_hand) AS BIGINT) AS on_hand, \
         CAST(SUM(d_reserved) AS BIGINT) AS reserved, CAST(SUM(d_safety_stock) AS BIGINT) AS safety_stock, \
         CAST(SUM(d_incoming) AS BIGINT) AS incoming, CAST(SUM(d_damaged) AS BIGINT) AS damaged, \
         CAST(SUM(d_quality_control) AS BIGINT) AS quality_control \
         FROM inventory_movements GROUP BY inventory_item_id, location_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("inventory_item_id")?,
                r.try_get("location_id")?,
                Levels {
                    on_hand: r.try_get("on_hand")?,
                    reserved: r.try_get("reserved")?,
                    safety_stock: r.try_get("safety_stock")?,
                    incoming: r.try_get("incoming")?,
                    damaged: r.try_get("damaged")?,
                    quality_control: r.try_get("quality_control")?,
                },
            ))
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct TransferRow<'a> {
    pub id: &'a str,
    pub inventory_item_id: &'a str,
    pub from_location_id: &'a str,
    pub to_location_id: &'a str,
    pub quantity: i64,
    pub reason: Option<&'a str>,
    pub actor: &'a str,
}

pub async fn insert_transfer(conn: &mut AnyConnection, t: &TransferRow<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO transfers (id, inventory_item_id, from_location_id, to_location_id, quantity, reason, actor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(t.id)
    .bind(t.inventory_item_id)
    .bind(t.from_location_id)
    .bind(t.to_location_id)
    .bind(t.quantity)
    .bind(t.reason)
    .bind(t.actor)
    .bind(now_micros())
    .execute(conn)
    .await?;
    Ok(())
}
/// Levels of these items at active locations, in allocation order
/// (location priority, then location id).
pub async fn levels_for_allocation(conn: &mut AnyConnection, items: &[&str]) -> Result<Vec<LevelRow>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let cols = LEVEL_COLUMNS.split(", ").map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", ");
    let marks = (1..=items.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {cols} FROM inventory_levels l JOIN locations loc ON loc.id = l.location_id \
         WHERE loc.archived_at IS NULL AND l.inventory_item_id IN ({marks}) ORDER BY loc.priority, loc.id"
    );
    let mut q = sqlx::query(&sql);
    for i in items {
        q = q.bind(*i);
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(level_from_row).collect()
}

/// What one unit of `sku` consumes: a variant's components, or the inventory
/// item with that SKU itself. `None` when the SKU is unknown; the flag says
/// whether the variant is archived.
pub async fn stock_units(conn: &mut AnyConnection, sku: &str) -> Result<Option<(bool, Vec<(Item, i64)>)>> {
    let rows = sqlx::query(
        "SELECT v.archived_at, c.inventory_item_id, i.sku, i.created_at, c.quantity FROM variants v \
         JOIN variant_components c ON c.variant_id = v.id JOIN inventory_items i ON i.id = c.inventory_item_id \
         WHERE v.sku = $1",
    )
    .bind(sku)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(item_by_sku(conn, sku).await?.map(|item| (false, vec![(item, 1)])));
    }
    let archived = rows[0].try_get::<Option<i64>, _>("archived_at")?.is_some();
    let units = rows
        .iter()
        .map(|r| {
            Ok((
                Item { id: r.try_get("inventory_item_id")?, sku: r.try_get("sku")?, created_at: r.try_get("created_at")? },
                r.try_get("quantity")?,
            ))
        })
        .collect::<Result<_>>()?;
    Ok(Some((archived, units)))
}

// ------------------------------------------------- admin console reads ---

/// One level as the admin lists show it: with its SKU, location and the
/// product and variant the item is sold as (none for an item only used
/// inside bundles).
#[derive(Debug, Clone)]
pub struct StockLine {
    pub level: LevelRow,
    pub sku: String,
    pub location_name: String,
    pub location_archived: bool,
    pub product_id: Option<String>,
    pub product_title: Option<String>,
    pub variant_title: Option<String>,
}

/// What the admin levels list asks for; `search` matches SKU, product or
/// variant title (case-insensitive substring), `available_at_most` keeps
/// low stock only.
#[derive(Debug, Clone, Default)]
pub struct StockFilter<'a> {
    pub inventory_item_id: Option<&'a str>,
    pub location_id: Option<&'a str>,
    pub search: Option<&'a str>,
    pub available_at_most: Option<i64>,
}

/// `%text%` for `LIKE … ESCAPE '!'`, lowercased.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Levels matching `f`, by SKU then location priority; `offset`/`limit`
/// page them (one query, no per-row lookups).
pub async fn stock_lines(conn: &mut AnyConnection, f: &StockFilter<'_>, offset: i64, limit: i64) -> Result<Vec<StockLine>> {
    let cols = LEVEL_COLUMNS.split(", ").map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {cols}, i.sku, loc.name AS location_name, loc.archived_at AS location_archived_at, \
         p.id AS product_id, p.title AS product_title, v.title AS variant_title \
         FROM inventory_levels l JOIN inventory_items i ON i.id = l.inventory_item_id \
         JOIN locations loc ON loc.id = l.location_id \
         LEFT JOIN variants v ON v.sku = i.sku LEFT JOIN products p ON p.id = v.product_id \
         WHERE ($1 IS NULL OR l.inventory_item_id = $1) AND ($2 IS NULL OR l.location_id = $2) \
         AND ($3 IS NULL OR LOWER(i.sku) LIKE $3 ESCAPE '!' OR LOWER(p.title) LIKE $3 ESCAPE '!' \
              OR LOWER(v.title) LIKE $3 ESCAPE '!') \
         AND ($4 IS NULL OR l.on_hand - l.reserved - l.safety_stock - l.damaged - l.quality_control <= $4) \
         ORDER BY i.sku, loc.priority, loc.id LIMIT $5 OFFSET $6"
    );
    let rows = sqlx::query(&sql)
        .bind(f.inventory_item_id)
        .bind(f.location_id)
        .bind(f.search.map(like_pattern))
        .bind(f.available_at_most)
        .bind(limit)
        .bind(offset)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StockLine {
                level: level_from_row(r)?,
                sku: r.try_get("sku")?,
                location_name: r.try_get("location_name")?,
                location_archived: r.try_get::<Option<i64>, _>("location_archived_at")?.is_some(),
                product_id: r.try_get("product_id")?,
                product_title: r.try_get("product_title")?,
                variant_title: r.try_get("variant_title")?,
            })
        })
        .collect()
}

pub async fn item_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<Item>> {
    let row = sqlx::query("SELECT id, sku, created_at FROM inventory_items WHERE id = $1").bind(id).fetch_optional(conn).await?;
    row.as_ref().map(item_from_row).transpose()
}

/// The product and variant an item is sold as (the variant with its SKU).
pub async fn item_titles(conn: &mut AnyConnection, sku: &str) -> Result<Option<(String, String, String)>> {
    let row = sqlx::query(
        "SELECT p.id AS product_id, p.title AS product_title, v.title AS variant_title FROM variants v \
         JOIN products p ON p.id = v.product_id WHERE v.sku = $1",
    )
    .bind(sku)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get("product_id")?, r.try_get("product_title")?, r.try_get("variant_title")?))).transpose()
}

/// A ledger row as the admin shows it: with the location's name, on_hand
/// at that location just after it, and the staff user's email when a staff
/// user made it.
#[derive(Debug, Clone)]
pub struct LedgerLine {
    pub movement: Movement,
    pub location_name: String,
    pub on_hand_after: i64,
    pub staff_email: Option<String>,
}

/// Ledger of one item, newest first, optionally at one location, paged by
/// offset. The running on_hand is a window sum over the item's ledger.
pub async fn ledger_lines(
    conn: &mut AnyConnection,
    item: &str,
    location: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<Vec<LedgerLine>> {
    let cols = MOVEMENT_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT * FROM (SELECT {cols}, loc.name AS location_name, s.email AS staff_email, \
         CAST(SUM(m.d_on_hand) OVER (PARTITION BY m.location_id ORDER BY m.seq) AS BIGINT) AS on_hand_after \
         FROM inventory_movements m JOIN locations loc ON loc.id = m.location_id \
         LEFT JOIN staff_users s ON m.actor = 'staff:' || s.id \
         WHERE m.inventory_item_id = $1) x \
         WHERE ($2 IS NULL OR x.location_id = $2) ORDER BY x.seq DESC LIMIT $3 OFFSET $4"
    );
    let rows = sqlx::query(&sql).bind(item).bind(location).bind(limit).bind(offset).fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(LedgerLine {
                movement: movement_from_row(r)?,
                location_name: r.try_get("location_name")?,
                on_hand_after: r.try_get("on_hand_after")?,
                staff_email: r.try_get("staff_email")?,
            })
        })
        .collect()
}

/// A transfer with its SKU and location names.
#[derive(Debug, Clone)]
pub struct TransferLine {
    pub id: String,
    pub inventory_item_id: String,
    pub sku: String,
    pub from_location_id: String,
    pub from_location_name: String,
    pub to_location_id: String,
    pub to_location_name: String,
    pub quantity: i64,
    pub reason: Option<String>,
    pub actor: String,
    pub staff_email: Option<String>,
    pub created_at: i64,
}

/// Transfers, newest first, paged by offset.
pub async fn transfer_lines(conn: &mut AnyConnection, offset: i64, limit: i64) -> Result<Vec<TransferLine>> {
    let rows = sqlx::query(
        "SELECT t.id, t.inventory_item_id, i.sku, t.from_location_id, f.name AS from_name, t.to_location_id, \
         d.name AS to_name, t.quantity, t.reason, t.actor, s.email AS staff_email, t.created_at \
         FROM transfers t JOIN inventory_items i ON i.id = t.inventory_item_id \
         JOIN locations f ON f.id = t.from_location_id JOIN locations d ON d.id = t.to_location_id \
         LEFT JOIN staff_users s ON t.actor = 'staff:' || s.id \
         ORDER BY t.created_at DESC, t.id DESC LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TransferLine {
                id: r.try_get("id")?,
                inventory_item_id: r.try_get("inventory_item_id")?,
                sku: r.try_get("sku")?,
                from_location_id: r.try_get("from_location_id")?,
                from_location_name: r.try_get("from_name")?,
                to_location_id: r.try_get("to_location_id")?,
                to_location_name: r.try_get("to_name")?,
                quantity: r.try_get("quantity")?,
                reason: r.try_get("reason")?,
                actor: r.try_get("actor")?,
                staff_email: r.try_get("staff_email")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

//! Reservations and where their units are held.

use crate::batch::Batch;
use crate::{Backend, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct ReservationRow {
    pub id: String,
    pub status: String,
    /// JSON array of the requested lines (`[{"sku","quantity"}]`).
    pub lines: String,
    pub location_id: Option<String>,
    pub reference: Option<String>,
    pub expires_at: Option<i64>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub allocations: Vec<Allocation>,
}

#[derive(Debug, Clone)]
pub struct Allocation {
    pub inventory_item_id: String,
    pub sku: String,
    pub location_id: String,
    pub quantity: i64,
}

const COLUMNS: &str = "id, status, lines, location_id, reference, expires_at, version, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<ReservationRow> {
    Ok(ReservationRow {
        id: r.try_get("id")?,
        status: r.try_get("status")?,
        lines: r.try_get("lines")?,
        location_id: r.try_get("location_id")?,
        reference: r.try_get("reference")?,
        expires_at: r.try_get("expires_at")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        allocations: Vec::new(),
    })
}

/// Queues the reservation and its allocations in `batch`.
pub fn push_insert(batch: &mut Batch, r: &ReservationRow) {
    batch.push(
        format!("INSERT INTO reservations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
        vec![
            (&r.id).into(),
            (&r.status).into(),
            (&r.lines).into(),
            (&r.location_id).into(),
            (&r.reference).into(),
            r.expires_at.into(),
            r.version.into(),
            r.created_at.into(),
            r.updated_at.into(),
        ],
    );
    for a in &r.allocations {
        batch.push(
            "INSERT INTO reservation_allocations (reservation_id, inventory_item_id, location_id, quantity) \
             VALUES ($1, $2, $3, $4)",
            vec![(&r.id).into(), (&a.inventory_item_id).into(), (&a.location_id).into(), a.quantity.into()],
        );
    }
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<ReservationRow>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM reservations WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut r = from_row(&row)?;
    let rows = sqlx::query(
        "SELECT a.inventory_item_id, i.sku, a.location_id, a.quantity FROM reservation_allocations a \
         JOIN inventory_items i ON i.id = a.inventory_item_id WHERE a.reservation_id = $1 \
         ORDER BY a.inventory_item_id, a.location_id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    r.allocations = rows
        .iter()
        .map(|a| {
            Ok(Allocation {
                inventory_item_id: a.try_get("inventory_item_id")?,
                sku: a.try_get("sku")?,
                location_id: a.try_get("location_id")?,
                quantity: a.try_get("quantity")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Some(r))
}

/// Moves a reservation from `from` to `to` if it is still in `from`; the
/// guard makes release, commit and expiry race-safe. Returns the new version.
pub async fn transition(
    conn: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    clear_expiry: bool,
    now: i64,
) -> Result<Option<i64>> {
    let row = sqlx::query(
        "UPDATE reservations SET status = $3, version = version + 1, updated_at = $4, \
         expires_at = CASE WHEN $5 = 1 THEN NULL ELSE expires_at END WHERE id = $1 AND status = $2 RETURNING version",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(now)
    .bind(i64::from(clear_expiry))
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("version")?),
        None => None,
    })
}

/// Active reservations past their expiry, oldest first. On PostgreSQL rows
/// another node is already expiring are skipped.
pub async fn expired(conn: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<String>> {
    let lock = match Backend::of(conn) {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let rows = sqlx::query(&format!(
        "SELECT id FROM reservations WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= $1 \
         ORDER BY expires_at LIMIT $2{lock}"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

pub async fn list(
    conn: &mut AnyConnection,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<ReservationRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM reservations WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(status)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Units held per (item, location) by reservations that still hold stock.
pub async fn held_totals(conn: &mut AnyConnection) -> Result<Vec<(String, String, i64)>> {
    let rows = sqlx::query(
        "SELECT a.inventory_item_id, a.location_id, CAST(SUM(a.quantity) AS BIGINT) AS held \
         FROM reservation_allocations a JOIN reservations r ON r.id = a.reservation_id \
         WHERE r.status IN ('active', 'committed') GROUP BY a.inventory_item_id, a.location_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("inventory_item_id")?, r.try_get("location_id")?, r.try_get("held")?)))
        .collect()
}

//! Stock locations: warehouses, stores and 3PLs.

use crate::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct LocationRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub priority: i64,
    pub country: String,
    pub archived_at: Option<i64>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, name, kind, priority, country, archived_at, version, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<LocationRow> {
    Ok(LocationRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        priority: r.try_get("priority")?,
        country: r.try_get("country")?,
        archived_at: r.try_get("archived_at")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, l: &LocationRow) -> Result<()> {
    sqlx::query(&format!("INSERT INTO locations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
        .bind(&l.id)
        .bind(&l.name)
        .bind(&l.kind)
        .bind(l.priority)
        .bind(&l.country)
        .bind(l.archived_at)
        .bind(l.version)
        .bind(l.created_at)
        .bind(l.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn update(conn: &mut AnyConnection, l: &LocationRow) -> Result<Option<i64>> {
    let row = sqlx::query(
        "UPDATE locations SET name = $2, kind = $3, priority = $4, country = $5, archived_at = $6, \
         version = version + 1, updated_at = $7 WHERE id = $1 RETURNING version",
    )
    .bind(&l.id)
    .bind(&l.name)
    .bind(&l.kind)
    .bind(l.priority)
    .bind(&l.country)
    .bind(l.archived_at)
    .bind(l.updated_at)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("version")?),
        None => None,
    })
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<LocationRow>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM locations WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut AnyConnection, before: Option<&str>, limit: i64) -> Result<Vec<LocationRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM locations WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Locations that can fulfil, in allocation order: priority, then age.
pub async fn active_by_priority(conn: &mut AnyConnection) -> Result<Vec<LocationRow>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM locations WHERE archived_at IS NULL ORDER BY priority, id"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Every location, archived ones too, in allocation order (admin pickers).
pub async fn all_by_priority(conn: &mut AnyConnection) -> Result<Vec<LocationRow>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM locations ORDER BY priority, id")).fetch_all(conn).await?;
    rows.iter().map(from_row).collect()
}

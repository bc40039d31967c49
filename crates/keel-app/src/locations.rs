//! Stock locations.

use crate::views::{LocationView, Page};
use crate::{in_tx, page_limit, Actor, App, AppError, Result};
use keel_domain::catalog::{self as rules, LocationKind};
use keel_domain::ids::LocationId;
use keel_domain::time::now_micros;
use keel_domain::Invalid;
use keel_store::locations::{self as db, LocationRow};
use keel_store::{outbox, Conn};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLocation {
    pub name: String,
    #[schema(value_type = String, example = "warehouse")]
    pub kind: LocationKind,
    /// Lower numbers are allocated first; default 100.
    pub priority: Option<i64>,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationChanges {
    pub name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub kind: Option<LocationKind>,
    pub priority: Option<i64>,
    pub country: Option<String>,
    pub archived: Option<bool>,
}

fn check_priority(p: i64) -> Result<i64, Invalid> {
    if (0..=1_000_000).contains(&p) {
        Ok(p)
    } else {
        Err(Invalid::new("priority", "invalid_priority", "must be between 0 and 1000000"))
    }
}

async fn emit(conn: &mut Conn, kind: &str, view: &LocationView, actor: &Actor) -> Result<()> {
    outbox::append(
        conn,
        outbox::NewEvent {
            kind,
            aggregate_type: "location",
            aggregate_id: &view.id,
            aggregate_seq: view.version,
            payload: json!({ "object": view, "actor": actor.0 }),
        },
    )
    .await?;
    Ok(())
}

/// A location that may take stock movements: it exists and is not archived.
pub(crate) async fn usable(conn: &mut Conn, field: &str, id: &str) -> Result<LocationRow> {
    LocationId::parse(field, id)?;
    let loc = db::get(conn, id).await?.ok_or_else(|| AppError::not_found_at("location", id, field))?;
    if loc.archived_at.is_some() {
        return Err(AppError::conflict("location_archived", format!("location {id} is archived"), Some(field)));
    }
    Ok(loc)
}

impl App {
    pub async fn create_location(&self, actor: &Actor, input: NewLocation) -> Result<LocationView> {
        let name = rules::text("name", &input.name, 255)?;
        let country = rules::country("country", &input.country)?;
        let priority = check_priority(input.priority.unwrap_or(100))?;
        in_tx!(self, |tx| {
            let now = now_micros();
            let row = LocationRow {
                id: LocationId::generate().to_string(),
                name: name.clone(),
                kind: input.kind.as_str().to_owned(),
                priority,
                country: country.clone(),
                archived_at: None,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            db::insert(&mut tx, &row).await?;
            let view = LocationView::from(row);
            emit(&mut tx, "location.created", &view, actor).await?;
            Ok(view)
        })
    }

    pub async fn update_location(&self, actor: &Actor, id: &str, changes: LocationChanges) -> Result<LocationView> {
        LocationId::parse("id", id).map_err(|_| AppError::not_found("location", id))?;
        let name = changes.name.as_deref().map(|n| rules::text("name", n, 255)).transpose()?;
        let country = changes.country.as_deref().map(|c| rules::country("country", c)).transpose()?;
        let priority = changes.priority.map(check_priority).transpose()?;
        in_tx!(self, |tx| {
            let mut l = db::get(&mut tx, id).await?.ok_or_else(|| AppError::not_found("location", id))?;
            let now = now_micros();
            if let Some(n) = &name {
                l.name = n.clone();
            }
            if let Some(k) = changes.kind {
                l.kind = k.as_str().to_owned();
            }
            if let Some(p) = priority {
                l.priority = p;
            }
            if let Some(c) = &country {
                l.country = c.clone();
            }
            let archiving = changes.archived == Some(true) && l.archived_at.is_none();
            if let Some(a) = changes.archived {
                l.archived_at = if a { l.archived_at.or(Some(now)) } else { None };
            }
            l.updated_at = now;
            l.version = db::update(&mut tx, &l).await?.ok_or_else(|| AppError::not_found("location", id))?;
            let view = LocationView::from(l);
            emit(&mut tx, if archiving { "location.archived" } else { "location.updated" }, &view, actor).await?;
            Ok(view)
        })
    }

    pub async fn get_location(&self, id: &str) -> Result<LocationView> {
        LocationId::parse("id", id).map_err(|_| AppError::not_found("location", id))?;
        let mut conn = self.store.reader().await?;
        Ok(db::get(&mut conn, id).await?.ok_or_else(|| AppError::not_found("location", id))?.into())
    }

    pub async fn list_locations(&self, starting_after: Option<&str>, limit: Option<i64>) -> Result<Page<LocationView>> {
        if let Some(c) = starting_after {
            LocationId::parse("starting_after", c)?;
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let rows = db::list(&mut conn, starting_after, limit + 1).await?;
        Ok(Page::from_overfetch(rows.into_iter().map(LocationView::from).collect(), limit))
    }
}

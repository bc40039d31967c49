//! Reservations: hold units of one or more SKUs, all-or-nothing, optionally
//! for a limited time; then release them or commit them to an order.

use crate::inventory::move_stock;
use crate::locations::usable;
use crate::views::{LineView, Page, ReservationView};
use crate::{in_tx, page_limit, Actor, App, AppError, Result};
use keel_domain::catalog::{optional_text, Sku};
use keel_domain::ids::{LocationId, ReservationId};
use keel_domain::inventory::{demand, plan_allocation, quantity, MovementKind};
use keel_domain::time::now_micros;
use keel_domain::Invalid;
use keel_store::inventory::{self as inv, Item, NewMovement};
use keel_store::reservations::{self as db, Allocation, ReservationRow};
use keel_store::batch::Batch;
use keel_store::{outbox, Backend, Conn};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Longest hold a reservation may ask for: one week.
pub const MAX_TTL_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationInput {
    /// Single-line form: a variant or inventory-item SKU …
    pub sku: Option<String>,
    /// … and its quantity.
    pub quantity: Option<i64>,
    /// Multi-line form (1–100 lines). Demand is summed per inventory item.
    pub lines: Option<Vec<LineInput>>,
    /// Hold everything at this location; otherwise the highest-priority
    /// location that covers the whole reservation, else split by priority.
    pub location_id: Option<String>,
    /// Released automatically after this many seconds (1–604800).
    pub ttl_seconds: Option<i64>,
    /// Free text such as a cart or order id.
    pub reference: Option<String>,
}

/// Units needed per inventory item, and each item with the request field
/// that asked for it (for error messages).
struct Demand {
    need: BTreeMap<String, i64>,
    items: BTreeMap<String, (Item, String)>,
}

struct CheckedLine {
    field: String,
    sku: Sku,
    quantity: i64,
}

fn check_lines(input: &ReservationInput) -> Result<Vec<CheckedLine>, Invalid> {
    let raw: Vec<(String, &str, i64)> = match (&input.lines, &input.sku) {
        (Some(_), Some(_)) => return Err(Invalid::new("sku", "conflicting_fields", "give sku and quantity, or lines, not both")),
        (Some(lines), None) => {
            if input.quantity.is_some() {
                return Err(Invalid::new("quantity", "conflicting_fields", "quantity belongs inside lines"));
            }
            if lines.is_empty() || lines.len() > 100 {
                return Err(Invalid::new("lines", "invalid_lines", "between 1 and 100 lines"));
            }
            lines.iter().enumerate().map(|(i, l)| (format!("lines[{i}]"), l.sku.as_str(), l.quantity)).collect()
        }
        (None, Some(sku)) => {
            let q = input.quantity.ok_or_else(|| Invalid::new("quantity", "required", "quantity is required with sku"))?;
            vec![(String::new(), sku.as_str(), q)]
        }
        (None, None) => return Err(Invalid::new("sku", "required", "give sku and quantity, or lines")),
    };
    raw.into_iter()
        .map(|(prefix, sku, q)| {
            let at = |f: &str| if prefix.is_empty() { f.to_owned() } else { format!("{prefix}.{f}") };
            Ok(CheckedLine { sku: Sku::parse(&at("sku"), sku)?, quantity: quantity(&at("quantity"), MovementKind::Reserve, q)?, field: at("sku") })
        })
        .collect()
}

fn event<'a>(kind: &'a str, view: &'a ReservationView, actor: &Actor) -> outbox::NewEvent<'a> {
    outbox::NewEvent {
        kind,
        aggregate_type: "reservation",
        aggregate_id: &view.id,
        aggregate_seq: view.version,
        payload: json!({ "object": view, "actor": actor.0 }),
    }
}

async fn emit(conn: &mut Conn, kind: &str, view: &ReservationView, actor: &Actor) -> Result<()> {
    outbox::append(conn, event(kind, view, actor)).await?;
    Ok(())
}

async fn load(conn: &mut Conn, id: &str) -> Result<ReservationRow> {
    db::get(conn, id).await?.ok_or_else(|| AppError::not_found("reservation", id))
}

impl App {
    pub async fn reserve(&self, actor: &Actor, input: ReservationInput) -> Result<ReservationView> {
        let request = self.prepare_reservation(&input).await?;
        let mut attempt = 0;
        loop {
            let plan = self.plan_reservation(&request).await?;
            let outcome = in_tx!(self, |tx| write_reservation(&mut tx, &request, &plan, actor).await);
            match outcome {
                // Without a fixed location the plan came from a read that a
                // concurrent writer may have outdated: plan again.
                Err(e) if request.replannable(&e) && attempt < 5 => attempt += 1,
                other => return other,
            }
        }
    }

    /// Validates a reservation and resolves what it consumes. Reads happen
    /// outside the write transaction so the writer (the only one, on SQLite)
    /// and hot level rows (on PostgreSQL) are held as briefly as possible; the
    /// conditional updates in [`write_reservation`] re-check everything.
    pub(crate) async fn prepare_reservation(&self, input: &ReservationInput) -> Result<ReservationRequest> {
        let lines = check_lines(input)?;
        if let Some(l) = &input.location_id {
            LocationId::parse("location_id", l)?;
        }
        let ttl = match input.ttl_seconds {
            Some(t) if !(1..=MAX_TTL_SECONDS).contains(&t) => {
                return Err(Invalid::new("ttl_seconds", "invalid_ttl", format!("must be between 1 and {MAX_TTL_SECONDS}")).into())
            }
            t => t,
        };
        let reference = optional_text("reference", input.reference.as_deref(), 255)?;
        let line_views = lines.iter().map(|l| LineView { sku: l.sku.to_string(), quantity: l.quantity }).collect();
        let demand = self.resolve_demand(&lines).await?;
        let fixed = match &input.location_id {
            Some(l) => {
                let mut conn = self.store.reader().await?;
                Some(usable(&mut conn, "location_id", l).await?.id)
            }
            None => None,
        };
        Ok(ReservationRequest { demand, fixed, ttl, reference, line_views })
    }

    /// Where each item's units will be taken from.
    pub(crate) async fn plan_reservation(&self, r: &ReservationRequest) -> Result<Vec<(String, String, i64)>> {
        match &r.fixed {
            Some(loc) => Ok(r.demand.need.iter().map(|(item, n)| (item.clone(), loc.clone(), *n)).collect()),
            None => self.plan(&r.demand).await,
        }
    }

    /// What the lines consume, summed per inventory item.
    async fn resolve_demand(&self, lines: &[CheckedLine]) -> Result<Demand> {
        let mut conn = self.store.reader().await?;
        let mut per_line = Vec::with_capacity(lines.len());
        let mut items: BTreeMap<String, (Item, String)> = BTreeMap::new();
        for l in lines {
            let (archived, units) = inv::stock_units(&mut conn, l.sku.as_str())
                .await?
                .ok_or_else(|| AppError::not_found_at("variant", l.sku.as_str(), &l.field))?;
            if archived {
                return Err(AppError::conflict("variant_archived", format!("{} is archived", l.sku), Some(&l.field)));
            }
            let comps: Vec<(String, i64)> = units.iter().map(|(item, q)| (item.id.clone(), *q)).collect();
            for (item, _) in units {
                items.entry(item.id.clone()).or_insert((item, l.field.clone()));
            }
            per_line.push((comps, l.quantity));
        }
        let need = demand(&per_line).ok_or_else(|| Invalid::new("lines", "invalid_quantity", "total quantity too large"))?;
        Ok(Demand { need, items })
    }

    /// Where to take the demand from, by current availability; a clean
    /// `insufficient_stock` when the locations together cannot cover it.
    async fn plan(&self, d: &Demand) -> Result<Vec<(String, String, i64)>> {
        let mut conn = self.store.reader().await?;
        let ids: Vec<&str> = d.need.keys().map(String::as_str).collect();
        let mut by_loc: Vec<(String, BTreeMap<String, i64>)> = Vec::new();
        for l in inv::levels_for_allocation(&mut conn, &ids).await? {
            let avail = l.levels.available();
            match by_loc.iter_mut().find(|(loc, _)| *loc == l.location_id) {
                Some((_, m)) => {
                    m.insert(l.inventory_item_id.clone(), avail);
                }
                None => by_loc.push((l.location_id.clone(), BTreeMap::from([(l.inventory_item_id.clone(), avail)]))),
            }
        }
        if let Some(mut plan) = plan_allocation(&d.need, &by_loc) {
            // Lock levels in (item, location) order, as every other writer does.
            plan.sort();
            return Ok(plan);
        }
        let total = |item: &String| by_loc.iter().map(|(_, m)| m.get(item).copied().unwrap_or(0).max(0)).sum::<i64>();
        let (item, n) = d.need.iter().find(|(item, n)| total(item) < **n).unwrap_or_else(|| d.need.iter().next().expect("non-empty demand"));
        let (it, field) = &d.items[item];
        Err(AppError::conflict(
            "insufficient_stock",
            format!("insufficient stock for {}: {n} needed, {} available", it.sku, total(item)),
            Some(field),
        ))
    }

    pub async fn release_reservation(&self, actor: &Actor, id: &str) -> Result<ReservationView> {
        ReservationId::parse("id", id).map_err(|_| AppError::not_found("reservation", id))?;
        in_tx!(self, |tx| release_in_tx(&mut tx, id, None, actor).await)
    }

    pub async fn commit_reservation(&self, actor: &Actor, id: &str) -> Result<ReservationView> {
        ReservationId::parse("id", id).map_err(|_| AppError::not_found("reservation", id))?;
        in_tx!(self, |tx| commit_in_tx(&mut tx, id, actor).await)
    }

    pub async fn get_reservation(&self, id: &str) -> Result<ReservationView> {
        ReservationId::parse("id", id).map_err(|_| AppError::not_found("reservation", id))?;
        let mut conn = self.store.reader().await?;
        Ok(ReservationView::from_row(load(&mut conn, id).await?))
    }

    pub async fn list_reservations(
        &self,
        status: Option<&str>,
        starting_after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<ReservationView>> {
        if let Some(s) = status {
            if !matches!(s, "active" | "committed" | "released" | "expired") {
                return Err(Invalid::new("status", "invalid_status", "active, committed, released or expired").into());
            }
        }
        if let Some(c) = starting_after {
            ReservationId::parse("starting_after", c)?;
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let rows = db::list(&mut conn, status, starting_after, limit + 1).await?;
        let mut views = Vec::with_capacity(rows.len());
        for r in rows {
            views.push(ReservationView::from_row(load(&mut conn, &r.id).await?));
        }
        Ok(Page::from_overfetch(views, limit))
    }

    /// Releases active reservations whose TTL has passed at `now`; returns
    /// how many. The worker calls this with the wall clock, tests with any.
    pub async fn expire_reservations(&self, now: i64) -> Result<usize> {
        let actor = Actor::system("reservation-expiry");
        let mut released = 0;
        loop {
            let ids = {
                let mut conn = self.store.reader().await?;
                db::expired(&mut conn, now, 100).await?
            };
            if ids.is_empty() {
                return Ok(released);
            }
            let batch = ids.len();
            for id in ids {
                let done = in_tx!(self, |tx| {
                    let r = load(&mut tx, &id).await?;
                    if r.status != "active" {
                        return Ok(false);
                    }
                    let view = end_hold(&mut tx, r, "expired", MovementKind::Release, Some("expired"), &actor).await?;
                    emit(&mut tx, "reservation.expired", &view, &actor).await?;
                    Ok(true)
                })?;
                released += usize::from(done);
            }
            if batch < 100 {
                return Ok(released);
            }
        }
    }
}

/// A validated reservation, ready to be planned and written.
pub(crate) struct ReservationRequest {
    demand: Demand,
    fixed: Option<String>,
    ttl: Option<i64>,
    reference: Option<String>,
    line_views: Vec<LineView>,
}

impl ReservationRequest {
    /// Whether `e` came from a plan that a concurrent writer outdated.
    pub(crate) fn replannable(&self, e: &AppError) -> bool {
        self.fixed.is_none() && matches!(e, AppError::Conflict { code: "insufficient_stock", .. })
    }
}

/// Writes a planned reservation in the caller's transaction: the reservation
/// first, the contended level rows last, so a row lock is held only for its
/// own update and the commit.
pub(crate) async fn write_reservation(
    tx: &mut Conn,
    r: &ReservationRequest,
    plan: &[(String, String, i64)],
    actor: &Actor,
) -> Result<ReservationView> {
    let id = ReservationId::generate();
    let now = now_micros();
    let allocations = plan
        .iter()
        .map(|(item_id, loc, n)| Allocation {
            inventory_item_id: item_id.clone(),
            sku: r.demand.items[item_id].0.sku.clone(),
            location_id: loc.clone(),
            quantity: *n,
        })
        .collect();
    let row = ReservationRow {
        id: id.to_string(),
        status: "active".into(),
        lines: serde_json::to_string(&r.line_views).unwrap_or_else(|_| "[]".into()),
        location_id: r.fixed.clone(),
        reference: r.reference.clone(),
        expires_at: r.ttl.map(|t| now + t * 1_000_000),
        version: 1,
        created_at: now,
        updated_at: now,
        allocations,
    };
    let view = ReservationView::from_row(row.clone());
    let mut batch = Batch::new();
    db::push_insert(&mut batch, &row);
    outbox::push(&mut batch, Backend::of(tx), event("reservation.created", &view, actor));
    batch.run(tx).await?;
    for (item_id, loc, n) in plan {
        let (item, field) = &r.demand.items[item_id];
        let mut m = NewMovement::new(item_id, loc, MovementKind::Reserve, *n, &actor.0);
        m.reservation_id = Some(id.as_str());
        m.reason = r.reference.as_deref();
        move_stock(tx, &item.sku, &m, field).await?;
    }
    Ok(view)
}

/// Releases a holding reservation in the caller's transaction.
pub(crate) async fn release_in_tx(tx: &mut Conn, id: &str, reason: Option<&str>, actor: &Actor) -> Result<ReservationView> {
    let r = load(tx, id).await?;
    if !matches!(r.status.as_str(), "active" | "committed") {
        return Err(AppError::conflict("reservation_not_active", format!("reservation {id} is {}", r.status), None));
    }
    let view = end_hold(tx, r, "released", MovementKind::Release, reason, actor).await?;
    emit(tx, "reservation.released", &view, actor).await?;
    Ok(view)
}

/// Commits an active reservation (to an order) in the caller's transaction.
pub(crate) async fn commit_in_tx(tx: &mut Conn, id: &str, actor: &Actor) -> Result<ReservationView> {
    let r = load(tx, id).await?;
    let now = now_micros();
    if r.status == "expired" || (r.status == "active" && r.expires_at.is_some_and(|e| e <= now)) {
        return Err(AppError::conflict("reservation_expired", format!("reservation {id} has expired"), None));
    }
    if r.status != "active" {
        return Err(AppError::conflict("reservation_not_active", format!("reservation {id} is {}", r.status), None));
    }
    db::transition(tx, id, "active", "committed", true, now).await?.ok_or(AppError::Contended)?;
    for a in &r.allocations {
        let mut m = NewMovement::new(&a.inventory_item_id, &a.location_id, MovementKind::Commit, a.quantity, &actor.0);
        m.reservation_id = Some(id);
        move_stock(tx, &a.sku, &m, "id").await?;
    }
    let view = ReservationView::from_row(load(tx, id).await?);
    emit(tx, "reservation.committed", &view, actor).await?;
    Ok(view)
}

/// Moves a holding reservation to `status` and gives its units back.
async fn end_hold(
    conn: &mut Conn,
    r: ReservationRow,
    status: &str,
    kind: MovementKind,
    reason: Option<&str>,
    actor: &Actor,
) -> Result<ReservationView> {
    let now = now_micros();
    db::transition(conn, &r.id, &r.status, status, false, now).await?.ok_or(AppError::Contended)?;
    for a in &r.allocations {
        let mut m = NewMovement::new(&a.inventory_item_id, &a.location_id, kind, a.quantity, &actor.0);
        m.reservation_id = Some(&r.id);
        m.reason = reason;
        move_stock(conn, &a.sku, &m, "id").await?;
    }
    Ok(ReservationView::from_row(load(conn, &r.id).await?))
}

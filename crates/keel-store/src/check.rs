//! Consistency checks behind `keel check`: the projection equals the ledger,
//! every level obeys the stock rules, and reserved units are accounted for.

use crate::{inventory, reservations, Result};
use keel_domain::inventory::Levels;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub check: &'static str,
    pub subject: String,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub levels_checked: usize,
    pub movements_checked: i64,
    pub problems: Vec<Problem>,
}

pub async fn run(conn: &mut AnyConnection) -> Result<Report> {
    let mut report = Report::default();
    let levels = inventory::all_levels(conn).await?;
    report.levels_checked = levels.len();
    let mut projected: BTreeMap<(String, String), Levels> = BTreeMap::new();
    for l in &levels {
        if !l.levels.is_consistent() {
            report.problems.push(Problem {
                check: "level_rules",
                subject: format!("{}@{}", l.inventory_item_id, l.location_id),
                detail: format!("{:?} breaks a stock rule", l.levels),
            });
        }
        projected.insert((l.inventory_item_id.clone(), l.location_id.clone()), l.levels);
    }
    let mut folded: BTreeMap<(String, String), Levels> = BTreeMap::new();
    for (item, loc, sum) in inventory::ledger_fold(conn).await? {
        folded.insert((item, loc), sum);
    }
    let keys: std::collections::BTreeSet<_> = projected.keys().chain(folded.keys()).cloned().collect();
    for key in keys {
        let p = projected.get(&key).copied().unwrap_or_default();
        let f = folded.get(&key).copied().unwrap_or_default();
        if p != f {
            report.problems.push(Problem {
                check: "ledger_equals_levels",
                subject: format!("{}@{}", key.0, key.1),
                detail: format!("levels {p:?} but ledger sums to {f:?}"),
            });
        }
    }
    let mut held: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (item, loc, n) in reservations::held_totals(conn).await? {
        held.insert((item, loc), n);
    }
    for (key, l) in &projected {
        let h = held.get(key).copied().unwrap_or(0);
        if l.reserved != h {
            report.problems.push(Problem {
                check: "reserved_equals_reservations",
                subject: format!("{}@{}", key.0, key.1),
                detail: format!("reserved is {} but open reservations hold {h}", l.reserved),
            });
        }
    }
    for (key, h) in &held {
        if !projected.contains_key(key) {
            report.problems.push(Problem {
                check: "reserved_equals_reservations",
                subject: format!("{}@{}", key.0, key.1),
                detail: format!("reservations hold {h} at a level that does not exist"),
            });
        }
    }
    let orphans = sqlx::query(
        "SELECT v.sku FROM variants v WHERE NOT EXISTS (SELECT 1 FROM variant_components c WHERE c.variant_id = v.id)",
    )
    .fetch_all(&mut *conn)
    .await?;
    for r in orphans {
        report.problems.push(Problem {
            check: "variant_has_stock_items",
            subject: r.try_get("sku")?,
            detail: "variant consumes no inventory item".into(),
        });
    }
    // Orders and checkouts: every live order holds committed stock, and no
    // checkout or cart claims to be finished without its order.
    let checks: [(&'static str, &str, &str); 3] = [
        (
            "orders_hold_committed_stock",
            "SELECT o.id AS subject FROM orders o LEFT JOIN reservations r ON r.id = o.reservation_id \
             WHERE o.status <> 'cancelled' AND (r.id IS NULL OR r.status <> 'committed')",
            "order is live but its reservation is not committed",
        ),
        (
            "checkouts_have_orders",
            "SELECT c.id AS subject FROM checkouts c LEFT JOIN orders o ON o.id = c.order_id \
             WHERE c.status = 'completed' AND o.id IS NULL",
            "checkout completed without an order",
        ),
        (
            "carts_have_orders",
            "SELECT c.id AS subject FROM carts c LEFT JOIN orders o ON o.id = c.order_id \
             WHERE c.status = 'completed' AND o.id IS NULL",
            "cart completed without an order",
        ),
    ];
    for (check, sql, detail) in checks {
        for r in sqlx::query(sql).fetch_all(&mut *conn).await? {
            report.problems.push(Problem { check, subject: r.try_get("subject")?, detail: detail.into() });
        }
    }
    let row = sqlx::query("SELECT COUNT(*) AS n FROM inventory_movements").fetch_one(conn).await?;
    report.movements_checked = row.try_get("n")?;
    Ok(report)
}

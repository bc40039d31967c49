//! Consistency checks behind `keel check`: the projection equals the ledger,
//! every level obeys the stock rules, reserved units are accounted for, and
//! no feed count was corrected twice.

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
    report.problems.extend(counts_applied_twice(conn).await?);
    report.problems.extend(audit_chain(conn).await?);
    let row = sqlx::query("SELECT COUNT(*) AS n FROM inventory_movements").fetch_one(conn).await?;
    report.movements_checked = row.try_get("n")?;
    Ok(report)
}

/// Pairs of applied batches of one integration in which the same count
/// (item, location, counted_at and on_hand) each produced a non-zero
/// correction. A count corrects its discrepancy once; the second batch
/// should have found it unchanged. The ledger folds either way, so only the
/// feed rows show it (for as long as they are kept).
async fn counts_applied_twice(conn: &mut AnyConnection) -> Result<Vec<Problem>> {
    let rows = sqlx::query(
        "SELECT r1.batch_id AS first_batch, r2.batch_id AS second_batch, b1.integration_id AS integration_id, \
         CAST(COUNT(*) AS BIGINT) AS n, MIN(r1.sku) AS sku, MIN(r1.location_id) AS location_id \
         FROM sync_batch_rows r1 \
         JOIN sync_batches b1 ON b1.id = r1.batch_id \
         JOIN inventory_movements m1 ON m1.id = r1.movement_id \
         JOIN sync_batch_rows r2 ON r2.inventory_item_id = r1.inventory_item_id AND r2.location_id = r1.location_id \
              AND r2.counted_at = r1.counted_at AND r2.on_hand = r1.on_hand AND r2.batch_id > r1.batch_id \
         JOIN sync_batches b2 ON b2.id = r2.batch_id \
         JOIN inventory_movements m2 ON m2.id = r2.movement_id \
         WHERE r1.outcome = 'applied' AND r2.outcome = 'applied' AND b2.integration_id = b1.integration_id \
         AND b1.status IN ('applied', 'partially_applied') AND b2.status IN ('applied', 'partially_applied') \
         AND m1.d_on_hand <> 0 AND m2.d_on_hand <> 0 \
         GROUP BY r1.batch_id, r2.batch_id, b1.integration_id ORDER BY r1.batch_id, r2.batch_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let (first, second): (String, String) = (r.try_get("first_batch")?, r.try_get("second_batch")?);
            let n: i64 = r.try_get("n")?;
            let (sku, location): (String, String) = (r.try_get("sku")?, r.try_get("location_id")?);
            let integration: String = r.try_get("integration_id")?;
            Ok(Problem {
                check: "feed_count_applied_once",
                subject: format!("{first} and {second}"),
                detail: format!(
                    "both batches of integration {integration} applied a correction for the same {n} count(s), e.g. {sku} at {location}"
                ),
            })
        })
        .collect()
}

/// The audit log's hash chain, as a problem naming the first entry that
/// does not hold.
pub async fn audit_chain(conn: &mut AnyConnection) -> Result<Vec<Problem>> {
    Ok(crate::audit::verify_chain(conn)
        .await?
        .map(|(id, why)| Problem { check: "audit_chain", subject: id, detail: why.to_owned() })
        .into_iter()
        .collect())
}

/// A few encrypted values from each table that holds them (newest rows),
/// for `keel check` to prove the key in use can read them: (table, value).
pub async fn encrypted_samples(conn: &mut AnyConnection, per_table: i64) -> Result<Vec<(&'static str, String)>> {
    const SOURCES: [(&str, &str); 4] = [
        ("customers", "SELECT email_enc FROM customers ORDER BY id DESC LIMIT $1"),
        ("orders", "SELECT email_enc FROM orders WHERE email_enc IS NOT NULL ORDER BY id DESC LIMIT $1"),
        ("carts", "SELECT email_enc FROM carts WHERE email_enc IS NOT NULL ORDER BY id DESC LIMIT $1"),
        ("webhook_endpoints", "SELECT secret_enc FROM webhook_endpoints ORDER BY id DESC LIMIT $1"),
    ];
    let mut out = Vec::new();
    for (table, sql) in SOURCES {
        for row in sqlx::query(sql).bind(per_table).fetch_all(&mut *conn).await? {
            out.push((table, row.try_get::<String, _>(0)?));
        }
    }
    Ok(out)
}

//! Random operation sequences against the real store (through the use
//! cases), checked against a simple model and `keel check` after each run.

use keel_app::{Actor, App, AppError};
use keel_testkit::TestDb;
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Receive { item: usize, loc: usize, n: i64 },
    Adjust { item: usize, loc: usize, d: i64 },
    Reserve { sku: usize, n: i64, loc: Option<usize> },
    Release { nth: usize },
    Commit { nth: usize },
    Transfer { item: usize, from: usize, to: usize, n: i64 },
    Damage { item: usize, loc: usize, n: i64 },
}

/// Items A and B; SKU 2 is a kit of 2×A + 1×B.
const ITEMS: [&str; 2] = ["PA", "PB"];
const SKUS: [&str; 3] = ["PA", "PB", "PKIT"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2usize, 0..2usize, 1..20i64).prop_map(|(item, loc, n)| Op::Receive { item, loc, n }),
        (0..2usize, 0..2usize, -10..10i64).prop_map(|(item, loc, d)| Op::Adjust { item, loc, d }),
        (0..3usize, 1..6i64, prop::option::of(0..2usize)).prop_map(|(sku, n, loc)| Op::Reserve { sku, n, loc }),
        (0..8usize).prop_map(|nth| Op::Release { nth }),
        (0..8usize).prop_map(|nth| Op::Commit { nth }),
        (0..2usize, 0..2usize, 0..2usize, 1..8i64).prop_map(|(item, from, to, n)| Op::Transfer { item, from, to, n }),
        (0..2usize, 0..2usize, 1..4i64).prop_map(|(item, loc, n)| Op::Damage { item, loc, n }),
    ]
}

fn refused(e: &AppError) -> bool {
    matches!(e, AppError::Conflict { .. } | AppError::Invalid(_))
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let db = TestDb::fresh().await;
    let app: App = db.open().await;
    let actor = Actor::system("proptest");
    let mut locs = Vec::new();
    for (i, name) in ["L0", "L1"].iter().enumerate() {
        let l = app
            .create_location(&actor, serde_json::from_value(json!({"name": name, "kind": "warehouse", "priority": i, "country": "US"})).unwrap())
            .await
            .unwrap();
        locs.push(l.id);
    }
    for sku in ITEMS {
        app.create_product(&actor, serde_json::from_value(json!({"title": sku, "variants": [{"sku": sku}]})).unwrap()).await.unwrap();
    }
    app.create_product(
        &actor,
        serde_json::from_value(json!({"title": "Kit", "variants": [{"sku": "PKIT", "components": [{"sku": "PA", "quantity": 2}, {"sku": "PB", "quantity": 1}]}]}))
            .unwrap(),
    )
    .await
    .unwrap();

    // Model: on_hand, reserved and damaged per (item sku, location index).
    let mut on_hand: BTreeMap<(usize, usize), i64> = BTreeMap::new();
    let mut reserved: BTreeMap<(usize, usize), i64> = BTreeMap::new();
    let mut damaged: BTreeMap<(usize, usize), i64> = BTreeMap::new();
    // (reservation id, allocations as (item, location, units), still holding)
    type Hold = (String, Vec<(usize, usize, i64)>, bool);
    let mut holds: Vec<Hold> = Vec::new();
    let loc_ix = |id: &str| locs.iter().position(|l| l == id).unwrap();
    let item_ix = |sku: &str| ITEMS.iter().position(|s| *s == sku).unwrap();

    for op in ops {
        let adj = |item: usize, loc: usize, kind: &str, q: i64| {
            serde_json::from_value(json!({"sku": ITEMS[item], "location_id": locs[loc], "kind": kind, "quantity_delta": q})).unwrap()
        };
        match op {
            Op::Receive { item, loc, n } => {
                app.adjust_inventory(&actor, adj(item, loc, "receive", n)).await.unwrap();
                *on_hand.entry((item, loc)).or_default() += n;
            }
            Op::Adjust { item, loc, d } if d != 0 => match app.adjust_inventory(&actor, adj(item, loc, "adjust", d)).await {
                Ok(_) => *on_hand.entry((item, loc)).or_default() += d,
                Err(e) => prop_assert!(refused(&e), "{e:?}"),
            },
            Op::Adjust { .. } => {}
            Op::Damage { item, loc, n } => match app.adjust_inventory(&actor, adj(item, loc, "damage", n)).await {
                Ok(_) => *damaged.entry((item, loc)).or_default() += n,
                Err(e) => prop_assert!(refused(&e), "{e:?}"),
            },
            Op::Reserve { sku, n, loc } => {
                let mut body = json!({"sku": SKUS[sku], "quantity": n});
                if let Some(l) = loc {
                    body["location_id"] = json!(locs[l]);
                }
                match app.reserve(&actor, serde_json::from_value(body).unwrap()).await {
                    Ok(r) => {
                        let allocs: Vec<(usize, usize, i64)> =
                            r.allocations.iter().map(|a| (item_ix(&a.sku), loc_ix(&a.location_id), a.quantity)).collect();
                        for (i, l, q) in &allocs {
                            *reserved.entry((*i, *l)).or_default() += q;
                        }
                        let need: i64 = if sku == 2 { 3 * n } else { n };
                        prop_assert_eq!(allocs.iter().map(|a| a.2).sum::<i64>(), need);
                        holds.push((r.id, allocs, true));
                    }
                    Err(e) => prop_assert!(refused(&e), "{e:?}"),
                }
            }
            Op::Release { nth } | Op::Commit { nth } if holds.is_empty() => {
                let _ = nth;
            }
            Op::Release { nth } => {
                let len = holds.len();
                let h = &mut holds[nth % len];
                match app.release_reservation(&actor, &h.0).await {
                    Ok(_) => {
                        prop_assert!(h.2, "released a hold twice");
                        for (i, l, q) in &h.1 {
                            *reserved.entry((*i, *l)).or_default() -= q;
                        }
                        h.2 = false;
                    }
                    Err(e) => prop_assert!(refused(&e) && !h.2, "{e:?}"),
                }
            }
            Op::Commit { nth } => {
                let h = &holds[nth % holds.len()];
                if let Err(e) = app.commit_reservation(&actor, &h.0).await {
                    prop_assert!(refused(&e), "{e:?}");
                }
            }
            Op::Transfer { item, from, to, n } if from != to => {
                let body = json!({"sku": ITEMS[item], "from_location_id": locs[from], "to_location_id": locs[to], "quantity": n});
                match app.transfer_inventory(&actor, serde_json::from_value(body).unwrap()).await {
                    Ok(_) => {
                        *on_hand.entry((item, from)).or_default() -= n;
                        *on_hand.entry((item, to)).or_default() += n;
                    }
                    Err(e) => prop_assert!(refused(&e), "{e:?}"),
                }
            }
            Op::Transfer { .. } => {}
        }
    }

    for (i, sku) in ITEMS.iter().enumerate() {
        let levels = app.inventory_levels(sku, None).await.unwrap();
        for l in levels.data {
            let k = (i, loc_ix(&l.location_id));
            prop_assert_eq!(l.on_hand, on_hand.get(&k).copied().unwrap_or(0), "on_hand of {:?}", k);
            prop_assert_eq!(l.reserved, reserved.get(&k).copied().unwrap_or(0), "reserved of {:?}", k);
            prop_assert_eq!(l.damaged, damaged.get(&k).copied().unwrap_or(0));
            prop_assert!(l.reserved <= l.on_hand);
            prop_assert!(l.available >= 0, "reservations never drive available negative");
        }
    }
    let report = app.check().await.unwrap();
    prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
    app.store.close().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_ledger_levels_and_model_equal(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}

//! Inventory arithmetic: levels, movements and the rules every movement obeys.
//!
//! A level is the fold of its ledger movements. Each movement carries a delta
//! per bucket; `check_apply` says whether a delta may be applied to a level.
//! The store runs the same rule as one conditional `UPDATE` (see
//! `keel-store::inventory`), so the database, not a lock in this process,
//! decides under concurrency.

use crate::Invalid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Stock of one inventory item at one location.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Levels {
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    pub incoming: i64,
    pub damaged: i64,
    pub quality_control: i64,
}

/// The change one movement makes to each bucket.
pub type Delta = Levels;

impl Levels {
    /// Sellable now. Damaged and quality-control units are counted in
    /// `on_hand` but can never be sold; safety stock is held back by policy.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved - self.safety_stock - self.damaged - self.quality_control
    }

    pub fn checked_add(&self, d: &Delta) -> Option<Levels> {
        Some(Levels {
            on_hand: self.on_hand.checked_add(d.on_hand)?,
            reserved: self.reserved.checked_add(d.reserved)?,
            safety_stock: self.safety_stock.checked_add(d.safety_stock)?,
            incoming: self.incoming.checked_add(d.incoming)?,
            damaged: self.damaged.checked_add(d.damaged)?,
            quality_control: self.quality_control.checked_add(d.quality_control)?,
        })
    }

    /// The invariants every stored level satisfies: no negative bucket, and
    /// the units promised or unsellable never exceed the units on hand.
    pub fn is_consistent(&self) -> bool {
        self.on_hand >= 0
            && self.reserved >= 0
            && self.safety_stock >= 0
            && self.incoming >= 0
            && self.damaged >= 0
            && self.quality_control >= 0
            && self.on_hand >= self.reserved + self.damaged + self.quality_control
    }

    pub fn is_zero(&self) -> bool {
        *self == Levels::default()
    }
}

/// Kinds of ledger movement. The string forms are stored and shown in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    Receive,
    Adjust,
    Reserve,
    Release,
    Commit,
    Ship,
    Return,
    TransferOut,
    TransferIn,
    Sync,
    Damage,
    DamageRelease,
    WriteOff,
    QcHold,
    QcRelease,
    SafetyStock,
    Incoming,
}

impl MovementKind {
    pub const ALL: [MovementKind; 17] = [
        Self::Receive, Self::Adjust, Self::Reserve, Self::Release, Self::Commit, Self::Ship,
        Self::Return, Self::TransferOut, Self::TransferIn, Self::Sync, Self::Damage,
        Self::DamageRelease, Self::WriteOff, Self::QcHold, Self::QcRelease, Self::SafetyStock,
        Self::Incoming,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receive => "receive",
            Self::Adjust => "adjust",
            Self::Reserve => "reserve",
            Self::Release => "release",
            Self::Commit => "commit",
            Self::Ship => "ship",
            Self::Return => "return",
            Self::TransferOut => "transfer_out",
            Self::TransferIn => "transfer_in",
            Self::Sync => "sync",
            Self::Damage => "damage",
            Self::DamageRelease => "damage_release",
            Self::WriteOff => "write_off",
            Self::QcHold => "qc_hold",
            Self::QcRelease => "qc_release",
            Self::SafetyStock => "safety_stock",
            Self::Incoming => "incoming",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Invalid::new(field, "invalid_kind", format!("unknown movement kind `{s}`")))
    }

    /// Kinds whose quantity is a signed delta; the others take a positive count.
    pub fn is_signed(self) -> bool {
        matches!(self, Self::Adjust | Self::Sync | Self::SafetyStock | Self::Incoming)
    }

    /// Kinds that take sellable units and so must find them available.
    pub fn requires_available(self) -> bool {
        matches!(self, Self::Reserve | Self::TransferOut | Self::Damage | Self::QcHold)
    }

    /// The delta this kind makes for quantity `q` (positive for unsigned kinds).
    pub fn delta(self, q: i64) -> Delta {
        let z = Levels::default();
        match self {
            Self::Receive | Self::Return | Self::TransferIn => Levels { on_hand: q, ..z },
            Self::Adjust | Self::Sync => Levels { on_hand: q, ..z },
            Self::TransferOut => Levels { on_hand: -q, ..z },
            Self::Reserve => Levels { reserved: q, ..z },
            Self::Release => Levels { reserved: -q, ..z },
            Self::Commit => z,
            Self::Ship => Levels { on_hand: -q, reserved: -q, ..z },
            Self::Damage => Levels { damaged: q, ..z },
            Self::DamageRelease => Levels { damaged: -q, ..z },
            Self::WriteOff => Levels { on_hand: -q, damaged: -q, ..z },
            Self::QcHold => Levels { quality_control: q, ..z },
            Self::QcRelease => Levels { quality_control: -q, ..z },
            Self::SafetyStock => Levels { safety_stock: q, ..z },
            Self::Incoming => Levels { incoming: q, ..z },
        }
    }
}

/// Why a movement cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("on_hand is {actual}, not the expected {expected}")]
    StaleQuantity { expected: i64, actual: i64 },
    #[error("only {available} available, {requested} requested")]
    InsufficientStock { available: i64, requested: i64 },
    #[error("the movement would leave the level inconsistent ({bucket})")]
    Inconsistent { bucket: &'static str },
}

/// The single rule for applying a movement; the store's conditional UPDATE is
/// its SQL twin and the property tests hold the two to the same answers.
pub fn check_apply(
    current: &Levels,
    kind: MovementKind,
    delta: &Delta,
    expected_on_hand: Option<i64>,
) -> Result<Levels, Refusal> {
    if let Some(expected) = expected_on_hand {
        if current.on_hand != expected {
            return Err(Refusal::StaleQuantity { expected, actual: current.on_hand });
        }
    }
    if kind.requires_available() {
        let requested = -(delta.available());
        if current.available() < requested {
            return Err(Refusal::InsufficientStock { available: current.available(), requested });
        }
    }
    let next = current.checked_add(delta).ok_or(Refusal::Inconsistent { bucket: "overflow" })?;
    if !next.is_consistent() {
        let bucket = first_broken_bucket(&next);
        // Taking more than is physically there reads better as "insufficient".
        let takes_units = delta.on_hand < 0 || delta.reserved > 0 || delta.damaged > 0 || delta.quality_control > 0;
        if (bucket == "on_hand" || bucket == "reserved_exceeds_on_hand") && takes_units {
            let free = current.on_hand - current.reserved - current.damaged - current.quality_control;
            let requested = -(delta.on_hand - delta.reserved - delta.damaged - delta.quality_control);
            return Err(Refusal::InsufficientStock { available: free.max(0), requested });
        }
        return Err(Refusal::Inconsistent { bucket });
    }
    Ok(next)
}

fn first_broken_bucket(l: &Levels) -> &'static str {
    if l.on_hand < 0 {
        "on_hand"
    } else if l.reserved < 0 {
        "reserved"
    } else if l.safety_stock < 0 {
        "safety_stock"
    } else if l.incoming < 0 {
        "incoming"
    } else if l.damaged < 0 {
        "damaged"
    } else if l.quality_control < 0 {
        "quality_control"
    } else {
        "reserved_exceeds_on_hand"
    }
}

/// Folds a ledger into the level it implies.
pub fn fold<'a>(deltas: impl IntoIterator<Item = &'a Delta>) -> Levels {
    deltas.into_iter().fold(Levels::default(), |acc, d| Levels {
        on_hand: acc.on_hand + d.on_hand,
        reserved: acc.reserved + d.reserved,
        safety_stock: acc.safety_stock + d.safety_stock,
        incoming: acc.incoming + d.incoming,
        damaged: acc.damaged + d.damaged,
        quality_control: acc.quality_control + d.quality_control,
    })
}

/// Upper bound on one line's quantity, so sums of lines cannot overflow.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// Validates a quantity for a movement kind: signed kinds take any non-zero
/// delta, the rest a positive count.
pub fn quantity(field: &str, kind: MovementKind, q: i64) -> Result<i64, Invalid> {
    if q == 0 {
        return Err(Invalid::new(field, "invalid_quantity", "must not be zero"));
    }
    if !kind.is_signed() && q < 0 {
        return Err(Invalid::new(field, "invalid_quantity", "must be positive"));
    }
    if q.abs() > MAX_QUANTITY {
        return Err(Invalid::new(field, "invalid_quantity", format!("must be at most {MAX_QUANTITY} in magnitude")));
    }
    Ok(q)
}

/// Total units needed per inventory item for a set of lines, where each line
/// is (components of the variant, units of the variant). Two lines of one SKU,
/// or a bundle and one of its parts, add up against the same item.
pub fn demand<I: Ord + Clone>(lines: &[(Vec<(I, i64)>, i64)]) -> Option<BTreeMap<I, i64>> {
    let mut out: BTreeMap<I, i64> = BTreeMap::new();
    for (components, units) in lines {
        for (item, per_unit) in components {
            let need = per_unit.checked_mul(*units)?;
            let slot = out.entry(item.clone()).or_insert(0);
            *slot = slot.checked_add(need)?;
        }
    }
    Some(out)
}

/// Decides where to take each item's demand from, given availability per
/// location in priority order. Prefers the first location that can cover the
/// whole demand (one shipment); otherwise takes each item greedily from the
/// locations in order. `None` when the demand cannot be covered in full.
pub fn plan_allocation<I: Ord + Clone, L: Clone + PartialEq>(
    demand: &BTreeMap<I, i64>,
    locations: &[(L, BTreeMap<I, i64>)],
) -> Option<Vec<(I, L, i64)>> {
    let available = |loc: &BTreeMap<I, i64>, item: &I| loc.get(item).copied().unwrap_or(0).max(0);
    if let Some((loc, _)) = locations
        .iter()
        .find(|(_, avail)| demand.iter().all(|(item, need)| available(avail, item) >= *need))
    {
        return Some(demand.iter().map(|(i, n)| (i.clone(), loc.clone(), *n)).collect());
    }
    let mut plan = Vec::new();
    for (item, need) in demand {
        let mut remaining = *need;
        for (loc, avail) in locations {
            if remaining == 0 {
                break;
            }
            let take = available(avail, item).min(remaining);
            if take > 0 {
                plan.push((item.clone(), loc.clone(), take));
                remaining -= take;
            }
        }
        if remaining > 0 {
            return None;
        }
    }
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lv(on_hand: i64, reserved: i64) -> Levels {
        Levels { on_hand, reserved, ..Levels::default() }
    }

    #[test]
    fn available_subtracts_every_unsellable_bucket() {
        let l = Levels { on_hand: 20, reserved: 3, safety_stock: 2, incoming: 50, damaged: 1, quality_control: 4 };
        assert_eq!(l.available(), 10);
    }

    #[test]
    fn reserve_needs_available_stock() {
        let l = Levels { safety_stock: 2, ..lv(5, 0) };
        let k = MovementKind::Reserve;
        assert!(check_apply(&l, k, &k.delta(3), None).is_ok());
        assert_eq!(
            check_apply(&l, k, &k.delta(4), None),
            Err(Refusal::InsufficientStock { available: 3, requested: 4 })
        );
    }

    #[test]
    fn compare_and_swap_guard() {
        let k = MovementKind::Adjust;
        assert_eq!(
            check_apply(&lv(5, 0), k, &k.delta(1), Some(4)),
            Err(Refusal::StaleQuantity { expected: 4, actual: 5 })
        );
        assert_eq!(check_apply(&lv(5, 0), k, &k.delta(1), Some(5)).unwrap().on_hand, 6);
    }

    #[test]
    fn adjustments_cannot_take_promised_units() {
        let k = MovementKind::Adjust;
        assert!(matches!(check_apply(&lv(5, 4), k, &k.delta(-2), None), Err(Refusal::InsufficientStock { .. })));
        assert!(check_apply(&lv(5, 4), k, &k.delta(-1), None).is_ok());
    }

    #[test]
    fn ship_consumes_reserved_units() {
        let k = MovementKind::Ship;
        assert_eq!(check_apply(&lv(5, 2), k, &k.delta(2), None).unwrap(), lv(3, 0));
        assert!(check_apply(&lv(5, 1), k, &k.delta(2), None).is_err());
    }

    #[test]
    fn quantities() {
        assert!(quantity("q", MovementKind::Receive, -1).is_err());
        assert!(quantity("q", MovementKind::Adjust, -1).is_ok());
        assert_eq!(quantity("q", MovementKind::Adjust, 0).unwrap_err().code, "invalid_quantity");
        assert!(quantity("q", MovementKind::Reserve, MAX_QUANTITY + 1).is_err());
    }

    #[test]
    fn demand_sums_bundles_and_parts() {
        // A kit needs 2 × A and 1 × B; a separate line takes 1 × A.
        let lines = vec![(vec![("A", 2), ("B", 1)], 3), (vec![("A", 1)], 1)];
        let d = demand(&lines).unwrap();
        assert_eq!(d["A"], 7);
        assert_eq!(d["B"], 3);
        assert!(demand(&[(vec![("A", i64::MAX)], 2)]).is_none());
    }

    #[test]
    fn allocation_prefers_one_location_then_splits() {
        let d: BTreeMap<&str, i64> = [("A", 3), ("B", 1)].into();
        let locs = vec![
            ("L1", BTreeMap::from([("A", 2), ("B", 5)])),
            ("L2", BTreeMap::from([("A", 3), ("B", 1)])),
        ];
        assert_eq!(plan_allocation(&d, &locs).unwrap(), vec![("A", "L2", 3), ("B", "L2", 1)]);
        let locs = vec![("L1", BTreeMap::from([("A", 2), ("B", 5)])), ("L2", BTreeMap::from([("A", 1)]))];
        assert_eq!(plan_allocation(&d, &locs).unwrap(), vec![("A", "L1", 2), ("A", "L2", 1), ("B", "L1", 1)]);
        let locs = vec![("L1", BTreeMap::from([("A", 2), ("B", 5)]))];
        assert_eq!(plan_allocation(&d, &locs), None);
    }

    fn op() -> impl Strategy<Value = (usize, i64, Option<i64>)> {
        (0..MovementKind::ALL.len(), -20i64..40, prop::option::weighted(0.1, 0i64..30))
    }

    proptest! {
        /// Any sequence of movements, each accepted or refused by the rule,
        /// leaves a consistent level equal to the fold of the accepted deltas,
        /// and reservations never make availability negative.
        #[test]
        fn accepted_movements_fold_to_a_consistent_level(ops in prop::collection::vec(op(), 0..200)) {
            let mut level = Levels::default();
            let mut ledger = Vec::new();
            for (k, q, expected) in ops {
                let kind = MovementKind::ALL[k];
                let Ok(q) = quantity("q", kind, q) else { continue };
                let d = kind.delta(q);
                let before = level;
                match check_apply(&level, kind, &d, expected) {
                    Ok(next) => {
                        level = next;
                        ledger.push(d);
                        if kind.requires_available() {
                            prop_assert!(level.available() >= 0 || before.available() < 0);
                        }
                    }
                    Err(_) => prop_assert_eq!(level, before),
                }
                prop_assert!(level.is_consistent());
                prop_assert!(level.reserved <= level.on_hand);
                prop_assert_eq!(fold(&ledger), level);
            }
        }

        /// A plan never takes more than a location has, and covers the demand
        /// exactly whenever the locations together can.
        #[test]
        fn plans_cover_demand_within_availability(
            need_a in 0i64..30, need_b in 0i64..30,
            avail in prop::collection::vec((0i64..20, 0i64..20), 1..5),
        ) {
            let d: BTreeMap<u8, i64> = [(0u8, need_a), (1u8, need_b)].into_iter().filter(|(_, n)| *n > 0).collect();
            let locs: Vec<(usize, BTreeMap<u8, i64>)> =
                avail.iter().enumerate().map(|(i, (a, b))| (i, BTreeMap::from([(0u8, *a), (1u8, *b)]))).collect();
            let total_a: i64 = avail.iter().map(|x| x.0).sum();
            let total_b: i64 = avail.iter().map(|x| x.1).sum();
            match plan_allocation(&d, &locs) {
                None => prop_assert!(need_a > total_a || need_b > total_b),
                Some(plan) => {
                    for (item, need) in &d {
                        let got: i64 = plan.iter().filter(|(i, _, _)| i == item).map(|(_, _, q)| q).sum();
                        prop_assert_eq!(got, *need);
                    }
                    for (item, loc, q) in &plan {
                        let taken: i64 = plan.iter().filter(|(i, l, _)| i == item && l == loc).map(|(_, _, q)| q).sum();
                        prop_assert!(*q > 0 && taken <= locs[*loc].1[item]);
                    }
                }
            }
        }

        /// A bundle of k units of part A never sells more bundles than
        /// floor(available A / k), even mixed with direct sales of A.
        #[test]
        fn bundles_never_outsell_their_scarcest_part(stock in 0i64..50, per in 1i64..5, orders in prop::collection::vec((any::<bool>(), 1i64..4), 0..40)) {
            let mut level = Levels { on_hand: stock, ..Levels::default() };
            let mut sold_units = 0;
            for (is_bundle, units) in orders {
                let comps = if is_bundle { vec![("A", per)] } else { vec![("A", 1)] };
                let d = demand(&[(comps, units)]).unwrap();
                let need = d["A"];
                let k = MovementKind::Reserve;
                if let Ok(next) = check_apply(&level, k, &k.delta(need), None) {
                    level = next;
                    sold_units += need;
                }
            }
            prop_assert!(sold_units <= stock);
            prop_assert_eq!(level.reserved, sold_units);
        }
    }
}

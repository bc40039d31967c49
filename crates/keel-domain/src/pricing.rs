//! Cart totals in integer minor units: subtotal, discount, shipping and tax.
//!
//! All amounts are minor units of one currency, which the caller keeps. Line
//! sums use checked `i64` arithmetic and rate arithmetic runs in `i128`, so
//! nothing overflows in between; a result that does not fit in `i64` is an
//! input error, never a wrapped or panicking total. Tax is rounded half-up
//! once, on the whole taxable base rather than per line, so a cart's tax does
//! not drift with how its lines happen to be split.

use crate::Invalid;
use serde::{Deserialize, Serialize};

/// One cart line: a unit price (after any per-line price rules) and a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceLine {
    pub unit_amount: i64,
    pub quantity: i64,
}

/// A single tax rate for the cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    /// Basis points, 0..=10000: 2000 is 20 %.
    pub rate_bps: i64,
    /// Prices already include the tax (EU-style); otherwise it is added on top.
    pub inclusive: bool,
}

/// The highest rate accepted: 100 %.
pub const MAX_RATE_BPS: i64 = 10_000;

/// What `totals` needs; borrowed so callers can price a cart without copying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotalsInput<'a> {
    pub lines: &'a [PriceLine],
    /// The total discount from promotions. Clamped to `[0, subtotal]`: a
    /// discount never makes the goods negative, nor becomes a surcharge.
    pub discount: i64,
    pub shipping: i64,
    pub tax: Option<TaxRate>,
    /// Whether shipping is part of the taxable base (it is in many EU
    /// countries and US states, not in others).
    pub shipping_taxable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub subtotal: i64,
    /// The discount actually applied, after clamping.
    pub discount_total: i64,
    pub shipping_total: i64,
    /// Added to the total when exclusive; the share already inside it when
    /// inclusive.
    pub tax_total: i64,
    pub total: i64,
    pub tax_inclusive: bool,
}

/// `n / d` rounded to the nearest integer, halves up: 5/2 → 3, 4/3 → 1.
///
/// For `n >= 0` and `d > 0` (amounts are never negative here). Works from the
/// quotient and remainder, so it does not overflow even near `i128::MAX`.
pub fn round_half_up_div(n: i128, d: i128) -> i128 {
    debug_assert!(n >= 0 && d > 0, "round_half_up_div({n}, {d}) needs n >= 0 and d > 0");
    let (q, r) = (n / d, n % d);
    if r >= d - r {
        q + 1
    } else {
        q
    }
}

/// Prices a cart.
///
/// - subtotal = Σ unit_amount × quantity;
/// - discount_total = discount clamped to `[0, subtotal]`;
/// - base = subtotal − discount_total (+ shipping when `shipping_taxable`);
/// - exclusive tax: tax = round(base × bps / 10000), added to the total;
/// - inclusive tax: tax = base − round(base × 10000 / (10000 + bps)), the
///   share of the base that is tax; the total is not increased.
///
/// Signs and the rate are checked before sizes, so the field named is the one
/// to fix; a total too large for `i64` is reported on `lines`.
pub fn totals(input: &TotalsInput) -> Result<Totals, Invalid> {
    for (i, line) in input.lines.iter().enumerate() {
        if line.unit_amount < 0 {
            return Err(Invalid::new(format!("lines[{i}].unit_amount"), "invalid_amount", "must not be negative"));
        }
        if line.quantity < 0 {
            return Err(Invalid::new(format!("lines[{i}].quantity"), "invalid_quantity", "must not be negative"));
        }
    }
    if input.shipping < 0 {
        return Err(Invalid::new("shipping", "invalid_amount", "must not be negative"));
    }
    if let Some(tax) = input.tax {
        if !(0..=MAX_RATE_BPS).contains(&tax.rate_bps) {
            return Err(Invalid::new(
                "tax.rate_bps",
                "invalid_rate",
                format!("must be between 0 and {MAX_RATE_BPS} basis points"),
            ));
        }
    }

    let subtotal = input
        .lines
        .iter()
        .try_fold(0i64, |sum, l| sum.checked_add(l.unit_amount.checked_mul(l.quantity)?))
        .ok_or_else(too_large)?;
    let discount_total = input.discount.clamp(0, subtotal);
    let goods = i128::from(subtotal - discount_total);
    let shipping = i128::from(input.shipping);
    let base = goods + if input.shipping_taxable { shipping } else { 0 };

    let (tax, total) = match input.tax {
        None => (0, goods + shipping),
        Some(TaxRate { rate_bps, inclusive: false }) => {
            let tax = round_half_up_div(base * i128::from(rate_bps), 10_000);
            (tax, goods + shipping + tax)
        }
        Some(TaxRate { rate_bps, inclusive: true }) => {
            let net = round_half_up_div(base * 10_000, 10_000 + i128::from(rate_bps));
            (base - net, goods + shipping)
        }
    };
    // tax <= base <= total in every branch, so if the total fits, all fit.
    Ok(Totals {
        subtotal,
        discount_total,
        shipping_total: input.shipping,
        tax_total: i64::try_from(tax).map_err(|_| too_large())?,
        total: i64::try_from(total).map_err(|_| too_large())?,
        tax_inclusive: input.tax.is_some_and(|t| t.inclusive),
    })
}

fn too_large() -> Invalid {
    Invalid::new("lines", "too_large", "the order total is too large")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(unit_amount: i64, quantity: i64) -> PriceLine {
        PriceLine { unit_amount, quantity }
    }

    fn input(lines: &[PriceLine], tax: Option<(i64, bool)>) -> TotalsInput<'_> {
        TotalsInput {
            lines,
            discount: 0,
            shipping: 0,
            tax: tax.map(|(rate_bps, inclusive)| TaxRate { rate_bps, inclusive }),
            shipping_taxable: false,
        }
    }

    fn field(r: Result<Totals, Invalid>) -> (String, &'static str) {
        let e = r.unwrap_err();
        (e.field, e.code)
    }

    #[test]
    fn rounding_halves_up() {
        let cases = [(0, 7, 0), (4, 2, 2), (5, 2, 3), (3, 2, 2), (1, 3, 0), (2, 3, 1), (14, 4, 4), (15, 10, 2)];
        for (n, d, want) in cases {
            assert_eq!(round_half_up_div(n, d), want, "{n}/{d}");
        }
        assert_eq!(round_half_up_div(i128::MAX, 2), i128::MAX / 2 + 1);
        assert_eq!(round_half_up_div(i128::MAX, i128::MAX), 1);
    }

    #[test]
    fn exclusive_tax_is_added() {
        let lines = [line(1999, 3)];
        let t = totals(&input(&lines, Some((2000, false)))).unwrap();
        assert_eq!(
            t,
            Totals { subtotal: 5997, discount_total: 0, shipping_total: 0, tax_total: 1199, total: 7196, tax_inclusive: false }
        );
    }

    #[test]
    fn inclusive_tax_is_contained() {
        let lines = [line(1200, 1)];
        let t = totals(&input(&lines, Some((2000, true)))).unwrap();
        assert_eq!((t.tax_total, t.total, t.tax_inclusive), (200, 1200, true));
        // 19 % of 999 gross: net 839.49… → 839, tax 160.
        let lines = [line(999, 1)];
        assert_eq!(totals(&input(&lines, Some((1900, true)))).unwrap().tax_total, 160);
    }

    #[test]
    fn no_tax_and_empty_carts() {
        let lines = [line(500, 2), line(300, 0), line(0, 7)];
        let t = totals(&input(&lines, None)).unwrap();
        assert_eq!((t.subtotal, t.tax_total, t.total, t.tax_inclusive), (1000, 0, 1000, false));
        let t = totals(&input(&[], Some((2000, false)))).unwrap();
        assert_eq!((t.subtotal, t.tax_total, t.total), (0, 0, 0));
    }

    #[test]
    fn discounts_are_clamped() {
        let lines = [line(1000, 1)];
        let with = |discount| totals(&TotalsInput { discount, shipping: 500, ..input(&lines, Some((1000, false))) });
        let t = with(5000).unwrap();
        assert_eq!((t.discount_total, t.tax_total, t.total), (1000, 0, 500));
        let t = with(-300).unwrap();
        assert_eq!((t.discount_total, t.tax_total, t.total), (0, 100, 1600));
        let t = with(250).unwrap();
        assert_eq!((t.discount_total, t.tax_total, t.total), (250, 75, 1325));
    }

    #[test]
    fn shipping_taxable_or_not() {
        let lines = [line(1000, 1)];
        let price = |taxable, inclusive| {
            totals(&TotalsInput { shipping: 500, shipping_taxable: taxable, ..input(&lines, Some((2000, inclusive))) })
                .unwrap()
        };
        let t = price(false, false);
        assert_eq!((t.shipping_total, t.tax_total, t.total), (500, 200, 1700));
        let t = price(true, false);
        assert_eq!((t.shipping_total, t.tax_total, t.total), (500, 300, 1800));
        let t = price(false, true);
        assert_eq!((t.tax_total, t.total), (167, 1500)); // 1000 − round(833.3)
        let t = price(true, true);
        assert_eq!((t.tax_total, t.total), (250, 1500)); // 1500 − 1250
    }

    #[test]
    fn rate_bounds() {
        let lines = [line(1001, 1)];
        assert_eq!(totals(&input(&lines, Some((0, false)))).unwrap().total, 1001);
        assert_eq!(totals(&input(&lines, Some((0, true)))).unwrap().tax_total, 0);
        let t = totals(&input(&lines, Some((10_000, false)))).unwrap();
        assert_eq!((t.tax_total, t.total), (1001, 2002));
        // 100 % inclusive: half the gross is tax; the net 500.5 rounds up.
        assert_eq!(totals(&input(&lines, Some((10_000, true)))).unwrap().tax_total, 500);
        for bad in [-1, 10_001, i64::MIN, i64::MAX] {
            for inclusive in [false, true] {
                assert_eq!(field(totals(&input(&lines, Some((bad, inclusive))))), ("tax.rate_bps".into(), "invalid_rate"));
            }
        }
    }

    #[test]
    fn bad_inputs_name_their_field() {
        let lines = [line(100, 1), line(-5, 1)];
        assert_eq!(field(totals(&input(&lines, None))), ("lines[1].unit_amount".into(), "invalid_amount"));
        let lines = [line(100, 1), line(5, 1), line(5, -1)];
        assert_eq!(field(totals(&input(&lines, None))), ("lines[2].quantity".into(), "invalid_quantity"));
        let lines = [line(100, 1)];
        let neg_shipping = TotalsInput { shipping: -1, ..input(&lines, None) };
        assert_eq!(field(totals(&neg_shipping)), ("shipping".into(), "invalid_amount"));
        // A sign error is reported even after a line that would overflow.
        let lines = [line(i64::MAX, 2), line(1, -1)];
        assert_eq!(field(totals(&input(&lines, None))), ("lines[1].quantity".into(), "invalid_quantity"));
    }

    #[test]
    fn overflow_is_refused() {
        for lines in [vec![line(i64::MAX, 2)], vec![line(i64::MAX, 1), line(1, 1)], vec![line(10_000_000_000_000, 1_000_000_000)]] {
            assert_eq!(field(totals(&input(&lines, None))), ("lines".into(), "too_large"));
        }
        // The subtotal fits but shipping or tax pushes the total over.
        let lines = [line(i64::MAX - 10, 1)];
        assert_eq!(totals(&input(&lines, None)).unwrap().total, i64::MAX - 10);
        assert_eq!(field(totals(&TotalsInput { shipping: 11, ..input(&lines, None) })), ("lines".into(), "too_large"));
        assert_eq!(field(totals(&input(&lines, Some((1, false))))), ("lines".into(), "too_large"));
        assert_eq!(totals(&input(&lines, Some((10_000, true)))).unwrap().total, i64::MAX - 10);
    }

    fn lines_of(amount: i64, quantity: i64) -> impl Strategy<Value = Vec<PriceLine>> {
        prop::collection::vec((0..=amount, 0..=quantity).prop_map(|(a, q)| line(a, q)), 0..=100)
    }

    fn tax() -> impl Strategy<Value = Option<TaxRate>> {
        prop::option::of((0..=MAX_RATE_BPS, any::<bool>()).prop_map(|(rate_bps, inclusive)| TaxRate { rate_bps, inclusive }))
    }

    /// The same totals computed the long way, in i128 throughout, with
    /// rounding as floor((2n + d) / 2d).
    fn reference(input: &TotalsInput) -> Option<Totals> {
        let round = |n: i128, d: i128| (2 * n + d) / (2 * d);
        let subtotal: i128 = input.lines.iter().map(|l| i128::from(l.unit_amount) * i128::from(l.quantity)).sum();
        let discount = i128::from(input.discount).max(0).min(subtotal);
        let shipping = i128::from(input.shipping);
        let base = subtotal - discount + if input.shipping_taxable { shipping } else { 0 };
        let (tax, total) = match input.tax {
            None => (0, subtotal - discount + shipping),
            Some(t) if t.inclusive => {
                (base - round(base * 10_000, 10_000 + i128::from(t.rate_bps)), subtotal - discount + shipping)
            }
            Some(t) => {
                let tax = round(base * i128::from(t.rate_bps), 10_000);
                (tax, subtotal - discount + shipping + tax)
            }
        };
        Some(Totals {
            subtotal: i64::try_from(subtotal).ok()?,
            discount_total: i64::try_from(discount).ok()?,
            shipping_total: input.shipping,
            tax_total: i64::try_from(tax).ok()?,
            total: i64::try_from(total).ok()?,
            tax_inclusive: input.tax.is_some_and(|t| t.inclusive),
        })
    }

    proptest! {
        /// Ordinary carts: nothing is negative, the parts add up to the total
        /// exactly, and the tax is the rate applied to the base within half a
        /// minor unit.
        #[test]
        fn totals_add_up(
            lines in lines_of(10_000_000, 1_000),
            discount in -1_000i64..2_000_000_000,
            shipping in 0i64..100_000,
            shipping_taxable in any::<bool>(),
            tax in tax(),
        ) {
            let inp = TotalsInput { lines: &lines, discount, shipping, tax, shipping_taxable };
            let t = totals(&inp).unwrap();
            prop_assert_eq!(totals(&inp).unwrap(), t);
            prop_assert!(t.subtotal >= 0 && t.discount_total >= 0 && t.shipping_total >= 0);
            prop_assert!(t.tax_total >= 0 && t.total >= 0);
            prop_assert!(t.discount_total <= t.subtotal);
            let base = t.subtotal - t.discount_total + if shipping_taxable { shipping } else { 0 };
            match tax {
                None => prop_assert_eq!((t.tax_total, t.total), (0, t.subtotal - t.discount_total + shipping)),
                Some(TaxRate { rate_bps, inclusive: false }) => {
                    prop_assert_eq!(t.total, t.subtotal - t.discount_total + shipping + t.tax_total);
                    let err = i128::from(t.tax_total) * 10_000 - i128::from(base) * i128::from(rate_bps);
                    prop_assert!(-5_000 < err && err <= 5_000, "tax {} off by {}/10000", t.tax_total, err);
                }
                Some(TaxRate { rate_bps, inclusive: true }) => {
                    prop_assert_eq!(t.total, t.subtotal - t.discount_total + shipping);
                    prop_assert!(t.tax_total <= base);
                    // tax ≈ base × bps / (10000 + bps), within half a unit.
                    let d = 10_000 + i128::from(rate_bps);
                    let err = i128::from(t.tax_total) * d - i128::from(base) * i128::from(rate_bps);
                    prop_assert!(2 * err.abs() <= d, "tax {} off by {}/{}", t.tax_total, err, d);
                }
            }
        }

        /// Huge carts (10^13 per unit, 10^9 units, 100 lines) never panic:
        /// they match the i128 reference exactly, or are refused on `lines`
        /// exactly when that reference does not fit in i64.
        #[test]
        fn huge_carts_are_exact_or_refused(
            lines in lines_of(10_000_000_000_000, 1_000_000_000),
            discount in any::<i64>(),
            shipping in 0..=i64::MAX,
            shipping_taxable in any::<bool>(),
            tax in tax(),
        ) {
            let inp = TotalsInput { lines: &lines, discount, shipping, tax, shipping_taxable };
            match (totals(&inp), reference(&inp)) {
                (Ok(got), Some(want)) => prop_assert_eq!(got, want),
                (Err(e), None) => prop_assert_eq!((e.field.as_str(), e.code), ("lines", "too_large")),
                (got, want) => prop_assert!(false, "got {:?}, reference {:?}", got, want),
            }
            prop_assert_eq!(totals(&inp), totals(&inp));
        }

        /// Carts that fit: small amounts with huge quantities or the reverse.
        #[test]
        fn large_carts_that_fit_match_the_reference(
            big_amounts in any::<bool>(),
            lines in prop::collection::vec((0..=10_000_000i64, 0..=1_000i64), 0..=100),
            discount in any::<i64>(),
            shipping in 0..=1_000_000_000_000i64,
            tax in tax(),
        ) {
            // Either 10^13 × 10^3 or 10^7 × 10^9 per line: at most 10^18 in all.
            let lines: Vec<_> = lines
                .into_iter()
                .map(|(a, q)| if big_amounts { line(a * 1_000_000, q) } else { line(a, q * 1_000_000) })
                .collect();
            let inp = TotalsInput { lines: &lines, discount, shipping, tax, shipping_taxable: true };
            let want = reference(&inp);
            prop_assert!(want.is_some());
            prop_assert_eq!(totals(&inp).ok(), want);
        }
    }
}

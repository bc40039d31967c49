//! What shoppers are told about stock, derived from the system of record.

/// Units of a variant that can be sold now, given for each component the
/// units one variant consumes and the units of that item available across
/// sellable locations (negative location figures already clamped to 0).
/// A plain variant has one component; a bundle sells as many as its scarcest
/// part allows. A variant with no components cannot be sold.
pub fn sellable_units(components: &[(i64, i64)]) -> i64 {
    components
        .iter()
        .map(|&(per_unit, available)| if per_unit <= 0 { 0 } else { available.max(0) / per_unit })
        .min()
        .unwrap_or(0)
}

/// Below this many units the page says "Only N left".
pub const LOW_STOCK: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockStatus {
    InStock,
    /// In stock, but only this many (1–[`LOW_STOCK`]).
    Low(i64),
    OutOfStock,
}

impl StockStatus {
    pub fn of(available: i64) -> StockStatus {
        match available {
            n if n <= 0 => StockStatus::OutOfStock,
            n if n <= LOW_STOCK => StockStatus::Low(n),
            _ => StockStatus::InStock,
        }
    }

    pub fn is_available(self) -> bool {
        self != StockStatus::OutOfStock
    }

    /// For people: "In stock", "Only 3 left", "Out of stock".
    pub fn label(self) -> String {
        match self {
            StockStatus::InStock => "In stock".to_owned(),
            StockStatus::Low(n) => format!("Only {n} left"),
            StockStatus::OutOfStock => "Out of stock".to_owned(),
        }
    }

    /// The schema.org `ItemAvailability` URL.
    pub fn schema_org(self) -> &'static str {
        match self {
            StockStatus::InStock => "https://schema.org/InStock",
            StockStatus::Low(_) => "https://schema.org/LimitedAvailability",
            StockStatus::OutOfStock => "https://schema.org/OutOfStock",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_sells_as_many_as_its_scarcest_part_allows() {
        assert_eq!(sellable_units(&[(1, 7)]), 7);
        assert_eq!(sellable_units(&[(1, 10), (2, 5)]), 2);
        assert_eq!(sellable_units(&[(3, 8)]), 2);
        assert_eq!(sellable_units(&[(1, -4)]), 0);
        assert_eq!(sellable_units(&[]), 0);
    }

    #[test]
    fn status_thresholds() {
        assert_eq!(StockStatus::of(0), StockStatus::OutOfStock);
        assert_eq!(StockStatus::of(-2), StockStatus::OutOfStock);
        assert_eq!(StockStatus::of(1), StockStatus::Low(1));
        assert_eq!(StockStatus::of(5), StockStatus::Low(5));
        assert_eq!(StockStatus::of(6), StockStatus::InStock);
        assert_eq!(StockStatus::of(3).label(), "Only 3 left");
        assert_eq!(StockStatus::of(0).schema_org(), "https://schema.org/OutOfStock");
    }
}

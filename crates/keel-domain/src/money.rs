//! Money: integer minor units plus an ISO-4217 currency. Never floats.

use crate::Invalid;
use serde::Serialize;

/// Active ISO-4217 codes with their minor-unit exponent.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2),
    ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2),
    ("CLF", 4), ("CLP", 0), ("CNY", 2), ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2),
    ("CZK", 2), ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2),
    ("ETB", 2), ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2),
    ("GIP", 2), ("GMD", 2), ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2),
    ("HTG", 2), ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2),
    ("ISK", 0), ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2),
    ("KMF", 0), ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2),
    ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2),
    ("MGA", 2), ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2),
    ("MVR", 2), ("MWK", 2), ("MXN", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2),
    ("NIO", 2), ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2),
    ("PGK", 2), ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2),
    ("RSD", 2), ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2),
    ("SEK", 2), ("SGD", 2), ("SHP", 2), ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2),
    ("STN", 2), ("SVC", 2), ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2),
    ("TND", 3), ("TOP", 2), ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2),
    ("UGX", 0), ("USD", 2), ("UYU", 2), ("UYW", 4), ("UZS", 2), ("VES", 2), ("VND", 0),
    ("VUV", 0), ("WST", 2), ("XAF", 0), ("XCD", 2), ("XOF", 0), ("XPF", 0), ("YER", 2),
    ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Currency(&'static str);

impl Currency {
    /// Accepts the code in any case (`usd`, `USD`); stored upper-case.
    pub fn parse(field: &str, code: &str) -> Result<Self, Invalid> {
        let upper = code.to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == upper)
            .map(|(c, _)| Currency(c))
            .ok_or_else(|| Invalid::new(field, "unknown_currency", format!("`{code}` is not an ISO-4217 currency code")))
    }

    pub fn code(self) -> &'static str {
        self.0
    }

    pub fn minor_units(self) -> u8 {
        CURRENCIES.iter().find(|(c, _)| *c == self.0).map(|(_, e)| *e).unwrap_or(2)
    }
}

/// An amount in minor units (cents for USD, yen for JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

/// Prices above this are refused as input errors rather than risking overflow
/// when totals are summed (10^13 minor units is 100 billion dollars).
pub const MAX_AMOUNT: i64 = 10_000_000_000_000;

impl Money {
    pub fn new(field: &str, amount: i64, currency: Currency) -> Result<Self, Invalid> {
        if !(0..=MAX_AMOUNT).contains(&amount) {
            return Err(Invalid::new(field, "invalid_amount", format!("must be between 0 and {MAX_AMOUNT} minor units")));
        }
        Ok(Self { amount, currency })
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount.checked_add(other.amount))
            .flatten()
            .map(|amount| Money { amount, currency: self.currency })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("c", "usd").unwrap().code(), "USD");
        assert_eq!(Currency::parse("c", "JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("c", "KWD").unwrap().minor_units(), 3);
        let e = Currency::parse("prices[0].currency", "XYZ").unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("prices[0].currency", "unknown_currency"));
    }

    #[test]
    fn amounts() {
        let usd = Currency::parse("c", "USD").unwrap();
        let eur = Currency::parse("c", "EUR").unwrap();
        assert!(Money::new("amount", -1, usd).is_err());
        assert!(Money::new("amount", MAX_AMOUNT + 1, usd).is_err());
        let a = Money::new("amount", 150, usd).unwrap();
        assert_eq!(a.checked_add(a).unwrap().amount, 300);
        assert!(a.checked_add(Money::new("amount", 1, eur).unwrap()).is_none());
    }
}

//! Catalog rules: SKUs, handles, statuses, location kinds, bounded text.

use crate::Invalid;
use serde::{Deserialize, Serialize};

/// A stock-keeping unit: 1–64 characters of letters, digits and `-_./`.
/// Case is preserved; uniqueness is exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Sku(String);

impl Sku {
    pub fn parse(field: &str, s: &str) -> Result<Self, Invalid> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
        if ok {
            Ok(Sku(s.to_owned()))
        } else {
            Err(Invalid::new(field, "invalid_sku", "must be 1-64 characters: letters, digits, '-', '_', '.', '/'"))
        }
    }

    pub fn from_trusted(s: String) -> Self {
        Sku(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Sku {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Required text, trimmed, at most `max` characters.
pub fn text(field: &str, s: &str, max: usize) -> Result<String, Invalid> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Invalid::new(field, "required", "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(Invalid::new(field, "too_long", format!("must be at most {max} characters")));
    }
    Ok(t.to_owned())
}

/// Optional free text (descriptions), bounded.
pub fn optional_text(field: &str, s: Option<&str>, max: usize) -> Result<Option<String>, Invalid> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().count() > max => {
            Err(Invalid::new(field, "too_long", format!("must be at most {max} characters")))
        }
        Some(t) => Ok(Some(t.to_owned())),
    }
}

/// A URL handle: lowercase ASCII letters, digits and single dashes.
pub fn handle(field: &str, s: &str) -> Result<String, Invalid> {
    let ok = (1..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Invalid::new(field, "invalid_handle", "must be lowercase letters, digits and single dashes"))
    }
}

/// Derives a handle from a title: "Linen Shirt — Blue!" → "linen-shirt-blue".
pub fn slugify(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out.truncate(120);
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("product");
    }
    out
}

/// Two-letter ISO 3166-1 country code, stored upper-case.
pub fn country(field: &str, s: &str) -> Result<String, Invalid> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(s.to_ascii_uppercase())
    } else {
        Err(Invalid::new(field, "invalid_country", "must be a two-letter ISO 3166-1 code"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    pub fn from_db(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "archived" => Self::Archived,
            _ => Self::Draft,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    Warehouse,
    Store,
    #[serde(rename = "3pl")]
    ThirdParty,
}

impl LocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warehouse => "warehouse",
            Self::Store => "store",
            Self::ThirdParty => "3pl",
        }
    }

    pub fn from_db(s: &str) -> Self {
        match s {
            "store" => Self::Store,
            "3pl" => Self::ThirdParty,
            _ => Self::Warehouse,
        }
    }
}

/// Variant options such as `{"Size": "M", "Color": "Blue"}`: at most 3, as on
/// Shopify; names and values are bounded text.
pub fn options(
    field: &str,
    opts: &std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>, Invalid> {
    if opts.len() > 3 {
        return Err(Invalid::new(field, "too_many_options", "at most 3 options per variant"));
    }
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in opts {
        let name = text(&format!("{field}.{k}"), k, 64)?;
        let value = text(&format!("{field}.{k}"), v, 128)?;
        out.insert(name, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus() {
        assert!(Sku::parse("sku", "TEE-BLK-M").is_ok());
        assert!(Sku::parse("sku", "a/b.c_d").is_ok());
        assert_eq!(Sku::parse("sku", "").unwrap_err().code, "invalid_sku");
        assert!(Sku::parse("sku", "has space").is_err());
        assert!(Sku::parse("sku", &"x".repeat(65)).is_err());
    }

    #[test]
    fn slugs_and_handles() {
        assert_eq!(slugify("Linen Shirt — Blue!"), "linen-shirt-blue");
        assert_eq!(slugify("!!!"), "product");
        assert!(handle("handle", &slugify("Ça va? 100% Cotton")).is_ok());
        assert!(handle("handle", "Bad Handle").is_err());
        assert!(handle("handle", "a--b").is_err());
    }

    #[test]
    fn texts() {
        assert_eq!(text("title", "  Tee ", 10).unwrap(), "Tee");
        assert_eq!(text("title", "   ", 10).unwrap_err().code, "required");
        assert_eq!(text("title", "abcdef", 5).unwrap_err().code, "too_long");
        assert_eq!(country("country", "de").unwrap(), "DE");
        assert!(country("country", "DEU").is_err());
    }
}

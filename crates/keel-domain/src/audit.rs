//! The audit log's hash chain: each entry's hash covers its fields and the
//! previous entry's hash, so changing, removing or reordering any entry
//! breaks every hash after it. Pure; the store keeps the chain's head.

use sha2::{Digest, Sha256};

/// The fields of an entry the chain covers, in a fixed order.
pub struct Entry<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub summary: &'a str,
    pub ip: Option<&'a str>,
    pub status: i64,
    pub occurred_at: i64,
}

/// The head before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// SHA-256 over the previous hash and the entry, each field length-prefixed
/// so no two different entries encode alike (`"ab","c"` vs `"a","bc"`), and
/// absent fields distinct from empty ones.
pub fn entry_hash(prev: &str, e: &Entry<'_>) -> String {
    let mut h = Sha256::new();
    let mut field = |v: Option<&[u8]>| match v {
        None => h.update([0u8]),
        Some(b) => {
            h.update([1u8]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
    };
    field(Some(prev.as_bytes()));
    field(Some(&e.seq.to_be_bytes()));
    field(Some(e.id.as_bytes()));
    field(Some(e.actor.as_bytes()));
    field(Some(e.action.as_bytes()));
    field(e.target.map(str::as_bytes));
    field(Some(e.summary.as_bytes()));
    field(e.ip.map(str::as_bytes));
    field(Some(&e.status.to_be_bytes()));
    field(Some(&e.occurred_at.to_be_bytes()));
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(summary: &'a str, target: Option<&'a str>) -> Entry<'a> {
        Entry { seq: 1, id: "aud_1", actor: "usr_1", action: "POST /x", target, summary, ip: Some("127.0.0.1"), status: 201, occurred_at: 7 }
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_hash() {
        let base = entry_hash(GENESIS, &entry("{}", Some("prod_1")));
        assert_eq!(base.len(), 64);
        assert_eq!(base, entry_hash(GENESIS, &entry("{}", Some("prod_1"))), "deterministic");
        assert_ne!(base, entry_hash(&"1".repeat(64), &entry("{}", Some("prod_1"))));
        assert_ne!(base, entry_hash(GENESIS, &entry("{ }", Some("prod_1"))));
        assert_ne!(base, entry_hash(GENESIS, &entry("{}", None)));
        assert_ne!(entry_hash(GENESIS, &entry("{}", None)), entry_hash(GENESIS, &entry("{}", Some(""))), "absent is not empty");
        let mut later = entry("{}", Some("prod_1"));
        later.seq = 2;
        assert_ne!(base, entry_hash(GENESIS, &later));
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let mut a = entry("{}", Some("ab"));
        a.actor = "c";
        let mut b = entry("{}", Some("a"));
        b.actor = "bc";
        assert_ne!(entry_hash(GENESIS, &a), entry_hash(GENESIS, &b));
    }
}

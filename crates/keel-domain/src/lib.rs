//! Keel's pure core: identifiers, money, catalog rules, inventory arithmetic.
//!
//! Nothing in this crate performs I/O; every function is deterministic given
//! its inputs, which is what makes the invariants here property-testable.

pub mod access;
pub mod audit;
pub mod catalog;
pub mod error;
pub mod health;
pub mod ids;
pub mod images;
pub mod login;
pub mod inventory;
pub mod money;
pub mod orders;
pub mod passwords;
pub mod pricing;
pub mod storefront;
pub mod time;

pub use error::Invalid;

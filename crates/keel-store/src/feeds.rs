//! feeds storage.

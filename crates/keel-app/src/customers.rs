//! Customer accounts and addresses.

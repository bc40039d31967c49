//! webhooks storage.

//! The API over real HTTP on an ephemeral port, against a fresh database per
//! test: SQLite by default, PostgreSQL when `KEEL_TEST_DATABASE_URL` is set
//! (`scripts/test` runs both).

mod admin_client;
mod admin_dashboard;
mod admin_integrations;
mod admin_inventory;
mod admin_orders;
mod admin_staff;
mod admin_products;
mod backup;
mod audit;
mod catalog;
mod checkout;
mod cli;
mod concurrency;
mod conventions;
mod customers;
mod durability;
mod events;
mod feeds;
mod feeds_recovery;
mod hardening;
mod headers;
mod health;
mod images;
mod inventory;
mod outage;
mod outbound;
mod privacy;
mod properties;
mod purge;
mod ratelimit;
mod recovery;
mod staff;
mod staff_accounts;
mod reservations;
mod storefront_checkout;
mod storefront_catalog;
mod stripe;
mod throttle;
mod tls;
mod webhooks;

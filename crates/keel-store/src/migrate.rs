//! Embedded, per-backend migrations applied in order, each in its own
//! transaction, recorded with a checksum so an edited migration is caught.

use crate::{Backend, Result, StoreError};
use sqlx::{AnyConnection, Connection, Executor, Row};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "customers",
        sqlite: include_str!("../migrations/sqlite/0002_customers.sql"),
        postgres: include_str!("../migrations/postgres/0002_customers.sql"),
    },
    Migration {
        version: 3,
        name: "checkout",
        sqlite: include_str!("../migrations/sqlite/0003_checkout.sql"),
        postgres: include_str!("../migrations/postgres/0003_checkout.sql"),
    },
    Migration {
        version: 4,
        name: "webhooks",
        sqlite: include_str!("../migrations/sqlite/0004_webhooks.sql"),
        postgres: include_str!("../migrations/postgres/0004_webhooks.sql"),
    },
    Migration {
        version: 5,
        name: "feeds",
        sqlite: include_str!("../migrations/sqlite/0005_feeds.sql"),
        postgres: include_str!("../migrations/postgres/0005_feeds.sql"),
    },
    Migration {
        version: 6,
        name: "health",
        sqlite: include_str!("../migrations/sqlite/0006_health.sql"),
        postgres: include_str!("../migrations/postgres/0006_health.sql"),
    },
    Migration {
        version: 7,
        name: "images",
        sqlite: include_str!("../migrations/sqlite/0007_images.sql"),
        postgres: include_str!("../migrations/postgres/0007_images.sql"),
    },
    Migration {
        version: 8,
        name: "storefront",
        sqlite: include_str!("../migrations/sqlite/0008_storefront.sql"),
        postgres: include_str!("../migrations/postgres/0008_storefront.sql"),
    },
    Migration {
        version: 10,
        name: "sessions",
        sqlite: include_str!("../migrations/sqlite/0010_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0010_sessions.sql"),
    },
    Migration {
        version: 11,
        name: "staff",
        sqlite: include_str!("../migrations/sqlite/0011_staff.sql"),
        postgres: include_str!("../migrations/postgres/0011_staff.sql"),
    },
    Migration {
        version: 12,
        name: "audit",
        sqlite: include_str!("../migrations/sqlite/0012_audit.sql"),
        postgres: include_str!("../migrations/postgres/0012_audit.sql"),
    },
    Migration {
        version: 13,
        name: "staff_accounts",
        sqlite: include_str!("../migrations/sqlite/0013_staff_accounts.sql"),
        postgres: include_str!("../migrations/postgres/0013_staff_accounts.sql"),
    },
    Migration {
        version: 14,
        name: "console_indexes",
        sqlite: include_str!("../migrations/sqlite/0014_console_indexes.sql"),
        postgres: include_str!("../migrations/postgres/0014_console_indexes.sql"),
    },
    Migration {
        version: 15,
        name: "durability",
        sqlite: include_str!("../migrations/sqlite/0015_durability.sql"),
        postgres: include_str!("../migrations/postgres/0015_durability.sql"),
    },
    Migration {
        version: 16,
        name: "feed_leases",
        sqlite: include_str!("../migrations/sqlite/0016_feed_leases.sql"),
        postgres: include_str!("../migrations/postgres/0016_feed_leases.sql"),
    },
    Migration {
        version: 18,
        name: "append_only",
        sqlite: include_str!("../migrations/sqlite/0018_append_only.sql"),
        postgres: include_str!("../migrations/postgres/0018_append_only.sql"),
    },
    Migration {
        version: 19,
        name: "security_events",
        sqlite: include_str!("../migrations/sqlite/0019_security_events.sql"),
        postgres: include_str!("../migrations/postgres/0019_security_events.sql"),
    },
    Migration {
        version: 20,
        name: "order_proof",
        sqlite: include_str!("../migrations/sqlite/0020_order_proof.sql"),
        postgres: include_str!("../migrations/postgres/0020_order_proof.sql"),
    },
    Migration {
        version: 21,
        name: "feed_signatures",
        sqlite: include_str!("../migrations/sqlite/0021_feed_signatures.sql"),
        postgres: include_str!("../migrations/postgres/0021_feed_signatures.sql"),
    },
    Migration {
        version: 22,
        name: "key_kinds",
        sqlite: include_str!("../migrations/sqlite/0022_key_kinds.sql"),
        postgres: include_str!("../migrations/postgres/0022_key_kinds.sql"),
    },
];

/// FNV-1a: a stable fingerprint, not a security measure.
fn checksum(sql: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in sql.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// Applies pending migrations; returns the names applied.
pub async fn run(conn: &mut AnyConnection, backend: Backend) -> Result<Vec<String>> {
    conn.execute(sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS keel_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    ))
    .await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let mut tx = conn.begin().await?;
        if backend == Backend::Postgres {
            // Several nodes may start at once; one migrates, the others wait.
            tx.execute(sqlx::raw_sql("SELECT pg_advisory_xact_lock(7210034)")).await?;
        }
        let existing = sqlx::query("SELECT checksum FROM keel_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?;
        match existing {
            Some(row) => {
                let sum: String = row.try_get("checksum")?;
                if sum != checksum(sql) {
                    return Err(StoreError::MigrationChanged { version: m.version });
                }
            }
            None => {
                tx.execute(sqlx::raw_sql(sql)).await?;
                sqlx::query("INSERT INTO keel_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(checksum(sql))
                    .bind(keel_domain::time::now_micros())
                    .execute(&mut *tx)
                    .await?;
                applied.push(format!("{:04}_{}", m.version, m.name));
            }
        }
        tx.commit().await?;
    }
    Ok(applied)
}

/// The newest migration applied to this database (0 before any).
pub async fn applied_version(conn: &mut AnyConnection) -> Result<i64> {
    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM keel_migrations").fetch_one(conn).await?;
    Ok(v.unwrap_or(0))
}

/// The newest migration version this binary knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

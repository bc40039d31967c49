//! Persistence for Keel. All SQL lives in this crate, one module per
//! aggregate. Queries are runtime-checked and written in the subset SQLite and
//! PostgreSQL share; the few differences sit in small per-backend branches
//! keyed on [`Backend`].

pub mod apikeys;
pub mod audit;
pub mod backup;
pub mod batch;
pub mod captures;
pub mod carts;
pub mod catalog;
pub mod check;
pub mod collections;
pub mod customers;
pub mod dashboard;
pub mod error;
pub mod feeds;
pub mod health;
pub mod idempotency;
pub mod images;
pub mod inventory;
pub mod locations;
pub mod migrate;
pub mod nodes;
pub mod orders;
pub mod outbox;
pub mod purge;
pub mod reservations;
pub mod sessions;
pub mod search;
pub mod shipping;
pub mod staff;
pub mod throttle;
mod tx;
pub mod webhooks;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Executor};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub use error::{Outage, StoreError};
pub use sqlx::AnyConnection as Conn;
pub use sqlx::Error as SqlxError;

pub use tx::Tx;
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(conn: &AnyConnection) -> Backend {
        if conn.backend_name() == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Connection pools. On SQLite all writes share one connection (SQLite has
/// one writer anyway; queueing in-process avoids busy-lock storms) while reads
/// use their own pool; on PostgreSQL both are the same pool.
#[derive(Clone)]
pub struct Store {
    write: AnyPool,
    read: AnyPool,
    backend: Backend,
}

/// Where the database is: a PostgreSQL URL, or a SQLite file path.
#[derive(Debug, Clone)]
pub enum Location {
    Postgres(String),
    SqliteFile(std::path::PathBuf),
}

impl Location {
    /// `postgres://…` selects PostgreSQL; otherwise `keel.db` in `data_dir`.
    pub fn resolve(database_url: Option<&str>, data_dir: &Path) -> Location {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Location::Postgres(url.to_owned())
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                Location::SqliteFile(path.split('?').next().unwrap_or(path).into())
            }
            _ => Location::SqliteFile(data_dir.join("keel.db")),
        }
    }

    /// For logs: never includes a password.
    pub fn describe(&self) -> String {
        match self {
            Location::Postgres(url) => match url.split_once('@') {
                Some((_, host)) => format!("postgres://…@{host}"),
                None => url.clone(),
            },
            Location::SqliteFile(p) => format!("sqlite:{}", p.display()),
        }
    }
}

pub struct PoolSizes {
    pub postgres: u32,
    pub sqlite_readers: u32,
}

impl Default for PoolSizes {
    fn default() -> Self {
        PoolSizes { postgres: 32, sqlite_readers: 8 }
    }
}

impl Store {
    pub async fn open(location: &Location, sizes: PoolSizes) -> Result<Store> {
        sqlx::any::install_default_drivers();
        match location {
            Location::Postgres(url) => {
                let opts = AnyConnectOptions::from_str(url)?.disable_statement_logging();
                let pool = AnyPoolOptions::new()
                    .max_connections(sizes.postgres)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(opts)
                    .await?;
                Ok(Store { write: pool.clone(), read: pool, backend: Backend::Postgres })
            }
            Location::SqliteFile(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(e.to_string()))?;
                }
                let url = format!("sqlite://{}?mode=rwc", path.display());
                let opts = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
                let write = AnyPoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| Box::pin(async move { sqlite_pragmas(conn, false).await }))
                    .connect_with(opts.clone())
                    .await?;
                let read = AnyPoolOptions::new()
                    .max_connections(sizes.sqlite_readers)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| Box::pin(async move { sqlite_pragmas(conn, true).await }))
                    .connect_with(opts)
                    .await?;
                Ok(Store { write, read, backend: Backend::Sqlite })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction. Callers retry on [`StoreError::is_transient`].
    pub async fn begin(&self) -> Result<Tx> {
        Tx::begin(self.write.acquire().await.map_err(|e| waited_out(&self.write, e))?).await
    }

    /// A connection for reads outside any transaction.
    pub async fn reader(&self) -> Result<PoolConnection<Any>> {
        self.read.acquire().await.map_err(|e| waited_out(&self.read, e))
    }

    pub async fn migrate(&self) -> Result<Vec<String>> {
        let mut conn = self.write.acquire().await?;
        migrate::run(&mut conn, self.backend).await
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// A consistent copy of a SQLite database taken while serving
    /// (`VACUUM INTO` reads one snapshot).
    pub async fn sqlite_snapshot(&self, dest: &Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Unsupported("snapshots are for SQLite; use pg_dump for PostgreSQL"));
        }
        // A reader connection (so writes carry on); readers are `query_only`,
        // which would refuse writing the new file, so lift it for this one
        // statement.
        let mut conn = self.read.acquire().await?;
        let dest = dest.display().to_string().replace('\'', "''");
        let result = conn.execute(sqlx::raw_sql(&format!("PRAGMA query_only = 0; VACUUM INTO '{dest}'"))).await;
        let restore = conn.execute(sqlx::raw_sql("PRAGMA query_only = 1")).await;
        if result.is_err() || restore.is_err() {
            conn.detach();
        }
        result?;
        Ok(())
    }
}

/// A wait for a connection that ran out with no connection open at all is
/// a database that cannot be reached (sqlx keeps retrying a refused
/// connection until the wait ends), not a busy pool.
fn waited_out(pool: &AnyPool, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut if pool.size() == 0 => StoreError::Unreachable,
        e => e.into(),
    }
}

async fn sqlite_pragmas(conn: &mut AnyConnection, read_only: bool) -> std::result::Result<(), sqlx::Error> {
    // WAL lets readers run beside the writer; NORMAL sync is durable across
    // process crashes in WAL mode and loses at most the last commits on power
    // loss. The busy timeout covers other processes (e.g. `keel apikey`).
    conn.execute(sqlx::raw_sql(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
         PRAGMA foreign_keys = ON; PRAGMA cache_size = -16000; PRAGMA temp_store = MEMORY;",
    ))
    .await?;
    if read_only {
        conn.execute(sqlx::raw_sql("PRAGMA query_only = 1;")).await?;
    }
    Ok(())
}

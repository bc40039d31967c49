//! SQLite backup files: taking one while serving (`VACUUM INTO` reads one
//! consistent snapshot, in WAL mode beside the running writer) and checking a
//! file really is a Keel database before it is restored. PostgreSQL uses
//! `pg_dump`/`pg_restore` instead (see `docs/security.md`).

use crate::{Result, StoreError};
use sqlx::{AnyConnection, Connection, Row};
use std::path::Path;

/// What a backup file holds, for the restore summary.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    /// Highest migration version recorded in the file.
    pub schema_version: i64,
    pub migrations: i64,
    /// Row counts of a few headline tables.
    pub counts: Vec<(&'static str, i64)>,
    /// A few encrypted values, to prove a key can read the file.
    pub encrypted: Vec<(&'static str, String)>,
}

const SUMMARY_TABLES: &[&str] = &["products", "variants", "inventory_movements", "orders", "customers"];

/// Opens `path` read-only and checks it: SQLite header, `PRAGMA
/// integrity_check`, a `keel_migrations` table no newer than this binary.
pub async fn inspect_sqlite_file(path: &Path, known_version: i64) -> Result<BackupInfo> {
    let mut header = [0u8; 16];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
        f.read_exact(&mut header).map_err(|_| StoreError::corrupt("the file is not a SQLite database"))?;
    }
    if &header != b"SQLite format 3\0" {
        return Err(StoreError::corrupt("the file is not a SQLite database"));
    }
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn = AnyConnection::connect(&url).await?;
    let check: String = sqlx::query("PRAGMA integrity_check").fetch_one(&mut conn).await?.try_get(0)?;
    if check != "ok" {
        return Err(StoreError::corrupt(format!("integrity_check failed: {check}")));
    }
    let has_migrations: i64 =
        sqlx::query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'keel_migrations'")
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
    if has_migrations == 0 {
        return Err(StoreError::corrupt("the file has no keel_migrations table: not a Keel database"));
    }
    let row = sqlx::query("SELECT COUNT(*), COALESCE(MAX(version), 0) FROM keel_migrations").fetch_one(&mut conn).await?;
    let migrations: i64 = row.try_get(0)?;
    let schema_version: i64 = row.try_get(1)?;
    if migrations == 0 {
        return Err(StoreError::corrupt("the file records no migrations: not a Keel database"));
    }
    if schema_version > known_version {
        return Err(StoreError::corrupt(format!(
            "the file is at schema version {schema_version}, newer than this binary ({known_version})"
        )));
    }
    let mut counts = Vec::new();
    for table in SUMMARY_TABLES {
        let exists: i64 = sqlx::query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1")
            .bind(*table)
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        if exists > 0 {
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&mut conn).await?.try_get(0)?;
            counts.push((*table, n));
        }
    }
    let encrypted = crate::check::encrypted_samples(&mut conn, 3).await?;
    conn.close().await?;
    Ok(BackupInfo { schema_version, migrations, counts, encrypted })
}

use sqlx::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("stored data is not what this version expects: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("i/o: {0}")]
    Io(String),
    #[error("migration {version} was changed after it was applied")]
    MigrationChanged { version: i64 },
    #[error("the database cannot be reached")]
    Unreachable,
}

/// Failures of the database as a whole rather than of one request: the
/// client should come back later, and the answer says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// No space left for the database (SQLITE_FULL, PostgreSQL 53100).
    StorageFull,
    /// The database cannot be reached or is shutting down.
    Unavailable,
    /// Every connection is busy (the pool's wait ran out).
    Busy,
}

impl StoreError {
    /// Whether this error means the database itself is out of service.
    pub fn outage(&self) -> Option<Outage> {
        let e = match self {
            StoreError::Db(e) => e,
            StoreError::Unreachable => return Some(Outage::Unavailable),
            _ => return None,
        };
        match e {
            sqlx::Error::PoolTimedOut => Some(Outage::Busy),
            sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed | sqlx::Error::Tls(_) => {
                Some(Outage::Unavailable)
            }
            sqlx::Error::Database(db) => {
                let code = db.code();
                let code = code.as_deref().unwrap_or("");
                if code == "53100" || code.parse::<i64>().is_ok_and(|c| c & 0xff == 13) {
                    Some(Outage::StorageFull)
                } else if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300") {
                    Some(Outage::Unavailable)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Lock and serialization failures that a retry of the whole transaction
    /// can fix: SQLITE_BUSY/LOCKED, PostgreSQL 40001, 40P01 and 55P03.
    pub fn is_transient(&self) -> bool {
        let StoreError::Db(sqlx::Error::Database(e)) = self else {
            return false;
        };
        match e.code().as_deref() {
            Some("40001" | "40P01" | "55P03") => true,
            Some(code) => code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
            None => false,
        }
    }

    /// Whether this is a unique violation on `table.column`. PostgreSQL names
    /// the constraint (`{table}_{column}_key`, as the migrations declare it);
    /// SQLite names the column in its message.
    pub fn is_unique_violation(&self, table: &str, column: &str) -> bool {
        let StoreError::Db(sqlx::Error::Database(e)) = self else {
            return false;
        };
        if !matches!(e.kind(), ErrorKind::UniqueViolation) {
            return false;
        }
        match e.constraint() {
            Some(name) => name == format!("{table}_{column}_key"),
            None => e.message().contains(&format!("{table}.{column}")),
        }
    }

    pub fn is_any_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if matches!(e.kind(), ErrorKind::UniqueViolation))
    }

    pub fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

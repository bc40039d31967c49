//! Attempt counters (`login_failures`): one row per scope and key, e.g.
//! `account` + an email, `ip` + an address bucket. The app reserves an
//! attempt before evaluating it with [`put_if_unchanged`]: the write goes
//! through only if the row is still the one the decision was read from, so
//! parallel attempts cannot all be admitted by one reading.

use crate::Result;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRow {
    pub failures: i64,
    pub last_failure_at: i64,
    pub locked_until: Option<i64>,
}

pub async fn failures(conn: &mut AnyConnection, scope: &str, key: &str) -> Result<Option<FailureRow>> {
    let row = sqlx::query("SELECT failures, last_failure_at, locked_until FROM login_failures WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .fetch_optional(conn)
        .await?;
    row.map(|r| Ok(FailureRow { failures: r.try_get("failures")?, last_failure_at: r.try_get("last_failure_at")?, locked_until: r.try_get("locked_until")? }))
        .transpose()
}

/// Writes `new` if the row still equals `seen` (`None`: still absent).
/// Returns false when another attempt changed it first: read again and
/// decide again. One statement each way, so it is atomic on both backends.
pub async fn put_if_unchanged(conn: &mut AnyConnection, scope: &str, key: &str, seen: Option<FailureRow>, new: FailureRow) -> Result<bool> {
    let done = match seen {
        None => {
            sqlx::query(
                "INSERT INTO login_failures (scope, key, failures, last_failure_at, locked_until) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(scope)
            .bind(key)
            .bind(new.failures)
            .bind(new.last_failure_at)
            .bind(new.locked_until)
            .execute(conn)
            .await?
        }
        Some(old) => {
            sqlx::query(
                "UPDATE login_failures SET failures = $3, last_failure_at = $4, locked_until = $5 \
                 WHERE scope = $1 AND key = $2 AND failures = $6 AND last_failure_at = $7 \
                 AND COALESCE(locked_until, -1) = COALESCE($8, -1)",
            )
            .bind(scope)
            .bind(key)
            .bind(new.failures)
            .bind(new.last_failure_at)
            .bind(new.locked_until)
            .bind(old.failures)
            .bind(old.last_failure_at)
            .bind(old.locked_until)
            .execute(conn)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

/// Gives back one reserved attempt (it succeeded, or was never evaluated):
/// the count goes down by one, and a lock that only this attempt caused
/// (the count falls below `lock_after`) is lifted.
pub async fn release(conn: &mut AnyConnection, scope: &str, key: &str, lock_after: i64) -> Result<()> {
    sqlx::query(
        "UPDATE login_failures SET failures = failures - 1, \
         locked_until = CASE WHEN failures - 1 < $3 THEN NULL ELSE locked_until END \
         WHERE scope = $1 AND key = $2 AND failures > 0",
    )
    .bind(scope)
    .bind(key)
    .bind(lock_after)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn clear(conn: &mut AnyConnection, scope: &str, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE scope = $1 AND key = $2").bind(scope).bind(key).execute(conn).await?;
    Ok(())
}

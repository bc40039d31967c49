//! Staff users, their recovery codes and sessions, and login failure
//! counters. Secrets arrive here already hashed or encrypted.

use crate::{Backend, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone)]
pub struct StaffUserRow {
    pub id: String,
    /// Lowercased.
    pub email: String,
    pub password_hash: String,
    pub role: String,
    /// Encrypted with the master key.
    pub totp_secret: Option<String>,
    pub totp_enabled_at: Option<i64>,
    pub totp_last_step: Option<i64>,
    pub last_login_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the account was last re-enabled; restarts the staleness clock.
    pub reactivated_at: Option<i64>,
}

const USER_COLUMNS: &str = "id, email, password_hash, role, totp_secret, totp_enabled_at, totp_last_step, last_login_at, \
    disabled_at, created_at, updated_at, reactivated_at";

fn user_from_row(r: &AnyRow) -> Result<StaffUserRow> {
    Ok(StaffUserRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        role: r.try_get("role")?,
        totp_secret: r.try_get("totp_secret")?,
        totp_enabled_at: r.try_get("totp_enabled_at")?,
        totp_last_step: r.try_get("totp_last_step")?,
        last_login_at: r.try_get("last_login_at")?,
        disabled_at: r.try_get("disabled_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        reactivated_at: r.try_get("reactivated_at")?,
    })
}

pub async fn insert_user(conn: &mut AnyConnection, u: &StaffUserRow) -> Result<()> {
    sqlx::query(&format!("INSERT INTO staff_users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.password_hash)
        .bind(&u.role)
        .bind(&u.totp_secret)
        .bind(u.totp_enabled_at)
        .bind(u.totp_last_step)
        .bind(u.last_login_at)
        .bind(u.disabled_at)
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(u.reactivated_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn user_by_email(conn: &mut AnyConnection, email: &str) -> Result<Option<StaffUserRow>> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM staff_users WHERE email = $1")).bind(email).fetch_optional(conn).await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn user_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<StaffUserRow>> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM staff_users WHERE id = $1")).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Replaces the password (and re-enables the account, restarting its
/// staleness clock if it was disabled); used by the demo owner.
pub async fn set_password(conn: &mut AnyConnection, id: &str, hash: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE staff_users SET password_hash = $2, disabled_at = NULL, updated_at = $3, \
         reactivated_at = CASE WHEN disabled_at IS NULL THEN reactivated_at ELSE $3 END WHERE id = $1",
    )
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores a new, not yet confirmed TOTP secret (two-factor is off until confirmed).
pub async fn set_totp_secret(conn: &mut AnyConnection, id: &str, encrypted: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE staff_users SET totp_secret = $2, totp_enabled_at = NULL, totp_last_step = NULL, updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(encrypted)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn enable_totp(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE staff_users SET totp_enabled_at = $2, updated_at = $2 WHERE id = $1").bind(id).bind(now).execute(conn).await?;
    Ok(())
}

/// Records the time step of an accepted TOTP code, only if it is later than
/// the last one accepted; `false` means the code (or an older one) was used.
pub async fn claim_totp_step(conn: &mut AnyConnection, id: &str, step: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE staff_users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)")
        .bind(id)
        .bind(step)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Which staff users [`list_users`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFilter {
    All,
    Active,
    Disabled,
    /// Active, and neither signed in, created nor re-enabled since the cut-off.
    Stale,
}

/// Staff users by email. `stale_before` (µs) is the cut-off for
/// [`UserFilter::Stale`]: the latest of `last_login_at`, `created_at` and
/// `reactivated_at` must be before it.
pub async fn list_users(conn: &mut AnyConnection, filter: UserFilter, stale_before: i64) -> Result<Vec<StaffUserRow>> {
    let cond = match filter {
        UserFilter::All => "1 = 1",
        UserFilter::Active => "disabled_at IS NULL",
        UserFilter::Disabled => "disabled_at IS NOT NULL",
        UserFilter::Stale => {
            "disabled_at IS NULL AND created_at < $1 AND (last_login_at IS NULL OR last_login_at < $1) \
             AND (reactivated_at IS NULL OR reactivated_at < $1)"
        }
    };
    let sql = format!("SELECT {USER_COLUMNS} FROM staff_users WHERE {cond} ORDER BY email");
    let mut q = sqlx::query(&sql);
    if filter == UserFilter::Stale {
        q = q.bind(stale_before);
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(user_from_row).collect()
}

/// (id, email) of the staff users among `ids` (at most a page's worth),
/// for lists that name who did something.
pub async fn emails_by_ids(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<(String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!("SELECT id, email FROM staff_users WHERE id IN ({marks})");
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(id);
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("email")?))).collect()
}

/// A user, locked until the transaction ends on PostgreSQL (SQLite has one
/// writer already).
pub async fn user_for_update(conn: &mut AnyConnection, id: &str) -> Result<Option<StaffUserRow>> {
    let lock = if Backend::of(conn) == Backend::Postgres { " FOR UPDATE" } else { "" };
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM staff_users WHERE id = $1{lock}")).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The ids of the active owners, locked on PostgreSQL, so two transactions
/// that each remove an owner cannot both see the other one still there.
pub async fn lock_active_owners(conn: &mut AnyConnection) -> Result<Vec<String>> {
    let lock = if Backend::of(conn) == Backend::Postgres { " FOR UPDATE" } else { "" };
    let rows = sqlx::query(&format!("SELECT id FROM staff_users WHERE role = 'owner' AND disabled_at IS NULL ORDER BY id{lock}"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

pub async fn set_role(conn: &mut AnyConnection, id: &str, role: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE staff_users SET role = $2, updated_at = $3 WHERE id = $1").bind(id).bind(role).bind(now).execute(conn).await?;
    Ok(())
}

/// Disables an active user and deletes its sessions; `false` (and nothing
/// done) if it was disabled already.
pub async fn disable_user(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE staff_users SET disabled_at = $2, updated_at = $2 WHERE id = $1 AND disabled_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    delete_user_sessions(conn, id).await?;
    Ok(true)
}

/// Re-enables a disabled user and restarts its staleness clock; `false` if
/// it was active.
pub async fn enable_user(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE staff_users SET disabled_at = NULL, reactivated_at = $2, updated_at = $2 WHERE id = $1 AND disabled_at IS NOT NULL",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Turns two-factor off and forgets its secret and recovery codes: the user
/// enrols again.
pub async fn clear_two_factor(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE staff_users SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM staff_recovery_codes WHERE user_id = $1").bind(id).execute(conn).await?;
    Ok(())
}

pub async fn record_login(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE staff_users SET last_login_at = $2 WHERE id = $1").bind(id).bind(now).execute(conn).await?;
    Ok(())
}

// -------------------------------------------------------- recovery codes ---

pub async fn replace_recovery_codes(conn: &mut AnyConnection, user_id: &str, hashes: &[String], now: i64) -> Result<()> {
    sqlx::query("DELETE FROM staff_recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
    for h in hashes {
        sqlx::query("INSERT INTO staff_recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(h)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Marks an unused code used; `false` if there is no such unused code.
pub async fn use_recovery_code(conn: &mut AnyConnection, user_id: &str, hash: &str, now: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE staff_recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL")
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn unused_recovery_codes(conn: &mut AnyConnection, user_id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM staff_recovery_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("n")?)
}

// --------------------------------------------------------------- sessions ---

#[derive(Debug, Clone)]
pub struct StaffSessionRow {
    /// SHA-256 (hex) of the cookie token.
    pub id: String,
    pub user_id: String,
    pub csrf_secret: String,
    pub second_factor_at: Option<i64>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_expires_at: i64,
    pub expires_at: i64,
}

const SESSION_COLUMNS: &str = "id, user_id, csrf_secret, second_factor_at, created_at, last_seen_at, idle_expires_at, expires_at";

fn session_from_row(r: &AnyRow) -> Result<StaffSessionRow> {
    Ok(StaffSessionRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        csrf_secret: r.try_get("csrf_secret")?,
        second_factor_at: r.try_get("second_factor_at")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        idle_expires_at: r.try_get("idle_expires_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

pub async fn insert_session(conn: &mut AnyConnection, s: &StaffSessionRow) -> Result<()> {
    sqlx::query(&format!("INSERT INTO staff_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.csrf_secret)
        .bind(s.second_factor_at)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.idle_expires_at)
        .bind(s.expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn session_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<StaffSessionRow>> {
    let row = sqlx::query(&format!("SELECT {SESSION_COLUMNS} FROM staff_sessions WHERE id = $1")).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(session_from_row).transpose()
}

pub async fn touch_session(conn: &mut AnyConnection, id: &str, now: i64, idle_expires_at: i64) -> Result<()> {
    sqlx::query("UPDATE staff_sessions SET last_seen_at = $2, idle_expires_at = $3 WHERE id = $1")
        .bind(id)
        .bind(now)
        .bind(idle_expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that a session has given its second factor (at enrolment).
pub async fn mark_second_factor(conn: &mut AnyConnection, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE staff_sessions SET second_factor_at = $2 WHERE id = $1").bind(id).bind(now).execute(conn).await?;
    Ok(())
}

pub async fn delete_session(conn: &mut AnyConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM staff_sessions WHERE id = $1").bind(id).execute(conn).await?;
    Ok(())
}

/// Sessions of a user not past either timeout.
pub async fn live_sessions(conn: &mut AnyConnection, user_id: &str, now: i64) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM staff_sessions WHERE user_id = $1 AND expires_at > $2 AND idle_expires_at > $2")
        .bind(user_id)
        .bind(now)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("n")?)
}

/// Ends every session of a user; returns how many.
pub async fn delete_user_sessions(conn: &mut AnyConnection, user_id: &str) -> Result<u64> {
    let done = sqlx::query("DELETE FROM staff_sessions WHERE user_id = $1").bind(user_id).execute(conn).await?;
    Ok(done.rows_affected())
}

/// Deletes staff sessions past either timeout, and failure counters that
/// no longer count (older than `stale_before` and not locked); returns how
/// many rows went.
pub async fn purge_expired(conn: &mut AnyConnection, now: i64, stale_before: i64) -> Result<u64> {
    let a = sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1 OR idle_expires_at <= $1").bind(now).execute(&mut *conn).await?;
    let b = sqlx::query("DELETE FROM login_failures WHERE last_failure_at < $1 AND (locked_until IS NULL OR locked_until <= $2)")
        .bind(stale_before)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(a.rows_affected() + b.rows_affected())
}

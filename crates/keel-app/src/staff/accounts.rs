//! Managing staff accounts: the list (with staleness), adding a user, role
//! changes, disabling and re-enabling, two-factor resets, ending a user's
//! sessions, and the stale-accounts job.
//!
//! The rules hold whoever calls (the console, the command line, the job):
//! - the actor must be allowed to grant the account's current role, and for
//!   a role change the new one too ([`Role::can_grant`]: owners any, admins
//!   any but owner, nobody else);
//! - nobody changes their own role, disables themselves or resets their own
//!   second factor here;
//! - the last active owner is never disabled or given another role (a
//!   `last_owner` conflict). The active owners are locked first in every
//!   such transaction (PostgreSQL; SQLite has one writer), so two owners
//!   removing each other at once cannot both succeed.
//!
//! **Staleness.** An active account is stale when the latest of its last
//! sign-in, its creation and its last re-enabling (`reactivated_at`) is older
//! than [`StaffConfig::stale_after_days`](super::StaffConfig). Re-enabling
//! sets `reactivated_at`, so a re-enabled account gets a full threshold to be
//! used before the job disables it again. Changing its role or resetting its
//! second factor does not count as use.

use super::{user_view, CreatedStaffUser, StaffUser};
use crate::audit::NewAuditEntry;
use crate::{in_tx, App, AppError, Result};
use keel_domain::access::Role;
use keel_domain::time::to_rfc3339;
use keel_domain::Invalid;
use keel_store::audit as audit_db;
use keel_store::staff::{self as db, StaffUserRow, UserFilter};

pub const DEFAULT_STALE_DAYS: u32 = 90;
const DAY_MICROS: i64 = 86_400_000_000;
/// The stale-accounts job's actor in the audit log.
pub const STALE_JOB_ACTOR: &str = "system:stale-accounts";
pub const STALE_JOB_ACTION: &str = "disable stale staff user";
/// The command line's actor in the audit log.
pub const CLI_ACTOR: &str = "system:cli";

/// Which accounts a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StaffFilter {
    #[default]
    All,
    Active,
    Stale,
    Disabled,
}

impl StaffFilter {
    pub const ALL: [StaffFilter; 4] = [StaffFilter::All, StaffFilter::Active, StaffFilter::Stale, StaffFilter::Disabled];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffFilter::All => "all",
            StaffFilter::Active => "active",
            StaffFilter::Stale => "stale",
            StaffFilter::Disabled => "disabled",
        }
    }

    pub fn parse(field: &str, s: &str) -> std::result::Result<StaffFilter, Invalid> {
        StaffFilter::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| Invalid::new(field, "invalid_filter", "must be one of all, active, stale, disabled"))
    }

    fn store(self) -> UserFilter {
        match self {
            StaffFilter::All => UserFilter::All,
            StaffFilter::Active => UserFilter::Active,
            StaffFilter::Stale => UserFilter::Stale,
            StaffFilter::Disabled => UserFilter::Disabled,
        }
    }
}

/// A staff account as the console lists it.
#[derive(Debug, Clone)]
pub struct StaffAccount {
    pub user: StaffUser,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub reactivated_at: Option<i64>,
    /// The latest of the last sign-in, creation and re-enabling: what
    /// staleness is measured from.
    pub last_used_at: i64,
    /// Active and unused for longer than the threshold.
    pub stale: bool,
}

impl StaffAccount {
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }
}

/// One account with what its own page shows besides.
#[derive(Debug, Clone)]
pub struct StaffAccountDetail {
    pub account: StaffAccount,
    /// Sessions not past either timeout.
    pub live_sessions: i64,
    pub unused_recovery_codes: i64,
}

/// Who changes an account.
#[derive(Debug, Clone, Copy)]
enum By<'a> {
    /// A signed-in staff user; their role is read again in the transaction,
    /// and a disabled one changes nothing.
    Staff(&'a StaffUser),
    /// The operator at the command line, with an owner's grants.
    Operator,
}

impl By<'_> {
    fn is(self, id: &str) -> bool {
        matches!(self, By::Staff(u) if u.id == id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Role(Role),
    Disable,
    Enable,
    ResetTwoFactor,
    EndSessions,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Role(_) => "change the role of",
            Change::Disable => "disable",
            Change::Enable => "enable",
            Change::ResetTwoFactor => "reset two-factor of",
            Change::EndSessions => "sign out",
        }
    }

    /// Whether the change can take an owner away (the owners are locked first).
    fn may_remove_owner(self) -> bool {
        matches!(self, Change::Role(_) | Change::Disable)
    }
}

fn last_used(u: &StaffUserRow) -> i64 {
    u.created_at.max(u.last_login_at.unwrap_or(i64::MIN)).max(u.reactivated_at.unwrap_or(i64::MIN))
}

fn role_of(u: &StaffUserRow) -> Result<Role> {
    Role::parse("role", &u.role).map_err(|_| keel_store::StoreError::corrupt("a staff user has an unknown role").into())
}

/// The actor's role now (not as their session last saw it).
async fn actor_role(conn: &mut keel_store::Conn, by: By<'_>) -> Result<Role> {
    match by {
        By::Operator => Ok(Role::Owner),
        By::Staff(a) => match db::user_by_id(conn, &a.id).await? {
            Some(u) if u.disabled_at.is_none() => role_of(&u),
            _ => Err(AppError::Forbidden { message: "this account is disabled".into() }),
        },
    }
}

fn last_owner(field: &str, what: &str) -> AppError {
    AppError::conflict("last_owner", format!("{field}: the last active owner cannot be {what}"), Some(field))
}

fn own_account(field: &str, what: &str) -> AppError {
    AppError::conflict("own_account", format!("{field}: you cannot {what} your own account"), Some(field))
}

impl App {
    /// Microseconds before which an account's last use makes it stale.
    pub fn stale_cutoff(&self, now: i64) -> i64 {
        now - i64::from(self.staff.stale_after_days.max(1)) * DAY_MICROS
    }

    fn account_view(&self, u: &StaffUserRow, now: i64) -> Result<StaffAccount> {
        let last_used_at = last_used(u);
        Ok(StaffAccount {
            user: user_view(u)?,
            created_at: u.created_at,
            disabled_at: u.disabled_at,
            reactivated_at: u.reactivated_at,
            last_used_at,
            stale: u.disabled_at.is_none() && last_used_at < self.stale_cutoff(now),
        })
    }

    /// Staff accounts by email (a shop has tens, not thousands: no paging).
    pub async fn list_staff_users(&self, filter: StaffFilter, now: i64) -> Result<Vec<StaffAccount>> {
        let mut conn = self.store.reader().await?;
        let rows = db::list_users(&mut conn, filter.store(), self.stale_cutoff(now)).await?;
        rows.iter().map(|u| self.account_view(u, now)).collect()
    }

    pub async fn staff_account(&self, id: &str, now: i64) -> Result<Option<StaffAccountDetail>> {
        let mut conn = self.store.reader().await?;
        let Some(u) = db::user_by_id(&mut conn, id).await? else { return Ok(None) };
        let live_sessions = db::live_sessions(&mut conn, id, now).await?;
        let unused_recovery_codes = db::unused_recovery_codes(&mut conn, id).await?;
        Ok(Some(StaffAccountDetail { account: self.account_view(&u, now)?, live_sessions, unused_recovery_codes }))
    }

    /// Emails of the staff users among `ids` (ids that name no staff user
    /// are left out): one query for a whole list.
    pub async fn staff_emails(&self, ids: &[String]) -> Result<std::collections::HashMap<String, String>> {
        let mut ids: Vec<String> = ids.to_vec();
        ids.sort();
        ids.dedup();
        let mut conn = self.store.reader().await?;
        let mut found = std::collections::HashMap::new();
        for chunk in ids.chunks(200) {
            found.extend(db::emails_by_ids(&mut conn, chunk).await?);
        }
        Ok(found)
    }

    /// Adds a user on behalf of `actor`, who must be allowed to grant `role`;
    /// the password is generated and returned once.
    pub async fn add_staff_user(&self, actor: &StaffUser, email: &str, role: Role, now: i64) -> Result<CreatedStaffUser> {
        let mut conn = self.store.reader().await?;
        let by_role = actor_role(&mut conn, By::Staff(actor)).await?;
        drop(conn);
        if !by_role.can_grant(role) {
            return Err(AppError::Forbidden {
                message: format!("role: a {} cannot add a user with role {}", by_role.as_str(), role.as_str()),
            });
        }
        self.create_staff_user(email, role, None, now).await
    }

    /// Gives the account another role. Refused for one's own account and for
    /// the last active owner.
    pub async fn change_staff_role(&self, actor: &StaffUser, target_id: &str, role: Role, now: i64) -> Result<StaffAccount> {
        self.change_account(By::Staff(actor), target_id, Change::Role(role), now).await
    }

    /// Disables the account and ends all its sessions, in one transaction.
    /// Disabling a disabled account changes nothing.
    pub async fn disable_staff_user(&self, actor: &StaffUser, target_id: &str, now: i64) -> Result<StaffAccount> {
        self.change_account(By::Staff(actor), target_id, Change::Disable, now).await
    }

    /// Re-enables the account and restarts its staleness clock
    /// (`reactivated_at`). Enabling an active account changes nothing.
    pub async fn enable_staff_user(&self, actor: &StaffUser, target_id: &str, now: i64) -> Result<StaffAccount> {
        self.change_account(By::Staff(actor), target_id, Change::Enable, now).await
    }

    /// Turns the account's two-factor off, deleting its secret, recovery
    /// codes and sessions: it enrols again at its next sign-in (owners and
    /// admins must, when two-factor is required).
    pub async fn reset_staff_two_factor(&self, actor: &StaffUser, target_id: &str, now: i64) -> Result<StaffAccount> {
        self.change_account(By::Staff(actor), target_id, Change::ResetTwoFactor, now).await
    }

    /// Ends every session of another account (one's own: "sign out
    /// everywhere", [`App::staff_sign_out_everywhere`]).
    pub async fn end_staff_sessions(&self, actor: &StaffUser, target_id: &str, now: i64) -> Result<StaffAccount> {
        self.change_account(By::Staff(actor), target_id, Change::EndSessions, now).await
    }

    /// `keel user disable`: as [`App::disable_staff_user`], by the operator
    /// (an owner's grants), audited as `system:cli`.
    pub async fn operator_disable_staff_user(&self, email: &str, now: i64) -> Result<StaffAccount> {
        let id = self.staff_id_by_email(email).await?;
        self.change_account(By::Operator, &id, Change::Disable, now).await
    }

    /// `keel user enable`, like [`App::operator_disable_staff_user`].
    pub async fn operator_enable_staff_user(&self, email: &str, now: i64) -> Result<StaffAccount> {
        let id = self.staff_id_by_email(email).await?;
        self.change_account(By::Operator, &id, Change::Enable, now).await
    }

    /// The id of the staff user with this email (any case).
    pub async fn staff_id_by_email(&self, email: &str) -> Result<String> {
        let mut conn = self.store.reader().await?;
        let email = crate::customers::normalise_email(email);
        match db::user_by_email(&mut conn, &email).await? {
            Some(u) => Ok(u.id),
            None => Err(AppError::not_found_at("staff_user", email, "email")),
        }
    }

    async fn change_account(&self, by: By<'_>, target_id: &str, change: Change, now: i64) -> Result<StaffAccount> {
        let row = in_tx!(self, |tx| {
            // Owners first, then the account: one lock order for everyone.
            let owners = if change.may_remove_owner() { db::lock_active_owners(&mut tx).await? } else { Vec::new() };
            let by_role = actor_role(&mut tx, by).await?;
            let Some(u) = db::user_for_update(&mut tx, target_id).await? else {
                return Err(AppError::not_found("staff_user", target_id));
            };
            let current = role_of(&u)?;
            if !by_role.can_grant(current) {
                return Err(AppError::Forbidden {
                    message: format!("a {} cannot {} a {} account", by_role.as_str(), change.verb(), current.as_str()),
                });
            }
            let active_owner = current == Role::Owner && u.disabled_at.is_none();
            let changed = match change {
                Change::Role(role) => {
                    if !by_role.can_grant(role) {
                        return Err(AppError::Forbidden {
                            message: format!("role: a {} cannot grant the role {}", by_role.as_str(), role.as_str()),
                        });
                    }
                    if by.is(&u.id) {
                        return Err(own_account("role", "change the role of"));
                    }
                    if role == current {
                        false
                    } else {
                        if active_owner && owners.len() <= 1 {
                            return Err(last_owner("role", "given another role"));
                        }
                        db::set_role(&mut tx, &u.id, role.as_str(), now).await?;
                        true
                    }
                }
                Change::Disable => {
                    if by.is(&u.id) {
                        return Err(own_account("status", "disable"));
                    }
                    if active_owner && owners.len() <= 1 {
                        return Err(last_owner("status", "disabled"));
                    }
                    db::disable_user(&mut tx, &u.id, now).await?
                }
                Change::Enable => db::enable_user(&mut tx, &u.id, now).await?,
                Change::ResetTwoFactor => {
                    if by.is(&u.id) {
                        return Err(own_account("two_factor", "reset two-factor of"));
                    }
                    db::clear_two_factor(&mut tx, &u.id, now).await?;
                    db::delete_user_sessions(&mut tx, &u.id).await?;
                    true
                }
                Change::EndSessions => db::delete_user_sessions(&mut tx, &u.id).await? > 0,
            };
            if changed && matches!(by, By::Operator) {
                let action = match change {
                    Change::Disable => "disable staff user",
                    _ => "enable staff user",
                };
                let entry = NewAuditEntry {
                    actor: CLI_ACTOR.into(),
                    action: action.into(),
                    target: Some(u.id.clone()),
                    summary: serde_json::json!({}),
                    ip: None,
                    status: 200,
                };
                audit_db::insert(&mut tx, &entry.into_row(now)).await?;
            }
            match db::user_by_id(&mut tx, &u.id).await? {
                Some(after) => Ok(after),
                None => Err(AppError::not_found("staff_user", target_id)),
            }
        })?;
        self.account_view(&row, now)
    }

    /// The stale-accounts job (hourly): disables every stale account, oldest
    /// first, but never the last active owner (if every owner is stale, the
    /// most recently used one stays). Each account is disabled, its sessions
    /// deleted and an audit entry (`system:stale-accounts`) appended in one
    /// transaction, after checking again that it is still stale. With
    /// `disable_stale` off it does nothing: stale accounts are only listed.
    /// Returns how many accounts it disabled.
    pub async fn disable_stale_staff(&self, now: i64) -> Result<u64> {
        if !self.staff.disable_stale {
            return Ok(0);
        }
        let cutoff = self.stale_cutoff(now);
        let mut conn = self.store.reader().await?;
        let mut stale = db::list_users(&mut conn, UserFilter::Stale, cutoff).await?;
        drop(conn);
        stale.sort_by_key(|u| (last_used(u), u.id.clone()));
        let days = self.staff.stale_after_days.max(1);
        let mut disabled = 0;
        for candidate in stale {
            let done = in_tx!(self, |tx| {
                let owners = db::lock_active_owners(&mut tx).await?;
                let Some(u) = db::user_for_update(&mut tx, &candidate.id).await? else { return Ok(false) };
                if u.disabled_at.is_some() || last_used(&u) >= cutoff {
                    return Ok(false);
                }
                if u.role == Role::Owner.as_str() && owners.len() <= 1 {
                    tracing::warn!(user = %u.id, "the last active owner is stale; it stays enabled");
                    return Ok(false);
                }
                if !db::disable_user(&mut tx, &u.id, now).await? {
                    return Ok(false);
                }
                let entry = NewAuditEntry {
                    actor: STALE_JOB_ACTOR.into(),
                    action: STALE_JOB_ACTION.into(),
                    target: Some(u.id.clone()),
                    summary: serde_json::json!({"last_used_at": to_rfc3339(last_used(&u)), "threshold_days": days}),
                    ip: None,
                    status: 200,
                };
                audit_db::insert(&mut tx, &entry.into_row(now)).await?;
                Ok(true)
            })?;
            if done {
                tracing::info!(user = %candidate.id, "stale staff account disabled");
                disabled += 1;
            }
        }
        Ok(disabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip() {
        for f in StaffFilter::ALL {
            assert_eq!(StaffFilter::parse("status", f.as_str()).unwrap(), f);
        }
        assert_eq!(StaffFilter::parse("status", "old").unwrap_err().field, "status");
    }
}

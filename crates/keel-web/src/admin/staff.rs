//! Staff users and roles, API keys, the audit log.
//!
//! Every write goes through a keel-app use case that enforces the grant
//! rules (owners grant any role, admins any but owner), the self-change and
//! last-owner refusals; a refusal is shown on the page it came from with
//! its status (403 not allowed, 409 conflicting, 422 invalid) and changes
//! nothing. One-time secrets (a new user's password, a new API key) are
//! rendered in the POST's own response only: never in the flash cookie, a
//! URL or a log.

mod api_keys;
mod audit;
mod roles;
mod users;

use crate::access::{Access, AdminRoute, Permission, Role};
use super::query;
use crate::AppState;
use axum::routing::{get, post};
use axum::Router;

pub const ROUTES: &[AdminRoute] = &[
    ("GET", "/admin/users", Access::Needs(Permission::StaffManage)),
    ("POST", "/admin/users", Access::Needs(Permission::StaffManage)),
    ("GET", "/admin/users/{user_id}", Access::Needs(Permission::StaffManage)),
    ("POST", "/admin/users/{user_id}/role", Access::Needs(Permission::StaffManage)),
    ("POST", "/admin/users/{user_id}/disable", Access::Needs(Permission::StaffManage)),
    ("POST", "/admin/users/{user_id}/enable", Access::Needs(Permission::StaffManage)),
    ("POST", "/admin/users/{user_id}/reset-two-factor", Access::Needs(Permission::StaffManage)),
    ("POST", "/admin/users/{user_id}/sign-out", Access::Needs(Permission::StaffManage)),
    ("GET", "/admin/roles", Access::Needs(Permission::StaffManage)),
    ("GET", "/admin/api-keys", Access::Needs(Permission::ApiKeysManage)),
    ("POST", "/admin/api-keys", Access::Needs(Permission::ApiKeysManage)),
    ("POST", "/admin/api-keys/{key_id}/revoke", Access::Needs(Permission::ApiKeysManage)),
    ("GET", "/admin/audit-log", Access::Needs(Permission::AuditRead)),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(users::list).post(users::add))
        .route("/admin/users/{user_id}", get(users::show))
        .route("/admin/users/{user_id}/role", post(users::change_role))
        .route("/admin/users/{user_id}/disable", post(users::disable))
        .route("/admin/users/{user_id}/enable", post(users::enable))
        .route("/admin/users/{user_id}/reset-two-factor", post(users::reset_two_factor))
        .route("/admin/users/{user_id}/sign-out", post(users::sign_out))
        .route("/admin/roles", get(roles::matrix))
        .route("/admin/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/admin/api-keys/{key_id}/revoke", post(api_keys::revoke))
        .route("/admin/audit-log", get(audit::list))
}

/// The page of one staff user.
pub fn user_path(user_id: &str) -> String {
    format!("/admin/users/{user_id}")
}

/// Whether an id names a staff user (`usr_…`).
fn is_staff_id(id: &str) -> bool {
    id.strip_prefix(keel_domain::ids::StaffUserId::PREFIX).is_some_and(|rest| rest.starts_with('_'))
}

/// A role in words: `catalog_manager` → "Catalog manager".
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Owner => "Owner",
        Role::Admin => "Admin",
        Role::CatalogManager => "Catalog manager",
        Role::InventoryManager => "Inventory manager",
        Role::Fulfillment => "Fulfillment",
        Role::SupportAgent => "Support agent",
        Role::Analyst => "Analyst",
    }
}

/// A role name as stored (keys keep the name; an unknown one is shown as is).
fn role_name_label(name: &str) -> String {
    Role::parse("role", name).map(|r| role_label(r).to_owned()).unwrap_or_else(|_| name.to_owned())
}

/// (value, label) of the roles `by` may grant, for a select.
fn grantable_roles(by: Role) -> Vec<(String, String)> {
    Role::ALL.into_iter().filter(|r| by.can_grant(*r)).map(|r| (r.as_str().to_owned(), role_label(r).to_owned())).collect()
}

/// A timestamp for a table, or `never`.
fn when_or(micros: Option<i64>, none: &str) -> String {
    micros.map(super::when).unwrap_or_else(|| none.to_owned())
}

/// An error message with its first letter upper-cased, without the
/// `field: ` prefix some use cases put in front.
fn sentence(field: &str, message: &str) -> String {
    let m = message.strip_prefix(&format!("{field}: ")).unwrap_or(message);
    let mut c = m.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + if m.ends_with('.') { "" } else { "." },
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_messages_read_as_words() {
        assert_eq!(role_label(Role::CatalogManager), "Catalog manager");
        assert!(is_staff_id("usr_0193") && !is_staff_id("key_0193") && !is_staff_id("usrx"));
        assert_eq!(role_name_label("support_agent"), "Support agent");
        assert_eq!(role_name_label("robot"), "robot");
        assert_eq!(grantable_roles(Role::Admin).len(), Role::ALL.len() - 1);
        assert!(grantable_roles(Role::Analyst).is_empty());
        assert_eq!(sentence("role", "role: you cannot change the role of your own account"), "You cannot change the role of your own account.");
    }
}

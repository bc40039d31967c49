//! The permission matrix: every role against every permission, read from
//! `keel_domain::access` (the one matrix; nothing is copied here), and whom
//! each role may grant.

use super::role_label;
use crate::admin::{html, Layout, StaffUser};
use crate::access::{allows, Permission, Role};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

/// What a permission lets its holder do, in words.
fn describe(p: Permission) -> &'static str {
    use Permission::*;
    match p {
        CatalogRead => "See products, collections and sales channels",
        CatalogWrite => "Change products, collections and sales channels",
        InventoryRead => "See locations, stock levels, the ledger and reservations",
        InventoryWrite => "Adjust and transfer stock, manage locations and reservations",
        OrdersRead => "See orders and carts",
        OrdersWrite => "Capture, cancel, refund and fulfil orders",
        CustomersRead => "See customers and their addresses",
        CustomersWrite => "Change customers",
        IntegrationsRead => "See integrations, sync batches and webhooks",
        IntegrationsWrite => "Change integrations, sync batches and webhooks",
        SettingsRead => "See shipping methods and tax rates",
        SettingsWrite => "Change shipping methods and tax rates",
        EventsRead => "Read the event stream",
        MetricsRead => "Read the metrics",
        AuditRead => "Read the audit log",
        ApiKeysManage => "Create and revoke API keys",
        StaffManage => "Add staff users and change their roles and access",
    }
}

struct PermissionRow {
    code: &'static str,
    description: &'static str,
    /// Per role, in the column order: "Yes" or "No".
    cells: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "admin/staff_roles.html")]
struct RolesPage {
    layout: Layout,
    roles: Vec<&'static str>,
    rows: Vec<PermissionRow>,
    /// Per role: the roles it may grant, in words.
    grants: Vec<String>,
    /// The roles that must use two-factor sign-in, in words, when the
    /// policy requires it.
    two_factor: Option<String>,
}

pub async fn matrix(State(state): State<AppState>, staff: StaffUser) -> Response {
    let rows = Permission::ALL
        .into_iter()
        .map(|p| PermissionRow { code: p.as_str(), description: describe(p), cells: Role::ALL.into_iter().map(|r| if allows(r, p) { "Yes" } else { "No" }).collect() })
        .collect();
    let grants = Role::ALL
        .into_iter()
        .map(|by| {
            let granted: Vec<Role> = Role::ALL.into_iter().filter(|r| by.can_grant(*r)).collect();
            match granted.len() {
                0 => "None".to_owned(),
                n if n == Role::ALL.len() => "Every role".to_owned(),
                _ => granted.into_iter().map(role_label).collect::<Vec<_>>().join(", "),
            }
        })
        .collect();
    let two_factor = state
        .app
        .staff
        .require_two_factor
        .then(|| Role::ALL.into_iter().filter(|r| r.requires_two_factor()).map(role_label).collect::<Vec<_>>().join(" and "));
    let page = RolesPage { layout: staff.layout("Roles"), roles: Role::ALL.into_iter().map(role_label).collect(), rows, grants, two_factor };
    html(StatusCode::OK, &page)
}

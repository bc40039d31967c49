//! Which permission each route needs: the one table for the JSON API (and,
//! later, the admin pages). Enforcement happens once, in
//! [`crate::auth::require_api_key`]; a route missing from this table is
//! refused (deny by default), and a test walks the API's routes to catch it.
//! Whether a role holds a permission is `keel_domain::access::allows`.

use axum::http::Method;
pub use keel_domain::access::{allows, Permission, Role};

use Permission::*;

/// Resource (a route's first path segment under `/api/v1`) → the permission
/// to look and the permission to change.
const RESOURCES: &[(&str, Permission, Permission)] = &[
    ("products", CatalogRead, CatalogWrite),
    ("collections", CatalogRead, CatalogWrite),
    ("sales-channels", CatalogRead, CatalogWrite),
    ("locations", InventoryRead, InventoryWrite),
    ("inventory", InventoryRead, InventoryWrite),
    ("reservations", InventoryRead, InventoryWrite),
    ("orders", OrdersRead, OrdersWrite),
    ("carts", OrdersRead, OrdersWrite),
    ("customers", CustomersRead, CustomersWrite),
    ("integrations", IntegrationsRead, IntegrationsWrite),
    ("sync-batches", IntegrationsRead, IntegrationsWrite),
    ("webhook-endpoints", IntegrationsRead, IntegrationsWrite),
    ("webhook-messages", IntegrationsRead, IntegrationsWrite),
    ("shipping-methods", SettingsRead, SettingsWrite),
    ("tax-rates", SettingsRead, SettingsWrite),
    ("api-keys", ApiKeysManage, ApiKeysManage),
];

/// Routes that need more than their resource's rule: reading a signing
/// secret is as powerful as changing the endpoint.
const EXCEPTIONS: &[(&str, &str, Permission)] = &[
    ("GET", "/webhook-endpoints/{id}/secret", IntegrationsWrite),
    ("GET", "/events", EventsRead),
    ("GET", "/events/{id}", EventsRead),
    // The audit log has no write route at all.
    ("GET", "/audit-log", AuditRead),
];

/// The permission an `/api/v1` route needs, given its method and matched
/// path relative to `/api/v1` (e.g. `/products/{id}`); `None` when the
/// route is unknown to this table, which callers treat as "refuse".
pub fn api_permission(method: &Method, path: &str) -> Option<Permission> {
    if let Some((_, _, p)) = EXCEPTIONS.iter().find(|(m, r, _)| *r == path && method.as_str() == *m) {
        return Some(*p);
    }
    let resource = path.strip_prefix('/')?.split('/').next()?;
    let (_, read, write) = RESOURCES.iter().find(|(r, _, _)| *r == resource)?;
    Some(if *method == Method::GET || *method == Method::HEAD { *read } else { *write })
}

/// The permission a route outside `/api/v1` that takes an API key needs.
pub fn machine_permission(method: &Method, path: &str) -> Option<Permission> {
    match (method.as_str(), path) {
        ("GET", "/metrics") => Some(MetricsRead),
        _ => None,
    }
}

/// The permission a full matched path needs, or `None` (refuse).
pub fn route_permission(method: &Method, full_path: &str) -> Option<Permission> {
    match full_path.strip_prefix("/api/v1") {
        Some(rest) => api_permission(method, rest),
        None => machine_permission(method, full_path),
    }
}

/// What an admin page asks of its visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Sign-in pages.
    Public,
    /// Any signed-in staff user (their own session and two-factor).
    SignedIn,
    Needs(Permission),
}

/// Admin routes: (method, path, access). The admin router is built from the
/// same paths, and a test checks both agree.
pub const ADMIN_ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/admin", Access::SignedIn),
    ("GET", "/admin/login", Access::Public),
    ("POST", "/admin/login", Access::Public),
    ("GET", "/admin/login/2fa", Access::Public),
    ("POST", "/admin/login/2fa", Access::Public),
    ("GET", "/admin/2fa/setup", Access::SignedIn),
    ("POST", "/admin/2fa/setup", Access::SignedIn),
    ("POST", "/admin/logout", Access::SignedIn),
    ("POST", "/admin/sessions/revoke-all", Access::SignedIn),
];

/// What an admin route asks for; `None` (refuse) for one not in the table.
/// Admin pages for a resource (`/admin/products/…`) take the API's rule for it.
pub fn admin_access(method: &Method, path: &str) -> Option<Access> {
    if let Some((_, _, a)) = ADMIN_ROUTES.iter().find(|(m, p, _)| *p == path && method.as_str() == *m) {
        return Some(*a);
    }
    path.strip_prefix("/admin").and_then(|rest| api_permission(method, rest)).map(Access::Needs)
}

//! Which permission each route needs. The JSON API's table is here and is
//! enforced once, in [`crate::auth::require_api_key`]; the admin console's
//! routes are declared per area and enforced once, in the admin gate
//! (`crate::admin`). A route missing from its table is refused (deny by
//! default), and tests walk both the API's and the admin's routes.
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

/// The `/api/v1` routes a publishable key may use: what a shop front needs
/// to show the catalog and take an order, nothing that lists or changes
/// anything else. Carts are reached only by their ids.
const PUBLISHABLE: &[(&str, &str)] = &[
    ("GET", "/products"),
    ("GET", "/products/{id}"),
    ("GET", "/collections"),
    ("GET", "/collections/{id}"),
    ("POST", "/carts"),
    ("GET", "/carts/{id}"),
    ("POST", "/carts/{id}"),
    ("POST", "/carts/{id}/lines"),
    ("POST", "/carts/{id}/lines/{line_id}"),
    ("DELETE", "/carts/{id}/lines/{line_id}"),
    ("GET", "/carts/{id}/shipping-methods"),
    ("POST", "/carts/{id}/complete"),
];

/// Whether a publishable key may use this route (full matched path).
pub fn publishable_allows(method: &Method, full_path: &str) -> bool {
    let method = table_method(method);
    full_path.strip_prefix("/api/v1").is_some_and(|p| PUBLISHABLE.iter().any(|(m, r)| *m == method && *r == p))
}

/// The permission an `/api/v1` route needs, given its method and matched
/// path relative to `/api/v1` (e.g. `/products/{id}`); `None` when the
/// route is unknown to this table, which callers treat as "refuse".
pub fn api_permission(method: &Method, path: &str) -> Option<Permission> {
    let method = table_method(method);
    if let Some((_, _, p)) = EXCEPTIONS.iter().find(|(m, r, _)| *r == path && method == *m) {
        return Some(*p);
    }
    let resource = path.strip_prefix('/')?.split('/').next()?;
    let (_, read, write) = RESOURCES.iter().find(|(r, _, _)| *r == resource)?;
    Some(if method == "GET" { *read } else { *write })
}

/// The method as the tables name it: `HEAD` is answered by the `GET`
/// handler, so it needs exactly what `GET` needs (exceptions included).
fn table_method(method: &Method) -> &str {
    if *method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    }
}

/// The permission a route outside `/api/v1` that takes an API key needs.
pub fn machine_permission(method: &Method, path: &str) -> Option<Permission> {
    match (table_method(method), path) {
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

/// One admin route: method, matched path, and what it asks. Each admin
/// area declares its routes beside its router (`crate::admin::ROUTES`
/// gathers them); a test requests every one.
pub type AdminRoute = (&'static str, &'static str, Access);

/// Every admin route.
pub fn admin_routes() -> impl Iterator<Item = &'static AdminRoute> {
    crate::admin::ROUTES.iter().flat_map(|area| area.iter())
}

/// What an admin route asks for; `None` (refuse) for one not declared.
pub fn admin_access(method: &Method, path: &str) -> Option<Access> {
    let method = table_method(method);
    admin_routes().find(|(m, p, _)| *p == path && method == *m).map(|(_, _, a)| *a)
}

//! Who may do what: staff roles, permissions and the one table joining them.
//!
//! Every admin page and every API route names the [`Permission`] it needs
//! (the web crate keeps that route table); whether a caller holds it is
//! decided here, by [`allows`], and nowhere else.

use crate::Invalid;

/// A staff member's role; an API key is scoped to one too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Admin,
    CatalogManager,
    InventoryManager,
    Fulfillment,
    SupportAgent,
    /// Read-only: every `*Read` permission and nothing else.
    Analyst,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Owner,
        Role::Admin,
        Role::CatalogManager,
        Role::InventoryManager,
        Role::Fulfillment,
        Role::SupportAgent,
        Role::Analyst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::CatalogManager => "catalog_manager",
            Role::InventoryManager => "inventory_manager",
            Role::Fulfillment => "fulfillment",
            Role::SupportAgent => "support_agent",
            Role::Analyst => "analyst",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Role, Invalid> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            Invalid::new(
                field,
                "invalid_role",
                "role must be one of owner, admin, catalog_manager, inventory_manager, fulfillment, support_agent, analyst",
            )
        })
    }

    /// Owner and admin can change everything, so they must use a second factor.
    pub fn requires_two_factor(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Whether a holder of `self` may create or change a user or key with `target`:
    /// owners grant anything, admins anything but owner, nobody else grants.
    pub fn can_grant(self, target: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => target != Role::Owner,
            _ => false,
        }
    }
}

/// One thing a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    CatalogRead,
    CatalogWrite,
    InventoryRead,
    InventoryWrite,
    OrdersRead,
    OrdersWrite,
    CustomersRead,
    CustomersWrite,
    IntegrationsRead,
    IntegrationsWrite,
    SettingsRead,
    SettingsWrite,
    EventsRead,
    MetricsRead,
    AuditRead,
    ApiKeysManage,
    StaffManage,
}

impl Permission {
    pub const ALL: [Permission; 17] = [
        Permission::CatalogRead,
        Permission::CatalogWrite,
        Permission::InventoryRead,
        Permission::InventoryWrite,
        Permission::OrdersRead,
        Permission::OrdersWrite,
        Permission::CustomersRead,
        Permission::CustomersWrite,
        Permission::IntegrationsRead,
        Permission::IntegrationsWrite,
        Permission::SettingsRead,
        Permission::SettingsWrite,
        Permission::EventsRead,
        Permission::MetricsRead,
        Permission::AuditRead,
        Permission::ApiKeysManage,
        Permission::StaffManage,
    ];

    /// Permissions that only look.
    pub fn is_read(self) -> bool {
        use Permission::*;
        matches!(
            self,
            CatalogRead | InventoryRead | OrdersRead | CustomersRead | IntegrationsRead | SettingsRead | EventsRead | MetricsRead | AuditRead
        )
    }

    pub fn as_str(self) -> &'static str {
        use Permission::*;
        match self {
            CatalogRead => "catalog.read",
            CatalogWrite => "catalog.write",
            InventoryRead => "inventory.read",
            InventoryWrite => "inventory.write",
            OrdersRead => "orders.read",
            OrdersWrite => "orders.write",
            CustomersRead => "customers.read",
            CustomersWrite => "customers.write",
            IntegrationsRead => "integrations.read",
            IntegrationsWrite => "integrations.write",
            SettingsRead => "settings.read",
            SettingsWrite => "settings.write",
            EventsRead => "events.read",
            MetricsRead => "metrics.read",
            AuditRead => "audit.read",
            ApiKeysManage => "api_keys.manage",
            StaffManage => "staff.manage",
        }
    }
}

/// The permission matrix: what each role holds beyond the read-only base.
fn grants(role: Role) -> &'static [Permission] {
    use Permission::*;
    match role {
        Role::Owner | Role::Admin => &Permission::ALL,
        Role::CatalogManager => &[CatalogRead, CatalogWrite, InventoryRead, SettingsRead, EventsRead],
        Role::InventoryManager => &[InventoryRead, InventoryWrite, CatalogRead, OrdersRead, IntegrationsRead, EventsRead],
        Role::Fulfillment => &[OrdersRead, OrdersWrite, InventoryRead, CatalogRead, CustomersRead, SettingsRead],
        Role::SupportAgent => &[CustomersRead, CustomersWrite, OrdersRead, CatalogRead, InventoryRead],
        Role::Analyst => &[
            CatalogRead,
            InventoryRead,
            OrdersRead,
            CustomersRead,
            IntegrationsRead,
            SettingsRead,
            EventsRead,
            MetricsRead,
            AuditRead,
        ],
    }
}

/// Whether `role` holds `perm`. Owner and admin differ only in whom they may
/// grant ([`Role::can_grant`]), not in what they may do.
pub fn allows(role: Role, perm: Permission) -> bool {
    grants(role).contains(&perm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn roles_round_trip_and_unknown_is_refused() {
        for r in Role::ALL {
            assert_eq!(Role::parse("role", r.as_str()).unwrap(), r);
        }
        assert_eq!(Role::parse("role", "root").unwrap_err().code, "invalid_role");
        assert!(Role::parse("role", "Owner").is_err());
    }

    #[test]
    fn owner_and_admin_hold_everything() {
        for p in Permission::ALL {
            assert!(allows(Role::Owner, p), "{p:?}");
            assert!(allows(Role::Admin, p), "{p:?}");
        }
    }

    #[test]
    fn analyst_reads_everything_and_writes_nothing() {
        for p in Permission::ALL {
            assert_eq!(allows(Role::Analyst, p), p.is_read(), "{p:?}");
        }
    }

    #[test]
    fn only_owner_and_admin_manage_staff_keys_and_integrations() {
        for r in Role::ALL {
            let top = matches!(r, Role::Owner | Role::Admin);
            for p in [StaffManage, ApiKeysManage, IntegrationsWrite, SettingsWrite] {
                assert_eq!(allows(r, p), top, "{r:?} {p:?}");
            }
        }
    }

    #[test]
    fn the_matrix_row_by_row() {
        // (role, permissions it holds among the writes) — every write not
        // listed is refused.
        let writes: &[(Role, &[Permission])] = &[
            (Role::CatalogManager, &[CatalogWrite]),
            (Role::InventoryManager, &[InventoryWrite]),
            (Role::Fulfillment, &[OrdersWrite]),
            (Role::SupportAgent, &[CustomersWrite]),
            (Role::Analyst, &[]),
        ];
        for (role, held) in writes {
            for p in Permission::ALL.into_iter().filter(|p| !p.is_read()) {
                assert_eq!(allows(*role, p), held.contains(&p), "{role:?} {p:?}");
            }
        }
        assert!(!allows(Role::CatalogManager, CustomersRead), "catalog work needs no customer data");
        assert!(!allows(Role::SupportAgent, AuditRead));
        assert!(allows(Role::Fulfillment, CustomersRead), "shipping needs the address");
    }

    #[test]
    fn permission_names_are_unique() {
        let mut names: Vec<_> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Permission::ALL.len());
    }

    #[test]
    fn granting() {
        assert!(Role::Owner.can_grant(Role::Owner));
        assert!(Role::Admin.can_grant(Role::Analyst));
        assert!(!Role::Admin.can_grant(Role::Owner));
        for r in Role::ALL {
            assert!(!Role::CatalogManager.can_grant(r));
            assert!(!Role::Analyst.can_grant(r));
        }
        assert!(Role::Owner.requires_two_factor() && Role::Admin.requires_two_factor());
        assert!(!Role::Analyst.requires_two_factor());
    }
}

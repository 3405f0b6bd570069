//! Roles, permissions and principals.
//!
//! There is one permission table, [`allows`]. Users act through their [`Role`]; services
//! (API keys) act through the scopes granted to the key, each scope naming one
//! [`Permission`] (`"transactions:read"`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use haven_core::ErrorCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A failed authorization or an unknown scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzError {
    /// The principal lacks `permission`.
    #[error("missing permission {permission}")]
    Forbidden {
        /// The permission that was required.
        permission: Permission,
    },
    /// A scope string names no permission.
    #[error("unknown scope {scope:?}")]
    UnknownScope {
        /// The refused scope.
        scope: String,
    },
    /// A role name is unknown.
    #[error("unknown role {role:?}")]
    UnknownRole {
        /// The refused role name.
        role: String,
    },
    /// A user tried to grant a key a scope their own role does not allow.
    #[error("a {role} cannot grant the scope {permission}")]
    NotGrantable {
        /// The granting user's role.
        role: Role,
        /// The scope beyond that role.
        permission: Permission,
    },
}

impl AuthzError {
    /// The stable wire code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthzError::Forbidden { .. } | AuthzError::NotGrantable { .. } => ErrorCode::Forbidden,
            AuthzError::UnknownScope { .. } | AuthzError::UnknownRole { .. } => {
                ErrorCode::ValidationError
            }
        }
    }
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users, API keys, wallets and the audit log.
    Admin,
    /// Day-to-day operations: minting, signing, retries, alert review, webhooks.
    Operator,
    /// Read-only access to business data.
    Viewer,
    /// A vault guardian's device: holds no permission; its tokens (a separate audience) open
    /// only the guardian routes and the guardian WebSocket. Never a user's role.
    Guardian,
}

impl Role {
    /// Every role a user can hold (not [`Role::Guardian`]); [`FromStr`] parses these only.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    /// `"admin"`, `"operator"`, `"viewer"` or `"guardian"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Guardian => "guardian",
        }
    }

    /// Whether this role holds `permission` (see [`allows`]).
    pub const fn allows(self, permission: Permission) -> bool {
        allows(self, permission)
    }

    /// Refuses `scopes` if any is beyond this role: a user can only delegate what they hold.
    pub fn check_grantable<'a>(
        self,
        scopes: impl IntoIterator<Item = &'a Permission>,
    ) -> Result<(), AuthzError> {
        match scopes.into_iter().find(|p| !allows(self, **p)) {
            Some(permission) => Err(AuthzError::NotGrantable {
                role: self,
                permission: *permission,
            }),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthzError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| AuthzError::UnknownRole { role: s.to_owned() })
    }
}

macro_rules! permissions {
    ($($(#[$doc:meta])* $variant:ident = $scope:literal,)+) => {
        /// One capability. Every route declares the permission it needs.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        pub enum Permission {
            $($(#[$doc])* #[serde(rename = $scope)] $variant,)+
        }

        impl Permission {
            /// Every permission, in declaration order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)+];

            /// The API-key scope naming this permission (`"transactions:read"`).
            pub const fn as_scope(self) -> &'static str {
                match self { $(Permission::$variant => $scope,)+ }
            }
        }
    };
}

permissions! {
    /// Read stored addresses and validation reports.
    ReadAddresses = "addresses:read",
    /// Validate an address.
    ValidateAddress = "addresses:validate",
    /// Create, list and revoke API keys.
    ManageApiKeys = "api_keys:manage",
    /// Create users, change roles, disable accounts.
    ManageUsers = "users:manage",
    /// Read the audit log.
    ReadAudit = "audit:read",
    /// Create, rotate and revoke custody wallets.
    ManageWallets = "wallets:manage",
    /// Sign with a custody wallet.
    SignWithWallet = "wallets:sign",
    /// Read token transactions and their status.
    ReadTransactions = "transactions:read",
    /// Retry or replace a stuck transaction.
    RetryTransaction = "transactions:retry",
    /// Read fraud alerts.
    ReadAlerts = "alerts:read",
    /// Move a fraud alert through review.
    ReviewAlerts = "alerts:review",
    /// Mint tokens.
    MintTokens = "tokens:mint",
    /// Burn tokens.
    BurnTokens = "tokens:burn",
    /// Transfer tokens from a custody wallet.
    TransferTokens = "tokens:transfer",
    /// Configure webhook endpoints and secrets (granted to operators; no route uses it).
    ManageWebhooks = "webhooks:manage",
    /// Report token operations to the fraud rules.
    ReportEvents = "fraud:report",
    /// Read members of the rewards program: balances, rewards, addresses.
    ReadMembers = "members:read",
    /// Link member identities and register payout addresses.
    ManageMembers = "members:manage",
    /// Redeem a member's tokens for fiat (a member-scoped key: its own member).
    RedeemTokens = "tokens:redeem",
    /// Withdraw a member's tokens to a registered payout address.
    WithdrawTokens = "tokens:withdraw",
    /// Approve, reject and mark paid redemptions.
    ApproveRedemptions = "redemptions:approve",
    /// Operate the running system: read and reset EVM nonces, read and set circuit
    /// breakers, read the operational status.
    OperateSystem = "system:operate",
    /// Create, change, delete outbound webhook endpoints, rotate their signing secrets,
    /// list and replay dead letters. Admin only: a secret is handed out, and a delete
    /// drops undelivered messages.
    ManageWebhookEndpoints = "webhook_endpoints:manage",
    /// Create guardian vaults, invite and remove guardians, submit operations to them. Admin
    /// only.
    ManageVaults = "vaults:manage",
}

/// The permission table: whether `role` holds `permission`.
///
/// One exhaustive `match` with no catch-all arm, so a new permission does not compile until
/// someone decides who holds it.
pub const fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    use Role::*;
    match permission {
        ReadAddresses | ValidateAddress | ReadTransactions | ReadAlerts | ReadMembers => {
            matches!(role, Admin | Operator | Viewer)
        }
        SignWithWallet | RetryTransaction | ReviewAlerts | MintTokens | BurnTokens
        | TransferTokens | ManageWebhooks | ReportEvents | ManageMembers | RedeemTokens
        | WithdrawTokens | ApproveRedemptions => {
            matches!(role, Admin | Operator)
        }
        ManageApiKeys
        | ManageUsers
        | ReadAudit
        | ManageWallets
        | OperateSystem
        | ManageWebhookEndpoints
        | ManageVaults => {
            matches!(role, Admin)
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_scope())
    }
}

impl FromStr for Permission {
    type Err = AuthzError;

    /// Parses a scope string (`"transactions:read"`); exact match, no wildcards.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .iter()
            .copied()
            .find(|p| p.as_scope() == s)
            .ok_or_else(|| AuthzError::UnknownScope {
                scope: s.to_owned(),
            })
    }
}

/// Parses API-key scope strings into permissions; the first unknown scope fails the whole
/// set, so a typo never silently grants less (or more) than intended.
pub fn parse_scopes<S: AsRef<str>>(
    scopes: impl IntoIterator<Item = S>,
) -> Result<BTreeSet<Permission>, AuthzError> {
    scopes.into_iter().map(|s| s.as_ref().parse()).collect()
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in user, acting through their role.
    User {
        /// The user's id.
        id: Uuid,
        /// The user's role.
        role: Role,
    },
    /// A service calling with an API key, acting through the key's scopes.
    Service {
        /// The API key's id (not the key).
        key_id: Uuid,
        /// The permissions granted to the key.
        scopes: BTreeSet<Permission>,
    },
}

impl Principal {
    /// Whether this principal holds `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        match self {
            Principal::User { role, .. } => allows(*role, permission),
            Principal::Service { scopes, .. } => scopes.contains(&permission),
        }
    }

    /// `Ok` if this principal holds `permission`, else [`AuthzError::Forbidden`].
    pub fn require(&self, permission: Permission) -> Result<(), AuthzError> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(AuthzError::Forbidden { permission })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The expected matrix, written out independently of `allows`: (permission, admin,
    /// operator, viewer).
    const MATRIX: &[(Permission, bool, bool, bool)] = &[
        (Permission::ReadAddresses, true, true, true),
        (Permission::ValidateAddress, true, true, true),
        (Permission::ManageApiKeys, true, false, false),
        (Permission::ManageUsers, true, false, false),
        (Permission::ReadAudit, true, false, false),
        (Permission::ManageWallets, true, false, false),
        (Permission::SignWithWallet, true, true, false),
        (Permission::ReadTransactions, true, true, true),
        (Permission::RetryTransaction, true, true, false),
        (Permission::ReadAlerts, true, true, true),
        (Permission::ReviewAlerts, true, true, false),
        (Permission::MintTokens, true, true, false),
        (Permission::BurnTokens, true, true, false),
        (Permission::TransferTokens, true, true, false),
        (Permission::ManageWebhooks, true, true, false),
        (Permission::ManageWebhookEndpoints, true, false, false),
        (Permission::ReportEvents, true, true, false),
        (Permission::ReadMembers, true, true, true),
        (Permission::ManageMembers, true, true, false),
        (Permission::RedeemTokens, true, true, false),
        (Permission::WithdrawTokens, true, true, false),
        (Permission::ApproveRedemptions, true, true, false),
        (Permission::OperateSystem, true, false, false),
        (Permission::ManageVaults, true, false, false),
    ];

    #[test]
    fn the_matrix_covers_every_permission_once() {
        let listed: Vec<Permission> = MATRIX.iter().map(|row| row.0).collect();
        let unique: BTreeSet<Permission> = listed.iter().copied().collect();
        assert_eq!(listed.len(), unique.len(), "no permission listed twice");
        assert_eq!(unique, Permission::ALL.iter().copied().collect());
    }

    #[test]
    fn allows_matches_the_matrix_for_every_role_and_permission() {
        for &(permission, admin, operator, viewer) in MATRIX {
            for (role, expected) in [
                (Role::Admin, admin),
                (Role::Operator, operator),
                (Role::Viewer, viewer),
            ] {
                assert_eq!(allows(role, permission), expected, "{role} × {permission}");
                let user = Principal::User {
                    id: Uuid::nil(),
                    role,
                };
                assert_eq!(user.can(permission), expected, "{role} × {permission}");
                assert_eq!(
                    user.require(permission).is_err(),
                    !expected,
                    "{role} × {permission}"
                );
            }
        }
    }

    #[test]
    fn roles_are_ordered_by_privilege() {
        for &p in Permission::ALL {
            assert!(!allows(Role::Viewer, p) || allows(Role::Operator, p), "{p}");
            assert!(!allows(Role::Operator, p) || allows(Role::Admin, p), "{p}");
        }
        assert!(Permission::ALL.iter().all(|p| allows(Role::Admin, *p)));
    }

    #[test]
    fn every_scope_round_trips_and_is_unique() {
        let mut seen = BTreeSet::new();
        for &p in Permission::ALL {
            let scope = p.as_scope();
            assert!(seen.insert(scope), "duplicate scope {scope}");
            assert_eq!(scope.parse::<Permission>(), Ok(p));
            let (resource, action) = scope.split_once(':').expect("resource:action");
            assert!(!resource.is_empty() && !action.is_empty());
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{scope}\""));
        }
    }

    #[test]
    fn unknown_scopes_fail_the_whole_set() {
        let ok = parse_scopes(["transactions:read", "alerts:read"]).unwrap();
        assert_eq!(
            ok,
            BTreeSet::from([Permission::ReadTransactions, Permission::ReadAlerts])
        );
        for bad in [
            "*",
            "transactions:*",
            "Transactions:read",
            "transactions:read ",
            "",
        ] {
            let err = parse_scopes(["alerts:read", bad]).unwrap_err();
            assert_eq!(
                err,
                AuthzError::UnknownScope {
                    scope: bad.to_owned()
                }
            );
            assert_eq!(err.code(), ErrorCode::ValidationError);
        }
    }

    #[test]
    fn a_service_can_exactly_its_scopes() {
        let scopes = parse_scopes(["transactions:read", "tokens:mint"]).unwrap();
        let service = Principal::Service {
            key_id: Uuid::nil(),
            scopes: scopes.clone(),
        };
        for &p in Permission::ALL {
            assert_eq!(service.can(p), scopes.contains(&p), "{p}");
        }
        assert_eq!(
            service.require(Permission::ManageUsers),
            Err(AuthzError::Forbidden {
                permission: Permission::ManageUsers
            })
        );
        assert_eq!(
            service.require(Permission::ManageUsers).unwrap_err().code(),
            ErrorCode::Forbidden
        );
    }

    #[test]
    fn users_grant_only_scopes_their_role_holds() {
        let scopes = parse_scopes(["transactions:read", "tokens:mint"]).unwrap();
        assert!(Role::Admin.check_grantable(&scopes).is_ok());
        assert!(Role::Operator.check_grantable(&scopes).is_ok());
        assert_eq!(
            Role::Viewer.check_grantable(&scopes),
            Err(AuthzError::NotGrantable {
                role: Role::Viewer,
                permission: Permission::MintTokens
            })
        );
    }

    #[test]
    fn roles_parse_and_serialize_lowercase() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json::to_string(&role).unwrap(),
                format!("\"{}\"", role.as_str())
            );
        }
        assert!(matches!(
            "root".parse::<Role>(),
            Err(AuthzError::UnknownRole { .. })
        ));
    }

    #[test]
    fn a_guardian_holds_nothing_and_is_never_a_user_role() {
        assert!(Permission::ALL.iter().all(|p| !allows(Role::Guardian, *p)));
        assert!(Role::Guardian.check_grantable(Permission::ALL).is_err());
        assert!(matches!(
            "guardian".parse::<Role>(),
            Err(AuthzError::UnknownRole { .. })
        ));
        assert_eq!(
            serde_json::to_string(&Role::Guardian).unwrap(),
            r#""guardian""#
        );
    }
}

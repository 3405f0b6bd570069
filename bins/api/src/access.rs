//! The route table and the only way a route is registered.
//!
//! [`ROUTE_ACCESS`] declares, for every `(method, path)` the api serves, what the caller must
//! be ([`Access`]), which rate limits the route is charged to ([`Limit`]) and whether it takes
//! an `Idempotency-Key` ([`Idempotency`]). Handlers are registered through a [`RouteSet`],
//! which looks each one up in the table and wraps the route — the route the router matched,
//! not a path string — in its guard ([`crate::auth::guard`]): authentication and
//! authorization from the row, then its rate limits and idempotency. [`RouteSet::check`]
//! refuses a handler without a row, a row without a handler and a route registered twice;
//! `Application::build` runs it, so such an application does not start.
//!
//! A request that matches no route reaches no guard and no handler: it is a 404. A request
//! with a method the path does not serve is a 405 from the resource, again without a
//! handler. Every non-public handler also demands its principal through an extractor
//! ([`crate::auth::Authenticated`], [`crate::auth::CurrentUser`]), so a route that somehow
//! escaped its guard fails closed with 401.

use std::sync::Arc;

use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::middleware::{Next, from_fn};
use actix_web::{FromRequest, Handler, HttpMessage, Responder, web};
use haven_auth::Permission;

/// What a route requires of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// Any authenticated principal, user or API key.
    Authenticated,
    /// Any logged-in user (an access JWT, not an API key): their own sessions.
    User,
    /// A principal holding this permission (a user through their role, a key through its
    /// scopes).
    Permission(Permission),
    /// A logged-in user whose role holds this permission; API keys are refused whatever
    /// their scopes (API keys are managed by their owners, never by other keys).
    UserPermission(Permission),
    /// A vault guardian's access token (its own audience: user tokens and API keys are
    /// refused with 401), checked completely ([`crate::guardian::GuardianContext`]).
    Guardian,
}

/// Which rate limits a route is charged to (see [`crate::ratelimit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Never limited: liveness, readiness, the metrics scrape and the console's static files.
    Exempt,
    /// Per principal once authenticated (`authenticated` class), else per client network
    /// (`public` class).
    Standard,
    /// [`Limit::Standard`] plus the stricter `sensitive` class (login, API-key creation).
    Sensitive,
    /// Inbound webhooks: the handler charges the source's bucket once the signature has
    /// verified, and anything unverified to the client network's junk bucket.
    Webhook,
}

/// Whether a route takes an `Idempotency-Key` ([`crate::idempotency`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// The route ignores the header.
    None,
    /// A key makes retries safe; without one the request runs unprotected.
    Optional,
    /// The route refuses to run without a key (money-moving operations).
    Required,
}

/// One row of the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteAccess {
    /// The HTTP method.
    pub method: &'static str,
    /// The path pattern exactly as registered (`/api/v1/auth/sessions/{id}`).
    pub path: &'static str,
    /// What the route requires.
    pub access: Access,
    /// The rate limits it is charged to.
    pub limit: Limit,
    /// Whether it takes an `Idempotency-Key`.
    pub idempotency: Idempotency,
}

impl RouteAccess {
    const fn limit(self, limit: Limit) -> Self {
        Self { limit, ..self }
    }

    const fn idempotency(self, idempotency: Idempotency) -> Self {
        Self {
            idempotency,
            ..self
        }
    }

    /// `METHOD /path`, for messages and audit rows.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

const fn route(method: &'static str, path: &'static str, access: Access) -> RouteAccess {
    RouteAccess {
        method,
        path,
        access,
        limit: Limit::Standard,
        idempotency: Idempotency::None,
    }
}

const fn permission(method: &'static str, path: &'static str, p: Permission) -> RouteAccess {
    route(method, path, Access::Permission(p))
}

/// Every route the api serves, what it requires, its rate limits and idempotency, in the
/// order the router tries them. A handler without a row here cannot be registered.
pub const ROUTE_ACCESS: &[RouteAccess] = &[
    route("GET", "/health", Access::Public).limit(Limit::Exempt),
    route("GET", "/ready", Access::Public).limit(Limit::Exempt),
    // Public, but served only to `HAVEN_METRICS_ALLOW` (internal networks).
    route("GET", "/metrics", Access::Public).limit(Limit::Exempt),
    route("GET", "/openapi.json", Access::Public),
    // The operator console's static files: they hold no data; every call the page makes is
    // an api route below with its own guard.
    route("GET", "/console", Access::Public).limit(Limit::Exempt),
    route("GET", "/console/console.js", Access::Public).limit(Limit::Exempt),
    route("GET", "/console/console.css", Access::Public).limit(Limit::Exempt),
    // Validation is a pure function of its input and touches no stored data.
    route("POST", "/api/v1/addresses/validate", Access::Public),
    // Inbound webhooks are authenticated by their signature (the source's secrets).
    route("POST", "/api/v1/webhooks/{source}", Access::Public).limit(Limit::Webhook),
    // The rewards program's partner events: signed like every inbound webhook.
    route("POST", "/api/v1/webhooks/aurora/{event}", Access::Public).limit(Limit::Webhook),
    route("POST", "/api/v1/webhooks/tribe/{event}", Access::Public).limit(Limit::Webhook),
    route("POST", "/api/v1/auth/login", Access::Public).limit(Limit::Sensitive),
    route("POST", "/api/v1/auth/refresh", Access::Public),
    route("GET", "/api/v1/auth/whoami", Access::Authenticated),
    route("POST", "/api/v1/auth/logout", Access::User),
    route("POST", "/api/v1/auth/logout-all", Access::User),
    route("GET", "/api/v1/auth/sessions", Access::User),
    route("DELETE", "/api/v1/auth/sessions/{id}", Access::User),
    route(
        "POST",
        "/api/v1/api-keys",
        Access::UserPermission(Permission::ManageApiKeys),
    )
    .limit(Limit::Sensitive),
    route(
        "GET",
        "/api/v1/api-keys",
        Access::UserPermission(Permission::ManageApiKeys),
    ),
    route(
        "DELETE",
        "/api/v1/api-keys/{id}",
        Access::UserPermission(Permission::ManageApiKeys),
    ),
    permission("POST", "/api/v1/users", Permission::ManageUsers),
    permission("GET", "/api/v1/users", Permission::ManageUsers),
    permission("PUT", "/api/v1/users/{id}/role", Permission::ManageUsers),
    permission(
        "POST",
        "/api/v1/users/{id}/disable",
        Permission::ManageUsers,
    ),
    // Before `/admin/transactions/{tx_id}`, which would match `status` too.
    permission(
        "GET",
        "/api/v1/admin/transactions",
        Permission::ReadTransactions,
    ),
    permission(
        "GET",
        "/api/v1/admin/transactions/status",
        Permission::ReadTransactions,
    ),
    permission(
        "GET",
        "/api/v1/admin/transactions/{tx_id}",
        Permission::ReadTransactions,
    ),
    permission(
        "POST",
        "/api/v1/admin/transactions/{tx_id}/retry",
        Permission::RetryTransaction,
    )
    .idempotency(Idempotency::Required),
    permission("GET", "/api/v1/admin/alerts", Permission::ReadAlerts),
    permission(
        "POST",
        "/api/v1/admin/alerts/{id}/transition",
        Permission::ReviewAlerts,
    ),
    permission("GET", "/api/v1/admin/wallets", Permission::ManageWallets),
    permission("POST", "/api/v1/admin/wallets", Permission::ManageWallets),
    permission(
        "POST",
        "/api/v1/admin/wallets/{id}/rotate",
        Permission::ManageWallets,
    ),
    permission(
        "GET",
        "/api/v1/admin/wallets/{id}",
        Permission::ManageWallets,
    ),
    permission(
        "POST",
        "/api/v1/admin/wallets/{id}/revoke",
        Permission::ManageWallets,
    ),
    // Operating the running system: nonce accounts and circuit breakers. An API key needs
    // the `system:operate` scope, which only an admin can grant (`haven-admin breakers`
    // uses one).
    permission("GET", "/api/v1/admin/status", Permission::OperateSystem),
    permission("GET", "/api/v1/admin/nonces", Permission::OperateSystem),
    permission(
        "GET",
        "/api/v1/admin/nonces/{chain}/{address}",
        Permission::OperateSystem,
    ),
    permission(
        "POST",
        "/api/v1/admin/nonces/{chain}/{address}/reset",
        Permission::OperateSystem,
    ),
    permission(
        "GET",
        "/api/v1/admin/health/circuit-breakers",
        Permission::OperateSystem,
    ),
    permission(
        "POST",
        "/api/v1/admin/health/circuit-breakers/{name}/reset",
        Permission::OperateSystem,
    ),
    permission(
        "POST",
        "/api/v1/admin/health/circuit-breakers/{name}/force-open",
        Permission::OperateSystem,
    ),
    permission(
        "POST",
        "/api/v1/admin/health/circuit-breakers/{name}/disable",
        Permission::OperateSystem,
    ),
    // Outbound webhook endpoints: admin only (a creation or rotation hands out a signing
    // secret; a forced delete drops undelivered messages).
    permission(
        "GET",
        "/api/v1/admin/webhooks/endpoints",
        Permission::ManageWebhookEndpoints,
    ),
    permission(
        "POST",
        "/api/v1/admin/webhooks/endpoints",
        Permission::ManageWebhookEndpoints,
    ),
    permission(
        "GET",
        "/api/v1/admin/webhooks/endpoints/{id}",
        Permission::ManageWebhookEndpoints,
    ),
    permission(
        "PATCH",
        "/api/v1/admin/webhooks/endpoints/{id}",
        Permission::ManageWebhookEndpoints,
    ),
    permission(
        "DELETE",
        "/api/v1/admin/webhooks/endpoints/{id}",
        Permission::ManageWebhookEndpoints,
    ),
    permission(
        "POST",
        "/api/v1/admin/webhooks/endpoints/{id}/rotate-secret",
        Permission::ManageWebhookEndpoints,
    ),
    permission(
        "GET",
        "/api/v1/admin/webhooks/deliveries",
        Permission::ManageWebhookEndpoints,
    ),
    permission(
        "GET",
        "/api/v1/admin/webhooks/dead-letters",
        Permission::ManageWebhookEndpoints,
    ),
    permission(
        "POST",
        "/api/v1/admin/webhooks/dead-letters/{id}/replay",
        Permission::ManageWebhookEndpoints,
    ),
    permission("GET", "/api/v1/admin/audit/verify", Permission::ReadAudit),
    permission(
        "GET",
        "/api/v1/admin/audit/wallet-logs",
        Permission::ReadAudit,
    ),
    permission("GET", "/api/v1/admin/audit/records", Permission::ReadAudit),
    // Guardian vaults: administration, then the guardians' own routes and socket.
    permission("POST", "/api/v1/admin/vaults", Permission::ManageVaults),
    permission("GET", "/api/v1/admin/vaults/{id}", Permission::ManageVaults),
    permission(
        "POST",
        "/api/v1/admin/vaults/{id}/invitations",
        Permission::ManageVaults,
    ),
    permission(
        "DELETE",
        "/api/v1/admin/vaults/{id}/guardians/{guardian_id}",
        Permission::ManageVaults,
    ),
    permission(
        "POST",
        "/api/v1/admin/vaults/{id}/requests",
        Permission::ManageVaults,
    ),
    permission(
        "POST",
        "/api/v1/admin/vaults/{id}/threshold/dkg",
        Permission::ManageVaults,
    ),
    permission(
        "POST",
        "/api/v1/admin/vaults/{id}/threshold/sign",
        Permission::ManageVaults,
    ),
    permission(
        "GET",
        "/api/v1/admin/vaults/{id}/threshold/{session}",
        Permission::ManageVaults,
    ),
    route("POST", "/api/v1/guardian/join", Access::Public).limit(Limit::Sensitive),
    route("POST", "/api/v1/guardian/refresh", Access::Public),
    route("GET", "/api/v1/guardian/sessions", Access::Guardian),
    route("DELETE", "/api/v1/guardian/sessions/{id}", Access::Guardian),
    route("GET", "/api/v1/ws/guardian", Access::Guardian),
    permission("POST", "/api/v1/fraud/events", Permission::ReportEvents)
        .idempotency(Idempotency::Optional),
    // Member routes also admit a key scoped to that member only (`auth::MemberScope`).
    permission("GET", "/api/v1/members/{id}", Permission::ReadMembers),
    permission(
        "GET",
        "/api/v1/members/{id}/rewards",
        Permission::ReadMembers,
    ),
    permission("GET", "/api/v1/admin/rewards", Permission::ReadMembers),
    permission(
        "POST",
        "/api/v1/members/{id}/identities",
        Permission::ManageMembers,
    ),
    permission(
        "GET",
        "/api/v1/members/{id}/payout-addresses",
        Permission::ReadMembers,
    ),
    permission(
        "POST",
        "/api/v1/members/{id}/payout-addresses",
        Permission::ManageMembers,
    ),
    permission(
        "POST",
        "/api/v1/members/{id}/withdrawals",
        Permission::WithdrawTokens,
    )
    .idempotency(Idempotency::Required),
    permission(
        "GET",
        "/api/v1/members/{id}/withdrawals/{withdrawal_id}",
        Permission::ReadMembers,
    ),
    // The token API. A mint's key is optional (the caller's reference is its business key);
    // a redemption moves a member's money and needs one.
    permission("POST", "/api/v1/token/mint", Permission::MintTokens)
        .idempotency(Idempotency::Optional),
    permission("POST", "/api/v1/token/redeem", Permission::RedeemTokens)
        .idempotency(Idempotency::Required),
    permission(
        "GET",
        "/api/v1/admin/redemptions",
        Permission::ApproveRedemptions,
    ),
    permission(
        "GET",
        "/api/v1/admin/redemptions/{id}",
        Permission::ApproveRedemptions,
    ),
    permission(
        "POST",
        "/api/v1/admin/redemptions/{id}/approve",
        Permission::ApproveRedemptions,
    ),
    permission(
        "POST",
        "/api/v1/admin/redemptions/{id}/reject",
        Permission::ApproveRedemptions,
    ),
    permission(
        "POST",
        "/api/v1/admin/redemptions/{id}/mark-paid",
        Permission::ApproveRedemptions,
    ),
    // Aggregates only, cached: public like a block explorer's.
    route("GET", "/api/v1/network/stats", Access::Public),
];

/// The row of `method` on the registered pattern `path`.
pub fn route_access(method: &str, path: &str) -> Option<&'static RouteAccess> {
    ROUTE_ACCESS
        .iter()
        .find(|r| r.method == method && r.path == path)
}

/// The route the router chose for the request, inserted into the request extensions by
/// the route's guard before anything else runs. Rate-limit keys, idempotency scopes, metric
/// labels and audit rows name the route through it, never through the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedRoute(pub &'static RouteAccess);

impl MatchedRoute {
    /// The matched route of a request, if its guard ran.
    pub fn of(req: &actix_web::HttpRequest) -> Option<Self> {
        req.extensions().get::<Self>().copied()
    }
}

type RouteFactory = Arc<dyn Fn() -> actix_web::Route + Send + Sync>;

struct RouteDef {
    method: Method,
    path: &'static str,
    make: RouteFactory,
}

/// Why a set of routes does not match the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteTableError {
    /// A handler was registered for a route the table does not declare.
    #[error("route {method} {path} has no row in ROUTE_ACCESS; declare what it requires")]
    Undeclared {
        /// Its method.
        method: String,
        /// Its path pattern.
        path: String,
    },
    /// Two handlers were registered for one route.
    #[error("route {method} {path} is registered twice")]
    Duplicate {
        /// Its method.
        method: String,
        /// Its path pattern.
        path: String,
    },
    /// A row of the table has no handler.
    #[error("ROUTE_ACCESS declares {method} {path} but no handler serves it")]
    Unserved {
        /// Its method.
        method: &'static str,
        /// Its path pattern.
        path: &'static str,
    },
}

/// The handlers of the api, each to be matched with its row of [`ROUTE_ACCESS`].
#[derive(Default)]
pub struct RouteSet {
    defs: Vec<RouteDef>,
}

impl std::fmt::Debug for RouteSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.defs.iter().map(|d| format!("{} {}", d.method, d.path)))
            .finish()
    }
}

impl RouteSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `method` on the full path pattern `path`.
    pub fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args> + Send + Sync,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let route_method = method.clone();
        self.defs.push(RouteDef {
            method,
            path,
            make: Arc::new(move || web::method(route_method.clone()).to(handler.clone())),
        });
        self
    }

    /// Matches every handler with its row: refuses a handler without a row, a route
    /// registered twice and a row without a handler, naming each.
    pub fn check(self) -> Result<Routes, Vec<RouteTableError>> {
        let mut errors = Vec::new();
        let mut routes: Vec<(RouteDef, &'static RouteAccess)> = Vec::new();
        for def in self.defs {
            let Some(row) = route_access(def.method.as_str(), def.path) else {
                errors.push(RouteTableError::Undeclared {
                    method: def.method.to_string(),
                    path: def.path.to_owned(),
                });
                continue;
            };
            if routes.iter().any(|(_, r)| std::ptr::eq(*r, row)) {
                errors.push(RouteTableError::Duplicate {
                    method: def.method.to_string(),
                    path: def.path.to_owned(),
                });
                continue;
            }
            routes.push((def, row));
        }
        for row in ROUTE_ACCESS {
            if !routes.iter().any(|(_, r)| std::ptr::eq(*r, row)) {
                errors.push(RouteTableError::Unserved {
                    method: row.method,
                    path: row.path,
                });
            }
        }
        if errors.is_empty() {
            // The router tries resources in registration order: follow the table's.
            routes.sort_by_key(|(_, row)| ROUTE_ACCESS.iter().position(|r| std::ptr::eq(r, *row)));
            Ok(Routes(Arc::new(routes)))
        } else {
            Err(errors)
        }
    }
}

/// Routes checked against the table, ready to be served by every worker thread.
#[derive(Clone)]
pub struct Routes(Arc<Vec<(RouteDef, &'static RouteAccess)>>);

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(_, row)| row.name()))
            .finish()
    }
}

impl Routes {
    /// Registers one resource per path, each route wrapped in its guard (outermost) and its
    /// idempotency layer.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let mut paths: Vec<&'static str> = Vec::new();
        for (def, _) in self.0.iter() {
            if !paths.contains(&def.path) {
                paths.push(def.path);
            }
        }
        for path in paths {
            let mut resource = web::resource(path);
            for (def, row) in self.0.iter().filter(|(d, _)| d.path == path) {
                resource = resource.route(guarded((def.make)(), row));
            }
            cfg.service(resource);
        }
    }
}

fn guarded(route: actix_web::Route, row: &'static RouteAccess) -> actix_web::Route {
    let route = match row.idempotency {
        Idempotency::None => route,
        Idempotency::Optional => route.wrap(from_fn(crate::idempotency::optional)),
        Idempotency::Required => route.wrap(from_fn(crate::idempotency::required)),
    };
    route.wrap(from_fn(
        move |req: ServiceRequest, next: Next<actix_web::body::BoxBody>| {
            crate::auth::guard(row, req, next)
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok() -> &'static str {
        "ok"
    }

    #[test]
    fn every_route_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTE_ACCESS {
            assert!(seen.insert((r.method, r.path)), "{} twice", r.name());
        }
        assert_eq!(
            route_access("POST", "/api/v1/api-keys").map(|r| r.access),
            Some(Access::UserPermission(Permission::ManageApiKeys))
        );
        assert_eq!(route_access("PUT", "/api/v1/api-keys"), None);
    }

    #[test]
    fn the_check_names_undeclared_duplicate_and_unserved_routes() {
        let mut set = RouteSet::new();
        set.add(Method::GET, "/health", ok)
            .add(Method::GET, "/health", ok)
            .add(Method::GET, "/api/v1/sneaky", ok);
        let errors = set.check().unwrap_err();
        assert!(errors.contains(&RouteTableError::Duplicate {
            method: "GET".into(),
            path: "/health".into()
        }));
        assert!(errors.contains(&RouteTableError::Undeclared {
            method: "GET".into(),
            path: "/api/v1/sneaky".into()
        }));
        assert!(errors.contains(&RouteTableError::Unserved {
            method: "GET",
            path: "/ready"
        }));
    }
}

//! Authentication and authorization of every request.
//!
//! [`ROUTE_ACCESS`] is the one table of what each route requires: `(method, path, Access)`.
//! The [`authenticate`] middleware looks the matched route up in it before any handler runs:
//!
//! - a route missing from the table is refused with a 500 (deny by default), and a method
//!   the table does not declare for a declared path with a 405;
//! - [`Access::Public`] routes run without credentials;
//! - otherwise the request must carry `Authorization: Bearer <access JWT>` or
//!   `X-API-Key: hvn_…` (not both). A JWT is verified (algorithm allow-list, `kid`, `iss`,
//!   `aud`, `exp`, `nbf`, token type) and checked against the deny-list and the user's
//!   not-before; an API key's format and checksum are checked with no I/O, and only a
//!   well-formed key is hashed and looked up (through a cache of at most 30 s). Failures
//!   answer 401 with the error body;
//! - the resolved [`Principal`] must hold the route's permission, else 403.
//!
//! The middleware inserts the [`Principal`], a [`PrincipalId`] (the idempotency and
//! rate-limit scope) and, for JWTs, the [`AccessToken`] into the request extensions.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use chrono::{DateTime, Utc};
use haven_auth::{
    ApiKey, ApiKeyHash, Jwt, JwtConfig, KeyEnv, KeyHasher, Keyring, Passwords, Permission,
    Principal, SessionError, SessionPolicy, SessionStore, TokenType, ValidationCache,
};
use haven_core::{ErrorCode, Problem};
use uuid::Uuid;

use crate::config::auth::AuthConfig;
use crate::error::ApiError;
use crate::idempotency::PrincipalId;

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
}

const fn route(method: &'static str, path: &'static str, access: Access) -> RouteAccess {
    RouteAccess {
        method,
        path,
        access,
    }
}

/// Every route the api serves and what it requires. A route missing here is refused.
pub const ROUTE_ACCESS: &[RouteAccess] = &[
    route("GET", "/health", Access::Public),
    route("GET", "/ready", Access::Public),
    route("GET", "/metrics", Access::Public),
    route("GET", "/openapi.json", Access::Public),
    // Validation is a pure function of its input and touches no stored data.
    route("POST", "/api/v1/addresses/validate", Access::Public),
    // Inbound webhooks are authenticated by their signature (the source's secrets).
    route("POST", "/api/v1/webhooks/{source}", Access::Public),
    route("POST", "/api/v1/auth/login", Access::Public),
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
    ),
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
    route(
        "POST",
        "/api/v1/users",
        Access::Permission(Permission::ManageUsers),
    ),
    route(
        "GET",
        "/api/v1/users",
        Access::Permission(Permission::ManageUsers),
    ),
    route(
        "PUT",
        "/api/v1/users/{id}/role",
        Access::Permission(Permission::ManageUsers),
    ),
    route(
        "POST",
        "/api/v1/users/{id}/disable",
        Access::Permission(Permission::ManageUsers),
    ),
    route(
        "GET",
        "/api/v1/admin/transactions/status",
        Access::Permission(Permission::ReadTransactions),
    ),
    route(
        "GET",
        "/api/v1/admin/transactions/{tx_id}",
        Access::Permission(Permission::ReadTransactions),
    ),
    route(
        "POST",
        "/api/v1/admin/transactions/{tx_id}/retry",
        Access::Permission(Permission::RetryTransaction),
    ),
    route(
        "GET",
        "/api/v1/admin/alerts",
        Access::Permission(Permission::ReadAlerts),
    ),
    route(
        "POST",
        "/api/v1/admin/alerts/{id}/transition",
        Access::Permission(Permission::ReviewAlerts),
    ),
    route(
        "GET",
        "/api/v1/admin/wallets",
        Access::Permission(Permission::ManageWallets),
    ),
];

/// The verified access token of the request (JWT principals only), for logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessToken {
    /// Its `jti`.
    pub jti: Uuid,
    /// Its `exp`.
    pub expires_at: DateTime<Utc>,
}

/// A validated API key, as cached.
#[derive(Debug, Clone)]
pub struct ValidKey {
    /// The key's id.
    pub id: Uuid,
    /// Its scopes.
    pub scopes: BTreeSet<Permission>,
    /// Its expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Everything authentication needs, shared by every worker thread (app data).
pub struct AuthContext {
    /// Token issuing and verification.
    pub jwt: Jwt,
    /// API-key hashing under the pepper.
    pub hasher: KeyHasher,
    /// Which keys this deployment issues.
    pub key_env: KeyEnv,
    /// Sessions, the deny-list and the per-user not-before.
    pub sessions: Arc<dyn SessionStore>,
    /// Session limits.
    pub policy: SessionPolicy,
    /// argon2id.
    pub passwords: Arc<Passwords>,
    /// Validated API keys, for at most 30 s.
    pub key_cache: ValidationCache<ValidKey>,
    /// Users.
    pub users: haven_db::UserRepo,
    /// API keys.
    pub api_keys: haven_db::ApiKeyRepo,
    /// The audit log.
    pub audit: haven_db::PgAuditLog,
    /// Back-off and bans after failed authentication ([`crate::lockout`]).
    pub guard: crate::lockout::AuthGuard,
}

impl std::fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthContext")
            .field("key_env", &self.key_env)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl AuthContext {
    /// Builds the context from the configuration over `db`, counting authentication
    /// failures in `redis` and feeding them to the fraud rules (alerts stored in `db`).
    pub fn build(
        config: &AuthConfig,
        db: haven_db::PgPool,
        redis: deadpool_redis::Pool,
    ) -> anyhow::Result<Self> {
        let fraud = crate::lockout::FraudFeed::new(
            haven_fraud::Engine::new(
                Arc::new(haven_fraud::Rules::from_toml(haven_fraud::DEFAULT_RULES)?),
                Arc::new(haven_fraud::RedisWindowStore::new(redis.clone())),
            )
            .with_key_prefix(format!("{}fraud:", config.redis_prefix)),
            Arc::new(haven_db::PgAlertStore::new(db.clone())),
        );
        let guard = crate::lockout::AuthGuard::new(
            config.lockout,
            Some((redis, format!("{}lockout:", config.redis_prefix))),
            Some(fraud),
        )?;
        let jwt = Jwt::new(
            JwtConfig::new(config.jwt_issuer.clone(), config.jwt_audience.clone()),
            Keyring::new(config.signing_key()?),
        );
        Ok(Self {
            jwt,
            hasher: config.key_hasher()?,
            key_env: config.key_env,
            sessions: Arc::new(haven_db::PgSessionStore::new(db.clone())),
            policy: SessionPolicy::default(),
            passwords: Arc::new(
                Passwords::owasp().map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?,
            ),
            key_cache: ValidationCache::new(Duration::from_secs(30), 10_000),
            users: haven_db::UserRepo::new(db.clone()),
            api_keys: haven_db::ApiKeyRepo::new(db.clone()),
            audit: haven_db::PgAuditLog::new(db),
            guard,
        })
    }
}

/// What the route table says about `method` on `path`.
pub fn route_access(method: &str, path: &str) -> Option<Access> {
    ROUTE_ACCESS
        .iter()
        .find(|r| r.method == method && r.path == path)
        .map(|r| r.access)
}

/// Maps a session store failure to the wire: a database outage is 503, other store
/// failures 500, the rest their own code.
pub fn session_error(err: SessionError) -> ApiError {
    let code = match &err {
        SessionError::Store { source } => match source.downcast_ref::<haven_db::Error>() {
            Some(db) => db.code(),
            None => ErrorCode::InternalError,
        },
        other => other.code(),
    };
    ApiError(Problem::new(code, err.to_string()).with_source(err))
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// The authentication and authorization middleware (see the module docs).
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(pattern) = req.match_pattern() else {
        // No route matches: the router answers 404.
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let access = match route_access(req.method().as_str(), &pattern) {
        Some(access) => access,
        None if ROUTE_ACCESS.iter().any(|r| r.path == pattern) => {
            let err = ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed on {pattern}", req.method()),
            );
            return Ok(req.into_response(err.error_response()));
        }
        None => {
            tracing::error!(route = %pattern, "route declares no permission; refused");
            let err = ApiError::new(
                ErrorCode::InternalError,
                format!("route {pattern} declares no permission"),
            );
            return Ok(req.into_response(err.error_response()));
        }
    };
    if access == Access::Public {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(ctx) = req.app_data::<web::Data<AuthContext>>().cloned() else {
        let err = ApiError::new(ErrorCode::InternalError, "authentication is not configured");
        return Ok(req.into_response(err.error_response()));
    };
    let ip = crate::ratelimit::client_ip(req.request());
    let ip_subject = ip.map(crate::lockout::ip_subject);
    if let Some(left) = ip_subject.as_deref().and_then(|s| ctx.guard.known_block(s)) {
        return Ok(req.into_response(crate::lockout::blocked_response(left)));
    }
    let (principal, token) = match resolve(&ctx, &req).await {
        Ok(resolved) => resolved,
        Err(err) => {
            // Rejected credentials count towards the caller's back-off; outages do not.
            if err.0.code == ErrorCode::Unauthorized
                && let (Some(ip), Some(subject)) = (ip, ip_subject)
            {
                let principal = failed_principal(&req, ip);
                ctx.guard.failed(&[subject], principal, ip).await;
            }
            return Ok(req.into_response(err.error_response()));
        }
    };
    let allowed = match access {
        Access::Public | Access::Authenticated => true,
        Access::User => matches!(principal, Principal::User { .. }),
        Access::Permission(permission) => principal.can(permission),
        Access::UserPermission(permission) => {
            matches!(principal, Principal::User { .. }) && principal.can(permission)
        }
    };
    if !allowed {
        let message = match access {
            Access::Permission(permission) => format!("missing permission {permission}"),
            Access::UserPermission(permission) if matches!(principal, Principal::User { .. }) => {
                format!("missing permission {permission}")
            }
            _ => "this route is for logged-in users, not API keys".to_owned(),
        };
        let err = ApiError::new(ErrorCode::Forbidden, message);
        return Ok(req.into_response(err.error_response()));
    }
    let principal_id = match &principal {
        Principal::User { id, .. } => format!("user:{id}"),
        Principal::Service { key_id, .. } => format!("key:{key_id}"),
    };
    {
        let mut ext = req.extensions_mut();
        ext.insert(PrincipalId(principal_id));
        ext.insert(principal);
        if let Some(token) = token {
            ext.insert(token);
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Who a rejected request claimed to be, for the fraud rules: an API key's public prefix
/// (so one leaked key tried from many addresses is one subject), else the client address.
fn failed_principal(req: &ServiceRequest, ip: std::net::IpAddr) -> String {
    match req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some(key) => format!("api_key:{}", key.chars().take(16).collect::<String>()),
        None => format!("bearer:{ip}"),
    }
}

async fn resolve(
    ctx: &AuthContext,
    req: &ServiceRequest,
) -> Result<(Principal, Option<AccessToken>), ApiError> {
    let authorization = req.headers().get(actix_web::http::header::AUTHORIZATION);
    let api_key = req.headers().get("x-api-key");
    match (authorization, api_key) {
        (Some(_), Some(_)) => Err(unauthorized(
            "send either Authorization or X-API-Key, not both",
        )),
        (None, None) => Err(unauthorized(
            "authentication required: Authorization: Bearer <token> or X-API-Key",
        )),
        (Some(value), None) => {
            let raw = value
                .to_str()
                .map_err(|_| unauthorized("the Authorization header is not ASCII"))?;
            let token = match raw.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
                _ => return Err(unauthorized("expected Authorization: Bearer <token>")),
            };
            let (principal, token) = resolve_jwt(ctx, token).await?;
            Ok((principal, Some(token)))
        }
        (None, Some(value)) => {
            let raw = value
                .to_str()
                .map_err(|_| unauthorized("the X-API-Key header is not ASCII"))?;
            Ok((resolve_api_key(ctx, raw).await?, None))
        }
    }
}

async fn resolve_jwt(ctx: &AuthContext, token: &str) -> Result<(Principal, AccessToken), ApiError> {
    let claims = ctx
        .jwt
        .verify(token, TokenType::Access)
        .map_err(|e| ApiError(Problem::new(e.code(), e.to_string())))?;
    let now = Utc::now();
    ctx.sessions
        .check_access_token(claims.sub, claims.jti, claims.iat, now)
        .await
        .map_err(session_error)?;
    let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
    Ok((
        Principal::User {
            id: claims.sub,
            role: claims.role,
        },
        AccessToken {
            jti: claims.jti,
            expires_at,
        },
    ))
}

/// Validates an API key: format and checksum first (no I/O), then the cache, then the
/// database.
pub async fn resolve_api_key(ctx: &AuthContext, raw: &str) -> Result<Principal, ApiError> {
    ApiKey::check_format(raw).map_err(|e| ApiError(Problem::new(e.code(), e.to_string())))?;
    let hash = ctx.hasher.hash(raw);
    let now = Utc::now();
    let key = match ctx.key_cache.get(&hash) {
        Some(key) => key,
        None => {
            let key = lookup_key(ctx, &hash).await?;
            ctx.key_cache.insert(hash, key.clone());
            let repo = ctx.api_keys.clone();
            let id = key.id;
            tokio::spawn(async move {
                if let Err(e) = repo.touch(id).await {
                    tracing::warn!(key_id = %id, error = %e, "could not record API key use");
                }
            });
            key
        }
    };
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(unauthorized("the API key has expired"));
    }
    Ok(Principal::Service {
        key_id: key.id,
        scopes: key.scopes,
    })
}

async fn lookup_key(ctx: &AuthContext, hash: &ApiKeyHash) -> Result<ValidKey, ApiError> {
    let record = ctx
        .api_keys
        .find_by_hash(hash.as_bytes())
        .await?
        .ok_or_else(|| unauthorized("unknown API key"))?;
    if record.revoked_at.is_some() {
        return Err(unauthorized("the API key has been revoked"));
    }
    let scopes = haven_auth::parse_scopes(&record.scopes).map_err(|e| {
        ApiError(
            Problem::new(
                ErrorCode::InternalError,
                format!("stored scopes of key {}", record.id),
            )
            .with_source(e),
        )
    })?;
    Ok(ValidKey {
        id: record.id,
        scopes,
        expires_at: record.expires_at,
    })
}

/// The principal the middleware resolved; handlers of non-public routes always have one.
pub fn principal(req: &actix_web::HttpRequest) -> Result<Principal, ApiError> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| unauthorized("authentication required"))
}

/// The logged-in user of the request: their id and role.
pub fn user(req: &actix_web::HttpRequest) -> Result<(Uuid, haven_auth::Role), ApiError> {
    match principal(req)? {
        Principal::User { id, role } => Ok((id, role)),
        Principal::Service { .. } => Err(ApiError::new(
            ErrorCode::Forbidden,
            "this route is for logged-in users, not API keys",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTE_ACCESS {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
        }
        assert_eq!(
            route_access("POST", "/api/v1/api-keys"),
            Some(Access::UserPermission(Permission::ManageApiKeys))
        );
        assert_eq!(route_access("PUT", "/api/v1/api-keys"), None);
    }
}

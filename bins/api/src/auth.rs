//! Authentication and authorization of every route, decided from the route the router
//! matched.
//!
//! Each route is wrapped in its own [`guard`] by [`crate::access::RouteSet`], carrying its
//! row of [`crate::access::ROUTE_ACCESS`]; the request path is never consulted. The guard:
//!
//! 1. records the [`MatchedRoute`] for the layers that name the route (idempotency, metrics,
//!    audit);
//! 2. on a public route, charges the route's rate limits and runs the handler;
//! 3. otherwise refuses a client network this replica knows is blocked (no I/O), then
//!    checks the credential — `Authorization: Bearer <access JWT>` or `X-API-Key: hvn_…`,
//!    not both — locally first (JWT signature, algorithm, `kid`, `iss`, `aud`, `exp`,
//!    `nbf`, type, no `jku`/`jwk`/`x5u`/`x5c`; API-key format and checksum). A request
//!    without a credential, with one that fails those checks, or with an API key not in the
//!    cache is charged to the network's in-process bucket of unverified credentials before
//!    any lookup ([`crate::ratelimit`]). Only then are lookups made: a JWT's deny-list,
//!    the user's not-before, and the user themself (a token of a user who does not exist,
//!    is disabled, or whose stored role differs from the token's is refused); an API key
//!    through a cache of at most 30 s. Failures answer 401 and count towards the network's
//!    back-off ([`crate::lockout`]);
//! 4. refuses a principal without the route's permission with 403, writing an
//!    `auth.forbidden` audit row (actor, method, route pattern);
//! 5. inserts the [`Principal`], a [`PrincipalId`] (the idempotency and rate-limit scope)
//!    and, for JWTs, the [`AccessToken`] into the request extensions, and charges the
//!    principal's rate limits.
//!
//! Every non-public handler also takes its principal as an extractor ([`Authenticated`] or
//! [`CurrentUser`]): were a route ever to escape its guard, it would fail closed with 401.

use std::collections::BTreeSet;
use std::future::{Ready, ready};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use chrono::{DateTime, Utc};
use haven_auth::{
    ApiKey, ApiKeyHash, Claims, Jwt, JwtConfig, KeyEnv, KeyHasher, Keyring, Passwords, Principal,
    Role, SessionError, SessionPolicy, SessionStore, TokenType, ValidationCache,
};
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_core::{ErrorCode, Problem};
use ipnet::IpNet;
use serde_json::json;
use uuid::Uuid;

use crate::access::Limit;
pub use crate::access::{Access, MatchedRoute, ROUTE_ACCESS, RouteAccess, route_access};
use crate::config::auth::AuthConfig;
use crate::error::{ApiError, current_request_id};
use crate::idempotency::PrincipalId;
use crate::ratelimit::{RateClass, RateLimits};

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
    /// The member a member-scoped key acts for.
    pub member: Option<Uuid>,
}

/// The member a member-scoped API key acts for (request extension): member routes serve
/// that member only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberScope(pub Uuid);

use haven_auth::Permission;

/// Everything authentication needs, shared by every worker thread (app data).
pub struct AuthContext {
    /// Token issuing and verification.
    pub jwt: Jwt,
    /// API-key hashing under the pepper.
    pub hasher: KeyHasher,
    /// Which keys this deployment issues.
    pub key_env: KeyEnv,
    /// Sessions, the deny-list and the per-user not-before (through `revocations`).
    pub sessions: Arc<dyn SessionStore>,
    /// The access-token checks answered from memory, and the revocations this replica
    /// makes and hears ([`crate::revocations`]).
    pub revocations: Arc<haven_auth::session::CachedSessionStore>,
    /// The users' role and disabled flag, remembered as briefly.
    pub user_facts: Arc<crate::revocations::CachedUsers>,
    /// Session limits.
    pub policy: SessionPolicy,
    /// argon2id, behind the process-wide cap on concurrent hashing.
    pub passwords: crate::passwords::HashGate,
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
    /// Networks whose logins are never blocked by the lockout (`HAVEN_AUTH_TRUSTED_NETWORKS`).
    pub trusted_networks: Vec<IpNet>,
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
    /// Spawns the fraud feed's task: call it on a Tokio runtime.
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
        let passwords =
            Passwords::owasp().map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let revocations = Arc::new(haven_auth::session::CachedSessionStore::new(
            Arc::new(haven_db::PgSessionStore::new(db.clone())),
            config.cache_ttl,
            JwtConfig::ACCESS_TTL,
            100_000,
        ));
        let user_facts = Arc::new(crate::revocations::CachedUsers::new(
            haven_db::UserRepo::new(db.clone()),
            config.cache_ttl,
            100_000,
        ));
        user_facts.follow(&revocations);
        Ok(Self {
            jwt,
            hasher: config.key_hasher()?,
            key_env: config.key_env,
            sessions: revocations.clone(),
            revocations,
            user_facts,
            policy: SessionPolicy::default(),
            passwords: crate::passwords::HashGate::new(
                Arc::new(passwords),
                config.password_hash_concurrency,
            ),
            key_cache: ValidationCache::new(Duration::from_secs(30), 10_000),
            users: haven_db::UserRepo::new(db.clone()),
            api_keys: haven_db::ApiKeyRepo::new(db.clone()),
            audit: haven_db::PgAuditLog::new(db),
            guard,
            trusted_networks: config.trusted_networks.clone(),
        })
    }
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

/// The guard of one route (see the module docs): `row` is the route the router matched.
pub async fn guard(
    row: &'static RouteAccess,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    req.extensions_mut().insert(MatchedRoute(row));
    let limits = req
        .app_data::<web::Data<RateLimits>>()
        .map(|l| l.clone().into_inner());
    let net = crate::ratelimit::client_net(req.request());
    let net_key = crate::ratelimit::net_key(net);
    if row.access == Access::Public {
        let charges = match row.limit {
            Limit::Exempt | Limit::Webhook => vec![],
            Limit::Standard => vec![(RateClass::Public, net_key)],
            Limit::Sensitive => vec![
                (RateClass::Public, net_key.clone()),
                (RateClass::Sensitive, net_key),
            ],
        };
        return charged(limits.as_deref(), &charges, req, next).await;
    }
    if row.access == Access::Guardian {
        return guard_guardian(limits.as_deref(), req, next).await;
    }
    let Some(ctx) = req.app_data::<web::Data<AuthContext>>().cloned() else {
        let err = ApiError::new(ErrorCode::InternalError, "authentication is not configured");
        return Ok(req.into_response(err.error_response()));
    };
    if let Some(net) = net
        && let Some(left) = ctx.guard.known_block(&crate::lockout::ip_subject(net))
    {
        ctx.guard
            .signal(failed_principal(req.request(), net), net.addr());
        return Ok(req.into_response(crate::lockout::blocked_response(left)));
    }
    let Resolved {
        principal,
        token,
        member,
    } = match authenticate(&ctx, limits.as_deref(), req.request(), net).await {
        Ok(resolved) => resolved,
        Err(refusal) => return Ok(req.into_response(refusal)),
    };
    if let Err(message) = authorize(row.access, &principal) {
        let err = forbidden(&ctx, req.request(), row, &principal, message).await;
        return Ok(req.into_response(err.error_response()));
    }
    let principal_id = match &principal {
        Principal::User { id, .. } => format!("user:{id}"),
        Principal::Service { key_id, .. } => format!("key:{key_id}"),
    };
    let mut charges = vec![(
        RateClass::Authenticated,
        format!("principal:{principal_id}"),
    )];
    if row.limit == Limit::Sensitive {
        charges.push((RateClass::Sensitive, format!("principal:{principal_id}")));
    }
    {
        let mut ext = req.extensions_mut();
        ext.insert(PrincipalId(principal_id));
        ext.insert(principal);
        if let Some(token) = token {
            ext.insert(token);
        }
        if let Some(member) = member {
            ext.insert(MemberScope(member));
        }
    }
    charged(limits.as_deref(), &charges, req, next).await
}

/// The guard of a guardian route: a complete guardian token check (401 otherwise, 503 when
/// it cannot be made), then the guardian's authenticated rate limit.
async fn guard_guardian(
    limits: Option<&RateLimits>,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(ctx) = req
        .app_data::<web::Data<crate::guardian::GuardianContext>>()
        .cloned()
    else {
        let err = ApiError::new(ErrorCode::InternalError, "guardians are not configured");
        return Ok(req.into_response(err.error_response()));
    };
    let token = match credential(req.request()) {
        Ok(Credential::Bearer(token)) => token.to_owned(),
        Ok(Credential::ApiKey(_)) => {
            let err = unauthorized("guardian routes take a guardian token, not an API key");
            return Ok(req.into_response(err.error_response()));
        }
        Err(err) => return Ok(req.into_response(err.error_response())),
    };
    let principal = match ctx.authenticate(&token).await {
        Ok(principal) => principal,
        Err(refusal) => return Ok(req.into_response(refusal.into_error().error_response())),
    };
    let principal_id = format!("guardian:{}", principal.guardian_id);
    let charges = vec![(
        RateClass::Authenticated,
        format!("principal:{principal_id}"),
    )];
    {
        let mut ext = req.extensions_mut();
        ext.insert(PrincipalId(principal_id));
        ext.insert(principal);
    }
    charged(limits, &charges, req, next).await
}

/// Charges `charges`, then runs the rest of the route and reports the strictest bucket.
async fn charged(
    limits: Option<&RateLimits>,
    charges: &[(RateClass, String)],
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let decisions = match limits {
        Some(limits) if !charges.is_empty() => match limits.check_all(charges).await {
            Ok(decisions) => decisions,
            Err(refusal) => return Ok(req.into_response(refusal)),
        },
        _ => Vec::new(),
    };
    let mut response = next.call(req).await?;
    for decision in &decisions {
        crate::ratelimit::merge_headers(response.headers_mut(), decision);
    }
    Ok(response)
}

/// Whether `principal` may use a route requiring `access`; the refusal's message otherwise.
fn authorize(access: Access, principal: &Principal) -> Result<(), String> {
    let is_user = matches!(principal, Principal::User { .. });
    let allowed = match access {
        Access::Public | Access::Authenticated => true,
        Access::User => is_user,
        Access::Permission(permission) => principal.can(permission),
        Access::UserPermission(permission) => is_user && principal.can(permission),
        // decided by `guard_guardian`; a user or key never passes
        Access::Guardian => false,
    };
    if allowed {
        return Ok(());
    }
    Err(match access {
        Access::Permission(permission) => format!("missing permission {permission}"),
        Access::UserPermission(permission) if is_user => format!("missing permission {permission}"),
        _ => "this route is for logged-in users, not API keys".to_owned(),
    })
}

/// The 403 of a refused principal, recorded as an `auth.forbidden` audit row first (if the
/// row cannot be written the refusal still stands, and the failure is logged).
async fn forbidden(
    ctx: &AuthContext,
    req: &HttpRequest,
    row: &RouteAccess,
    principal: &Principal,
    message: String,
) -> ApiError {
    let mut event = AuditEvent::new(
        crate::routes::admin::actor(principal),
        "auth.forbidden",
        Severity::Medium,
    )
    .target(format!("route:{}", row.name()))
    .details(json!({"method": row.method, "route": row.path, "reason": message}));
    if let Some(id) = current_request_id() {
        event = event.request_id(id);
    }
    if let Some(ip) = crate::ratelimit::client_ip(req) {
        event = event.ip(ip.to_string());
    }
    if let Err(error) = ctx.audit.append(event).await {
        tracing::error!(%error, route = %row.name(), "could not record a forbidden request in the audit log");
    }
    ApiError::new(ErrorCode::Forbidden, message)
}

/// Who a rejected request claimed to be, for the fraud rules: an API key's public prefix
/// (so one leaked key tried from many networks is one subject), else the client network.
fn failed_principal(req: &HttpRequest, net: IpNet) -> String {
    match req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some(key) => format!("api_key:{}", key.chars().take(16).collect::<String>()),
        None => format!("bearer:{net}"),
    }
}

/// A credential as presented, before any check.
enum Credential<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
}

fn credential(req: &HttpRequest) -> Result<Credential<'_>, ApiError> {
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
            match raw.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    Ok(Credential::Bearer(token.trim()))
                }
                _ => Err(unauthorized("expected Authorization: Bearer <token>")),
            }
        }
        (None, Some(value)) => value
            .to_str()
            .map(Credential::ApiKey)
            .map_err(|_| unauthorized("the X-API-Key header is not ASCII")),
    }
}

/// A credential that passed its local checks, with the lookups it still needs.
enum Checked {
    Jwt(Claims),
    CachedKey(ValidKey),
    UncachedKey(ApiKeyHash),
}

fn check_locally(ctx: &AuthContext, credential: Credential<'_>) -> Result<Checked, ApiError> {
    match credential {
        Credential::Bearer(token) => ctx
            .jwt
            .verify(token, TokenType::Access)
            .map(Checked::Jwt)
            .map_err(|e| ApiError(Problem::new(e.code(), e.to_string()))),
        Credential::ApiKey(raw) => {
            ApiKey::check_format(raw)
                .map_err(|e| ApiError(Problem::new(e.code(), e.to_string())))?;
            let hash = ctx.hasher.hash(raw);
            Ok(match ctx.key_cache.get(&hash) {
                Some(key) => Checked::CachedKey(key),
                None => Checked::UncachedKey(hash),
            })
        }
    }
}

/// Who a request's credential resolved to.
struct Resolved {
    principal: Principal,
    token: Option<AccessToken>,
    member: Option<Uuid>,
}

impl Resolved {
    fn user(principal: Principal, token: AccessToken) -> Self {
        Self {
            principal,
            token: Some(token),
            member: None,
        }
    }
}

/// Resolves the request's principal (steps 3 of the module docs); the answer to send
/// otherwise (401, 429, or the lookup's own failure such as 503).
async fn authenticate(
    ctx: &AuthContext,
    limits: Option<&RateLimits>,
    req: &HttpRequest,
    net: Option<IpNet>,
) -> Result<Resolved, HttpResponse> {
    let checked = credential(req).and_then(|c| check_locally(ctx, c));
    // Nothing unverified reaches a lookup unless the network's bucket allows it.
    let unverified = match &checked {
        Ok(Checked::Jwt(_) | Checked::CachedKey(_)) => None,
        Ok(Checked::UncachedKey(_)) | Err(_) => limits.map(|l| l.check_unverified(net)),
    };
    if let Some(decision) = unverified.filter(|d| !d.allowed) {
        if let Some(net) = net {
            ctx.guard.signal(failed_principal(req, net), net.addr());
        }
        return Err(crate::ratelimit::refusal(RateClass::Public, &decision));
    }
    let presented = req
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION)
        || req.headers().contains_key("x-api-key");
    let resolved = match checked {
        Ok(Checked::Jwt(claims)) => resolve_jwt(ctx, claims).await,
        Ok(Checked::CachedKey(key)) => service_principal(key),
        Ok(Checked::UncachedKey(hash)) => resolve_api_key(ctx, hash).await,
        Err(err) => Err(err),
    };
    match resolved {
        Ok(resolved) => Ok(resolved),
        Err(err) => {
            // Rejected credentials count towards the network's back-off; a missing one and
            // outages do not.
            if err.0.code == ErrorCode::Unauthorized
                && presented
                && let Some(net) = net
            {
                let subjects = [crate::lockout::ip_subject(net)];
                ctx.guard
                    .failed(&subjects, failed_principal(req, net), net.addr())
                    .await;
            }
            Err(err.error_response())
        }
    }
}

async fn resolve_jwt(ctx: &AuthContext, claims: Claims) -> Result<Resolved, ApiError> {
    let now = Utc::now();
    let (checked, user) = tokio::join!(
        ctx.sessions
            .check_access_token(claims.sub, claims.jti, claims.iat, now),
        ctx.user_facts.get(claims.sub),
    );
    checked.map_err(session_error)?;
    let user = user?.ok_or_else(|| unauthorized("the token's user does not exist"))?;
    if user.disabled {
        return Err(unauthorized("the token's user is disabled"));
    }
    let role = Role::from_str(user.role.as_str()).map_err(|e| ApiError(Problem::internal(e)))?;
    if role != claims.role {
        return Err(unauthorized(
            "the token's role is no longer the user's role; log in again",
        ));
    }
    let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
    Ok(Resolved::user(
        Principal::User {
            id: claims.sub,
            role,
        },
        AccessToken {
            jti: claims.jti,
            expires_at,
        },
    ))
}

fn service_principal(key: ValidKey) -> Result<Resolved, ApiError> {
    if key.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(unauthorized("the API key has expired"));
    }
    Ok(Resolved {
        principal: Principal::Service {
            key_id: key.id,
            scopes: key.scopes,
        },
        token: None,
        member: key.member,
    })
}

/// Validates an API key by its hash: the database, then the cache for 30 s.
async fn resolve_api_key(ctx: &AuthContext, hash: ApiKeyHash) -> Result<Resolved, ApiError> {
    let key = lookup_key(ctx, &hash).await?;
    ctx.key_cache.insert(hash, key.clone());
    let repo = ctx.api_keys.clone();
    let id = key.id;
    tokio::spawn(async move {
        if let Err(e) = repo.touch(id).await {
            tracing::warn!(key_id = %id, error = %e, "could not record API key use");
        }
    });
    service_principal(key)
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
        member: record.member_id,
    })
}

/// The principal the guard resolved, from the request extensions.
pub fn principal(req: &HttpRequest) -> Result<Principal, ApiError> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| unauthorized("authentication required"))
}

/// The authenticated principal of a request. A handler that takes it cannot run without
/// one: without the guard's principal the request fails with 401.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl Authenticated {
    /// The audit actor: `user:<id>` or `key:<id>`.
    pub fn actor(&self) -> String {
        crate::routes::admin::actor(&self.0)
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(principal(req).map(Self))
    }
}

/// The logged-in user of a request (an access JWT, not an API key): 401 without a
/// principal, 403 for an API key.
#[derive(Debug, Clone, Copy)]
pub struct CurrentUser {
    /// The user's id.
    pub id: Uuid,
    /// Their role (as stored, checked at authentication).
    pub role: Role,
    /// The access token presented.
    pub token: Option<AccessToken>,
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match principal(req) {
            Ok(Principal::User { id, role }) => Ok(Self {
                id,
                role,
                token: req.extensions().get::<AccessToken>().copied(),
            }),
            Ok(Principal::Service { .. }) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "this route is for logged-in users, not API keys",
            )),
            Err(err) => Err(err),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_follows_the_access_of_the_row() {
        let viewer = Principal::User {
            id: Uuid::nil(),
            role: Role::Viewer,
        };
        let key = Principal::Service {
            key_id: Uuid::nil(),
            scopes: BTreeSet::from([Permission::ManageApiKeys]),
        };
        assert!(authorize(Access::Authenticated, &key).is_ok());
        assert!(authorize(Access::User, &key).is_err());
        assert!(authorize(Access::Permission(Permission::ManageApiKeys), &key).is_ok());
        assert!(authorize(Access::UserPermission(Permission::ManageApiKeys), &key).is_err());
        assert!(authorize(Access::Permission(Permission::ManageUsers), &viewer).is_err());
        assert!(authorize(Access::Permission(Permission::ReadAlerts), &viewer).is_ok());
    }

    /// A handler that takes its principal fails closed (401) when no guard supplied one,
    /// and a route for users refuses an API key (403).
    #[actix_web::test]
    async fn the_principal_extractors_fail_closed() {
        let req = actix_web::test::TestRequest::default().to_http_request();
        let err = Authenticated::extract(&req).await.unwrap_err();
        assert_eq!(err.0.code, ErrorCode::Unauthorized);
        let err = CurrentUser::extract(&req).await.unwrap_err();
        assert_eq!(err.0.code, ErrorCode::Unauthorized);

        req.extensions_mut().insert(Principal::Service {
            key_id: Uuid::nil(),
            scopes: BTreeSet::new(),
        });
        assert!(Authenticated::extract(&req).await.is_ok());
        let err = CurrentUser::extract(&req).await.unwrap_err();
        assert_eq!(err.0.code, ErrorCode::Forbidden);
    }
}

//! Login, token refresh, logout and the user's own sessions.

use std::str::FromStr;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_auth::{IssuedToken, NewSession, Role, SessionError, TokenType};
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_core::{ErrorCode, Problem};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{AuthContext, Authenticated, CurrentUser, session_error};
use crate::error::{ApiError, current_request_id};
use crate::extract::ValidatedJson;

/// `POST /api/v1/auth/login` body.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The account e-mail.
    #[validate(
        length(min = 3, max = 320, message = "email must be 3 to 320 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub email: String,
    /// The password.
    #[validate(
        length(min = 1, max = 1024, message = "password must be 1 to 1024 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub password: String,
    /// A device label for the session list.
    #[validate(
        length(max = 128, message = "device must be at most 128 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub device: Option<String>,
}

/// `POST /api/v1/auth/refresh` and `POST /api/v1/auth/logout` body.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    /// The refresh token.
    #[validate(length(min = 1, max = 4096, message = "refresh_token must be 1 to 4096 bytes"))]
    pub refresh_token: String,
}

/// Tokens handed out at login and refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// The access JWT (15 minutes).
    pub access_token: String,
    /// The refresh JWT (7 days, rotated on each use).
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The session (refresh family) id.
    pub session_id: Uuid,
}

/// A session in the user's list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The session id.
    pub id: Uuid,
    /// Device label.
    pub device: String,
    /// Client address at login.
    pub ip: Option<String>,
    /// `User-Agent` at login.
    pub user_agent: String,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last login or refresh.
    pub last_active_at: DateTime<Utc>,
}

pub(crate) fn audit_event(
    actor: String,
    action: &str,
    severity: Severity,
    req: &HttpRequest,
) -> AuditEvent {
    let mut event = AuditEvent::new(actor, action, severity);
    if let Some(id) = current_request_id() {
        event = event.request_id(id);
    }
    if let Some(ip) = crate::ratelimit::client_ip(req) {
        event = event.ip(ip.to_string());
    }
    event
}

/// Appends to the audit log; a failed append fails the request (audited actions must not
/// happen unrecorded).
pub(crate) async fn audit(ctx: &AuthContext, event: AuditEvent) -> Result<(), ApiError> {
    ctx.audit.append(event).await.map_err(|e| {
        ApiError(
            Problem::new(ErrorCode::ServiceUnavailable, "audit log unavailable").with_source(e),
        )
    })?;
    Ok(())
}

/// The request's `User-Agent`, at most 512 characters, for the session list.
pub(crate) fn user_agent(req: &HttpRequest) -> String {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(512)
        .collect()
}

/// The session list as users (and guardians) see it.
pub(crate) fn session_views(sessions: Vec<haven_auth::Session>) -> Vec<SessionView> {
    sessions
        .into_iter()
        .map(|s| SessionView {
            id: s.family_id,
            device: s.device,
            ip: s.ip.map(|ip| ip.to_string()),
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_active_at: s.last_active_at,
        })
        .collect()
}

pub(crate) fn token_pair(access: IssuedToken, refresh: IssuedToken, session_id: Uuid) -> TokenPair {
    let (access_token, claims) = access.into_parts();
    TokenPair {
        access_token,
        refresh_token: refresh.into_parts().0,
        token_type: "Bearer",
        expires_in: claims.exp - claims.iat,
        session_id,
    }
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError(Problem::internal(e))
}

/// Logs in with e-mail and password: an access and a refresh token. Success and failure are
/// audited; an unknown e-mail costs the same argon2 work as a wrong password. Repeated
/// failures back off and then ban (see [`crate::lockout`]).
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 401, description = "Wrong e-mail or password", body = crate::openapi::ErrorBodySchema),
        (status = 429, description = "Too many failed attempts from this network, or for this account from this network: blocked for `Retry-After` seconds", body = crate::openapi::ErrorBodySchema),
        (status = 503, description = "Too many password checks at once: retry after `Retry-After` seconds", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn login(
    req: HttpRequest,
    ctx: web::Data<AuthContext>,
    body: ValidatedJson<Login>,
) -> Result<HttpResponse, ApiError> {
    let Login {
        email,
        password,
        device,
    } = body.0;
    let net = crate::ratelimit::client_net(&req);
    let account = crate::lockout::account_subject(&email);
    // The network's and this account-from-this-network's subjects block; the account as a
    // whole does not (see `crate::lockout`).
    let subjects: Vec<String> = net
        .map(|net| {
            vec![
                crate::lockout::ip_subject(net),
                crate::lockout::login_subject(&email, net),
            ]
        })
        .unwrap_or_default();
    let trusted = crate::ratelimit::client_ip(&req)
        .is_some_and(|ip| crate::ratelimit::in_networks(&ctx.trusted_networks, ip));
    // A blocked caller is refused before the password is looked at: guesses made during a
    // block are never evaluated, but they are signals for the fraud rules.
    if !trusted && let Some(left) = ctx.guard.blocked(&subjects).await {
        if let Some(net) = net {
            ctx.guard.signal(account.clone(), net.addr());
        }
        return Ok(crate::lockout::blocked_response(left));
    }
    let user = ctx.users.find_by_email(&email).await?;
    let stored = user
        .as_ref()
        .filter(|u| u.disabled_at.is_none())
        .and_then(|u| u.password_hash.clone());
    let ok = match ctx
        .passwords
        .verify(SecretString::from(password), stored)
        .await
    {
        Ok(ok) => ok,
        Err(crate::passwords::HashError::Busy) => return Ok(crate::passwords::busy_response()),
        // A hash that cannot be checked (corrupt PHC string) is a failed login.
        Err(_) => false,
    };
    let user = match (ok, user) {
        (true, Some(user)) => user,
        (_, user) => return Err(failed_login(&ctx, &req, user, &email, subjects, net).await),
    };
    if let Some(net) = net {
        ctx.guard
            .succeeded(&crate::lockout::login_subject(&email, net))
            .await;
    }
    let role = Role::from_str(user.role.as_str()).map_err(internal)?;
    let user_agent = user_agent(&req);
    let now = Utc::now();
    let created = ctx
        .sessions
        .create(
            NewSession {
                user_id: user.id,
                device: device.unwrap_or_else(|| user_agent.chars().take(64).collect()),
                ip: crate::ratelimit::client_ip(&req),
                user_agent,
            },
            &ctx.policy,
            now,
        )
        .await
        .map_err(session_error)?;
    let family = created.session.family_id;
    let access = ctx.jwt.issue_access(user.id, role, now).map_err(internal)?;
    let refresh = ctx
        .jwt
        .issue_refresh(user.id, role, family, created.refresh_jti, now)
        .map_err(internal)?;
    audit(
        &ctx,
        audit_event(
            format!("user:{}", user.id),
            "auth.login",
            Severity::Info,
            &req,
        )
        .target(format!("session:{family}"))
        .details(json!({"evicted": created.evicted})),
    )
    .await?;
    Ok(HttpResponse::Ok().json(token_pair(access, refresh, family)))
}

/// Records a failed login (lockout counts, fraud signal, audit rows with the e-mail's
/// digest, never the text) and returns the 401 to answer.
async fn failed_login(
    ctx: &AuthContext,
    req: &HttpRequest,
    user: Option<haven_db::User>,
    email: &str,
    subjects: Vec<String>,
    net: Option<ipnet::IpNet>,
) -> ApiError {
    let actor = user.map_or_else(|| "anonymous".to_owned(), |u| format!("user:{}", u.id));
    let account = crate::lockout::account_subject(email);
    let outcome = match net {
        Some(net) => Some(
            ctx.guard
                .failed(&subjects, account.clone(), net.addr())
                .await,
        ),
        None => None,
    };
    let failures = outcome.map(|o| o.failures);
    let blocked_secs = outcome.and_then(|o| o.blocked_for).map(|d| d.as_secs_f64());
    let email_digest = crate::lockout::email_digest(email);
    let recorded = audit(
        ctx,
        audit_event(actor.clone(), "auth.login_failed", Severity::Medium, req).details(json!({
            "email_digest": email_digest,
            "failures": failures,
            "blocked_secs": blocked_secs,
        })),
    )
    .await;
    if let Err(err) = recorded {
        return err;
    }
    if outcome.is_some_and(|o| o.banned_now) {
        let banned = audit(
            ctx,
            audit_event(actor, "auth.banned", Severity::High, req)
                .target(account)
                .details(json!({
                    "failures": failures,
                    "ban_secs": ctx.guard.policy().ban_for.as_secs(),
                })),
        )
        .await;
        if let Err(err) = banned {
            return err;
        }
    }
    ApiError::new(ErrorCode::Unauthorized, "invalid e-mail or password")
}

/// Rotates a refresh token. Presenting an already-rotated one revokes its whole session
/// family, answers 401 and records a HIGH security event.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "Rotated", body = TokenPair),
        (status = 401, description = "Refresh token invalid, expired or already used (the session is revoked)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn refresh(
    req: HttpRequest,
    ctx: web::Data<AuthContext>,
    body: ValidatedJson<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let claims = ctx
        .jwt
        .verify(&body.0.refresh_token, TokenType::Refresh)
        .map_err(|e| ApiError(Problem::new(e.code(), e.to_string())))?;
    let family = claims
        .fam
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "the refresh token has no family"))?;
    let now = Utc::now();
    let rotated = match ctx
        .sessions
        .rotate(family, claims.jti, &ctx.policy, now)
        .await
    {
        Ok(rotated) => rotated,
        Err(SessionError::ReuseDetected { family_id, user_id }) => {
            tracing::warn!(
                security_event = "refresh_token_reuse",
                %family_id,
                %user_id,
                "refresh token reuse: session revoked"
            );
            audit(
                &ctx,
                audit_event(
                    format!("user:{user_id}"),
                    "auth.refresh_reuse_detected",
                    Severity::High,
                    &req,
                )
                .target(format!("session:{family_id}"))
                .details(json!({"jti": claims.jti})),
            )
            .await?;
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "this refresh token was already used; the session has been revoked",
            ));
        }
        Err(e) => return Err(session_error(e)),
    };
    // The user is read again: a role change takes effect at the next refresh, and a user
    // who was removed or disabled gets no new token (the session ends).
    let role = match ctx.users.get(rotated.user_id).await? {
        Some(u) if u.disabled_at.is_none() => Role::from_str(u.role.as_str()).map_err(internal)?,
        _ => {
            match ctx.sessions.revoke(rotated.user_id, family, now).await {
                Ok(()) | Err(SessionError::NotFound { .. }) => {}
                Err(e) => return Err(session_error(e)),
            }
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "the session's user no longer exists or is disabled",
            ));
        }
    };
    let access = ctx
        .jwt
        .issue_access(rotated.user_id, role, now)
        .map_err(internal)?;
    let refresh = ctx
        .jwt
        .issue_refresh(rotated.user_id, role, family, rotated.refresh_jti, now)
        .map_err(internal)?;
    Ok(HttpResponse::Ok().json(token_pair(access, refresh, family)))
}

/// `POST /api/v1/auth/logout` body (optional): the session's refresh token, to end the
/// session as well as the access token.
#[derive(Deserialize, Validate, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutBody {
    /// The refresh token of the session to end.
    #[validate(length(max = 4096, message = "refresh_token must be at most 4096 bytes"))]
    pub refresh_token: Option<String>,
}

/// Logs out: the presented access token goes on the deny-list until it expires; with a
/// refresh token of the same user in the body, its session is revoked too.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    request_body(content = Option<LogoutBody>, description = "Optional: the session to end as well"),
    security(("bearer_jwt" = [])),
    responses(
        (status = 204, description = "Logged out"),
    ),
)]
pub async fn logout(
    user: CurrentUser,
    ctx: web::Data<AuthContext>,
    body: Option<web::Json<LogoutBody>>,
) -> Result<HttpResponse, ApiError> {
    let user_id = user.id;
    let now = Utc::now();
    let token = user
        .token
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "no access token"))?;
    ctx.sessions
        .deny_access_token(token.jti, token.expires_at, now)
        .await
        .map_err(session_error)?;
    if let Some(refresh) = body.and_then(|b| b.into_inner().refresh_token)
        && let Ok(claims) = ctx.jwt.verify(&refresh, TokenType::Refresh)
        && claims.sub == user_id
        && let Some(family) = claims.fam
    {
        match ctx.sessions.revoke(user_id, family, now).await {
            Ok(()) | Err(SessionError::NotFound { .. }) => {}
            Err(e) => return Err(session_error(e)),
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Logs out everywhere: every session of the user is revoked and every access token issued
/// up to now is refused.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout-all",
    tag = "auth",
    security(("bearer_jwt" = [])),
    responses(
        (status = 204, description = "Every session revoked"),
    ),
)]
pub async fn logout_all(
    req: HttpRequest,
    user: CurrentUser,
    ctx: web::Data<AuthContext>,
) -> Result<HttpResponse, ApiError> {
    let user_id = user.id;
    ctx.sessions
        .revoke_all(user_id, Utc::now())
        .await
        .map_err(session_error)?;
    audit(
        &ctx,
        audit_event(
            format!("user:{user_id}"),
            "auth.logout_everywhere",
            Severity::Medium,
            &req,
        ),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The user's active sessions, most recently active first.
#[utoipa::path(
    get,
    path = "/api/v1/auth/sessions",
    tag = "auth",
    security(("bearer_jwt" = [])),
    responses(
        (status = 200, description = "Active sessions", body = Vec<SessionView>),
    ),
)]
pub async fn sessions(
    user: CurrentUser,
    ctx: web::Data<AuthContext>,
) -> Result<HttpResponse, ApiError> {
    let user_id = user.id;
    let sessions = ctx
        .sessions
        .list(user_id, &ctx.policy, Utc::now())
        .await
        .map_err(session_error)?;
    let views = session_views(sessions);
    Ok(HttpResponse::Ok().json(views))
}

/// Who the caller is: `{"kind": "user", "id", "role", "permissions"}` or `{"kind":
/// "service", "key_id", "scopes", "permissions"}`; `permissions` lists the scopes the caller
/// holds (what the console shows action buttons for).
#[utoipa::path(
    get,
    path = "/api/v1/auth/whoami",
    tag = "auth",
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller", body = crate::openapi::Whoami),
    ),
)]
pub async fn whoami(principal: Authenticated) -> Result<HttpResponse, ApiError> {
    let body = match principal.0 {
        haven_auth::Principal::User { id, role } => {
            let permissions: Vec<&str> = haven_auth::Permission::ALL
                .iter()
                .filter(|p| role.allows(**p))
                .map(|p| p.as_scope())
                .collect();
            json!({"kind": "user", "id": id, "role": role, "permissions": permissions})
        }
        haven_auth::Principal::Service { key_id, scopes } => {
            json!({"kind": "service", "key_id": key_id, "permissions": &scopes, "scopes": scopes})
        }
    };
    Ok(HttpResponse::Ok().json(body))
}

/// Revokes one of the user's own sessions; another user's answers 404.
#[utoipa::path(
    delete,
    path = "/api/v1/auth/sessions/{id}",
    tag = "auth",
    params(("id" = Uuid, Path, description = "The session id")),
    security(("bearer_jwt" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "Not found", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn revoke_session(
    user: CurrentUser,
    ctx: web::Data<AuthContext>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let user_id = user.id;
    ctx.sessions
        .revoke(user_id, id.into_inner(), Utc::now())
        .await
        .map_err(session_error)?;
    Ok(HttpResponse::NoContent().finish())
}

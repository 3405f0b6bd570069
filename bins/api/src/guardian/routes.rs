//! Vault administration (permission `vaults:manage`, admin only) and the guardians' own
//! routes: join, refresh, sessions. Every change is audited (the vault service audits its
//! operations, refusals included; session revocations here).

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use ed25519_dalek::VerifyingKey;
use haven_auth::{NewSession, Role, SessionError, TokenType};
use haven_core::audit::{AuditSink, Severity};
use haven_core::{ErrorCode, Problem};
use haven_vault::protocol::{RequestView, ServerMessage};
use haven_vault::{
    Amount, Caller, GuardianId, InvitationCode, Operation, OperationKind, Policy, RequestState,
    VaultId,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;
use validator::Validate;

use super::hub::Event;
use super::{CurrentGuardian, GuardianContext};
use crate::auth::{Authenticated, session_error};
use crate::error::ApiError;
use crate::extract::ValidatedJson;
use crate::routes::auth::{
    RefreshBody, SessionView, TokenPair, audit_event, session_views, token_pair, user_agent,
};

fn caller(req: &HttpRequest, actor: String) -> Caller {
    let mut caller = Caller::new(actor);
    if let Some(id) = crate::error::current_request_id() {
        caller = caller.with_request_id(id);
    }
    if let Some(ip) = crate::ratelimit::client_ip(req) {
        caller = caller.with_ip(ip.to_string());
    }
    caller
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError(Problem::internal(e))
}

/// `POST /api/v1/admin/vaults` body.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVault {
    /// A name, 1 to 100 characters.
    #[validate(length(min = 1, max = 100))]
    pub name: String,
    /// M: approvals needed (1 to 16).
    pub threshold: u32,
    /// The operations it protects and, for each, the smallest amount (base units, decimal
    /// string) from which it needs the guardians: `{"redemption": "1000000000000000000000"}`.
    #[schema(value_type = Object)]
    pub covers: BTreeMap<OperationKind, Amount>,
}

/// Creates a vault; guardians join it with invitations.
#[utoipa::path(
    post,
    path = "/api/v1/admin/vaults",
    tag = "vaults",
    request_body = CreateVault,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 201, description = "Created", body = Object)),
)]
pub async fn create_vault(
    req: HttpRequest,
    principal: Authenticated,
    ctx: web::Data<GuardianContext>,
    body: ValidatedJson<CreateVault>,
) -> Result<HttpResponse, ApiError> {
    let CreateVault {
        name,
        threshold,
        covers,
    } = body.0;
    let policy = covers
        .into_iter()
        .fold(Policy::new(threshold), |p, (kind, min)| p.cover(kind, min));
    let vault = ctx
        .vaults
        .create_vault(&name, policy, &caller(&req, principal.actor()))
        .await?;
    Ok(HttpResponse::Created().json(json!({
        "id": vault.id, "name": vault.name, "policy": vault.policy, "created_at": vault.created_at,
    })))
}

/// A vault, its guardians (device keys, never anything secret) and its open requests.
#[utoipa::path(
    get,
    path = "/api/v1/admin/vaults/{id}",
    tag = "vaults",
    params(("id" = Uuid, Path, description = "The vault id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The vault", body = Object)),
)]
pub async fn get_vault(
    _principal: Authenticated,
    ctx: web::Data<GuardianContext>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = VaultId(id.into_inner());
    let vault = ctx.vaults.vault(id).await?;
    let guardians: Vec<Value> = ctx
        .vaults
        .guardians(id)
        .await?
        .iter()
        .map(|g| {
            json!({
                "id": g.id, "device_key": hex::encode(g.device_key.as_bytes()),
                "joined_at": g.joined_at, "removed_at": g.removed_at,
            })
        })
        .collect();
    let open: Vec<RequestView> = ctx
        .vaults
        .requests(id, Some(RequestState::Open))
        .await?
        .iter()
        .map(RequestView::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "id": vault.id, "name": vault.name, "policy": vault.policy,
        "created_at": vault.created_at, "guardians": guardians, "open_requests": open,
    })))
}

/// Creates a single-use invitation; the code is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/admin/vaults/{id}/invitations",
    tag = "vaults",
    params(("id" = Uuid, Path, description = "The vault id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 201, description = "The invitation and its code, shown once", body = Object)),
)]
pub async fn invite(
    req: HttpRequest,
    principal: Authenticated,
    ctx: web::Data<GuardianContext>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let created = ctx
        .vaults
        .invite(VaultId(id.into_inner()), &caller(&req, principal.actor()))
        .await?;
    let mut response = HttpResponse::Created();
    response.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    Ok(response.json(json!({
        "invitation_id": created.invitation.id,
        "vault_id": created.invitation.vault_id,
        "code": created.code.expose(),
        "expires_at": created.invitation.expires_at,
    })))
}

/// Removes a guardian: its decisions on open requests are void and those are recounted.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/vaults/{id}/guardians/{guardian_id}",
    tag = "vaults",
    params(
        ("id" = Uuid, Path, description = "The vault id"),
        ("guardian_id" = Uuid, Path, description = "The guardian id"),
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "Removed", body = Object)),
)]
pub async fn remove_guardian(
    req: HttpRequest,
    principal: Authenticated,
    ctx: web::Data<GuardianContext>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (vault, guardian) = path.into_inner();
    let vault = VaultId(vault);
    let removal = ctx
        .vaults
        .remove_guardian(
            vault,
            GuardianId(guardian),
            &caller(&req, principal.actor()),
        )
        .await?;
    ctx.hub.send(vault, Event::GuardianRemoved(guardian));
    for request_id in &removal.closed {
        if let Ok(request) = ctx.vaults.request(*request_id).await {
            ctx.releases.closed(&request).await;
        }
        ctx.hub.push(
            vault,
            ServerMessage::RequestClosed {
                request_id: *request_id,
                state: RequestState::Rejected,
            },
        );
    }
    Ok(HttpResponse::Ok().json(json!({
        "guardian_id": guardian, "removed_at": removal.guardian.removed_at,
        "voided": removal.voided, "closed": removal.closed,
    })))
}

/// `POST /api/v1/admin/vaults/{id}/requests` body: an operation for the guardians.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    /// What is to be done (`minter_role_change`, `master_key_rotation`, …).
    #[schema(value_type = String)]
    pub kind: OperationKind,
    /// How much, base units (decimal string), when it has an amount.
    #[schema(value_type = Option<String>)]
    pub amount: Option<Amount>,
    /// What the executor needs; integers and strings only.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Value,
}

/// Submits an operation the vault's policy covers; its guardians are told at once.
#[utoipa::path(
    post,
    path = "/api/v1/admin/vaults/{id}/requests",
    tag = "vaults",
    params(("id" = Uuid, Path, description = "The vault id")),
    request_body = Submit,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 201, description = "Waiting for the guardians", body = Object)),
)]
pub async fn submit(
    req: HttpRequest,
    principal: Authenticated,
    ctx: web::Data<GuardianContext>,
    id: web::Path<Uuid>,
    body: web::Json<Submit>,
) -> Result<HttpResponse, ApiError> {
    let vault = VaultId(id.into_inner());
    let Submit {
        kind,
        amount,
        params,
    } = body.into_inner();
    let mut operation =
        Operation::new(kind).params(if params.is_null() { json!({}) } else { params });
    if let Some(amount) = amount {
        operation = operation.amount(amount);
    }
    let request = ctx
        .vaults
        .create_request(vault, operation, &caller(&req, principal.actor()))
        .await?;
    super::release::announce(&ctx, &request, request.id.0);
    Ok(HttpResponse::Created().json(RequestView::from(&request)))
}

/// `POST /api/v1/guardian/join` body.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// The vault the invitation is for.
    pub vault_id: Uuid,
    /// The invitation code.
    #[validate(length(min = 1, max = 128))]
    pub code: String,
    /// The device's ed25519 public key, 64 hex digits.
    #[validate(length(equal = 64))]
    pub device_public_key: String,
    /// A label for the session list.
    #[validate(length(max = 64))]
    pub device: Option<String>,
}

/// The answer to a join: the guardian and its first token pair.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Joined {
    /// The new guardian.
    pub guardian_id: Uuid,
    /// Its vault.
    pub vault_id: Uuid,
    /// Its tokens.
    #[serde(flatten)]
    pub tokens: TokenPair,
}

/// Joins a vault with an invitation code and a device key; answers the guardian's tokens.
#[utoipa::path(
    post,
    path = "/api/v1/guardian/join",
    tag = "guardians",
    request_body = Join,
    responses(
        (status = 201, description = "Joined", body = Joined),
        (status = 403, description = "Unknown or expired code, or a code for another vault", body = crate::openapi::ErrorBodySchema),
        (status = 409, description = "Code already used, or the device key is already a guardian of the vault", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn join(
    req: HttpRequest,
    ctx: web::Data<GuardianContext>,
    body: ValidatedJson<Join>,
) -> Result<HttpResponse, ApiError> {
    let Join {
        vault_id,
        code,
        device_public_key,
        device,
    } = body.0;
    let key = decode_key(&device_public_key)?;
    let caller = caller(&req, format!("device:{}", &device_public_key[..16]));
    let guardian = ctx
        .vaults
        .join(
            VaultId(vault_id),
            &InvitationCode::from_text(code),
            key,
            &caller,
        )
        .await?;
    let user_agent = user_agent(&req);
    let now = Utc::now();
    let created = ctx
        .sessions
        .create(
            NewSession {
                user_id: guardian.id.0,
                device: device.unwrap_or_else(|| "guardian device".into()),
                ip: crate::ratelimit::client_ip(&req),
                user_agent,
            },
            &ctx.policy,
            now,
        )
        .await
        .map_err(session_error)?;
    let family = created.session.family_id;
    let access = ctx
        .issue_access(guardian.id, family, now)
        .map_err(internal)?;
    let refresh = ctx
        .jwt
        .issue_refresh(
            guardian.id.0,
            Role::Guardian,
            family,
            created.refresh_jti,
            now,
        )
        .map_err(internal)?;
    Ok(HttpResponse::Created().json(Joined {
        guardian_id: guardian.id.0,
        vault_id,
        tokens: token_pair(access, refresh, family),
    }))
}

fn decode_key(hex_text: &str) -> Result<VerifyingKey, ApiError> {
    let invalid = |why: &str| {
        ApiError::new(
            ErrorCode::ValidationError,
            format!("device_public_key: {why}"),
        )
    };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut bytes).map_err(|_| invalid("64 hex digits"))?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| invalid("not an ed25519 key"))?;
    if key.is_weak() {
        return Err(invalid("a weak (small-order) key"));
    }
    Ok(key)
}

/// Rotates a guardian's refresh token (a reused one revokes the session).
#[utoipa::path(
    post,
    path = "/api/v1/guardian/refresh",
    tag = "guardians",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens", body = TokenPair),
        (status = 401, description = "Invalid, expired or reused refresh token, or the guardian was removed", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn refresh(
    ctx: web::Data<GuardianContext>,
    body: ValidatedJson<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let unauthorized = |m: String| ApiError::new(ErrorCode::Unauthorized, m);
    let claims = ctx
        .jwt
        .verify(&body.0.refresh_token, TokenType::Refresh)
        .map_err(|e| ApiError(Problem::new(e.code(), e.to_string())))?;
    let (Role::Guardian, Some(family)) = (claims.role, claims.fam) else {
        return Err(unauthorized("not a guardian refresh token".into()));
    };
    let now = Utc::now();
    let rotated = ctx
        .sessions
        .rotate(family, claims.jti, &ctx.policy, now)
        .await
        .map_err(session_error)?;
    let guardian = ctx.vaults.guardian(GuardianId(rotated.user_id)).await?;
    if !guardian.is_active() {
        match ctx.sessions.revoke(guardian.id.0, family, now).await {
            Ok(()) | Err(SessionError::NotFound { .. }) => {}
            Err(e) => return Err(session_error(e)),
        }
        return Err(unauthorized(
            "the guardian was removed from its vault".into(),
        ));
    }
    let access = ctx
        .issue_access(guardian.id, family, now)
        .map_err(internal)?;
    let refresh = ctx
        .jwt
        .issue_refresh(
            guardian.id.0,
            Role::Guardian,
            family,
            rotated.refresh_jti,
            now,
        )
        .map_err(internal)?;
    Ok(HttpResponse::Ok().json(token_pair(access, refresh, family)))
}

/// The guardian's active sessions, most recently active first.
#[utoipa::path(
    get,
    path = "/api/v1/guardian/sessions",
    tag = "guardians",
    security(("guardian_token" = [])),
    responses((status = 200, description = "Active sessions", body = Vec<SessionView>)),
)]
pub async fn sessions(
    guardian: CurrentGuardian,
    ctx: web::Data<GuardianContext>,
) -> Result<HttpResponse, ApiError> {
    let listed = ctx
        .sessions
        .list(guardian.0.guardian_id.0, &ctx.policy, Utc::now())
        .await
        .map_err(session_error)?;
    Ok(HttpResponse::Ok().json(session_views(listed)))
}

/// Revokes one of the guardian's own sessions: its sockets close at once on this replica,
/// within a heartbeat on the others; another guardian's session answers 404.
#[utoipa::path(
    delete,
    path = "/api/v1/guardian/sessions/{id}",
    tag = "guardians",
    params(("id" = Uuid, Path, description = "The session id")),
    security(("guardian_token" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "Not found", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn revoke_session(
    req: HttpRequest,
    guardian: CurrentGuardian,
    ctx: web::Data<GuardianContext>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let session = id.into_inner();
    let principal = guardian.0;
    ctx.sessions
        .revoke(principal.guardian_id.0, session, Utc::now())
        .await
        .map_err(session_error)?;
    let event = audit_event(
        principal.actor(),
        "guardian.session.revoke",
        Severity::Medium,
        &req,
    )
    .target(format!("session:{session}"))
    .details(json!({"vault_id": principal.vault_id}));
    ctx.audit.append(event).await.map_err(|e| {
        ApiError(
            Problem::new(ErrorCode::ServiceUnavailable, "audit log unavailable").with_source(e),
        )
    })?;
    ctx.hub
        .send(principal.vault_id, Event::SessionRevoked(session));
    Ok(HttpResponse::NoContent().finish())
}

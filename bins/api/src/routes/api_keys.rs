//! API keys: create (the plaintext is shown once), list and revoke the caller's own keys.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_auth::{ApiKey, ApiKeyHash, Permission, parse_scopes};
use haven_core::audit::{AuditEvent, Severity};
use haven_core::{ErrorCode, Problem};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{AuthContext, CurrentUser};
use crate::error::{ApiError, current_request_id};
use crate::extract::ValidatedJson;
use crate::routes::auth::audit;

/// `POST /api/v1/api-keys` body.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A name to recognise the key by.
    #[validate(
        length(min = 1, max = 100, message = "name must be 1 to 100 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub name: String,
    /// Scopes (`"transactions:read"`), each within the creator's role.
    #[validate(length(max = 32, message = "at most 32 scopes"))]
    pub scopes: Vec<String>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// A member of the rewards program the key acts for: it then reaches that member only,
    /// and its scopes may be `members:read` and `members:manage` only (a partner app showing
    /// a member their tokens).
    pub member_id: Option<Uuid>,
}

/// A key as listed: never the key itself nor its hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Display prefix (`hvn_live_AbC1`).
    pub display_prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The member a member-scoped key acts for.
    pub member_id: Option<Uuid>,
}

impl From<haven_db::ApiKeyRecord> for KeyView {
    fn from(r: haven_db::ApiKeyRecord) -> Self {
        Self {
            id: r.id,
            name: r.name,
            display_prefix: r.display_prefix,
            scopes: r.scopes,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            member_id: r.member_id,
        }
    }
}

fn event(actor: String, action: &str, target: Uuid, req: &HttpRequest) -> AuditEvent {
    let mut event =
        AuditEvent::new(actor, action, Severity::Medium).target(format!("api_key:{target}"));
    if let Some(id) = current_request_id() {
        event = event.request_id(id);
    }
    if let Some(ip) = crate::ratelimit::client_ip(req) {
        event = event.ip(ip.to_string());
    }
    event
}

/// Creates a key for the calling user: 201 with the plaintext `key`, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    request_body = CreateKey,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created; the key is shown this once", body = crate::openapi::CreatedKey),
    ),
)]
pub async fn create(
    req: HttpRequest,
    user: CurrentUser,
    ctx: web::Data<AuthContext>,
    body: ValidatedJson<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, role) = (user.id, user.role);
    let CreateKey {
        name,
        scopes,
        expires_at,
        member_id,
    } = body.0;
    let parsed = parse_scopes(&scopes).map_err(|e| {
        ApiError(Problem::new(e.code(), e.to_string()).with_detail("field", "scopes"))
    })?;
    role.check_grantable(&parsed)
        .map_err(|e| ApiError(Problem::new(e.code(), e.to_string())))?;
    if member_id.is_some()
        && let Some(beyond) = parsed
            .iter()
            .find(|p| !matches!(p, Permission::ReadMembers | Permission::ManageMembers))
    {
        return Err(ApiError(
            Problem::new(
                ErrorCode::ValidationError,
                format!(
                    "a member-scoped key holds members:read and members:manage only, not {beyond}"
                ),
            )
            .with_detail("field", "scopes"),
        ));
    }
    if let Some(member) = member_id
        && haven_db::PgRewards::new(ctx.api_keys.pool().clone())
            .member(member)
            .await?
            .is_none()
    {
        return Err(ApiError(
            Problem::new(ErrorCode::ValidationError, format!("no member {member}"))
                .with_detail("field", "member_id"),
        ));
    }
    if expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError(
            Problem::new(
                ErrorCode::ValidationError,
                "expires_at must be in the future",
            )
            .with_detail("field", "expires_at"),
        ));
    }
    let key = ApiKey::generate(ctx.key_env).map_err(|e| ApiError(Problem::internal(e)))?;
    let scopes: Vec<String> = parsed.iter().map(|p| p.as_scope().to_owned()).collect();
    let record = ctx
        .api_keys
        .insert(haven_db::NewApiKey {
            name,
            owner_id: user_id,
            key_hash: ctx.hasher.hash(key.expose_secret()).0,
            display_prefix: key.display_prefix(),
            scopes,
            expires_at,
            member_id,
        })
        .await?;
    audit(
        &ctx,
        event(format!("user:{user_id}"), "api_key.create", record.id, &req)
            .details(json!({"name": record.name, "scopes": record.scopes})),
    )
    .await?;
    let view = KeyView::from(record);
    Ok(HttpResponse::Created().json(json!({
        "id": view.id,
        "name": view.name,
        "key": key.expose_secret(),
        "display_prefix": view.display_prefix,
        "scopes": view.scopes,
        "created_at": view.created_at,
        "expires_at": view.expires_at,
    })))
}

/// The calling user's keys, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller's keys", body = Vec<KeyView>),
    ),
)]
pub async fn list(
    user: CurrentUser,
    ctx: web::Data<AuthContext>,
) -> Result<HttpResponse, ApiError> {
    let user_id = user.id;
    let keys: Vec<KeyView> = ctx
        .api_keys
        .list_by_owner(user_id)
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect();
    Ok(HttpResponse::Ok().json(keys))
}

/// Revokes one of the calling user's keys (audited); another owner's key answers 404.
/// Other instances stop accepting it within the 30 s validation cache.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    tag = "api-keys",
    params(("id" = Uuid, Path, description = "The key id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "Not found", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn revoke(
    req: HttpRequest,
    user: CurrentUser,
    ctx: web::Data<AuthContext>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let user_id = user.id;
    let id = id.into_inner();
    let record = ctx
        .api_keys
        .list_by_owner(user_id)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no API key {id}")))?;
    if ctx.api_keys.revoke(id).await? {
        audit(
            &ctx,
            event(format!("user:{user_id}"), "api_key.revoke", id, &req),
        )
        .await?;
    }
    if let Ok(hash) = <[u8; 32]>::try_from(record.key_hash.as_slice()) {
        ctx.key_cache.invalidate(&ApiKeyHash(hash));
    }
    Ok(HttpResponse::NoContent().finish())
}

//! User administration: create, list, change a role, disable. Every change is audited in the
//! same database transaction as the change itself.
//!
//! A role change or a disabled account ends the user's existing access at once: their
//! sessions are revoked and every access token issued so far is refused (the per-user
//! not-before), so a token carrying the old role stops working; API keys whose scopes the
//! new role cannot grant are revoked (all of them when the account is disabled). The last
//! active admin can be neither demoted nor disabled (409 `LAST_ADMIN`).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_auth::{ApiKeyHash, Role};
use haven_core::audit::Severity;
use haven_core::{ErrorCode, Problem};
use haven_db::{Disable, RevokedKey, RoleChange, User};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{AuthContext, Authenticated};
use crate::error::ApiError;
use crate::extract::ValidatedJson;
use crate::routes::admin::{applied, event, page_limit, refuse};

/// A user as listed: never the password hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Id.
    pub id: Uuid,
    /// Login e-mail.
    pub email: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Set when the account is disabled.
    pub disabled_at: Option<DateTime<Utc>>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            role: u.role.as_str().to_owned(),
            created_at: u.created_at,
            disabled_at: u.disabled_at,
        }
    }
}

/// The stored role; `guardian` is a vault device's token role, never a user's (422).
fn db_role(role: Role) -> Result<haven_db::Role, ApiError> {
    match role {
        Role::Admin => Ok(haven_db::Role::Admin),
        Role::Operator => Ok(haven_db::Role::Operator),
        Role::Viewer => Ok(haven_db::Role::Viewer),
        Role::Guardian => Err(ApiError::new(
            ErrorCode::ValidationError,
            "role: guardian belongs to vault devices, not users (admin, operator or viewer)",
        )),
    }
}

/// `POST /api/v1/users` body.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login e-mail, unique case-insensitively.
    #[validate(
        email(message = "email must be an e-mail address"),
        length(max = 320, message = "email must be at most 320 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub email: String,
    /// The initial password.
    #[validate(
        length(
            min = 12,
            max = 1024,
            message = "password must be 12 to 1024 characters"
        ),
        custom(function = "crate::extract::no_nul")
    )]
    pub password: String,
    /// `admin`, `operator` or `viewer`.
    #[schema(value_type = String, example = "operator")]
    pub role: Role,
}

/// Creates a user (audited `user.create`); a taken e-mail is a 409 `CONFLICT`.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = CreateUser,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 409, description = "The e-mail is taken", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn create(
    req: HttpRequest,
    principal: Authenticated,
    ctx: web::Data<AuthContext>,
    body: ValidatedJson<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let CreateUser {
        email,
        password,
        role,
    } = body.0;
    let role = db_role(role)?;
    let hash = match ctx.passwords.hash(SecretString::from(password)).await {
        Ok(hash) => hash,
        Err(crate::passwords::HashError::Busy) => return Ok(crate::passwords::busy_response()),
        Err(e) => return Err(e.into()),
    };
    let audit =
        event(&req, &principal, "user.create", Severity::Medium).details(applied(json!({})));
    let user = ctx
        .users
        .create_audited(
            haven_db::NewUser {
                email,
                password_hash: Some(hash.as_str().to_owned()),
                role,
            },
            audit,
        )
        .await?;
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// `GET /api/v1/users` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
    /// The last id of the previous page.
    pub after: Option<Uuid>,
}

/// Users in creation order, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    params(ListQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Users, oldest first", body = Vec<UserView>),
    ),
)]
pub async fn list(
    _: Authenticated,
    ctx: web::Data<AuthContext>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit)?;
    let users: Vec<UserView> = ctx
        .users
        .list(query.after, i64::from(limit))
        .await?
        .into_iter()
        .map(UserView::from)
        .collect();
    Ok(HttpResponse::Ok().json(users))
}

/// `PUT /api/v1/users/{id}/role` body.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// `admin`, `operator` or `viewer`.
    #[schema(value_type = String, example = "viewer")]
    pub role: Role,
}

/// The answer to a role change or a disabled account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserChange {
    /// The user after the change.
    pub user: UserView,
    /// Whether anything changed (`false`: the user already had that role or was disabled).
    pub changed: bool,
    /// The role before (role changes).
    pub previous_role: Option<String>,
    /// Ids of the user's API keys revoked with the change.
    pub revoked_api_keys: Vec<Uuid>,
}

/// After a role change or a disable committed (with the user's not-before set to `now` in
/// the same transaction): the user's tokens are refused on every replica at once, and the
/// revoked keys leave this replica's key cache. The revoked key ids.
async fn revoked(
    ctx: &AuthContext,
    user: Uuid,
    now: chrono::DateTime<Utc>,
    keys: &[haven_db::RevokedKey],
) -> Vec<Uuid> {
    ctx.revocations
        .announce(haven_auth::session::Revocation::User {
            user_id: user,
            not_before: now,
        })
        .await;
    forget_keys(ctx, keys)
}

fn forget_keys(ctx: &AuthContext, keys: &[RevokedKey]) -> Vec<Uuid> {
    for key in keys {
        if let Ok(hash) = <[u8; 32]>::try_from(key.key_hash.as_slice()) {
            ctx.key_cache.invalidate(&ApiKeyHash(hash));
        }
    }
    keys.iter().map(|k| k.id).collect()
}

fn last_admin(id: Uuid, what: &str) -> ApiError {
    ApiError(
        Problem::new(
            ErrorCode::LastAdmin,
            format!("user {id} is the last active admin and cannot be {what}"),
        )
        .with_detail("user_id", id.to_string()),
    )
}

fn no_user(id: Uuid) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no user {id}"))
}

/// Changes a user's role (audited `user.role_change` with the old and new role). The user's
/// sessions and access tokens end with it; API keys beyond the new role are revoked.
/// Demoting the last active admin is a 409 `LAST_ADMIN`.
#[utoipa::path(
    put,
    path = "/api/v1/users/{id}/role",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user id")),
    request_body = SetRole,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Changed (or already that role)", body = UserChange),
        (status = 404, description = "No such user", body = crate::openapi::ErrorBodySchema),
        (status = 409, description = "The last active admin cannot be demoted (`LAST_ADMIN`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn set_role(
    req: HttpRequest,
    principal: Authenticated,
    ctx: web::Data<AuthContext>,
    id: web::Path<Uuid>,
    body: ValidatedJson<SetRole>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let to = db_role(body.0.role)?;
    let audit = event(&req, &principal, "user.role_change", Severity::High);
    let now = Utc::now();
    let outcome = ctx
        .users
        .change_role_audited(id, to, audit.clone().details(applied(json!({}))), now)
        .await?;
    let change = match outcome {
        RoleChange::Changed {
            user,
            from,
            revoked_keys,
        } => UserChange {
            previous_role: Some(from.as_str().to_owned()),
            revoked_api_keys: revoked(&ctx, id, now, &revoked_keys).await,
            user: user.into(),
            changed: true,
        },
        RoleChange::Unchanged(user) => UserChange {
            previous_role: Some(user.role.as_str().to_owned()),
            user: user.into(),
            changed: false,
            revoked_api_keys: Vec::new(),
        },
        RoleChange::NotFound => return Err(no_user(id)),
        RoleChange::LastAdmin => {
            let details = json!({"from": "admin", "to": to.as_str()});
            let audit = audit.target(format!("user:{id}"));
            return Err(refuse(&ctx, audit, details, last_admin(id, "demoted")).await);
        }
    };
    Ok(HttpResponse::Ok().json(change))
}

/// Disables a user (audited `user.disable`): they can no longer log in, and their sessions,
/// access tokens and API keys end with it. Disabling the last active admin is a 409
/// `LAST_ADMIN`.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/disable",
    tag = "users",
    params(("id" = Uuid, Path, description = "The user id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Disabled (or already disabled)", body = UserChange),
        (status = 404, description = "No such user", body = crate::openapi::ErrorBodySchema),
        (status = 409, description = "The last active admin cannot be disabled (`LAST_ADMIN`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn disable(
    req: HttpRequest,
    principal: Authenticated,
    ctx: web::Data<AuthContext>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let audit = event(&req, &principal, "user.disable", Severity::High);
    let now = Utc::now();
    let change = match ctx
        .users
        .disable_audited(id, audit.clone().details(applied(json!({}))), now)
        .await?
    {
        Disable::Disabled { user, revoked_keys } => UserChange {
            user: user.into(),
            changed: true,
            previous_role: None,
            revoked_api_keys: revoked(&ctx, id, now, &revoked_keys).await,
        },
        Disable::AlreadyDisabled(user) => UserChange {
            user: user.into(),
            changed: false,
            previous_role: None,
            revoked_api_keys: Vec::new(),
        },
        Disable::NotFound => return Err(no_user(id)),
        Disable::LastAdmin => {
            let audit = audit.target(format!("user:{id}"));
            let details = json!({"role": "admin"});
            return Err(refuse(&ctx, audit, details, last_admin(id, "disabled")).await);
        }
    };
    Ok(HttpResponse::Ok().json(change))
}

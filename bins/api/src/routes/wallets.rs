//! Custody wallets for administrators: create, list, one wallet, rotate, revoke; public data
//! only.
//!
//! **Invariant:** nothing here returns key material: every route goes through the audited
//! custody path (`Custody::create_wallet`, `list_wallets`, `get_wallet`, `rotate_wallet_from`,
//! `revoke_wallet`: one `wallet.*` audit row per call, actor and client address included),
//! whose wallets carry addresses and key versions, never a sealed key.
//!
//! Creating and rotating generate and seal a key, so they need the master keys
//! (`HAVEN_MASTER_KEYS`). A deployment that keeps them off the public-facing process leaves
//! the setting unset: the api's custody then holds none ([`NoKeyProvider`]), those two routes
//! answer 503 `NOT_CONFIGURED` (the log names the setting), and `haven-admin custody wallet create | rotate` does the
//! same work where the keys are.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_core::{ErrorCode, Problem};
use haven_custody::{
    Caller, Chain, Custody, CustodyConfig, KeyProvider, NoKeyProvider, PageRequest, Wallet,
    WalletFilter, WalletId, WalletStatus,
};
use haven_db::{PgAuditLog, PgWalletStore};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::auth::Authenticated;
use crate::error::{ApiError, current_request_id};
use crate::routes::admin::page_limit;
use crate::state::AppState;

/// One key version of a wallet: public data only.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WalletKeyView {
    /// From 1, one more on every rotation.
    pub version: u32,
    /// The address of this key.
    pub address: String,
    /// `active`, `rotated` or `revoked`.
    pub status: String,
    /// The master key (KEK) version its data key is wrapped under.
    pub kek_version: u32,
    /// When the key was generated.
    pub created_at: DateTime<Utc>,
    /// When it was rotated or revoked.
    pub retired_at: Option<DateTime<Utc>>,
}

/// A custody wallet: id, address, key versions; never key material.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WalletView {
    /// The wallet id.
    pub id: String,
    /// `evm` or `solana`.
    pub chain: String,
    /// `active` or `revoked`.
    pub status: String,
    /// The address of the current key.
    pub address: Option<String>,
    /// The version of the key that signs.
    pub key_version: u32,
    /// Public metadata given at creation.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last rotation or revocation.
    pub updated_at: DateTime<Utc>,
    /// Every key version, oldest first.
    pub keys: Vec<WalletKeyView>,
}

impl From<Wallet> for WalletView {
    fn from(w: Wallet) -> Self {
        let address = w.current_key().map(|k| k.address.clone());
        let r = w.record;
        Self {
            id: r.id.as_str().to_owned(),
            chain: r.chain.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            address,
            key_version: r.current_version,
            metadata: r.metadata,
            created_at: r.created_at,
            updated_at: r.updated_at,
            keys: w
                .keys
                .into_iter()
                .map(|k| WalletKeyView {
                    version: k.version,
                    address: k.address,
                    status: k.status.as_str().to_owned(),
                    kek_version: k.kek_version,
                    created_at: k.created_at,
                    retired_at: k.retired_at,
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/admin/wallets` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only `evm` or `solana` wallets.
    pub chain: Option<String>,
    /// Only `active` or `revoked` wallets.
    pub status: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// A page of wallets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WalletPageView {
    /// Wallets ordered by id.
    pub wallets: Vec<WalletView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

fn invalid_query(field: &str, message: String) -> ApiError {
    ApiError(Problem::new(ErrorCode::InvalidQuery, message).with_detail("field", field))
}

fn custody_error(e: haven_custody::Error) -> ApiError {
    ApiError(Problem::new(e.code(), e.to_string()).with_source(e))
}

fn custody(state: &AppState) -> Custody {
    let keys: Arc<dyn KeyProvider> = match &state.config.custody_keys {
        Some(keys) => keys.clone(),
        None => Arc::new(NoKeyProvider),
    };
    Custody::new(
        Arc::new(PgWalletStore::new(state.db.clone())),
        keys,
        Arc::new(PgAuditLog::new(state.db.clone())),
        CustodyConfig::default(),
    )
}

fn caller(req: &actix_web::HttpRequest, principal: &Authenticated) -> Caller {
    Caller {
        actor: principal.actor(),
        request_id: current_request_id(),
        ip: crate::ratelimit::client_ip(req).map(|ip| ip.to_string()),
    }
}

fn wallet_id(raw: String) -> Result<WalletId, ApiError> {
    WalletId::new(raw).map_err(|e| {
        ApiError(Problem::new(ErrorCode::InvalidPath, e.to_string()).with_detail("field", "id"))
    })
}

/// One custody wallet (audited as `wallet.get`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/wallets/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The wallet id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The wallet", body = WalletView),
        (status = 404, description = "No such wallet", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn get(
    req: actix_web::HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = wallet_id(id.into_inner())?;
    let wallet = custody(&state)
        .get_wallet(&id, &caller(&req, &principal))
        .await
        .map_err(custody_error)?;
    Ok(HttpResponse::Ok().json(WalletView::from(wallet)))
}

/// `POST /api/v1/admin/wallets/{id}/revoke` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// The wallet id again: a revocation is for good, so the caller names what it revokes.
    pub confirm: String,
}

/// Revokes a wallet for good: it never signs again (audited as `wallet.revoke`). The body
/// repeats the wallet id. Revoking a revoked wallet changes nothing and answers it again.
#[utoipa::path(
    post,
    path = "/api/v1/admin/wallets/{id}/revoke",
    tag = "admin",
    params(("id" = String, Path, description = "The wallet id")),
    request_body = RevokeBody,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Revoked", body = WalletView),
        (status = 404, description = "No such wallet", body = crate::openapi::ErrorBodySchema),
        (status = 400, description = "`confirm` is not the wallet id (`VALIDATION_ERROR`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn revoke(
    req: actix_web::HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<RevokeBody>,
) -> Result<HttpResponse, ApiError> {
    let id = wallet_id(id.into_inner())?;
    if body.confirm != id.as_str() {
        return Err(ApiError(
            Problem::new(
                ErrorCode::ValidationError,
                "confirm must repeat the wallet id: a revocation cannot be undone",
            )
            .with_detail("field", "confirm"),
        ));
    }
    let wallet = custody(&state)
        .revoke_wallet(&id, &caller(&req, &principal))
        .await
        .map_err(custody_error)?;
    Ok(HttpResponse::Ok().json(WalletView::from(wallet)))
}

/// Custody wallets, ordered by id, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/admin/wallets",
    tag = "admin",
    params(ListQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of wallets", body = WalletPageView),
    ),
)]
pub async fn list(
    req: actix_web::HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = page_limit(query.limit)?;
    let chain = query
        .chain
        .map(|c| {
            Chain::parse(&c).ok_or_else(|| invalid_query("chain", format!("unknown chain {c:?}")))
        })
        .transpose()?;
    let status = query
        .status
        .map(|s| {
            WalletStatus::parse(&s)
                .ok_or_else(|| invalid_query("status", format!("unknown status {s:?}")))
        })
        .transpose()?;
    let after = query
        .after
        .map(|a| WalletId::new(a).map_err(|e| invalid_query("after", e.to_string())))
        .transpose()?;
    let page = custody(&state)
        .list_wallets(
            &WalletFilter { chain, status },
            &PageRequest { limit, after },
            &caller(&req, &principal),
        )
        .await
        .map_err(custody_error)?;
    Ok(HttpResponse::Ok().json(WalletPageView {
        wallets: page.wallets.into_iter().map(WalletView::from).collect(),
        next: page.next.map(|id| id.as_str().to_owned()),
    }))
}

/// Refuses a key-generating route when this api holds no master keys.
fn keys_configured(state: &AppState, what: &str) -> Result<(), ApiError> {
    if state.config.custody_keys.is_some() {
        return Ok(());
    }
    Err(ApiError(
        Problem::new(
            ErrorCode::NotConfigured,
            format!(
                "{what} needs the custody master keys, which this api does not hold: set \
                 HAVEN_MASTER_KEYS here or use `haven-admin custody wallet` where they are"
            ),
        )
        .with_detail("setting", "HAVEN_MASTER_KEYS"),
    ))
}

/// `POST /api/v1/admin/wallets` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The wallet id: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
    #[schema(example = "treasury-hot")]
    pub id: String,
    /// `evm` or `solana`.
    #[schema(example = "evm")]
    pub chain: String,
    /// Public metadata kept with the wallet (an object; never secrets).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
}

/// Creates a custody wallet: a new key, sealed under the current master key (audited as
/// `wallet.create`). An id that is taken answers 409, so a retried request never makes two.
#[utoipa::path(
    post,
    path = "/api/v1/admin/wallets",
    tag = "admin",
    request_body = CreateBody,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = WalletView),
        (status = 400, description = "Bad id, chain or metadata (`VALIDATION_ERROR`)", body = crate::openapi::ErrorBodySchema),
        (status = 409, description = "The id is taken (`CONFLICT`)", body = crate::openapi::ErrorBodySchema),
        (status = 503, description = "This api holds no master keys (`NOT_CONFIGURED`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn create(
    req: actix_web::HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let invalid = |field: &str, message: String| {
        ApiError(Problem::new(ErrorCode::ValidationError, message).with_detail("field", field))
    };
    let id = WalletId::new(body.id).map_err(|e| invalid("id", e.to_string()))?;
    let chain = Chain::parse(&body.chain).ok_or_else(|| {
        invalid(
            "chain",
            format!("unknown chain {:?}: evm or solana", body.chain),
        )
    })?;
    let metadata = match body.metadata {
        None | Some(serde_json::Value::Null) => serde_json::json!({}),
        Some(m @ serde_json::Value::Object(_)) => m,
        Some(_) => return Err(invalid("metadata", "metadata must be an object".into())),
    };
    keys_configured(&state, "creating a wallet")?;
    let wallet = custody(&state)
        .create_wallet(id, chain, metadata, &caller(&req, &principal))
        .await
        .map_err(custody_error)?;
    Ok(HttpResponse::Created().json(WalletView::from(wallet)))
}

/// `POST /api/v1/admin/wallets/{id}/rotate` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// The key version being replaced (the wallet's `key_version`): a retried request finds
    /// the wallet rotated already and is refused with 409 instead of rotating twice.
    pub from_version: u32,
}

/// Gives a wallet a new key and address; the current key never signs again (audited as
/// `wallet.rotate`). Only while `from_version` is the wallet's current key version.
#[utoipa::path(
    post,
    path = "/api/v1/admin/wallets/{id}/rotate",
    tag = "admin",
    params(("id" = String, Path, description = "The wallet id")),
    request_body = RotateBody,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Rotated", body = WalletView),
        (status = 404, description = "No such wallet", body = crate::openapi::ErrorBodySchema),
        (status = 409, description = "Rotated since `from_version` (`CONFLICT`) or revoked (`WALLET_NOT_ACTIVE`)", body = crate::openapi::ErrorBodySchema),
        (status = 503, description = "This api holds no master keys (`NOT_CONFIGURED`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn rotate(
    req: actix_web::HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<RotateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = wallet_id(id.into_inner())?;
    keys_configured(&state, "rotating a wallet")?;
    let wallet = custody(&state)
        .rotate_wallet_from(&id, body.from_version, &caller(&req, &principal))
        .await
        .map_err(custody_error)?;
    Ok(HttpResponse::Ok().json(WalletView::from(wallet)))
}

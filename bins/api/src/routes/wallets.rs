//! Custody wallets for administrators: the list, public data only.
//!
//! **Invariant:** nothing here reads key material: the listing goes through
//! `Custody::list_wallets`, the audited custody path (one `wallet.list` audit row per call,
//! actor and client address included), whose wallets carry addresses and key versions,
//! never a sealed key. The api's custody holds no master keys ([`NoKeyProvider`]).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_core::{ErrorCode, Problem};
use haven_custody::{
    Caller, Chain, Custody, CustodyConfig, NoKeyProvider, PageRequest, Wallet, WalletFilter,
    WalletId, WalletStatus,
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
    let custody = Custody::new(
        Arc::new(PgWalletStore::new(state.db.clone())),
        Arc::new(NoKeyProvider),
        Arc::new(PgAuditLog::new(state.db.clone())),
        CustodyConfig::default(),
    );
    let caller = Caller {
        actor: principal.actor(),
        request_id: current_request_id(),
        ip: crate::ratelimit::client_ip(&req).map(|ip| ip.to_string()),
    };
    let page = custody
        .list_wallets(
            &WalletFilter { chain, status },
            &PageRequest { limit, after },
            &caller,
        )
        .await
        .map_err(custody_error)?;
    Ok(HttpResponse::Ok().json(WalletPageView {
        wallets: page.wallets.into_iter().map(WalletView::from).collect(),
        next: page.next.map(|id| id.as_str().to_owned()),
    }))
}

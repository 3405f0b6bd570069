//! EVM nonce accounts for operators: what the store holds for one `(chain id, address)` and
//! a reset to the chain's pending nonce.
//!
//! **Invariant:** a reset is refused while unexpired leases exist (a signer may be about to
//! broadcast with one), unless the operator passes `force`; a forced reset is audited HIGH.
//! The reset and its audit row commit in one Postgres transaction
//! (`PgNonceStore::reset_audited`); a refusal is audited as `refused` and changes nothing.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use chrono::{DateTime, Utc};
use haven_core::audit::Severity;
use haven_core::{ErrorCode, Problem};
use haven_db::PgNonceStore;
use haven_nonce::{NonceKey, NonceStatus, NonceStore};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{AuthContext, Authenticated};
use crate::error::ApiError;
use crate::routes::admin::{applied, event, refuse};
use crate::state::AppState;

/// How long one read of the node may take.
const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// One open lease.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeaseView {
    /// The leased nonce.
    pub nonce: u64,
    /// The lease id.
    pub lease_id: String,
    /// When it was taken.
    pub leased_at: DateTime<Utc>,
    /// When it expires (or expired).
    pub expires_at: DateTime<Utc>,
    /// Seconds it has been held.
    pub age_secs: u64,
    /// Whether it expired and waits to be reclaimed by the next reservation.
    pub expired: bool,
}

/// A nonce account as the store holds it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NonceAccountView {
    /// The chain id.
    pub chain_id: u64,
    /// The account address, lowercase hex.
    pub address: String,
    /// The next never-used nonce.
    pub next: u64,
    /// The chain's pending nonce as last applied by a sync or reset.
    pub chain_floor: Option<u64>,
    /// When a sync or reset last ran; absent for an account the store does not know.
    pub last_sync: Option<DateTime<Utc>>,
    /// How many nonces are free (returned by released leases).
    pub free_count: u64,
    /// The lowest free nonces.
    pub free: Vec<u64>,
    /// Open leases (expired ones until reclaimed).
    pub leases: Vec<LeaseView>,
    /// Unexpired leases: a reset without `force` is refused while this is not 0.
    pub leases_outstanding: usize,
    /// How many commits the chain floor has not yet passed.
    pub committed_count: u64,
    /// The lowest of them.
    pub committed: Vec<u64>,
}

impl From<NonceStatus> for NonceAccountView {
    fn from(s: NonceStatus) -> Self {
        Self {
            chain_id: s.key.chain_id(),
            address: s.key.address_hex(),
            next: s.next,
            chain_floor: s.chain_floor,
            last_sync: s.last_sync,
            free_count: s.free_count,
            free: s.free,
            leases_outstanding: s.leases.iter().filter(|l| !l.expired).count(),
            leases: s
                .leases
                .into_iter()
                .map(|l| LeaseView {
                    nonce: l.nonce,
                    lease_id: l.lease_id.to_string(),
                    leased_at: l.leased_at,
                    expires_at: l.expires_at,
                    age_secs: l.age.as_secs(),
                    expired: l.expired,
                })
                .collect(),
            committed_count: s.committed_count,
            committed: s.committed,
        }
    }
}

/// `POST …/reset` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// Drop unexpired leases too (their signers' commits will fail). Audited HIGH.
    #[serde(default)]
    pub force: bool,
}

/// The outcome of a reset.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResetView {
    /// `next` before the reset.
    pub previous_next: u64,
    /// `next` after it: the chain's pending nonce.
    pub next: u64,
    /// Leases dropped (only with `force`; expired ones count too).
    pub dropped_leases: usize,
    /// Whether `force` was given.
    pub forced: bool,
}

fn account_key(path: &(u64, String)) -> Result<NonceKey, ApiError> {
    NonceKey::parse(path.0, &path.1).map_err(|e| {
        ApiError(
            Problem::new(ErrorCode::InvalidAddress, e.to_string()).with_detail("field", "address"),
        )
    })
}

fn nonce_error(e: haven_nonce::Error) -> ApiError {
    let code = e.code();
    let mut problem = Problem::new(code, e.to_string());
    if let haven_nonce::Error::LeasesOutstanding { count, .. } = &e {
        problem = problem.with_detail("leases_outstanding", *count);
    }
    ApiError(problem.with_source(e))
}

fn node_error(message: String) -> ApiError {
    ApiError::new(ErrorCode::BlockchainError, message)
}

/// The pending nonce of `key`'s address from the node at `rpc_url`, which must serve the
/// key's chain.
async fn chain_pending(rpc_url: &str, key: &NonceKey) -> Result<u64, ApiError> {
    let url = rpc_url
        .parse()
        .map_err(|_| node_error("ETH_RPC_URL is not a URL".into()))?;
    let provider = ProviderBuilder::new().connect_http(url);
    let chain_id = tokio::time::timeout(NODE_TIMEOUT, provider.get_chain_id())
        .await
        .map_err(|_| node_error("the node did not answer in time".into()))?
        .map_err(|e| node_error(format!("reading the node's chain id: {e}")))?;
    if chain_id != key.chain_id() {
        return Err(ApiError(
            Problem::new(
                ErrorCode::UnsupportedChain,
                format!(
                    "the api's node (ETH_RPC_URL) serves chain {chain_id}, not {}",
                    key.chain_id()
                ),
            )
            .with_detail("field", "chain"),
        ));
    }
    let pending = provider
        .get_transaction_count(Address::from(key.address()))
        .pending();
    tokio::time::timeout(NODE_TIMEOUT, pending)
        .await
        .map_err(|_| node_error("the node did not answer in time".into()))?
        .map_err(|e| node_error(format!("reading the pending nonce: {e}")))
}

/// One nonce account: next nonce, chain floor, free nonces and leases.
#[utoipa::path(
    get,
    path = "/api/v1/admin/nonces/{chain}/{address}",
    tag = "admin",
    params(
        ("chain" = u64, Path, description = "The EVM chain id"),
        ("address" = String, Path, description = "The account address, 0x and 40 hex digits"),
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The account (an unknown account reads as empty)", body = NonceAccountView),
        (status = 400, description = "Not an address (`INVALID_ADDRESS`) or chain id", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn get(
    _: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<(u64, String)>,
) -> Result<HttpResponse, ApiError> {
    let key = account_key(&path)?;
    let status = PgNonceStore::new(state.db.clone())
        .status(&key)
        .await
        .map_err(nonce_error)?;
    Ok(HttpResponse::Ok().json(NonceAccountView::from(status)))
}

/// Resets the account to the chain's pending nonce (read from `ETH_RPC_URL`, which must
/// serve `chain`): the free set and commit records are cleared. Refused with 409 while
/// unexpired leases exist, unless `force` (audited HIGH).
#[utoipa::path(
    post,
    path = "/api/v1/admin/nonces/{chain}/{address}/reset",
    tag = "admin",
    params(
        ("chain" = u64, Path, description = "The EVM chain id"),
        ("address" = String, Path, description = "The account address"),
    ),
    request_body = ResetBody,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Reset", body = ResetView),
        (status = 400, description = "Not an address, or the api's node serves another chain (`UNSUPPORTED_CHAIN`)", body = crate::openapi::ErrorBodySchema),
        (status = 409, description = "Unexpired leases and no `force` (`CONFLICT`, `details.leases_outstanding`)", body = crate::openapi::ErrorBodySchema),
        (status = 502, description = "The node could not be read", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn reset(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    path: web::Path<(u64, String)>,
    body: web::Json<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let key = account_key(&path)?;
    let force = body.force;
    let pending = chain_pending(&state.config.common.eth_rpc_url, &key).await?;
    let severity = if force {
        Severity::High
    } else {
        Severity::Medium
    };
    let audit = event(&req, &principal, "nonce.reset", severity).target(format!("nonce:{key}"));
    let details = json!({"force": force, "chain_pending": pending});
    let store = PgNonceStore::new(state.db.clone());
    match store
        .reset_audited(
            &key,
            pending,
            force,
            audit.clone().details(applied(details.clone())),
        )
        .await
    {
        Ok(outcome) => Ok(HttpResponse::Ok().json(ResetView {
            previous_next: outcome.previous_next,
            next: outcome.next,
            dropped_leases: outcome.dropped_leases,
            forced: force,
        })),
        Err(e @ haven_nonce::Error::LeasesOutstanding { .. }) => {
            Err(refuse(&ctx, audit, details, nonce_error(e)).await)
        }
        Err(e) => Err(nonce_error(e)),
    }
}

/// One account in the list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NonceAccountSummary {
    /// The EVM chain id.
    pub chain_id: u64,
    /// The address, checksummed.
    pub address: String,
    /// The next never-used nonce.
    pub next: u64,
    /// The chain's pending nonce at the last sync.
    pub chain_floor: Option<u64>,
    /// The last sync with the chain.
    pub last_sync: Option<DateTime<Utc>>,
    /// Leases not yet committed or released.
    pub leases: u64,
}

/// The nonce accounts the store knows (at most 500), by chain and address: what to look at
/// in detail (`GET /api/v1/admin/nonces/{chain}/{address}`).
#[utoipa::path(
    get,
    path = "/api/v1/admin/nonces",
    tag = "admin",
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The accounts", body = Vec<NonceAccountSummary>)),
)]
pub async fn list(_: Authenticated, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let accounts = PgNonceStore::new(state.db.clone())
        .accounts(500)
        .await
        .map_err(nonce_error)?;
    let views: Vec<NonceAccountSummary> = accounts
        .into_iter()
        .map(|a| NonceAccountSummary {
            chain_id: a.chain_id,
            address: Address::from(a.address).to_checksum(None),
            next: a.next,
            chain_floor: a.chain_floor,
            last_sync: a.last_sync,
            leases: a.leases,
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

//! Token transactions for operators: the status overview, one transaction, and the retry of
//! a failed one.
//!
//! The api never signs: a retry re-queues the record, and the worker's `chain_monitor`
//! signs and sends it (with a fresh nonce) on its next cycle after the chain crate's
//! `queued_grace`. A stuck transaction (broadcast, no receipt past the pending threshold)
//! is not retried here: it keeps its nonce and the monitor replaces it with higher fees, as
//! a second nonce could let both versions execute.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_chain::{ChainConfig, TxRecord, TxStatus, TxStore};
use haven_core::audit::Severity;
use haven_core::{ErrorCode, Problem};
use haven_db::{PgTxStore, Requeue};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{AuthContext, Authenticated};
use crate::error::ApiError;
use crate::routes::admin::{applied, event, page_limit, refuse};
use crate::state::AppState;

/// A transaction as operators see it (the signed raw bytes are left out).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TxView {
    /// The caller-chosen id (`booking:42:mint`).
    pub tx_id: String,
    /// `mint`, `burn`, `transfer`, `burn_from` or `transfer_from`.
    pub kind: String,
    /// Chain id.
    pub chain_id: u64,
    /// The token contract.
    pub token: String,
    /// The sending wallet's address.
    pub from: String,
    /// The recipient (mint, transfer, transfer_from).
    pub to: Option<String>,
    /// The custodial account the tokens come from (burn_from, transfer_from).
    pub holder: Option<String>,
    /// Amount in base units, as a decimal string.
    pub amount: String,
    /// `queued`, `signed`, `broadcast`, `confirmed`, `failed` or `replaced`.
    pub status: String,
    /// Whether it is broadcast without a receipt for longer than the pending threshold.
    pub stuck: bool,
    /// The nonce, once signed.
    pub nonce: Option<u64>,
    /// Hash of the current signed transaction.
    pub hash: Option<String>,
    /// Hashes of earlier fee-bumped versions with the same nonce.
    pub previous_hashes: Vec<String>,
    /// Gas limit.
    pub gas_limit: u64,
    /// EIP-1559 max fee per gas (wei, decimal string).
    pub max_fee_per_gas: Option<String>,
    /// EIP-1559 priority fee (wei, decimal string).
    pub max_priority_fee_per_gas: Option<String>,
    /// Broadcast attempts.
    pub attempts: u32,
    /// Fee-bumped replacements.
    pub replacements: u32,
    /// The last error.
    pub error: Option<String>,
    /// Block of the receipt.
    pub block_number: Option<u64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Last (re)broadcast.
    pub broadcast_at: Option<DateTime<Utc>>,
    /// Confirmation time.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// The moment before which a broadcast without a receipt counts as stuck: the pending
/// threshold of the chain crate's configuration, which the worker's monitor uses too.
pub(crate) fn stuck_before(now: DateTime<Utc>) -> DateTime<Utc> {
    let threshold = chrono::Duration::from_std(ChainConfig::default().pending_threshold)
        .unwrap_or(chrono::Duration::MAX);
    now - threshold
}

impl TxView {
    fn new(r: TxRecord, stuck_before: DateTime<Utc>) -> Self {
        let stuck =
            r.status == TxStatus::Broadcast && r.broadcast_at.is_some_and(|at| at <= stuck_before);
        Self {
            kind: r.kind.as_str().to_owned(),
            chain_id: r.chain_id,
            token: r.token.to_string(),
            from: r.from.to_string(),
            to: r.to.map(|a| a.to_string()),
            holder: r.holder.map(|a| a.to_string()),
            amount: r.amount.to_string(),
            status: r.status.as_str().to_owned(),
            stuck,
            nonce: r.nonce,
            hash: r.hash.map(|h| h.to_string()),
            previous_hashes: r.previous_hashes.iter().map(|h| h.to_string()).collect(),
            gas_limit: r.gas_limit,
            max_fee_per_gas: r.max_fee_per_gas.map(|f| f.to_string()),
            max_priority_fee_per_gas: r.max_priority_fee_per_gas.map(|f| f.to_string()),
            attempts: r.attempts,
            replacements: r.replacements,
            error: r.error,
            block_number: r.block_number,
            created_at: r.created_at,
            updated_at: r.updated_at,
            broadcast_at: r.broadcast_at,
            confirmed_at: r.confirmed_at,
            version: r.version,
            tx_id: r.tx_id,
        }
    }
}

/// `GET /api/v1/admin/transactions` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `queued`, `signed`, `broadcast`, `confirmed`, `failed` or `replaced`.
    #[param(example = "broadcast")]
    pub status: String,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// The transactions in one status, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TxListView {
    /// The status asked for.
    pub status: String,
    /// Oldest first (the longest waiting at the top).
    pub transactions: Vec<TxView>,
    /// The page size used.
    pub limit: u32,
}

/// The transactions in one status, oldest first: what is pending (`queued`, `signed`,
/// `broadcast`, with `stuck` marked), what `failed`, what is `confirmed`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/transactions",
    tag = "admin",
    params(ListQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The transactions", body = TxListView),
        (status = 400, description = "Unknown status (`INVALID_QUERY`, `details.field`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn list(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit)?;
    let status = TxStatus::ALL
        .iter()
        .copied()
        .find(|s| s.as_str() == query.status)
        .ok_or_else(|| {
            ApiError(
                Problem::new(
                    ErrorCode::InvalidQuery,
                    format!(
                        "unknown status {:?}: queued, signed, broadcast, confirmed, failed or replaced",
                        query.status
                    ),
                )
                .with_detail("field", "status"),
            )
        })?;
    let records = PgTxStore::new(state.db.clone())
        .list_by_status(status, limit as usize)
        .await
        .map_err(chain_error)?;
    let before = stuck_before(Utc::now());
    Ok(HttpResponse::Ok().json(TxListView {
        status: status.as_str().to_owned(),
        transactions: records
            .into_iter()
            .map(|r| TxView::new(r, before))
            .collect(),
        limit,
    }))
}

/// `GET /api/v1/admin/transactions/status` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// At most this many stuck and this many failed transactions (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// Counts by status, and the oldest stuck and failed transactions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TxStatusReport {
    /// Transactions per status (every status listed, zeros included).
    #[schema(value_type = Object)]
    pub counts: serde_json::Map<String, serde_json::Value>,
    /// How many broadcast transactions are stuck.
    pub stuck_count: u64,
    /// A broadcast transaction without a receipt for this many seconds is stuck.
    pub stuck_after_secs: u64,
    /// The oldest stuck transactions, at most `limit`.
    pub stuck: Vec<TxView>,
    /// The oldest failed transactions, at most `limit`.
    pub failed: Vec<TxView>,
    /// The page size applied to `stuck` and `failed`.
    pub limit: u32,
}

pub(crate) fn chain_error(e: haven_chain::Error) -> ApiError {
    ApiError(Problem::new(e.code(), e.to_string()).with_source(e))
}

/// Counts by status, and the oldest stuck and failed transactions (each list at most
/// `limit`; `stuck_count` and `counts` say how many there are in all).
#[utoipa::path(
    get,
    path = "/api/v1/admin/transactions/status",
    tag = "admin",
    params(StatusQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Counts and the stuck and failed transactions", body = TxStatusReport),
    ),
)]
pub async fn status(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit)?;
    let store = PgTxStore::new(state.db.clone());
    let now = Utc::now();
    let before = stuck_before(now);
    let counts = store.count_by_status().await.map_err(chain_error)?;
    let stuck = store.list_stuck(before, i64::from(limit)).await?;
    let stuck_count = store.count_stuck(before).await?;
    let failed = store
        .list_by_status(TxStatus::Failed, limit as usize)
        .await
        .map_err(chain_error)?;
    let report = TxStatusReport {
        counts: TxStatus::ALL
            .iter()
            .map(|s| {
                (
                    s.as_str().to_owned(),
                    json!(counts.get(s).copied().unwrap_or(0)),
                )
            })
            .collect(),
        stuck_count,
        stuck_after_secs: ChainConfig::default().pending_threshold.as_secs(),
        stuck: stuck.into_iter().map(|r| TxView::new(r, before)).collect(),
        failed: failed.into_iter().map(|r| TxView::new(r, before)).collect(),
        limit,
    };
    Ok(HttpResponse::Ok().json(report))
}

async fn load(store: &PgTxStore, tx_id: &str) -> Result<TxRecord, ApiError> {
    store
        .get(tx_id)
        .await
        .map_err(chain_error)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no transaction {tx_id:?}")))
}

/// One transaction.
#[utoipa::path(
    get,
    path = "/api/v1/admin/transactions/{tx_id}",
    tag = "admin",
    params(("tx_id" = String, Path, description = "The transaction id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The transaction", body = TxView),
        (status = 404, description = "No such transaction", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn get(
    _: Authenticated,
    state: web::Data<AppState>,
    tx_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let store = PgTxStore::new(state.db.clone());
    let record = load(&store, &tx_id).await?;
    Ok(HttpResponse::Ok().json(TxView::new(record, stuck_before(Utc::now()))))
}

fn not_retryable(record: &TxRecord, before: DateTime<Utc>) -> ApiError {
    let view = TxView::new(record.clone(), before);
    let message = if view.stuck {
        format!(
            "transaction {:?} is stuck, not failed: it keeps its nonce and the monitor \
             replaces it with higher fees; sending it again with a new nonce could execute it twice",
            record.tx_id
        )
    } else {
        format!(
            "transaction {:?} is {}; only a failed transaction can be retried",
            record.tx_id, record.status
        )
    };
    ApiError(
        Problem::new(ErrorCode::TransactionNotRetryable, message)
            .with_detail("status", record.status.as_str())
            .with_detail("stuck", view.stuck),
    )
}

/// Retries a failed transaction: it goes back to `queued` (nonce, hashes and fees cleared)
/// in the same database transaction as its audit row, and the worker's monitor signs and
/// sends it with a fresh nonce. Requires an `Idempotency-Key`; a replay answers the first
/// answer again and re-queues nothing. Any other status, stuck included, is a 409
/// `TRANSACTION_NOT_RETRYABLE`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/transactions/{tx_id}/retry",
    tag = "admin",
    params(
        ("tx_id" = String, Path, description = "The transaction id"),
        ("Idempotency-Key" = String, Header, description = "Required: a retried request with the same key answers the first answer again"),
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Re-queued; the worker's monitor sends it", body = TxView),
        (status = 404, description = "No such transaction", body = crate::openapi::ErrorBodySchema),
        (status = 409, description = "Not failed (`TRANSACTION_NOT_RETRYABLE`), or the key is in flight", body = crate::openapi::ErrorBodySchema),
        (status = 422, description = "The idempotency key was used for another request", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn retry(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    tx_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let store = PgTxStore::new(state.db.clone());
    let record = load(&store, &tx_id).await?;
    let now = Utc::now();
    let before = stuck_before(now);
    let audit = event(&req, &principal, "transaction.retry", Severity::Medium)
        .target(format!("transaction:{}", record.tx_id));
    let details = json!({
        "from": record.status.as_str(),
        "kind": record.kind.as_str(),
        "previous_nonce": record.nonce,
        "previous_hash": record.hash.map(|h| h.to_string()),
        "error": record.error,
    });
    if record.status != TxStatus::Failed {
        let error = not_retryable(&record, before);
        return Err(refuse(&ctx, audit, details, error).await);
    }
    match store
        .requeue_failed_audited(
            &record.tx_id,
            record.version,
            audit.clone().details(applied(details.clone())),
            now,
        )
        .await?
    {
        Requeue::Queued(queued) => Ok(HttpResponse::Accepted().json(TxView::new(queued, before))),
        // Another retry (or the monitor) changed it between the read and the write.
        Requeue::Refused(Some(current)) => {
            let error = not_retryable(&current, before);
            Err(refuse(&ctx, audit, details, error).await)
        }
        Requeue::Refused(None) => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no transaction {:?}", record.tx_id),
        )),
    }
}

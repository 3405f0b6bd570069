//! The operational status at a glance: transactions waiting, stuck and failed, the circuit
//! breakers of the answering process, the outboxes' backlogs and the Postgres pool.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_chain::{ChainConfig, TxStatus, TxStore};
use haven_db::PgTxStore;
use serde::Serialize;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::transactions::{chain_error, stuck_before};
use crate::state::AppState;

/// Transactions by how much attention they need.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TxSummary {
    /// Not yet final: queued, signed or broadcast.
    pub pending: u64,
    /// Broadcast without a receipt for longer than `stuck_after_secs`.
    pub stuck: u64,
    /// Mined and reverted (an operator may retry them).
    pub failed: u64,
    /// The stuck threshold.
    pub stuck_after_secs: u64,
}

/// One breaker's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BreakerSummary {
    /// Its name.
    pub name: String,
    /// `CLOSED`, `OPEN`, `HALF_OPEN`, `FORCED_OPEN` or `DISABLED`.
    pub state: String,
}

/// One outbox's backlog.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutboxSummary {
    /// `webhook_deliveries`, `alert_deliveries`, `reward_jobs` or `token_movements`.
    pub outbox: String,
    /// Items not yet done.
    pub pending: i64,
    /// How long the oldest has waited, in seconds; absent when none waits.
    pub oldest_age_seconds: Option<f64>,
}

/// The answering process's Postgres pool.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolSummary {
    /// Connections checked out.
    pub in_use: usize,
    /// Connections open.
    pub open: usize,
    /// The most it opens.
    pub max: usize,
}

/// The operational status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusReport {
    /// When it was read.
    pub generated_at: DateTime<Utc>,
    /// Chain transactions.
    pub transactions: TxSummary,
    /// The breakers of the answering api process.
    pub breakers: Vec<BreakerSummary>,
    /// Every outbox, whether or not anything waits.
    pub outboxes: Vec<OutboxSummary>,
    /// The answering process's Postgres pool.
    pub db_pool: PoolSummary,
}

/// Transactions waiting, stuck and failed; breaker states; outbox backlogs; the pool.
#[utoipa::path(
    get,
    path = "/api/v1/admin/status",
    tag = "admin",
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The operational status", body = StatusReport)),
)]
pub async fn status(
    _: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let store = PgTxStore::new(state.db.clone());
    let counts = store.count_by_status().await.map_err(chain_error)?;
    let count = |status: TxStatus| counts.get(&status).copied().unwrap_or(0);
    let transactions = TxSummary {
        pending: count(TxStatus::Queued) + count(TxStatus::Signed) + count(TxStatus::Broadcast),
        stuck: store.count_stuck(stuck_before(now)).await?,
        failed: count(TxStatus::Failed),
        stuck_after_secs: ChainConfig::default().pending_threshold.as_secs(),
    };
    let outboxes = haven_db::outbox_backlogs(&state.db)
        .await?
        .into_iter()
        .map(|b| OutboxSummary {
            outbox: b.outbox.to_owned(),
            pending: b.pending,
            oldest_age_seconds: b.oldest_age_seconds,
        })
        .collect();
    let usage = state.db.usage();
    Ok(HttpResponse::Ok().json(StatusReport {
        generated_at: now,
        transactions,
        breakers: state
            .breakers
            .statuses()
            .into_iter()
            .map(|b| BreakerSummary {
                name: b.name,
                state: b.state.as_str().to_owned(),
            })
            .collect(),
        outboxes,
        db_pool: PoolSummary {
            in_use: usage.in_use,
            open: usage.open,
            max: usage.max,
        },
    }))
}

//! The audit log for administrators: the hash chain's verification and head, every record
//! (filtered), and the custody wallets' records (`wallet.*`: creation, reads, signing,
//! rotation, revocation).
//! Reading is not itself audited: these routes show the log, they change nothing.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_core::audit::{AuditRecord, Severity};
use haven_core::{ErrorCode, Problem};
use haven_db::{AuditFilter, PgAuditLog};
use serde::{Deserialize, Serialize};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::admin::page_limit;
use crate::state::AppState;

/// The chain's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChainStatusView {
    /// Whether every record's hash and link verified.
    pub valid: bool,
    /// Records verified (when valid).
    pub records: Option<i64>,
    /// The last record's sequence number (0 for an empty log).
    pub head_seq: i64,
    /// The last record's hash, hex: keep it outside the database as an anchor
    /// (`haven-admin audit verify --anchor <seq>:<hash>`).
    pub head_hash: String,
    /// The first record that does not verify (when not valid).
    pub first_broken_seq: Option<i64>,
    /// Why it does not (when not valid).
    pub reason: Option<String>,
}

/// Walks the whole hash chain of the audit log; 200 with `valid: false` and the first broken
/// record when it does not verify.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit/verify",
    tag = "admin",
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The chain's state", body = ChainStatusView)),
)]
pub async fn verify(
    _: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let log = PgAuditLog::new(state.db.clone());
    let (head_seq, head_hash) = log
        .head()
        .await?
        .unwrap_or((0, haven_core::audit::GENESIS_HASH));
    let view = match log.verify().await? {
        Ok(report) => ChainStatusView {
            valid: true,
            records: Some(report.count),
            head_seq,
            head_hash: hex::encode(head_hash),
            first_broken_seq: None,
            reason: None,
        },
        Err(broken) => ChainStatusView {
            valid: false,
            records: None,
            head_seq,
            head_hash: hex::encode(head_hash),
            first_broken_seq: Some(broken.seq()),
            reason: Some(broken.to_string()),
        },
    };
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /api/v1/admin/audit/wallet-logs` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WalletLogsQuery {
    /// Only the records of this wallet id.
    pub wallet: Option<String>,
    /// Only this action (`wallet.create`, `wallet.sign_transaction`, `wallet.rotate`, …).
    pub action: Option<String>,
    /// Only records of at least this severity: `INFO`, `LOW`, `MEDIUM`, `HIGH`, `CRITICAL`.
    pub severity: Option<String>,
    /// Only records at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only records before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// The `next` of the previous page.
    pub before: Option<i64>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// One audit record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditRecordView {
    /// Its position in the chain.
    pub seq: i64,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Who acted: `user:<id>`, `key:<id>`, `system`, …
    pub actor: String,
    /// What was done.
    pub action: String,
    /// The object acted on (a wallet id).
    pub target: Option<String>,
    /// `INFO` to `CRITICAL`.
    pub severity: String,
    /// The request it came through.
    pub request_id: Option<String>,
    /// The client address.
    pub ip: Option<String>,
    /// What the action recorded (never key material).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The record's hash, hex.
    pub hash: String,
}

impl From<AuditRecord> for AuditRecordView {
    fn from(r: AuditRecord) -> Self {
        Self {
            seq: r.seq,
            created_at: r.created_at,
            actor: r.event.actor,
            action: r.event.action,
            target: r.event.target,
            severity: r.event.severity.as_str().to_owned(),
            request_id: r.event.request_id,
            ip: r.event.ip,
            details: r.event.details,
            hash: hex::encode(r.hash),
        }
    }
}

/// A page of audit records.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPageView {
    /// Newest first.
    pub records: Vec<AuditRecordView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next: Option<i64>,
}

fn invalid_query(field: &str, message: String) -> ApiError {
    ApiError(Problem::new(ErrorCode::InvalidQuery, message).with_detail("field", field))
}

/// The custody wallets' audit records, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit/wallet-logs",
    tag = "admin",
    params(WalletLogsQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of records", body = AuditPageView),
        (status = 400, description = "A filter is invalid (`INVALID_QUERY`, `details.field`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn wallet_logs(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<WalletLogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if let Some(action) = &query.action
        && !action.starts_with("wallet.")
    {
        return Err(invalid_query(
            "action",
            format!("{action:?} is not a wallet action (wallet.…)"),
        ));
    }
    let filter = AuditFilter {
        action_prefix: Some("wallet.".into()),
        action: query.action,
        target: query.wallet,
        min_severity: min_severity(query.severity)?,
        from: query.from,
        to: query.to,
    };
    page(&state, filter, query.before, query.limit).await
}

/// `GET /api/v1/admin/audit/records` query. Every filter given must match.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordsQuery {
    /// Only this action (`auth.login`, `fraud.alert.resolved`, `breaker.reset`, …).
    pub action: Option<String>,
    /// Only actions starting with this (`fraud.`, `wallet.`, `webhook.`); at most 100
    /// characters.
    pub prefix: Option<String>,
    /// Only records about this target (a wallet id, `reward:<id>`, a breaker name, …).
    pub target: Option<String>,
    /// Only records of at least this severity: `INFO`, `LOW`, `MEDIUM`, `HIGH`, `CRITICAL`.
    pub severity: Option<String>,
    /// Only records at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only records before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// The `next` of the previous page.
    pub before: Option<i64>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// The whole audit log, newest first, a page at a time, filtered by action, action prefix,
/// target, minimum severity and time.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit/records",
    tag = "admin",
    params(RecordsQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of records", body = AuditPageView),
        (status = 400, description = "A filter is invalid (`INVALID_QUERY`, `details.field`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn records(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<RecordsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    for (field, value) in [
        ("action", &query.action),
        ("prefix", &query.prefix),
        ("target", &query.target),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 100) {
            return Err(invalid_query(
                field,
                format!("`{field}` is at most 100 characters"),
            ));
        }
    }
    let filter = AuditFilter {
        action_prefix: query.prefix.filter(|p| !p.is_empty()),
        action: query.action.filter(|a| !a.is_empty()),
        target: query.target.filter(|t| !t.is_empty()),
        min_severity: min_severity(query.severity)?,
        from: query.from,
        to: query.to,
    };
    page(&state, filter, query.before, query.limit).await
}

fn min_severity(severity: Option<String>) -> Result<Option<Severity>, ApiError> {
    severity
        .filter(|s| !s.is_empty())
        .map(|s| {
            Severity::parse(&s.to_ascii_uppercase())
                .ok_or_else(|| invalid_query("severity", format!("unknown severity {s:?}")))
        })
        .transpose()
}

/// One page of `filter`'s records before `before`, with the cursor of the next.
async fn page(
    state: &AppState,
    filter: AuditFilter,
    before: Option<i64>,
    limit: Option<u32>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(limit)?;
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        return Err(invalid_query("to", "`to` must be after `from`".into()));
    }
    let records = PgAuditLog::new(state.db.clone())
        .search(&filter, before, i64::from(limit))
        .await?;
    let next = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(HttpResponse::Ok().json(AuditPageView {
        records: records.into_iter().map(AuditRecordView::from).collect(),
        next,
    }))
}

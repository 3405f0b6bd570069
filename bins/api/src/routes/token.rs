//! The token API: operator mints (`POST /api/v1/token/mint`) and redemptions for fiat
//! (`POST /api/v1/token/redeem`, approved under `/api/v1/admin/redemptions`).
//!
//! Money never moves inside a request: a mint is a ledger row the worker mints exactly once
//! (the rewards path), a redemption records its escrow movement for the worker. A retried
//! request with the same `Idempotency-Key` (header, or `idempotency_key` in the body; the
//! header wins) gets the first answer.

use std::str::FromStr;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use alloy::primitives::Address;
use haven_core::audit::Severity;
use haven_core::{ErrorCode, Problem};
use haven_db::treasury::{Created, NewRedemption, Redemption, RedemptionStatus, TreasuryError};
use haven_rewards::{BusinessKey, Hnv, RewardKind};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Authenticated, MemberScope};
use crate::error::ApiError;
use crate::extract::ValidatedJson;
use crate::routes::admin::event;
use crate::routes::rewards::{RewardsService, reward_json};
use crate::treasury::{TreasuryService, fiat_amount};

/// A treasury refusal as the API answers it.
pub(crate) fn treasury_error(e: TreasuryError) -> ApiError {
    let code = e.code();
    let mut problem = Problem::new(code, e.to_string());
    if let TreasuryError::InsufficientBalance {
        available,
        requested,
    } = &e
    {
        problem = problem
            .with_detail("available_hnv", available.to_string())
            .with_detail("requested_hnv", requested.to_string());
    }
    if matches!(e, TreasuryError::Db(_)) {
        problem = problem.with_source(e);
    }
    ApiError(problem)
}

/// An amount field: exact decimal text of HNV, more than zero.
pub(crate) fn amount_of(field: &'static str, text: &str) -> Result<Hnv, ApiError> {
    match Hnv::parse(text) {
        Ok(amount) if !amount.is_zero() => Ok(amount),
        Ok(_) => Err(ApiError(
            Problem::new(
                ErrorCode::InvalidAmount,
                "the amount must be more than zero",
            )
            .with_detail("field", field),
        )),
        Err(e) => Err(ApiError(
            Problem::new(ErrorCode::InvalidAmount, format!("{field}: {e}"))
                .with_detail("field", field),
        )),
    }
}

/// The request's idempotency key: the header, else the body's `idempotency_key`.
pub(crate) fn idempotency_key(req: &HttpRequest, body: Option<&str>) -> Option<String> {
    req.headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| body.map(str::to_owned))
}

/// The member a request acts for: a member-scoped key's own member (another id is a 404),
/// else the body's `member_id` (required).
fn acting_member(req: &HttpRequest, given: Option<Uuid>) -> Result<Uuid, ApiError> {
    match (req.extensions().get::<MemberScope>(), given) {
        (Some(MemberScope(own)), Some(id)) if *own != id => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no member {id}"),
        )),
        (Some(MemberScope(own)), _) => Ok(*own),
        (None, Some(id)) => Ok(id),
        (None, None) => Err(ApiError(
            Problem::new(ErrorCode::ValidationError, "member_id is required")
                .with_detail("field", "member_id"),
        )),
    }
}

/// The member's on-chain balance now, and when it was read.
pub(crate) async fn balance(
    rewards: &RewardsService,
    member: Uuid,
) -> Result<(Hnv, chrono::DateTime<chrono::Utc>), ApiError> {
    let record = rewards
        .intake
        .rewards()
        .member(member)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no member {member}")))?;
    let at = chrono::Utc::now();
    let Some(address) = record.wallet_address else {
        return Ok((Hnv::ZERO, at));
    };
    let chain = rewards.chain.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            "HAVEN_TOKEN_ADDRESS is not configured: balances cannot be read",
        )
    })?;
    let holder = Address::from_str(&address).map_err(|e| ApiError(Problem::internal(e)))?;
    let units = chain.balance_of(holder).await.map_err(|e| {
        tracing::warn!(error = %format!("{e:#}"), %member, "on-chain balance unavailable");
        ApiError::new(
            ErrorCode::BlockchainError,
            "the balance could not be read from the node",
        )
    })?;
    Ok((
        Hnv::from_base_units(u128::try_from(units).unwrap_or(u128::MAX)),
        at,
    ))
}

/// `POST /api/v1/token/mint` body.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// The member who receives the tokens.
    pub member_id: Uuid,
    /// HNV as exact decimal text (`"12.5"`).
    #[validate(length(min = 1, max = 100))]
    pub amount_hnv: String,
    /// Why, shown to the member and the operators.
    #[validate(
        length(min = 1, max = 500),
        custom(function = "crate::extract::no_nul")
    )]
    pub reason: String,
    /// The caller's reference (a ticket, a campaign): with the idempotency key, the mint's
    /// once-only business key.
    #[validate(
        length(min = 1, max = 128),
        custom(function = "crate::extract::no_nul")
    )]
    pub reference: String,
    /// The idempotency key, when not sent as the header.
    pub idempotency_key: Option<String>,
}

/// Mints HNV to a member through the rewards ledger: once per (reference, idempotency
/// key), fraud-checked like a reward (a HIGH alert holds it for review), minted by the
/// worker.
#[utoipa::path(
    post,
    path = "/api/v1/token/mint",
    tag = "token",
    request_body = MintRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Recorded; the worker mints it", body = Object),
        (status = 200, description = "The same mint again: the recorded one", body = Object),
        (status = 409, description = "The reference was used for another mint", body = crate::openapi::ErrorBodySchema),
        (status = 404, description = "No such member", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn mint(
    req: HttpRequest,
    principal: Authenticated,
    body: ValidatedJson<MintRequest>,
    rewards: web::Data<RewardsService>,
    treasury: web::Data<TreasuryService>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let amount = amount_of("amount_hnv", &body.amount_hnv)?;
    let ledger = rewards.intake.rewards();
    if ledger.member(body.member_id).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no member {}", body.member_id),
        ));
    }
    let key = idempotency_key(&req, body.idempotency_key.as_deref());
    let business_key = BusinessKey::new("operator", RewardKind::Manual, &body.reference, key);
    let alerts = if ledger
        .reward_by_key(&business_key.as_string())
        .await?
        .is_some()
    {
        Vec::new()
    } else {
        let event = haven_fraud::Event::Mint(haven_fraud::PaymentEvent {
            event_id: format!("mint:{}:{}", business_key.tx_id(), Uuid::now_v7().simple()),
            user: body.member_id.to_string(),
            amount: haven_fraud::Amount::parse(&amount.to_string())
                .map_err(|e| ApiError::new(ErrorCode::InvalidAmount, e.to_string()))?,
            currency: "HNV".into(),
            destination: None,
            ts: chrono::Utc::now(),
        });
        rewards.intake.fraud().evaluate(&event).await.map_err(|e| {
            ApiError(
                Problem::new(
                    ErrorCode::ServiceUnavailable,
                    "the fraud rules could not be evaluated",
                )
                .with_source(e),
            )
        })?
    };
    let audit = event(&req, &principal, "token.mint", Severity::Medium).details(json!({
        "member_id": body.member_id, "amount_hnv": amount.to_string(),
        "reference": body.reference, "reason": body.reason,
    }));
    let granted = ledger
        .grant(haven_db::rewards::Grant {
            key: business_key,
            member_id: body.member_id,
            amount,
            reason: body.reason.clone(),
            rules_version: "manual".into(),
            alerts: &alerts,
            hold: true,
            audit: Some(audit),
        })
        .await?;
    match granted {
        haven_db::rewards::Granted::New(reward) => {
            treasury.stats.invalidate().await;
            Ok(HttpResponse::Accepted().json(json!({
                "status": reward.state.as_str(),
                "reward": reward_json(&reward),
                "alerts": alerts.iter().map(|a| json!({"id": a.id, "rule_id": a.rule_id, "severity": a.severity.as_str()})).collect::<Vec<_>>(),
            })))
        }
        haven_db::rewards::Granted::Existing(reward)
            if reward.member_id == body.member_id && reward.amount == amount =>
        {
            Ok(HttpResponse::Ok().json(json!({
                "status": reward.state.as_str(),
                "reward": reward_json(&reward),
                "alerts": [],
            })))
        }
        haven_db::rewards::Granted::Existing(_) => Err(ApiError(
            Problem::new(
                ErrorCode::Conflict,
                "this reference (and idempotency key) was used for another mint",
            )
            .with_detail("field", "reference"),
        )),
    }
}

/// `POST /api/v1/token/redeem` body.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// The member who redeems (a member-scoped key may leave it out).
    pub member_id: Option<Uuid>,
    /// HNV as exact decimal text.
    #[validate(length(min = 1, max = 100))]
    pub amount_hnv: String,
    /// The fiat currency (`CAD`; one of `HAVEN_REDEMPTION_CURRENCIES`).
    #[validate(length(equal = 3))]
    pub currency: String,
    /// Where the fiat goes (a bank account alias the payment team knows).
    #[validate(
        length(min = 1, max = 200),
        custom(function = "crate::extract::no_nul")
    )]
    pub payout_reference: String,
    /// The idempotency key, when not sent as the header.
    pub idempotency_key: Option<String>,
}

pub(crate) fn redemption_json(r: &Redemption) -> serde_json::Value {
    json!({
        "id": r.id,
        "member_id": r.member_id,
        "amount_hnv": r.amount.to_string(),
        "amount_base_units": r.amount.base_units().to_string(),
        "currency": r.fiat_currency,
        "rate": r.rate,
        "fiat_amount": r.fiat_amount,
        "rate_source": r.rate_source,
        "rate_at": r.rate_at,
        "payout_reference": r.payout_reference,
        "status": r.status.as_str(),
        "escrow": r.escrow,
        "requested_by": r.requested_by,
        "approvals": r.approvals,
        "required_approvals": r.required_approvals,
        "decided_by": r.decided_by,
        "reason": r.reason,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "vault_request_id": r.vault_request_id,
    })
}

/// Redeems a member's tokens for fiat: priced with the current rate (stored with the
/// request), the tokens escrowed at once by the worker, paid after an operator's approval
/// (two distinct operators from `HAVEN_REDEMPTION_DUAL_APPROVAL_HNV`). Requires an
/// `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/api/v1/token/redeem",
    tag = "token",
    request_body = RedeemRequest,
    params(("Idempotency-Key" = String, Header, description = "Required: one redemption per key")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Requested; the tokens are being escrowed", body = Object),
        (status = 200, description = "The same key again: the recorded request", body = Object),
        (status = 400, description = "No Idempotency-Key", body = crate::openapi::ErrorBodySchema),
        (status = 422, description = "More than the member can spend", body = crate::openapi::ErrorBodySchema),
        (status = 503, description = "No current price (PRICE_UNAVAILABLE): nothing recorded", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn redeem(
    req: HttpRequest,
    principal: Authenticated,
    body: ValidatedJson<RedeemRequest>,
    rewards: web::Data<RewardsService>,
    treasury: web::Data<TreasuryService>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let member = acting_member(&req, body.member_id)?;
    let amount = amount_of("amount_hnv", &body.amount_hnv)?;
    let currency = body.currency.to_ascii_uppercase();
    if !treasury.config.redemption_currencies.contains(&currency) {
        return Err(ApiError(
            Problem::new(
                ErrorCode::ValidationError,
                format!(
                    "{currency} is not redeemed into (HAVEN_REDEMPTION_CURRENCIES: {})",
                    treasury.config.redemption_currencies.join(", ")
                ),
            )
            .with_detail("field", "currency"),
        ));
    }
    let key = idempotency_key(&req, body.idempotency_key.as_deref()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::IdempotencyKeyRequired,
            "an Idempotency-Key is required",
        )
    })?;
    let quote = treasury.quote(&currency).await?;
    let fiat = fiat_amount(amount, quote.rate)
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidAmount, "the amount is too large"))?;
    let balance = balance(&rewards, member).await?;
    let required_approvals = if amount >= treasury.config.dual_approval_at {
        2
    } else {
        1
    };
    let audit = event(&req, &principal, "redemption.request", Severity::Medium);
    let created = treasury
        .treasury
        .request_redemption(NewRedemption {
            member_id: member,
            amount,
            fiat_currency: currency,
            rate: quote.rate.to_string(),
            fiat_amount: fiat.to_string(),
            rate_source: quote.source,
            rate_at: quote.at,
            payout_reference: body.payout_reference,
            requested_by: principal.actor(),
            idempotency_key: key,
            required_approvals,
            balance,
            audit,
        })
        .await
        .map_err(treasury_error)?;
    Ok(match created {
        Created::New(r) => {
            treasury.stats.invalidate().await;
            HttpResponse::Accepted().json(redemption_json(&r))
        }
        Created::Existing(r) => HttpResponse::Ok().json(redemption_json(&r)),
    })
}

/// `GET /api/v1/admin/redemptions` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RedemptionsQuery {
    /// `requested`, `approved`, `paid` or `rejected` (default: all).
    pub status: Option<String>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// Redemptions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/admin/redemptions",
    tag = "token",
    params(RedemptionsQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The redemptions", body = Object)),
)]
pub async fn list_redemptions(
    _: Authenticated,
    query: web::Query<RedemptionsQuery>,
    treasury: web::Data<TreasuryService>,
) -> Result<HttpResponse, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some("requested") => Some(RedemptionStatus::Requested),
        Some("approved") => Some(RedemptionStatus::Approved),
        Some("paid") => Some(RedemptionStatus::Paid),
        Some("rejected") => Some(RedemptionStatus::Rejected),
        Some(other) => {
            return Err(ApiError(
                Problem::new(ErrorCode::InvalidQuery, format!("unknown status {other:?}"))
                    .with_detail("field", "status"),
            ));
        }
    };
    let limit = i64::from(query.limit.unwrap_or(50).clamp(1, 500));
    let items = treasury
        .treasury
        .redemptions(status, limit)
        .await
        .map_err(treasury_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "items": items.iter().map(redemption_json).collect::<Vec<_>>(),
    })))
}

/// One redemption.
#[utoipa::path(
    get,
    path = "/api/v1/admin/redemptions/{id}",
    tag = "token",
    params(("id" = Uuid, Path, description = "The redemption id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The redemption", body = Object),
        (status = 404, description = "No such redemption", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn get_redemption(
    _: Authenticated,
    id: web::Path<Uuid>,
    treasury: web::Data<TreasuryService>,
) -> Result<HttpResponse, ApiError> {
    let found = treasury
        .treasury
        .redemption(id.into_inner())
        .await
        .map_err(treasury_error)?
        .ok_or_else(|| treasury_error(TreasuryError::NotFound))?;
    Ok(HttpResponse::Ok().json(redemption_json(&found)))
}

/// `POST /api/v1/admin/redemptions/{id}/reject` body.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Why (kept with the request and in the audit log).
    #[validate(
        length(min = 1, max = 500),
        custom(function = "crate::extract::no_nul")
    )]
    pub reason: String,
}

/// Approves a redemption (never by its requester; a second approval from another operator
/// when two are required).
#[utoipa::path(
    post,
    path = "/api/v1/admin/redemptions/{id}/approve",
    tag = "token",
    params(("id" = Uuid, Path, description = "The redemption id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Approved (or one approval of two recorded)", body = Object),
        (status = 202, description = "A guardian vault covers it: submitted to (or still waiting for) its guardians", body = Object),
        (status = 403, description = "The requester, or the same operator twice", body = crate::openapi::ErrorBodySchema),
        (status = 422, description = "Not waiting for approval", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn approve(
    req: HttpRequest,
    principal: Authenticated,
    id: web::Path<Uuid>,
    treasury: web::Data<TreasuryService>,
    guardians: web::Data<crate::guardian::GuardianContext>,
) -> Result<HttpResponse, ApiError> {
    use crate::guardian::release::{Gate, gate_redemption};
    let id = id.into_inner();
    let mut caller = haven_vault::Caller::new(principal.actor());
    if let Some(ip) = crate::ratelimit::client_ip(&req) {
        caller = caller.with_ip(ip.to_string());
    }
    let submitted = event(&req, &principal, "redemption.vault_submit", Severity::High);
    match gate_redemption(&guardians, id, &caller, submitted).await? {
        Gate::Proceed => {}
        Gate::Waiting(body) => return Ok(HttpResponse::Accepted().json(body)),
        Gate::Approved(updated) => {
            treasury.stats.invalidate().await;
            return Ok(HttpResponse::Ok().json(redemption_json(&updated)));
        }
    }
    let audit = event(&req, &principal, "redemption.approve", Severity::High);
    let updated = treasury
        .treasury
        .approve_redemption(id, &principal.actor(), audit)
        .await
        .map_err(treasury_error)?;
    treasury.stats.invalidate().await;
    Ok(HttpResponse::Ok().json(redemption_json(&updated)))
}

/// Rejects a redemption: the escrowed tokens go back to the member, once.
#[utoipa::path(
    post,
    path = "/api/v1/admin/redemptions/{id}/reject",
    tag = "token",
    params(("id" = Uuid, Path, description = "The redemption id")),
    request_body = RejectRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Rejected", body = Object),
        (status = 422, description = "Already paid or rejected", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn reject(
    req: HttpRequest,
    principal: Authenticated,
    id: web::Path<Uuid>,
    body: ValidatedJson<RejectRequest>,
    treasury: web::Data<TreasuryService>,
) -> Result<HttpResponse, ApiError> {
    let audit = event(&req, &principal, "redemption.reject", Severity::High);
    let updated = treasury
        .treasury
        .reject_redemption(id.into_inner(), &principal.actor(), &body.0.reason, audit)
        .await
        .map_err(treasury_error)?;
    treasury.stats.invalidate().await;
    Ok(HttpResponse::Ok().json(redemption_json(&updated)))
}

/// Marks an approved redemption paid (its escrow confirmed): the escrow is burned.
#[utoipa::path(
    post,
    path = "/api/v1/admin/redemptions/{id}/mark-paid",
    tag = "token",
    params(("id" = Uuid, Path, description = "The redemption id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Paid", body = Object),
        (status = 422, description = "Not approved, or the escrow is not confirmed yet", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn mark_paid(
    req: HttpRequest,
    principal: Authenticated,
    id: web::Path<Uuid>,
    treasury: web::Data<TreasuryService>,
) -> Result<HttpResponse, ApiError> {
    let audit = event(&req, &principal, "redemption.paid", Severity::High);
    let updated = treasury
        .treasury
        .mark_redemption_paid(id.into_inner(), &principal.actor(), audit)
        .await
        .map_err(treasury_error)?;
    treasury.stats.invalidate().await;
    Ok(HttpResponse::Ok().json(redemption_json(&updated)))
}

//! Withdrawals (`POST /api/v1/members/{id}/withdrawals`): a member's tokens to one of their
//! registered payout addresses on an EVM chain, once per `Idempotency-Key`, checked against
//! the fraud rules (a new destination, velocity, amount tiers) and held for review on a HIGH
//! alert. The worker moves the tokens (the member's wallet never pays gas).

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use haven_address::{Chain, Family};
use haven_core::audit::Severity;
use haven_core::{ErrorCode, Problem};
use haven_db::treasury::{Created, NewWithdrawal, TreasuryError, Withdrawal, WithdrawalStatus};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Authenticated, MemberScope};
use crate::error::ApiError;
use crate::extract::ValidatedJson;
use crate::routes::admin::event;
use crate::routes::rewards::RewardsService;
use crate::routes::token::{amount_of, balance, idempotency_key, treasury_error};
use crate::treasury::TreasuryService;

fn member_in_scope(req: &HttpRequest, id: Uuid) -> Result<Uuid, ApiError> {
    match req.extensions().get::<MemberScope>() {
        Some(MemberScope(own)) if *own != id => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no member {id}"),
        )),
        _ => Ok(id),
    }
}

/// `POST /api/v1/members/{id}/withdrawals` body.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    /// The chain of the address (`eth`, `polygon`, … — EVM chains only).
    #[validate(length(min = 1, max = 64))]
    pub chain: String,
    /// A registered payout address of the member.
    #[validate(length(min = 1, max = 256))]
    pub address: String,
    /// HNV as exact decimal text.
    #[validate(length(min = 1, max = 100))]
    pub amount_hnv: String,
    /// The idempotency key, when not sent as the header.
    pub idempotency_key: Option<String>,
}

pub(crate) fn withdrawal_json(w: &Withdrawal) -> serde_json::Value {
    json!({
        "id": w.id,
        "member_id": w.member_id,
        "chain": w.chain,
        "address": w.address,
        "amount_hnv": w.amount.to_string(),
        "amount_base_units": w.amount.base_units().to_string(),
        "status": w.status.as_str(),
        "alert_id": w.alert_id,
        "vault_request_id": w.vault_request_id,
        "tx_id": w.tx_id,
        "error": w.error,
        "requested_by": w.requested_by,
        "created_at": w.created_at,
        "updated_at": w.updated_at,
    })
}

/// Validates `address` on `chain` with `haven-address`: the normalized address and the
/// chain's family name, or a 422 naming the reason.
fn evm_address(chain: &str, address: &str) -> Result<(String, String), ApiError> {
    let refuse = |message: String, reason: serde_json::Value| {
        ApiError(
            Problem::new(ErrorCode::InvalidPayload, message)
                .with_detail("field", "address")
                .with_detail("reason", reason),
        )
    };
    let parsed: Chain = chain.parse().map_err(|e: haven_address::UnknownChain| {
        ApiError(
            Problem::new(ErrorCode::InvalidPayload, e.to_string())
                .with_detail("field", "chain")
                .with_detail("reason", "unsupported_chain"),
        )
    })?;
    if parsed.family() != Family::Evm {
        return Err(ApiError(
            Problem::new(
                ErrorCode::InvalidPayload,
                format!(
                    "HAVEN moves on EVM chains only, not {}",
                    parsed.family().name()
                ),
            )
            .with_detail("field", "chain")
            .with_detail("reason", "not_evm"),
        ));
    }
    let report = haven_address::report(chain, address)
        .map_err(|e| refuse(e.to_string(), json!("unsupported_chain")))?;
    let report = serde_json::to_value(&report).map_err(|e| ApiError(Problem::internal(e)))?;
    match report["normalized"]
        .as_str()
        .filter(|_| report["valid"] == true)
    {
        Some(normalized) => Ok((
            normalized.to_owned(),
            report["chain"].as_str().unwrap_or(chain).to_owned(),
        )),
        None => Err(refuse(
            format!(
                "not a valid {chain} address: {}",
                report["message"].as_str().unwrap_or("invalid")
            ),
            report["error"].clone(),
        )),
    }
}

/// Withdraws a member's tokens to a registered payout address.
#[utoipa::path(
    post,
    path = "/api/v1/members/{id}/withdrawals",
    tag = "members",
    params(
        ("id" = Uuid, Path, description = "The member id"),
        ("Idempotency-Key" = String, Header, description = "Required: one withdrawal per key"),
    ),
    request_body = WithdrawalRequest,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "Recorded: pending (the worker sends it) or held for review", body = Object),
        (status = 200, description = "The same key again: the recorded withdrawal", body = Object),
        (status = 400, description = "No Idempotency-Key, or an address not registered", body = crate::openapi::ErrorBodySchema),
        (status = 422, description = "Invalid or non-EVM address (the reason from haven-address), or more than the member can spend", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn create(
    req: HttpRequest,
    principal: Authenticated,
    id: web::Path<Uuid>,
    body: ValidatedJson<WithdrawalRequest>,
    rewards: web::Data<RewardsService>,
    treasury: web::Data<TreasuryService>,
    guardians: web::Data<crate::guardian::GuardianContext>,
) -> Result<HttpResponse, ApiError> {
    let member = member_in_scope(&req, id.into_inner())?;
    let body = body.0;
    let (address, chain) = evm_address(&body.chain, &body.address)?;
    let amount = amount_of("amount_hnv", &body.amount_hnv)?;
    let key = idempotency_key(&req, body.idempotency_key.as_deref()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::IdempotencyKeyRequired,
            "an Idempotency-Key is required",
        )
    })?;
    let guard = guardians
        .vaults
        .guarding(
            haven_vault::OperationKind::Withdrawal,
            haven_vault::Amount(amount.base_units()),
        )
        .await?;
    let balance = balance(&rewards, member).await?;
    let fraud_event = haven_fraud::Event::Transfer(haven_fraud::PaymentEvent {
        event_id: format!("withdrawal:{member}:{key}"),
        user: member.to_string(),
        amount: haven_fraud::Amount::parse(&amount.to_string())
            .map_err(|e| ApiError::new(ErrorCode::InvalidAmount, e.to_string()))?,
        currency: "HNV".into(),
        destination: Some(format!("{chain}:{address}")),
        ts: chrono::Utc::now(),
    });
    let alerts = rewards
        .intake
        .fraud()
        .evaluate(&fraud_event)
        .await
        .map_err(|e| {
            ApiError(
                Problem::new(
                    ErrorCode::ServiceUnavailable,
                    "the fraud rules could not be evaluated",
                )
                .with_source(e),
            )
        })?;
    let audit = event(&req, &principal, "withdrawal.request", Severity::Medium);
    let created = treasury
        .treasury
        .request_withdrawal(NewWithdrawal {
            member_id: member,
            chain,
            address,
            amount,
            requested_by: principal.actor(),
            idempotency_key: key,
            alerts: &alerts,
            balance,
            guarded: guard.is_some(),
            audit,
        })
        .await
        .map_err(|e| match e {
            TreasuryError::UnregisteredAddress { .. } => ApiError(
                Problem::new(ErrorCode::InvalidPayload, e.to_string())
                    .with_detail("field", "address")
                    .with_detail("reason", "not_registered"),
            ),
            other => treasury_error(other),
        })?;
    let deciding = match (&guard, &created) {
        (Some(vault), Created::New(w) | Created::Existing(w))
            if w.status == WithdrawalStatus::Held =>
        {
            let caller = haven_vault::Caller::new(principal.actor());
            Some(crate::guardian::release::submit_withdrawal(&guardians, vault, w, &caller).await?)
        }
        _ => None,
    };
    Ok(match created {
        Created::New(mut w) => {
            w.vault_request_id = w.vault_request_id.or(deciding);
            let mut body = withdrawal_json(&w);
            body["alerts"] = json!(alerts.iter().map(|a| json!({"id": a.id, "rule_id": a.rule_id, "severity": a.severity.as_str()})).collect::<Vec<_>>());
            HttpResponse::Accepted().json(body)
        }
        Created::Existing(mut w) => {
            w.vault_request_id = w.vault_request_id.or(deciding);
            HttpResponse::Ok().json(withdrawal_json(&w))
        }
    })
}

/// One withdrawal of the member.
#[utoipa::path(
    get,
    path = "/api/v1/members/{id}/withdrawals/{withdrawal_id}",
    tag = "members",
    params(
        ("id" = Uuid, Path, description = "The member id"),
        ("withdrawal_id" = Uuid, Path, description = "The withdrawal id"),
    ),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The withdrawal", body = Object),
        (status = 404, description = "No such withdrawal of this member", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn get(
    req: HttpRequest,
    _: Authenticated,
    path: web::Path<(Uuid, Uuid)>,
    treasury: web::Data<TreasuryService>,
) -> Result<HttpResponse, ApiError> {
    let (member, withdrawal) = path.into_inner();
    let member = member_in_scope(&req, member)?;
    let found = treasury
        .treasury
        .withdrawal(withdrawal)
        .await
        .map_err(treasury_error)?
        .filter(|w| w.member_id == member)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no withdrawal {withdrawal}")))?;
    Ok(HttpResponse::Ok().json(withdrawal_json(&found)))
}

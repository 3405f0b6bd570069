//! Members of the rewards program: what they hold and earned, their partner identities and
//! payout addresses.
//!
//! Operators reach every member (`members:read`, `members:manage`); a member-scoped API key
//! (created with a `member_id`) reaches its own member only — another member's id answers
//! 404 as if it did not exist.

use std::str::FromStr;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use alloy::primitives::Address;
use chrono::{DateTime, Utc};
use haven_core::audit::Severity;
use haven_core::{ErrorCode, Problem};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Authenticated, MemberScope};
use crate::error::ApiError;
use crate::extract::ValidatedJson;
use crate::routes::admin::{event, page_limit};
use crate::routes::rewards::{RewardsService, reward_json};

fn not_found(id: Uuid) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no member {id}"))
}

/// The member id of the path, refused (404) to a key scoped to another member.
fn member_in_scope(req: &HttpRequest, id: Uuid) -> Result<Uuid, ApiError> {
    match req.extensions().get::<MemberScope>() {
        Some(MemberScope(own)) if *own != id => Err(not_found(id)),
        _ => Ok(id),
    }
}

/// One member: identities, custodial wallet, the on-chain balance beside the ledger's
/// confirmed total, and what is pending.
#[utoipa::path(
    get,
    path = "/api/v1/members/{id}",
    tag = "members",
    params(("id" = Uuid, Path, description = "The member id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The member", body = Object),
        (status = 404, description = "No such member (or not this key's)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn get(
    req: HttpRequest,
    _: Authenticated,
    id: web::Path<Uuid>,
    rewards: web::Data<RewardsService>,
) -> Result<HttpResponse, ApiError> {
    let id = member_in_scope(&req, id.into_inner())?;
    let ledger = rewards.intake.rewards();
    let member = ledger.member(id).await?.ok_or_else(|| not_found(id))?;
    let totals = ledger.member_totals(id).await?;
    let on_chain = match (&rewards.chain, &member.wallet_address) {
        (Some(chain), Some(address)) => {
            let holder = Address::from_str(address).map_err(|e| ApiError(Problem::internal(e)))?;
            match chain.balance_of(holder).await {
                Ok(balance) => {
                    let units = u128::try_from(balance).unwrap_or(u128::MAX);
                    let hnv = haven_rewards::Hnv::from_base_units(units);
                    json!({"balance_hnv": hnv.to_string(), "balance_base_units": balance.to_string()})
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), member = %id, "on-chain balance unavailable");
                    json!({"balance_hnv": null, "error": "the node could not be read"})
                }
            }
        }
        (None, _) => json!({"balance_hnv": null, "error": "HAVEN_TOKEN_ADDRESS is not configured"}),
        (_, None) => json!({"balance_hnv": "0", "balance_base_units": "0"}),
    };
    Ok(HttpResponse::Ok().json(json!({
        "id": member.id,
        "status": member.status,
        "email": member.email,
        "identities": member.identities,
        "wallet": {"id": member.wallet_id, "address": member.wallet_address},
        "on_chain": on_chain,
        "ledger": {
            "confirmed_hnv": totals.confirmed.to_string(),
            "confirmed_base_units": totals.confirmed.base_units().to_string(),
            "pending_hnv": totals.pending.to_string(),
            "pending_base_units": totals.pending.base_units().to_string(),
        },
        "created_at": member.created_at,
    })))
}

/// `GET /api/v1/members/{id}/rewards` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RewardsQuery {
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub before: Option<String>,
}

fn parse_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let invalid = || {
        ApiError(
            Problem::new(
                ErrorCode::InvalidQuery,
                "before must be the `next` of a page",
            )
            .with_detail("field", "before"),
        )
    };
    let (at, id) = raw.split_once('_').ok_or_else(invalid)?;
    let at = DateTime::parse_from_rfc3339(at)
        .map_err(|_| invalid())?
        .with_timezone(&Utc);
    Ok((at, Uuid::parse_str(id).map_err(|_| invalid())?))
}

/// The member's rewards, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/members/{id}/rewards",
    tag = "members",
    params(("id" = Uuid, Path, description = "The member id"), RewardsQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of rewards, newest first", body = Object),
        (status = 404, description = "No such member (or not this key's)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn rewards_of(
    req: HttpRequest,
    _: Authenticated,
    id: web::Path<Uuid>,
    query: web::Query<RewardsQuery>,
    rewards: web::Data<RewardsService>,
) -> Result<HttpResponse, ApiError> {
    let id = member_in_scope(&req, id.into_inner())?;
    let limit = page_limit(query.limit)?;
    let before = query.before.as_deref().map(parse_cursor).transpose()?;
    let ledger = rewards.intake.rewards();
    if ledger.member(id).await?.is_none() {
        return Err(not_found(id));
    }
    let page = ledger.rewards_of(id, before, i64::from(limit)).await?;
    let next = (page.len() == limit as usize)
        .then(|| {
            page.last()
                .map(|r| format!("{}_{}", r.created_at.to_rfc3339(), r.id))
        })
        .flatten();
    Ok(HttpResponse::Ok().json(json!({
        "rewards": page.iter().map(reward_json).collect::<Vec<_>>(),
        "next": next,
    })))
}

/// `POST /api/v1/members/{id}/identities` body.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkIdentity {
    /// `aurora` or `tribe`.
    pub source: String,
    /// The partner's guest / attendee id.
    #[validate(
        length(
            min = 1,
            max = 128,
            message = "external_id must be 1 to 128 characters"
        ),
        custom(function = "crate::extract::no_nul")
    )]
    pub external_id: String,
}

/// Links a partner identity to the member (an explicit link; audited). An identity that
/// belongs to another member is a 409.
#[utoipa::path(
    post,
    path = "/api/v1/members/{id}/identities",
    tag = "members",
    params(("id" = Uuid, Path, description = "The member id")),
    request_body = LinkIdentity,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Linked", body = Object),
        (status = 200, description = "Already linked to this member", body = Object),
        (status = 409, description = "The identity belongs to another member", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn link(
    req: HttpRequest,
    principal: Authenticated,
    id: web::Path<Uuid>,
    body: ValidatedJson<LinkIdentity>,
    rewards: web::Data<RewardsService>,
) -> Result<HttpResponse, ApiError> {
    let id = member_in_scope(&req, id.into_inner())?;
    let LinkIdentity {
        source,
        external_id,
    } = body.0;
    let source = haven_rewards::Source::from_str(&source).map_err(|_| {
        ApiError(
            Problem::new(ErrorCode::ValidationError, "source must be aurora or tribe")
                .with_detail("field", "source"),
        )
    })?;
    let ledger = rewards.intake.rewards();
    if ledger.member(id).await?.is_none() {
        return Err(not_found(id));
    }
    let audit = event(&req, &principal, "member.link", Severity::Medium)
        .target(format!("member:{id}"))
        .details(json!({"source": source.as_str(), "external_id": external_id}));
    let linked = ledger
        .link_identity(id, source.as_str(), &external_id, audit)
        .await
        .map_err(|e| match e {
            haven_db::Error::Conflict { .. } => ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "{}:{external_id} belongs to another member",
                    source.as_str()
                ),
            ),
            other => other.into(),
        })?;
    let body = json!({"member_id": id, "source": source.as_str(), "external_id": external_id});
    Ok(if linked {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// `POST /api/v1/members/{id}/payout-addresses` body.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayoutAddress {
    /// The chain family, as `POST /api/v1/addresses/validate` names it (`evm`, …).
    #[validate(length(min = 1, max = 64, message = "chain must be 1 to 64 characters"))]
    pub chain: String,
    /// The address.
    #[validate(length(min = 1, max = 256, message = "address must be 1 to 256 characters"))]
    pub address: String,
    /// A label for the member's own use.
    #[validate(
        length(max = 64, message = "label must be at most 64 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub label: Option<String>,
}

/// Registers an external payout address: validated and normalized by `haven-address`,
/// stored per chain (audited). An invalid address is a 422 naming the reason.
#[utoipa::path(
    post,
    path = "/api/v1/members/{id}/payout-addresses",
    tag = "members",
    params(("id" = Uuid, Path, description = "The member id")),
    request_body = NewPayoutAddress,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Registered (normalized)", body = Object),
        (status = 200, description = "Already registered", body = Object),
        (status = 422, description = "Not a valid address of that chain", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn add_payout_address(
    req: HttpRequest,
    principal: Authenticated,
    id: web::Path<Uuid>,
    body: ValidatedJson<NewPayoutAddress>,
    rewards: web::Data<RewardsService>,
) -> Result<HttpResponse, ApiError> {
    let id = member_in_scope(&req, id.into_inner())?;
    let NewPayoutAddress {
        chain,
        address,
        label,
    } = body.0;
    let report = haven_address::report(&chain, &address).map_err(|e| {
        ApiError(
            Problem::new(ErrorCode::UnsupportedChain, e.to_string()).with_detail("field", "chain"),
        )
    })?;
    let report = serde_json::to_value(&report).map_err(|e| ApiError(Problem::internal(e)))?;
    let Some(normalized) = report["normalized"]
        .as_str()
        .filter(|_| report["valid"] == true)
    else {
        return Err(ApiError(
            Problem::new(
                ErrorCode::InvalidPayload,
                format!(
                    "not a valid {chain} address: {}",
                    report["message"].as_str().unwrap_or("invalid")
                ),
            )
            .with_detail("field", "address")
            .with_detail("reason", report["error"].clone()),
        ));
    };
    let chain = report["chain"].as_str().unwrap_or(&chain).to_owned();
    let ledger = rewards.intake.rewards();
    if ledger.member(id).await?.is_none() {
        return Err(not_found(id));
    }
    let label = label.unwrap_or_default();
    let audit = event(&req, &principal, "member.payout_address", Severity::Medium)
        .target(format!("member:{id}"))
        .details(json!({"chain": chain, "address": normalized}));
    let added = ledger
        .add_payout_address(id, &chain, normalized, &label, audit)
        .await?;
    let body = json!({"member_id": id, "chain": chain, "address": normalized, "label": label});
    Ok(if added {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// The member's payout addresses.
#[utoipa::path(
    get,
    path = "/api/v1/members/{id}/payout-addresses",
    tag = "members",
    params(("id" = Uuid, Path, description = "The member id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The addresses, oldest first", body = Object),
        (status = 404, description = "No such member (or not this key's)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn payout_addresses(
    req: HttpRequest,
    _: Authenticated,
    id: web::Path<Uuid>,
    rewards: web::Data<RewardsService>,
) -> Result<HttpResponse, ApiError> {
    let id = member_in_scope(&req, id.into_inner())?;
    let ledger = rewards.intake.rewards();
    if ledger.member(id).await?.is_none() {
        return Err(not_found(id));
    }
    let addresses = ledger.payout_addresses(id).await?;
    Ok(HttpResponse::Ok().json(json!({"addresses": addresses})))
}

/// `GET /api/v1/admin/rewards` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RewardsInStateQuery {
    /// `pending`, `held`, `submitted`, `confirmed`, `reversed`, `cancelled` or
    /// `failed_needs_review`.
    #[param(example = "held")]
    pub state: String,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// Every member's rewards in one state, oldest first: the held ones waiting for their fraud
/// alert's review (approve: review the alert `false_positive`; reject: `resolved`), the
/// failed ones. A key scoped to one member is refused (403): this spans members.
#[utoipa::path(
    get,
    path = "/api/v1/admin/rewards",
    tag = "members",
    params(RewardsInStateQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The rewards, oldest first", body = Object),
        (status = 400, description = "Unknown state (`INVALID_QUERY`, `details.field`)", body = crate::openapi::ErrorBodySchema),
        (status = 403, description = "A member-scoped key", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn rewards_in_state(
    req: HttpRequest,
    _: Authenticated,
    query: web::Query<RewardsInStateQuery>,
    rewards: web::Data<RewardsService>,
) -> Result<HttpResponse, ApiError> {
    if req.extensions().get::<MemberScope>().is_some() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a key scoped to one member cannot list every member's rewards",
        ));
    }
    let limit = page_limit(query.limit)?;
    let state = haven_rewards::RewardState::from_str(&query.state).map_err(|_| {
        ApiError(
            Problem::new(
                ErrorCode::InvalidQuery,
                format!(
                    "unknown state {:?}: pending, held, submitted, confirmed, reversed, cancelled or failed_needs_review",
                    query.state
                ),
            )
            .with_detail("field", "state"),
        )
    })?;
    let page = rewards
        .intake
        .rewards()
        .rewards_in(state, i64::from(limit))
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "state": state.as_str(),
        "rewards": page.iter().map(reward_json).collect::<Vec<_>>(),
        "limit": limit,
    })))
}

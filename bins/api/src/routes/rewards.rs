//! The partner event endpoints of the HAVEN rewards program:
//! `POST /api/v1/webhooks/aurora/{event}` (`booking-created`, `booking-completed`,
//! `booking-cancelled`, `review-submitted`) and `POST /api/v1/webhooks/tribe/{event}`
//! (`event-attendance`, `contribution`, `staking-started`, `coaching-milestone`,
//! `referral-success`).
//!
//! Each request is verified with the source's configured signature scheme (the sources
//! `aurora` and `tribe` of `HAVEN_WEBHOOK_SOURCES`) and charged like every inbound webhook
//! ([`crate::routes::inbound::admit`]); then the payload is parsed into a typed event and
//! priced by the rules (`haven_rewards`), the member resolved, a new reward checked against
//! the fraud rules, and event, reward, alerts, the worker's job and the outbound `reward.*`
//! webhooks are written in one transaction ([`haven_db::rewards::Intake`]). Money never moves
//! here: the worker mints.
//!
//! | outcome | answer |
//! |---|---|
//! | unknown source, bad or missing signature | 404 / 400 / 401 (junk, charged per network) |
//! | unknown event name | 404 `NOT_FOUND` |
//! | invalid payload | 422 `INVALID_PAYLOAD`, `details.field` names the field; nothing written |
//! | new event | 202 with the decision and the reward, if any |
//! | the same message again | 200 `{"status":"duplicate"}` |
//! | the message id with another body | 409 `WEBHOOK_REPLAY_CONFLICT` (audited HIGH) |
//! | fraud rules or database unavailable | 503 (the partner retries) |

use actix_web::{HttpRequest, HttpResponse, web};
use haven_core::{ErrorCode, Problem};
use haven_db::rewards::{InboxEntry, IngestOutcome, Intake, IntakeError};
use haven_rewards::{EventName, Source};
use serde_json::json;

use crate::error::ApiError;
use crate::routes::inbound::{admit, replay_conflict};
use crate::state::AppState;

/// The rewards program's parts the api needs (app data).
#[derive(Debug, Clone)]
pub struct RewardsService {
    /// The path every partner event takes into the ledger.
    pub intake: Intake,
    /// Reads balances and the supply on chain, when `HAVEN_TOKEN_ADDRESS` is set.
    pub chain: Option<crate::chain::TokenReader>,
}

/// The 422 (or 503) of an event that could not be taken in.
pub(crate) fn intake_error(e: IntakeError) -> ApiError {
    match e {
        IntakeError::Payload(p) => ApiError(
            Problem::new(ErrorCode::InvalidPayload, p.to_string()).with_detail("field", p.field),
        ),
        other => ApiError(Problem::new(other.code(), other.to_string()).with_source(other)),
    }
}

/// `POST /api/v1/webhooks/aurora/{event}`.
pub(crate) async fn aurora(
    req: HttpRequest,
    event: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
    rewards: web::Data<RewardsService>,
) -> Result<HttpResponse, ApiError> {
    receive(req, Source::Aurora, &event, &body, &state, &rewards).await
}

/// `POST /api/v1/webhooks/tribe/{event}`.
pub(crate) async fn tribe(
    req: HttpRequest,
    event: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
    rewards: web::Data<RewardsService>,
) -> Result<HttpResponse, ApiError> {
    receive(req, Source::Tribe, &event, &body, &state, &rewards).await
}

async fn receive(
    req: HttpRequest,
    source: Source,
    event: &str,
    body: &[u8],
    state: &AppState,
    rewards: &RewardsService,
) -> Result<HttpResponse, ApiError> {
    let admitted = match admit(&req, state, source.as_str(), body).await {
        Ok(admitted) => admitted,
        Err(refusal) => return Ok(refusal),
    };
    let Some(name) = EventName::parse(source.as_str(), event) else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("{} sends no event {event:?}", source.as_str()),
        ));
    };
    let origin = format!("webhook:{}", admitted.replay_id);
    let inbox = InboxEntry {
        message_id: &admitted.replay_id,
        body,
    };
    let accepted = rewards
        .intake
        .accept(name, body, &origin, Some(inbox))
        .await
        .map_err(intake_error)?;
    let response = match accepted.outcome {
        IngestOutcome::Accepted {
            event_id,
            reward,
            already_rewarded,
            reversals,
        } => {
            let decision = &accepted.decision;
            HttpResponse::Accepted().json(json!({
                "status": "accepted",
                "event": name.path(),
                "event_id": event_id,
                "member_id": accepted.member_id,
                "decision": decision.quote_json(),
                "reward": reward.as_deref().map(reward_json),
                "already_rewarded": already_rewarded.as_deref().map(reward_json),
                "reversals": reversals.iter().map(reward_json).collect::<Vec<_>>(),
                "alerts": accepted.alerts.iter().map(|a| json!({
                    "id": a.id, "rule_id": a.rule_id, "severity": a.severity.as_str(),
                })).collect::<Vec<_>>(),
            }))
        }
        IngestOutcome::Duplicate => HttpResponse::Ok().json(json!({"status": "duplicate"})),
        IngestOutcome::Conflict { inbox_id } => {
            let source = source.as_str();
            return Err(replay_conflict(&req, state, source, &admitted.replay_id, inbox_id).await);
        }
    };
    Ok(admitted.finish(response))
}

/// A reward as the api shows it.
pub(crate) fn reward_json(r: &haven_db::RewardRecord) -> serde_json::Value {
    json!({
        "id": r.id,
        "business_key": r.business_key,
        "source": r.source,
        "kind": r.kind.as_str(),
        "external_id": r.external_id,
        "member_id": r.member_id,
        "amount_hnv": r.amount.to_string(),
        "amount_base_units": r.amount.base_units().to_string(),
        "state": r.state.as_str(),
        "tx_id": r.tx_id,
        "rules_version": r.rules_version,
        "reason": r.reason,
        "alert_id": r.alert_id,
        "reversed_hnv": r.reversed_amount.map(|a| a.to_string()),
        "shortfall_hnv": r.shortfall.map(|a| a.to_string()),
        "error": r.error,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "confirmed_at": r.confirmed_at,
    })
}

//! `POST /api/v1/fraud/events`: token operations reported by an integrator, evaluated by
//! the fraud rules at once; the alerts they raise are stored in `transaction_monitoring`
//! (reviewed under `/api/v1/admin/alerts`, delivered by the worker) and returned.
//!
//! The body is one event as `haven_fraud::Event::from_json` reads it (amounts as strings).
//! Malformed events answer 400 `INVALID_JSON` / `VALIDATION_ERROR` / `INVALID_AMOUNT`; an
//! event whose `ts` is further ahead than the engine's `max_future_skew_secs` is refused with
//! 400 `VALIDATION_ERROR` and leaves no state behind, so it cannot mute later events. A
//! repeated `event_id` is evaluated once (the engine de-duplicates).

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use haven_core::{ErrorCode, Problem};
use haven_fraud::{Alert, AlertStore, Engine, Event};
use serde::Serialize;

use crate::auth::Authenticated;
use crate::error::ApiError;

/// The fraud engine and where its alerts go (app data).
pub struct FraudService {
    /// The rules and their state.
    pub engine: Arc<Engine>,
    /// `transaction_monitoring`.
    pub alerts: Arc<dyn AlertStore>,
}

impl std::fmt::Debug for FraudService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FraudService")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// One alert an event raised.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RaisedAlert {
    /// The alert id (review it under `/api/v1/admin/alerts/{id}`).
    pub id: uuid::Uuid,
    /// The rule that fired.
    pub rule_id: String,
    /// What was detected.
    pub event_type: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// One line for humans.
    pub description: String,
}

impl From<&Alert> for RaisedAlert {
    fn from(a: &Alert) -> Self {
        Self {
            id: a.id,
            rule_id: a.rule_id.clone(),
            event_type: a.event_type.clone(),
            severity: a.severity.as_str().to_owned(),
            description: haven_core::redact(&a.description),
        }
    }
}

/// The outcome of one reported event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Evaluated {
    /// The event's id.
    pub event_id: String,
    /// The alerts it raised (often none).
    pub alerts: Vec<RaisedAlert>,
}

fn fraud_problem(e: haven_fraud::Error) -> ApiError {
    // The event's own error says what is wrong with it; the wrapper only says "invalid".
    let message = match &e {
        haven_fraud::Error::Event(inner) => format!("invalid event: {inner}"),
        other => other.to_string(),
    };
    ApiError(Problem::new(e.code(), message).with_source(e))
}

/// Evaluates one token operation against the fraud rules.
#[utoipa::path(
    post,
    path = "/api/v1/fraud/events",
    tag = "fraud",
    request_body(content = Object, description = "One event: `{\"type\": \"transfer\", \"event_id\", \"user\", \"amount\": \"12.50\", \"currency\", \"destination\", \"ts\"}` and the other kinds of `haven_fraud::Event`"),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Evaluated; the alerts it raised", body = Evaluated),
        (status = 400, description = "Malformed, or `ts` too far in the future", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn report(
    _: Authenticated,
    service: web::Data<FraudService>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let event = Event::from_json(&body).map_err(|e| fraud_problem(haven_fraud::Error::Event(e)))?;
    let alerts = service
        .engine
        .evaluate(&event)
        .await
        .map_err(fraud_problem)?;
    for alert in &alerts {
        service.alerts.insert(alert).await.map_err(|e| {
            ApiError(
                Problem::new(
                    ErrorCode::ServiceUnavailable,
                    "the alert store is unavailable",
                )
                .with_source(e),
            )
        })?;
    }
    Ok(HttpResponse::Ok().json(Evaluated {
        event_id: event.event_id().to_owned(),
        alerts: alerts.iter().map(RaisedAlert::from).collect(),
    }))
}

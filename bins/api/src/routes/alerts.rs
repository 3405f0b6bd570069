//! Fraud and chain alerts (`transaction_monitoring`) for reviewers: list, and move one
//! through review (open → acknowledged → resolved | false_positive).
//!
//! Transitions go through `haven_fraud::ReviewService` over `PgAlertStore`, whose
//! `change_state_audited` commits the state change and its `fraud.alert.<state>` audit row
//! together; the reviewer recorded is the authenticated principal.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_auth::{Permission, Principal};
use haven_core::audit::Severity;
use haven_core::{ErrorCode, Problem, redact};
use haven_db::{PgAlertStore, PgAuditLog};
use haven_fraud::{
    AlertFilter, AlertRecord, MAX_SEARCH_CHARS, ReviewService, ReviewState, Reviewer, ReviewerRole,
    Severity as AlertSeverity,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{AuthContext, Authenticated};
use crate::error::ApiError;
use crate::extract::ValidatedJson;
use crate::routes::admin::{event, page_limit, refuse};
use crate::state::AppState;

/// A note on an alert.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoteView {
    /// Who wrote it (`user:<id>` or `key:<id>`).
    pub author: String,
    /// What it says.
    pub text: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// An alert with its review state. Text is redacted on the way out.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    /// Id.
    pub id: Uuid,
    /// The rule that fired.
    pub rule_id: String,
    /// What was detected (`velocity`, `transaction_stuck`, …).
    pub event_type: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// What the cooldown is keyed on.
    pub subject: String,
    /// The user concerned, if any.
    pub user: Option<String>,
    /// One line for humans.
    pub description: String,
    /// Structured context.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The triggering event.
    pub event_id: String,
    /// Its time.
    pub event_ts: DateTime<Utc>,
    /// When the alert was raised.
    pub created_at: DateTime<Utc>,
    /// `open`, `acknowledged`, `resolved` or `false_positive`.
    pub state: String,
    /// Who made the last review step.
    pub reviewed_by: Option<String>,
    /// When.
    pub reviewed_at: Option<DateTime<Utc>>,
    /// Notes, oldest first.
    pub notes: Vec<NoteView>,
}

fn redact_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(redact(s)),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl From<AlertRecord> for AlertView {
    fn from(r: AlertRecord) -> Self {
        let a = r.alert;
        Self {
            id: a.id,
            rule_id: a.rule_id,
            event_type: a.event_type,
            severity: a.severity.as_str().to_owned(),
            subject: redact(&a.subject),
            user: a.user,
            description: redact(&a.description),
            metadata: redact_json(&a.metadata),
            event_id: a.event_id,
            event_ts: a.event_ts,
            created_at: a.created_at,
            state: r.state.as_str().to_owned(),
            reviewed_by: r.reviewed_by,
            reviewed_at: r.reviewed_at,
            notes: r
                .notes
                .into_iter()
                .map(|n| NoteView {
                    author: n.author,
                    text: redact(&n.text),
                    at: n.at,
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/admin/alerts` query. Every filter given must match; unknown parameters
/// are refused.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only alerts of this event type (`velocity`, `amount_tier`, `transaction_stuck`, …).
    pub event_type: Option<String>,
    /// Only alerts of this severity: `low`, `medium`, `high` or `critical`.
    #[param(example = "high")]
    pub severity: Option<String>,
    /// Only alerts in this state: `open`, `acknowledged`, `resolved` or `false_positive`.
    #[param(example = "open")]
    pub state: Option<String>,
    /// Only alerts about this member (the user id the alert concerns).
    pub member: Option<String>,
    /// Only alerts raised at or after this time (RFC 3339; encode `+` as `%2B`).
    #[param(format = DateTime, example = "2026-01-02T10:00:00Z")]
    pub since: Option<String>,
    /// Only alerts raised strictly before this time (RFC 3339); not before `since`.
    #[param(format = DateTime, example = "2026-01-03T10:00:00Z")]
    pub until: Option<String>,
    /// Text search, case-insensitive and literal (`%` and `_` are plain characters), in the
    /// description, subject, rule id and metadata values; at most 200 characters.
    pub q: Option<String>,
    /// Paging: only alerts raised strictly before this time (the `created_at` of the last
    /// alert of the previous page; RFC 3339).
    #[param(format = DateTime)]
    pub before: Option<String>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// The longest `event_type` or `member` accepted, in characters.
const MAX_NAME_CHARS: usize = 200;

fn invalid_query(field: &str, message: String) -> ApiError {
    ApiError(Problem::new(ErrorCode::InvalidQuery, message).with_detail("field", field))
}

/// A free-text parameter: at most `max` characters, no NUL; empty counts as absent.
fn text_param(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max {
        return Err(invalid_query(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if value.contains('\0') {
        return Err(invalid_query(
            field,
            format!("{field} must not contain a NUL character"),
        ));
    }
    Ok(Some(value))
}

fn time_param(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    invalid_query(
                        field,
                        format!(
                            "{field} {raw:?} is not an RFC 3339 time such as \
                             2026-01-02T10:00:00Z ({e}; encode + as %2B)"
                        ),
                    )
                })
        })
        .transpose()
}

/// The store filter of a list query, or the problem with its first invalid parameter.
fn filter_of(query: ListQuery) -> Result<AlertFilter, ApiError> {
    let limit = page_limit(query.limit)?;
    let severity = query
        .severity
        .as_deref()
        .map(|raw| {
            AlertSeverity::parse(raw).ok_or_else(|| {
                invalid_query(
                    "severity",
                    format!("unknown severity {raw:?}: low, medium, high or critical"),
                )
            })
        })
        .transpose()?;
    let state = query
        .state
        .as_deref()
        .map(|raw| {
            ReviewState::parse(raw).ok_or_else(|| {
                invalid_query(
                    "state",
                    format!(
                        "unknown state {raw:?}: open, acknowledged, resolved or false_positive"
                    ),
                )
            })
        })
        .transpose()?;
    let since = time_param("since", query.since.as_deref())?;
    let until = time_param("until", query.until.as_deref())?;
    let before = time_param("before", query.before.as_deref())?;
    if let (Some(since), Some(until)) = (since, until)
        && since > until
    {
        return Err(invalid_query(
            "until",
            "until must not be before since".into(),
        ));
    }
    Ok(AlertFilter {
        user: text_param("member", query.member, MAX_NAME_CHARS)?,
        event_type: text_param("event_type", query.event_type, MAX_NAME_CHARS)?,
        severity,
        reviewed: None,
        state,
        since,
        // `until` bounds the list; `before` pages within it.
        before: match (until, before) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        text: text_param("q", query.q, MAX_SEARCH_CHARS)?,
        limit: limit as usize,
    })
}

fn fraud_error(e: haven_fraud::Error) -> ApiError {
    // A review step the state does not allow (or that lost a race) conflicts with the
    // alert's current state: 409, not the crate's 422.
    let code = match &e {
        haven_fraud::Error::InvalidTransition { .. } => ErrorCode::Conflict,
        other => other.code(),
    };
    let mut problem = Problem::new(code, e.to_string());
    if let haven_fraud::Error::InvalidTransition { from, to } = &e {
        problem = problem
            .with_detail("from", from.as_str())
            .with_detail("to", to.as_str());
    }
    ApiError(problem.with_source(e))
}

/// Alerts, newest first, filtered by event type, severity, state, member, time range and
/// text; a bad filter is a 400 `INVALID_QUERY` naming it in `details.field`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/alerts",
    tag = "admin",
    params(ListQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Alerts, newest first", body = Vec<AlertView>),
        (status = 400, description = "A filter is invalid (`INVALID_QUERY`, `details.field`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn list(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    use haven_fraud::AlertStore;
    let filter = filter_of(query.into_inner())?;
    let alerts: Vec<AlertView> = PgAlertStore::new(state.db.clone())
        .list(&filter)
        .await
        .map_err(|e| fraud_error(e.into()))?
        .into_iter()
        .map(AlertView::from)
        .collect();
    Ok(HttpResponse::Ok().json(alerts))
}

/// `POST /api/v1/admin/alerts/{id}/transition` body.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The state to move to: `acknowledged` (from open), `resolved` or `false_positive`
    /// (from acknowledged).
    #[schema(value_type = String, example = "acknowledged")]
    pub to: ReviewState,
    /// A note added with the step.
    #[validate(
        length(min = 1, max = 4000, message = "note must be 1 to 4000 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub note: Option<String>,
}

/// Moves an alert one review step (audited `fraud.alert.<state>` in the same transaction);
/// the reviewer is the caller. A step the current state does not allow is a 409 `CONFLICT`
/// (audited as refused).
#[utoipa::path(
    post,
    path = "/api/v1/admin/alerts/{id}/transition",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The alert id")),
    request_body = Transition,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Moved", body = AlertView),
        (status = 404, description = "No such alert", body = crate::openapi::ErrorBodySchema),
        (status = 409, description = "The current state does not allow this step", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn transition(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    id: web::Path<Uuid>,
    body: ValidatedJson<Transition>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let Transition { to, note } = body.0;
    let reviewer_principal = &principal.0;
    // The route already required `alerts:review`; the role only tells the workflow so.
    let role = match reviewer_principal {
        Principal::User {
            role: haven_auth::Role::Admin,
            ..
        } => ReviewerRole::Admin,
        p if p.can(Permission::ReviewAlerts) => ReviewerRole::Analyst,
        _ => ReviewerRole::Viewer,
    };
    let reviewer = Reviewer::new(principal.actor(), role);
    let review = ReviewService::new(
        Arc::new(PgAlertStore::new(state.db.clone())),
        Arc::new(PgAuditLog::new(state.db.clone())),
    );
    match review.transition(&reviewer, id, to, note.as_deref()).await {
        Ok(record) => {
            // A reviewed alert settles the rewards it held: a false positive releases them
            // to minting, a resolved (confirmed) one cancels them. The worker settles any
            // that this step misses.
            if matches!(to, ReviewState::FalsePositive | ReviewState::Resolved) {
                let audit = event(&req, &principal, "reward.settled", Severity::Medium);
                let settled = haven_db::PgRewards::new(state.db.clone())
                    .settle_held(id, to == ReviewState::FalsePositive, audit)
                    .await?;
                if !settled.is_empty() {
                    tracing::info!(alert = %id, rewards = settled.len(), approved = (to == ReviewState::FalsePositive), "held rewards settled");
                }
                let audit = event(&req, &principal, "withdrawal.settled", Severity::Medium);
                let released = haven_db::PgTreasury::new(state.db.clone())
                    .settle_held_withdrawals(id, to == ReviewState::FalsePositive, audit)
                    .await
                    .map_err(crate::routes::token::treasury_error)?;
                if !released.is_empty() {
                    tracing::info!(alert = %id, withdrawals = released.len(), approved = (to == ReviewState::FalsePositive), "held withdrawals settled");
                }
            }
            Ok(HttpResponse::Ok().json(AlertView::from(record)))
        }
        Err(haven_fraud::Error::InvalidTransition { from, to }) => {
            let audit = event(
                &req,
                &principal,
                &format!("fraud.alert.{}", to.as_str()),
                Severity::Low,
            )
            .target(id.to_string());
            let details = json!({"from": from.as_str(), "to": to.as_str()});
            let error = fraud_error(haven_fraud::Error::InvalidTransition { from, to });
            Err(refuse(&ctx, audit, details, error).await)
        }
        Err(e) => Err(fraud_error(e)),
    }
}

//! Outbound webhook endpoints for administrators: list, create, read, update, delete, rotate
//! the signing secret; dead letters and their replay.
//!
//! Every change and its `audit_log` row commit in one transaction (`webhook.endpoint.create`,
//! `….update`, `….rotate_secret` HIGH, `….delete` HIGH, `webhook.dead_letter.replay`).
//! A signing secret appears in exactly two answers, once each: the 201 of a creation and the
//! 200 of a rotation; never in a listing, an error body, a log line or `Debug`.
//!
//! **Delete protects undelivered messages:** an endpoint with pending attempts or dead
//! letters is refused (409 `CONFLICT`, with the counts; the refusal is audited) unless
//! `?force=true`, which deletes it with its messages and attempts (audited HIGH with what was
//! dropped). To stop deliveries while keeping everything, disable it (`PATCH` with
//! `"enabled": false`).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_core::audit::Severity;
use haven_core::{ErrorCode, Problem};
use haven_db::{
    DeadLetter, EndpointChange, EndpointDeletion, EndpointDetails, PgWebhookOutbox, check_overlap,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{AuthContext, Authenticated};
use crate::error::ApiError;
use crate::extract::ValidatedJson;
use crate::routes::admin::{applied, event, page_limit, refuse};
use crate::state::AppState;

/// One signing secret's validity; never the secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecretValidityView {
    /// The secret's id.
    pub id: i64,
    /// When it started signing.
    pub created_at: DateTime<Utc>,
    /// When it stops signing; absent: until the next rotation.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An outbound webhook endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    /// Id.
    pub id: Uuid,
    /// Where messages are POSTed.
    pub url: String,
    /// Free text for operators.
    pub description: String,
    /// Whether deliveries are attempted.
    pub enabled: bool,
    /// When it was disabled (by an operator, or after failing for too long).
    pub disabled_at: Option<DateTime<Utc>>,
    /// Start of the current run of failed attempts.
    pub failing_since: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Attempts waiting to be sent.
    pub pending_deliveries: i64,
    /// Dead letters not replayed.
    pub dead_letters: i64,
    /// The secrets that sign now, newest first (two during a rotation's overlap).
    pub secrets: Vec<SecretValidityView>,
}

impl From<EndpointDetails> for EndpointView {
    fn from(d: EndpointDetails) -> Self {
        let e = d.endpoint;
        Self {
            id: e.id,
            url: e.url,
            description: e.description,
            enabled: e.enabled,
            disabled_at: e.disabled_at,
            failing_since: e.failing_since,
            created_at: e.created_at,
            pending_deliveries: d.pending_deliveries,
            dead_letters: d.dead_letters,
            secrets: d
                .secrets
                .into_iter()
                .map(|s| SecretValidityView {
                    id: s.id,
                    created_at: s.created_at,
                    expires_at: s.expires_at,
                })
                .collect(),
        }
    }
}

/// A page of endpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointPageView {
    /// Endpoints in creation order.
    pub endpoints: Vec<EndpointView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<Uuid>,
}

/// A created endpoint and its first signing secret, shown this once. `Debug` leaves the
/// secret out.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedEndpointView {
    /// The endpoint.
    pub endpoint: EndpointView,
    /// The `whsec_…` secret to give the receiver; never shown again.
    pub secret: String,
}

impl std::fmt::Debug for CreatedEndpointView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedEndpointView")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// A rotated secret, shown this once. `Debug` leaves the secret out.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RotatedSecretView {
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The new `whsec_…` secret, signing from now on; never shown again.
    pub secret: String,
    /// Until when the previous secrets keep signing alongside it.
    pub old_secret_valid_until: DateTime<Utc>,
    /// How many previous secrets were given that expiry.
    pub retired_secrets: usize,
}

impl std::fmt::Debug for RotatedSecretView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSecretView")
            .field("endpoint_id", &self.endpoint_id)
            .field("old_secret_valid_until", &self.old_secret_valid_until)
            .finish_non_exhaustive()
    }
}

/// What a delete removed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletedEndpointView {
    /// The deleted endpoint's id.
    pub id: Uuid,
    /// Messages deleted with it.
    pub messages_deleted: i64,
    /// Pending attempts dropped (only with `force`).
    pub pending_dropped: i64,
    /// Dead letters dropped (only with `force`).
    pub dead_dropped: i64,
    /// Whether `force` was given.
    pub forced: bool,
}

/// A dead-lettered message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    /// The message id (`msg_…`), to replay it.
    pub message_id: String,
    /// Its endpoint.
    pub endpoint_id: Uuid,
    /// Its event type.
    pub event_type: String,
    /// Attempts made.
    pub attempts: i32,
    /// The last attempt's HTTP status, if the receiver answered.
    pub last_status: Option<i16>,
    /// The last attempt's error, if it got no answer.
    pub last_error: Option<String>,
    /// When the last attempt was made.
    pub dead_since: Option<DateTime<Utc>>,
}

impl From<DeadLetter> for DeadLetterView {
    fn from(d: DeadLetter) -> Self {
        Self {
            message_id: d.message_id,
            endpoint_id: d.endpoint_id,
            event_type: d.event_type,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            dead_since: d.dead_since,
        }
    }
}

/// A page of dead letters.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterPageView {
    /// Oldest first.
    pub dead_letters: Vec<DeadLetterView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<i64>,
}

/// A replayed message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayedView {
    /// The message id.
    pub message_id: String,
    /// Always `true`: one more attempt is queued, due now.
    pub queued: bool,
}

/// `GET /api/v1/admin/webhooks/endpoints` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The `next` of the previous page.
    pub after: Option<Uuid>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// `POST /api/v1/admin/webhooks/endpoints` body.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Where messages go: public `https` (plain `http` and internal addresses only where
    /// `HAVEN_WEBHOOK_ALLOW_HTTP` / `HAVEN_WEBHOOK_ALLOW` allow them).
    #[validate(
        length(min = 1, max = 2048, message = "url must be 1 to 2048 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub url: String,
    /// Free text for operators.
    #[validate(
        length(max = 1000, message = "description must be at most 1000 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub description: Option<String>,
}

/// `PATCH /api/v1/admin/webhooks/endpoints/{id}` body: at least one field.
#[derive(Debug, Deserialize, Validate, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// A new URL (checked as on creation).
    #[validate(
        length(min = 1, max = 2048, message = "url must be 1 to 2048 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub url: Option<String>,
    /// A new description.
    #[validate(
        length(max = 1000, message = "description must be at most 1000 characters"),
        custom(function = "crate::extract::no_nul")
    )]
    pub description: Option<String>,
    /// `true` enables (the failure streak starts over), `false` disables (pending attempts
    /// wait, nothing is lost).
    pub enabled: Option<bool>,
}

/// `DELETE /api/v1/admin/webhooks/endpoints/{id}` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete although messages are undelivered (they are dropped). Audited.
    pub force: Option<bool>,
}

/// `POST /api/v1/admin/webhooks/endpoints/{id}/rotate-secret` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// RFC 3339: until when the current secrets keep signing alongside the new one; in the
    /// future and at most 7 days ahead.
    pub old_secret_valid_until: DateTime<Utc>,
}

/// `GET /api/v1/admin/webhooks/dead-letters` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Only this endpoint's dead letters.
    pub endpoint: Option<Uuid>,
    /// The `next` of the previous page.
    pub after: Option<i64>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
}

fn outbox(state: &AppState) -> PgWebhookOutbox {
    PgWebhookOutbox::new(state.db.clone())
}

fn not_found(id: Uuid) -> ApiError {
    ApiError(
        Problem::new(ErrorCode::NotFound, format!("no webhook endpoint {id}"))
            .with_detail("field", "id"),
    )
}

/// Checks `url` against the destination policy of the configuration.
fn check_url(state: &AppState, url: &str) -> Result<(), ApiError> {
    match state.config.webhook_destinations.check_url(url) {
        Ok(_) => Ok(()),
        Err(e) => {
            let reason = match &e {
                haven_webhooks::Error::DestinationRefused { reason, .. } => reason.to_string(),
                other => other.to_string(),
            };
            Err(ApiError(
                Problem::new(
                    ErrorCode::ValidationError,
                    format!("url is not an allowed destination: {reason}"),
                )
                .with_detail("field", "url")
                .with_detail("reason", reason),
            ))
        }
    }
}

async fn details(state: &AppState, id: Uuid) -> Result<EndpointView, ApiError> {
    outbox(state)
        .endpoint_details(id)
        .await?
        .map(EndpointView::from)
        .ok_or_else(|| not_found(id))
}

/// Outbound webhook endpoints in creation order, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/admin/webhooks/endpoints",
    tag = "admin",
    params(ListQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of endpoints", body = EndpointPageView)),
)]
pub async fn list(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit)?;
    let endpoints = outbox(&state)
        .list_endpoints(query.after, i64::from(limit))
        .await?;
    let next = if endpoints.len() >= limit as usize {
        endpoints.last().map(|e| e.endpoint.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(EndpointPageView {
        endpoints: endpoints.into_iter().map(EndpointView::from).collect(),
        next,
    }))
}

/// Creates an enabled endpoint; the answer carries its signing secret, this once (audited
/// `webhook.endpoint.create`).
#[utoipa::path(
    post,
    path = "/api/v1/admin/webhooks/endpoints",
    tag = "admin",
    request_body = CreateBody,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Created; `secret` is shown only here", body = CreatedEndpointView),
        (status = 400, description = "Invalid field, or a URL the destination policy refuses (`details.field`, `details.reason`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn create(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    body: ValidatedJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    check_url(&state, &body.url)?;
    let audit = event(
        &req,
        &principal,
        "webhook.endpoint.create",
        Severity::Medium,
    )
    .details(applied(json!({})));
    let created = outbox(&state)
        .create_endpoint_audited(&body.url, body.description.as_deref().unwrap_or(""), audit)
        .await?;
    let endpoint = details(&state, created.endpoint.id).await?;
    Ok(HttpResponse::Created().json(CreatedEndpointView {
        endpoint,
        secret: created.secret,
    }))
}

/// One endpoint, with its backlog and the validity of its secrets (never the secrets).
#[utoipa::path(
    get,
    path = "/api/v1/admin/webhooks/endpoints/{id}",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The endpoint id")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 404, description = "No such endpoint", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn get(
    _: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(details(&state, id.into_inner()).await?))
}

/// Changes an endpoint's URL, description or enabled state (audited
/// `webhook.endpoint.update` with each field's old and new value).
#[utoipa::path(
    patch,
    path = "/api/v1/admin/webhooks/endpoints/{id}",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The endpoint id")),
    request_body = UpdateBody,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint after the change", body = EndpointView),
        (status = 400, description = "No field given, an invalid field, or a refused URL", body = crate::openapi::ErrorBodySchema),
        (status = 404, description = "No such endpoint", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn update(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: ValidatedJson<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body = body.0;
    if body.url.is_none() && body.description.is_none() && body.enabled.is_none() {
        return Err(ApiError(Problem::new(
            ErrorCode::ValidationError,
            "name at least one of url, description, enabled",
        )));
    }
    if let Some(url) = &body.url {
        check_url(&state, url)?;
    }
    let audit = event(
        &req,
        &principal,
        "webhook.endpoint.update",
        Severity::Medium,
    )
    .details(applied(json!({})));
    let change = EndpointChange {
        url: body.url,
        description: body.description,
        enabled: body.enabled,
    };
    outbox(&state)
        .update_endpoint_audited(id, change, audit)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(details(&state, id).await?))
}

/// Deletes an endpoint with its secrets, messages and attempts (audited HIGH
/// `webhook.endpoint.delete`). Refused with 409 while messages are undelivered unless
/// `force=true`; disable it instead to keep them.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/webhooks/endpoints/{id}",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The endpoint id"), DeleteQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Deleted", body = DeletedEndpointView),
        (status = 404, description = "No such endpoint", body = crate::openapi::ErrorBodySchema),
        (status = 409, description = "Undelivered messages (`details.pending`, `details.dead`); pass `force=true` to drop them", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn delete(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    id: web::Path<Uuid>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let force = query.force.unwrap_or(false);
    let audit = event(&req, &principal, "webhook.endpoint.delete", Severity::High);
    match outbox(&state)
        .delete_endpoint_audited(id, force, audit.clone().details(applied(json!({}))))
        .await?
    {
        EndpointDeletion::NotFound => Err(not_found(id)),
        EndpointDeletion::Undelivered { pending, dead } => {
            let error = ApiError(
                Problem::new(
                    ErrorCode::Conflict,
                    format!(
                        "endpoint {id} has {pending} pending attempt(s) and {dead} dead \
                         letter(s); disable it to keep them, or delete with force=true"
                    ),
                )
                .with_detail("pending", pending)
                .with_detail("dead", dead),
            );
            let audit = audit.target(format!("webhook_endpoint:{id}"));
            let details = json!({"forced": false, "pending": pending, "dead": dead});
            Err(refuse(&ctx, audit, details, error).await)
        }
        EndpointDeletion::Deleted {
            endpoint,
            messages,
            pending,
            dead,
        } => Ok(HttpResponse::Ok().json(DeletedEndpointView {
            id: endpoint.id,
            messages_deleted: messages,
            pending_dropped: pending,
            dead_dropped: dead,
            forced: force,
        })),
    }
}

/// Rotates the signing secret: a new secret signs from now on, and the current ones keep
/// signing alongside it until `old_secret_valid_until` (audited HIGH
/// `webhook.endpoint.rotate_secret`). The answer carries the new secret, this once.
#[utoipa::path(
    post,
    path = "/api/v1/admin/webhooks/endpoints/{id}/rotate-secret",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The endpoint id")),
    request_body = RotateBody,
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Rotated; `secret` is shown only here", body = RotatedSecretView),
        (status = 404, description = "No such endpoint", body = crate::openapi::ErrorBodySchema),
        (status = 422, description = "`old_secret_valid_until` is not in the future or more than 7 days ahead (`INVALID_PAYLOAD`, `details.reason`: `not_in_future`, `too_far`)", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn rotate_secret(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<RotateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let until = body.old_secret_valid_until;
    if let Err(refusal) = check_overlap(until, Utc::now()) {
        return Err(ApiError(
            Problem::new(ErrorCode::InvalidPayload, refusal.to_string())
                .with_detail("field", "old_secret_valid_until")
                .with_detail("reason", refusal.reason()),
        ));
    }
    let audit = event(
        &req,
        &principal,
        "webhook.endpoint.rotate_secret",
        Severity::High,
    )
    .details(applied(json!({})));
    let rotated = outbox(&state)
        .rotate_secret_audited(id, until, audit)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(HttpResponse::Ok().json(RotatedSecretView {
        endpoint_id: id,
        secret: rotated.secret,
        old_secret_valid_until: rotated.old_valid_until,
        retired_secrets: rotated.retired,
    }))
}

/// Dead-lettered messages not replayed, oldest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/admin/webhooks/dead-letters",
    tag = "admin",
    params(DeadLetterQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of dead letters", body = DeadLetterPageView)),
)]
pub async fn dead_letters(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<DeadLetterQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit)?;
    let page = outbox(&state)
        .dead_letter_page(query.endpoint, query.after, i64::from(limit))
        .await?;
    Ok(HttpResponse::Ok().json(DeadLetterPageView {
        dead_letters: page.letters.into_iter().map(DeadLetterView::from).collect(),
        next: page.next,
    }))
}

/// Queues one more attempt of a dead-lettered message, due now (audited
/// `webhook.dead_letter.replay`). 404 when the message is unknown or not dead (pending,
/// delivered, or replayed already).
#[utoipa::path(
    post,
    path = "/api/v1/admin/webhooks/dead-letters/{id}/replay",
    tag = "admin",
    params(("id" = String, Path, description = "The message id (`msg_…`)")),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Queued", body = ReplayedView),
        (status = 404, description = "No dead letter of that id", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn replay(
    req: HttpRequest,
    principal: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let message_id = id.into_inner();
    let audit = event(
        &req,
        &principal,
        "webhook.dead_letter.replay",
        Severity::Medium,
    )
    .details(applied(json!({})));
    if !outbox(&state)
        .replay_dead_audited(&message_id, audit)
        .await?
    {
        return Err(ApiError(
            Problem::new(
                ErrorCode::NotFound,
                format!("no dead letter {message_id:?} (unknown, pending, delivered or replayed)"),
            )
            .with_detail("field", "id"),
        ));
    }
    Ok(HttpResponse::Ok().json(ReplayedView {
        message_id,
        queued: true,
    }))
}

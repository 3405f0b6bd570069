//! `POST /api/v1/webhooks/{source}`: verified inbound webhooks into the durable inbox.
//!
//! The request is authenticated by its signature, not by a principal: the source's
//! [`haven_webhooks::Verifier`] checks the raw body bytes as received. Nothing is written
//! unless the signature verified. A verified event is acknowledged only after its row in
//! `inbound_webhooks` is committed; the unique `(source, message_id)` is the replay store.
//!
//! | outcome | answer |
//! |---|---|
//! | unknown source | 404 `NOT_FOUND` |
//! | missing, repeated or malformed header | 400 `MALFORMED_WEBHOOK` |
//! | timestamp outside the window, bad signature | 401 `INVALID_SIGNATURE` |
//! | new event (stored) | 202 `{"status":"accepted","id":…}` |
//! | same id, same body | 200 `{"status":"duplicate"}` |
//! | same id, other body | 409 `WEBHOOK_REPLAY_CONFLICT`, HIGH audit event |
//! | database unreachable | 503 `SERVICE_UNAVAILABLE` (the sender retries) |

use actix_web::{HttpRequest, HttpResponse, web};
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_core::{ErrorCode, Problem};
use haven_db::{InboxOutcome, PgAuditLog, PgInbox};
use serde_json::json;

use crate::error::{ApiError, current_request_id};
use crate::state::AppState;

/// The request headers as an `http` 1 map, duplicates kept (the verifier refuses them).
fn header_map(req: &HttpRequest) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in req.headers() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Verifies and stores one inbound webhook of `source` (see the module docs).
pub(crate) async fn receive(
    req: HttpRequest,
    source: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let source = source.into_inner();
    let Some(verifier) = state.config.webhook_sources.get(&source).cloned() else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no webhook source {source:?}"),
        ));
    };
    let now = chrono::Utc::now().timestamp();
    let headers = header_map(&req);
    let verified = verifier
        .verify(&headers, &body, now)
        .map_err(|e| ApiError::new(e.code(), e.to_string()))?;
    let replay_id = verified.replay_id.to_string();
    let inbox = PgInbox::new(state.db.clone());
    match inbox.receive(&source, &replay_id, &body).await? {
        InboxOutcome::Accepted { id } => {
            Ok(HttpResponse::Accepted().json(json!({"status": "accepted", "id": id})))
        }
        InboxOutcome::Duplicate { .. } => {
            Ok(HttpResponse::Ok().json(json!({"status": "duplicate"})))
        }
        InboxOutcome::Conflict { id } => {
            tracing::warn!(
                target: "security",
                source = %source,
                webhook_id = %replay_id,
                stored_id = id,
                "webhook id replayed with a different body"
            );
            let mut event = AuditEvent::new(
                format!("webhook:{source}"),
                "webhook.replay_conflict",
                Severity::High,
            )
            .target(format!("inbound_webhook:{id}"))
            .details(json!({"source": source, "message_id": replay_id}));
            if let Some(request_id) = current_request_id() {
                event = event.request_id(request_id);
            }
            if let Some(ip) = crate::ratelimit::client_ip(&req) {
                event = event.ip(ip.to_string());
            }
            // The security event must be recorded: if it cannot be, the sender retries.
            PgAuditLog::new(state.db.clone())
                .append(event)
                .await
                .map_err(|e| {
                    ApiError(
                        Problem::new(ErrorCode::ServiceUnavailable, "audit log unavailable")
                            .with_source(e),
                    )
                })?;
            Err(ApiError::new(
                ErrorCode::WebhookReplayConflict,
                format!(
                    "webhook {} of {source} was already received with a different body",
                    replay_id
                ),
            ))
        }
    }
}

//! `POST /api/v1/webhooks/{source}`: verified inbound webhooks into the durable inbox.
//!
//! The request is authenticated by its signature, not by a principal: the source's
//! [`haven_webhooks::Verifier`] checks the raw body bytes as received. Nothing is written
//! unless the signature verified. A verified event is acknowledged only after its row in
//! `inbound_webhooks` is committed; the unique `(source, message_id)` is the replay store.
//!
//! Rate limits follow the signature ([`crate::ratelimit`]): a request whose signature
//! verified is charged to its source's bucket (`HAVEN_RATE_LIMIT_WEBHOOK_PER_MIN`); anything
//! else — unknown source, missing or bad signature — to the client network's in-process junk
//! bucket, so unsigned junk can neither use up a partner's quota nor reach the database.
//!
//! | outcome | answer |
//! |---|---|
//! | junk beyond the network's junk bucket | 429 `RATE_LIMITED` |
//! | verified beyond the source's bucket | 429 `RATE_LIMITED` |
//! | unknown source | 404 `NOT_FOUND` |
//! | missing, repeated or malformed header | 400 `MALFORMED_WEBHOOK` |
//! | timestamp outside the window, bad signature | 401 `INVALID_SIGNATURE` |
//! | new event (stored) | 202 `{"status":"accepted","id":…}` |
//! | same id, same body | 200 `{"status":"duplicate"}` |
//! | same id, other body | 409 `WEBHOOK_REPLAY_CONFLICT`, HIGH audit event |
//! | database unreachable | 503 `SERVICE_UNAVAILABLE` (the sender retries) |

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_core::{ErrorCode, Problem};
use haven_db::{InboxOutcome, PgAuditLog};
use serde_json::json;

use crate::error::{ApiError, current_request_id};
use crate::ratelimit::{RateClass, RateLimits};
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

/// Charges an unverified request to its network's junk bucket: `error` when there is room,
/// else the 429.
fn junk(req: &HttpRequest, limits: Option<&RateLimits>, error: ApiError) -> HttpResponse {
    if let Some(limits) = limits {
        let decision = limits.check_junk(crate::ratelimit::client_net(req));
        if !decision.allowed {
            return crate::ratelimit::refusal(RateClass::Public, &decision);
        }
    }
    error.error_response()
}

/// A request whose signature verified and that the source's bucket admitted.
pub(crate) struct Admitted {
    /// The message id the signature covers (the replay key).
    pub replay_id: String,
    /// The source bucket's decision, for the response headers.
    decision: Option<haven_resilience::RateDecision>,
}

impl Admitted {
    /// Adds the source bucket's `RateLimit-*` headers to `response`.
    pub fn finish(&self, mut response: HttpResponse) -> HttpResponse {
        if let Some(decision) = &self.decision {
            crate::ratelimit::merge_headers(response.headers_mut(), decision);
        }
        response
    }
}

/// Verifies `body` with `source`'s configured verifier and charges the request: junk
/// (unknown source, bad or missing signature) to the client network's junk bucket, a
/// verified request to the source's bucket. `Err` is the answer to send.
pub(crate) async fn admit(
    req: &HttpRequest,
    state: &AppState,
    source: &str,
    body: &[u8],
) -> Result<Admitted, HttpResponse> {
    let limits = req
        .app_data::<web::Data<RateLimits>>()
        .map(|l| l.clone().into_inner());
    let Some(verifier) = state.config.webhook_sources.get(source).cloned() else {
        let error = ApiError::new(ErrorCode::NotFound, format!("no webhook source {source:?}"));
        return Err(junk(req, limits.as_deref(), error));
    };
    let now = chrono::Utc::now().timestamp();
    let headers = header_map(req);
    let verified = match verifier.verify(&headers, body, now) {
        Ok(verified) => verified,
        Err(e) => {
            let error = ApiError::new(e.code(), e.to_string());
            return Err(junk(req, limits.as_deref(), error));
        }
    };
    let replay_id = verified.replay_id.to_string();
    let decision = match &limits {
        Some(limits) => {
            let decision = limits
                .check(RateClass::Webhook, &format!("source:{source}"))
                .await;
            if !decision.allowed {
                return Err(crate::ratelimit::refusal(RateClass::Webhook, &decision));
            }
            Some(decision)
        }
        None => None,
    };
    Ok(Admitted {
        replay_id,
        decision,
    })
}

/// Verifies and stores one inbound webhook of `source` (see the module docs).
pub(crate) async fn receive(
    req: HttpRequest,
    source: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let source = source.into_inner();
    let admitted = match admit(&req, &state, &source, &body).await {
        Ok(admitted) => admitted,
        Err(refusal) => return Ok(refusal),
    };
    let response = store(&req, &state, &source, &admitted.replay_id, &body).await?;
    Ok(admitted.finish(response))
}

/// Records a HIGH `webhook.replay_conflict` audit row (a message id reused with another body)
/// and returns the 409 to answer; if the row cannot be written, 503 (the sender retries).
pub(crate) async fn replay_conflict(
    req: &HttpRequest,
    state: &AppState,
    source: &str,
    replay_id: &str,
    stored_id: i64,
) -> ApiError {
    tracing::warn!(
        target: "security",
        source = %source,
        webhook_id = %replay_id,
        stored_id,
        "webhook id replayed with a different body"
    );
    let mut event = AuditEvent::new(
        format!("webhook:{source}"),
        "webhook.replay_conflict",
        Severity::High,
    )
    .target(format!("inbound_webhook:{stored_id}"))
    .details(json!({"source": source, "message_id": replay_id}));
    if let Some(request_id) = current_request_id() {
        event = event.request_id(request_id);
    }
    if let Some(ip) = crate::ratelimit::client_ip(req) {
        event = event.ip(ip.to_string());
    }
    if let Err(e) = PgAuditLog::new(state.db.clone()).append(event).await {
        return ApiError(
            Problem::new(ErrorCode::ServiceUnavailable, "audit log unavailable").with_source(e),
        );
    }
    ApiError::new(
        ErrorCode::WebhookReplayConflict,
        format!("webhook {replay_id} of {source} was already received with a different body"),
    )
}

/// Stores a verified event: 202 when new, 200 for a duplicate, 409 for a reused id.
async fn store(
    req: &HttpRequest,
    state: &AppState,
    source: &str,
    replay_id: &str,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    match state.inbox.receive(source, replay_id, body).await? {
        InboxOutcome::Accepted { id } => {
            Ok(HttpResponse::Accepted().json(json!({"status": "accepted", "id": id})))
        }
        InboxOutcome::Duplicate { .. } => {
            Ok(HttpResponse::Ok().json(json!({"status": "duplicate"})))
        }
        InboxOutcome::Conflict { id } => {
            Err(replay_conflict(req, state, source, replay_id, id).await)
        }
    }
}

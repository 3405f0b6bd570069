//! The `Idempotency-Key` middleware: wraps a resource so that a retried request with the same
//! key runs the handler at most once.
//!
//! A route opts in through its row of [`crate::access::ROUTE_ACCESS`]
//! ([`crate::access::Idempotency`]); its guard runs first, so the principal is known.
//!
//! The rules live in `haven_webhooks::Idempotency` (key grammar, header-or-body extraction,
//! body fingerprint, expiring in-flight lock, what is stored); this module adapts them to actix:
//!
//! - a key with a different body → 422 `IDEMPOTENCY_KEY_REUSED`; a key still in flight → 409
//!   `IDEMPOTENCY_KEY_IN_USE`; a malformed key → 400 `INVALID_IDEMPOTENCY_KEY`; a missing key
//!   on a [`required`] route → 400 `IDEMPOTENCY_KEY_REQUIRED`; the store down → 503;
//! - a completed key replays the stored status, headers and body byte for byte, with
//!   `Idempotent-Replayed: true`;
//! - the scope is (principal, method, route): the pattern of the route the router matched
//!   and its decoded path parameters, never the request path, so two spellings of one route
//!   (`/transactions/tx1/retry`, `/%74ransactions/%74x1/retry`) share one key; the same key
//!   from two principals is two keys.
//!
//! The store is the [`IdempotencyGate`] in the app data (`Application::build` installs Redis
//! with a Postgres fallback); without one the routes run
//! unprotected (and say so in the log once per request).

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use haven_core::{ErrorCode, Problem};
use haven_webhooks::{
    Begin, Idempotency, IdempotencyConfig, IdempotencyError, IdempotencyStore, Requirement, Scope,
    StoredResponse, extract_key,
};

use crate::error::ApiError;

/// The response header set on replays.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Who is asking, as the idempotency scope sees it. The authentication middleware inserts it
/// into the request extensions; requests without one are scoped to `anonymous`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalId(pub String);

/// The idempotency core over a store, shared by every worker thread (put it in the app data).
#[derive(Debug, Clone)]
pub struct IdempotencyGate(Arc<Idempotency<Arc<dyn IdempotencyStore>>>);

impl IdempotencyGate {
    /// A gate over `store` with `config` (lock TTL, retention, stored headers).
    pub fn new(store: Arc<dyn IdempotencyStore>, config: IdempotencyConfig) -> Self {
        Self(Arc::new(Idempotency::new(store, config)))
    }
}

/// Middleware for routes where a key is optional: requests without one run unprotected.
pub async fn optional(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    guard(Requirement::Optional, req, next).await
}

/// Middleware for routes that refuse to run without a key (money-moving operations).
pub async fn required(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    guard(Requirement::Required, req, next).await
}

fn refuse(req: ServiceRequest, err: &IdempotencyError) -> ServiceResponse<BoxBody> {
    if let IdempotencyError::Store(source) = err {
        tracing::error!(error = %source, "idempotency store unavailable; request refused");
    }
    let problem = match err {
        IdempotencyError::Store(_) => Problem::new(
            ErrorCode::ServiceUnavailable,
            "the idempotency store is unavailable; retry with the same key",
        ),
        other => Problem::new(other.code(), other.to_string()),
    };
    let response = ApiError(problem).error_response();
    req.into_response(response)
}

fn to_http_headers(headers: &actix_web::http::header::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append(name, value);
        }
    }
    out
}

fn replay(stored: &StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            response.append_header((name, value));
        }
    }
    response.insert_header((REPLAYED_HEADER, "true"));
    response.body(stored.body.clone())
}

/// The route part of the scope: the matched pattern and its path parameters, fully
/// percent-decoded, each on its own line (a parameter cannot forge another's position).
fn route_scope(req: &actix_web::HttpRequest) -> String {
    let Some(matched) = crate::access::MatchedRoute::of(req) else {
        // Only reachable if a route were registered without its guard: never share a scope
        // with a real route.
        return format!("unguarded\n{}", req.path());
    };
    let mut scope = matched.0.path.to_owned();
    for (name, value) in req.match_info().iter() {
        let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        scope.push('\n');
        scope.push_str(name);
        scope.push('=');
        scope.push_str(&decoded.replace('\\', "\\\\").replace('\n', "\\n"));
    }
    scope
}

async fn guard(
    requirement: Requirement,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(gate) = req.app_data::<web::Data<IdempotencyGate>>().cloned() else {
        tracing::warn!(path = %req.path(), "no idempotency store configured; request runs unprotected");
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    // The whole body is needed for the fingerprint (and may carry the key); the handler gets
    // the same bytes back. The payload limit in the app data applies here too.
    let body = req.extract::<web::Bytes>().await?;
    req.set_payload(Payload::from(body.clone()));

    let key = match extract_key(&to_http_headers(req.headers()), &body) {
        Ok(key) => key,
        Err(err) => return Ok(refuse(req, &err)),
    };
    let principal = req
        .extensions()
        .get::<PrincipalId>()
        .map_or_else(|| "anonymous".to_owned(), |p| p.0.clone());
    let scope = Scope::new(principal, req.method().as_str(), route_scope(req.request()));
    let ticket = match gate.0.begin(scope, key, &body, requirement).await {
        Ok(Begin::NoKey) => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body);
        }
        Ok(Begin::Replay(stored)) => {
            tracing::info!(status = stored.status, "idempotent replay");
            return Ok(req.into_response(replay(&stored)));
        }
        Ok(Begin::Proceed(ticket)) => ticket,
        Err(err) => return Ok(refuse(req, &err)),
    };

    let response = match next.call(req).await {
        Ok(response) => response,
        Err(err) => {
            if let Err(release) = gate.0.abandon(ticket).await {
                tracing::warn!(error = %release, "could not release the idempotency key; it lapses with its lock");
            }
            return Err(err);
        }
    };
    let status = response.status().as_u16();
    let (req, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(_) => {
            if let Err(release) = gate.0.abandon(ticket).await {
                tracing::warn!(error = %release, "could not release the idempotency key; it lapses with its lock");
            }
            return Err(ApiError::new(
                ErrorCode::InternalError,
                "the response body could not be read",
            )
            .into());
        }
    };
    if let Err(err) = gate
        .0
        .finish(ticket, status, &to_http_headers(head.headers()), &bytes)
        .await
    {
        // The handler ran: answer its result. A retry with the key finds it in flight until the
        // lock lapses, then runs again — the handler's own exactly-once (e.g. a unique tx_id)
        // is the last line of defence.
        tracing::error!(error = %err, "could not store the idempotent result");
    }
    let response = head.set_body(bytes).map_into_boxed_body();
    Ok(ServiceResponse::new(req, response))
}

//! What the administration and operator routes share: who is acting, the audit event each
//! of their changes writes, and page sizes.
//!
//! Every state-changing admin route writes one `audit_log` row whose actor is the principal
//! (`user:<id>` or `key:<id>`), whose action names the operation (`user.role_change`,
//! `transaction.retry`, …), whose target names the object, and whose details say the
//! outcome: `applied` rows commit in the same Postgres transaction as the change; a refusal
//! that says something about the caller (demoting the last admin, retrying what may not be
//! retried, an illegal review step) is recorded as `refused`.

use actix_web::HttpRequest;
use haven_auth::Principal;
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_core::{ErrorCode, Problem};
use serde_json::{Value, json};

use crate::auth::AuthContext;
use crate::error::{ApiError, current_request_id};

/// The page size when the query names none.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
/// The largest page served.
pub(crate) const MAX_LIMIT: u32 = 500;

/// The `limit` query value: validated to `1..=MAX_LIMIT`, [`DEFAULT_LIMIT`] when absent.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError(
            Problem::new(
                ErrorCode::InvalidQuery,
                format!("limit must be 1 to {MAX_LIMIT}, not {n}"),
            )
            .with_detail("field", "limit"),
        )),
    }
}

/// The audit actor of a principal: `user:<id>` or `key:<id>`.
pub(crate) fn actor(principal: &Principal) -> String {
    match principal {
        Principal::User { id, .. } => format!("user:{id}"),
        Principal::Service { key_id, .. } => format!("key:{key_id}"),
    }
}

/// An audit event by the request's principal, with its request id and client address.
pub(crate) fn event(
    req: &HttpRequest,
    principal: &crate::auth::Authenticated,
    action: &str,
    severity: Severity,
) -> AuditEvent {
    let mut event = AuditEvent::new(principal.actor(), action, severity);
    if let Some(id) = current_request_id() {
        event = event.request_id(id);
    }
    if let Some(ip) = crate::ratelimit::client_ip(req) {
        event = event.ip(ip.to_string());
    }
    event
}

/// `details` with `"outcome": "applied"`.
pub(crate) fn applied(mut details: Value) -> Value {
    if let Value::Object(map) = &mut details {
        map.insert("outcome".into(), json!("applied"));
    }
    details
}

/// Records a refused operation (nothing else was written), then answers `error`.
pub(crate) async fn refuse(
    ctx: &AuthContext,
    event: AuditEvent,
    mut details: Value,
    error: ApiError,
) -> ApiError {
    if let Value::Object(map) = &mut details {
        map.insert("outcome".into(), json!("refused"));
        map.insert("error".into(), json!(error.0.code.as_str()));
    }
    match ctx.audit.append(event.details(details)).await {
        Ok(_) => error,
        Err(e) => ApiError(
            Problem::new(ErrorCode::ServiceUnavailable, "audit log unavailable").with_source(e),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_stay_in_range() {
        assert_eq!(page_limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(page_limit(Some(1)).ok(), Some(1));
        assert_eq!(page_limit(Some(MAX_LIMIT)).ok(), Some(MAX_LIMIT));
        for bad in [0, MAX_LIMIT + 1] {
            let err = page_limit(Some(bad)).err().map(|e| e.0.code);
            assert_eq!(err, Some(ErrorCode::InvalidQuery), "{bad}");
        }
    }
}

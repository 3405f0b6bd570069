//! The OpenAPI 3.1 description of the api, served at `GET /openapi.json`.
//!
//! Each handler carries its own `#[utoipa::path]` next to its code; [`ApiDoc`] lists them all.
//! The integration test `tests/it/openapi.rs` fails when a route of
//! [`crate::access::ROUTE_ACCESS`] is missing here. The error body and the address report are
//! described by hand ([`ErrorBodySchema`], [`AddressReportSchema`]): their crates stay free of
//! utoipa.

use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use uuid::Uuid;

/// The name of the Bearer JWT security scheme.
pub const BEARER: &str = "bearer_jwt";
/// The name of the `X-API-Key` security scheme.
pub const API_KEY: &str = "api_key";
/// The name of the guardian token scheme (a Bearer JWT of the guardian audience).
pub const GUARDIAN: &str = "guardian_token";

/// The error body every error response carries ([`haven_core::ErrorBody`]).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ErrorBody)]
pub struct ErrorBodySchema {
    /// The stable SCREAMING_SNAKE code (`VALIDATION_ERROR`, `UNAUTHORIZED`, …).
    #[schema(example = "VALIDATION_ERROR")]
    pub error: String,
    /// Developer-facing message (generic for 5xx).
    pub message: String,
    /// End-user-facing message.
    pub user_message: String,
    /// Unique id of this occurrence; for 5xx the same id is written to `error_logs`.
    pub error_id: Uuid,
    /// The request id (`X-Request-ID`) of the request that failed.
    pub request_id: Option<String>,
    /// When the error happened, RFC 3339 UTC.
    pub timestamp: DateTime<Utc>,
    /// Structured context; always empty for 5xx.
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// The outcome of `POST /api/v1/addresses/validate` ([`haven_address::Report`]): `valid`
/// with `normalized`, `kind`, `network`, or not, with `error` and `message`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AddressReport)]
pub struct AddressReportSchema {
    /// Whether the address is valid.
    pub valid: bool,
    /// The canonical chain name (`evm`, `solana`, `cosmos:<hrp>`, …).
    pub chain: String,
    /// The normalized address (valid only).
    pub normalized: Option<String>,
    /// The address kind, e.g. `eip55` (valid only).
    pub kind: Option<String>,
    /// The network the address belongs to (valid only).
    pub network: Option<String>,
    /// The stable reason code (invalid only).
    pub error: Option<String>,
    /// Why it is invalid (invalid only).
    pub message: Option<String>,
}

/// `GET /api/v1/auth/whoami`: a user (`id`, `role`) or a service key (`key_id`, `scopes`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Whoami {
    /// `user` or `service`.
    #[schema(example = "user")]
    pub kind: String,
    /// The user id (users).
    pub id: Option<Uuid>,
    /// The user's role (users).
    pub role: Option<String>,
    /// The key id (service keys).
    pub key_id: Option<Uuid>,
    /// The key's scopes (service keys).
    pub scopes: Option<Vec<String>>,
    /// The scopes the caller holds: its role's permissions (users) or its scopes (keys).
    pub permissions: Vec<String>,
}

/// `POST /api/v1/api-keys` answer: the plaintext `key`, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The key itself (`hvn_<env>_…`); never shown again.
    pub key: String,
    /// Display prefix.
    pub display_prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// `GET /health`: the process answers; the circuit breakers' states.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The circuit breakers and their states.
    #[schema(value_type = Vec<Object>)]
    pub breakers: Vec<serde_json::Value>,
}

/// `GET /ready`: Postgres and Redis answer, each with its latency.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `unavailable`.
    pub status: String,
    /// The dependencies that are down.
    pub down: Vec<String>,
    /// Each dependency's check.
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            GUARDIAN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A guardian access token (`POST /api/v1/guardian/join`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The error answers every `/api/v1` operation shares, added here once instead of on each
/// handler (an operation's own entry for a status wins): 429, 500 and 503 everywhere; 401
/// and 403 where the operation requires credentials; 400 where it has path or query
/// parameters or a JSON body, plus 413 and 415 for the body (the inbound webhook route describes its own).
struct StandardErrors;

impl StandardErrors {
    fn add(op: &mut utoipa::openapi::path::Operation, status: &str, description: &str) {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                utoipa::openapi::ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build()
                    .into()
            });
    }
}

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let own_body_rules = path.starts_with("/api/v1/webhooks/");
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                // Path and query parameters are parsed and range-checked: 400 when not.
                let has_params = op.parameters.as_ref().is_some_and(|ps| {
                    ps.iter().any(|p| {
                        matches!(p, utoipa::openapi::RefOr::T(p)
                            if matches!(p.parameter_in,
                                utoipa::openapi::path::ParameterIn::Path
                                | utoipa::openapi::path::ParameterIn::Query))
                    })
                });
                if has_params && !own_body_rules {
                    Self::add(op, "400", "Invalid request");
                }
                if op.request_body.is_some() && !own_body_rules {
                    Self::add(op, "400", "Invalid request");
                    Self::add(op, "413", "Body too large");
                    Self::add(op, "415", "Not Content-Type: application/json");
                }
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    Self::add(op, "401", "Not authenticated");
                    Self::add(op, "403", "Missing permission");
                }
                Self::add(op, "429", "Rate limited");
                Self::add(op, "500", "Server error");
                Self::add(op, "503", "A dependency is unavailable");
            }
        }
    }
}

/// `POST /api/v1/webhooks/{source}` (the inbound webhook handler), described here because
/// the handler reads the raw body and headers for the signature check.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{source}",
    tag = "webhooks",
    params(("source" = String, Path, description = "The configured source name")),
    request_body(content = String, description = "The raw event, verified by its signature", content_type = "application/json"),
    responses(
        (status = 202, description = "Verified and stored", body = InboundAccepted),
        (status = 200, description = "Already stored: same id, same body", body = InboundAccepted),
        (status = 400, description = "Missing, repeated or malformed signature header", body = ErrorBodySchema),
        (status = 401, description = "Timestamp outside the window or bad signature", body = ErrorBodySchema),
        (status = 404, description = "Unknown source", body = ErrorBodySchema),
        (status = 409, description = "Same id, other body", body = ErrorBodySchema),
        (status = 413, description = "Body too large", body = ErrorBodySchema),
        (status = 429, description = "Rate limited", body = ErrorBodySchema),
        (status = 500, description = "Server error", body = ErrorBodySchema),
        (status = 503, description = "The database is unavailable; retry", body = ErrorBodySchema),
    ),
)]
pub fn inbound_webhook() {}

/// `POST /api/v1/webhooks/{aurora|tribe}/{event}` (the rewards program's partner events),
/// described here because the handlers read the raw body for the signature check.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/aurora/{event}",
    tag = "rewards",
    params(("event" = String, Path, description = "booking-created, booking-completed, booking-cancelled or review-submitted")),
    request_body(content = String, description = "The partner's event, verified by its signature; numbers are read exactly", content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted: the decision and the reward recorded, if any", body = Object),
        (status = 200, description = "The same message again", body = InboundAccepted),
        (status = 400, description = "Missing, repeated or malformed signature header", body = ErrorBodySchema),
        (status = 401, description = "Timestamp outside the window or bad signature", body = ErrorBodySchema),
        (status = 404, description = "Unknown source or event", body = ErrorBodySchema),
        (status = 409, description = "Same message id, other body", body = ErrorBodySchema),
        (status = 413, description = "Body too large", body = ErrorBodySchema),
        (status = 422, description = "Invalid payload: `details.field` names the field; nothing written", body = ErrorBodySchema),
        (status = 429, description = "Rate limited", body = ErrorBodySchema),
        (status = 500, description = "Server error", body = ErrorBodySchema),
        (status = 503, description = "The database or the fraud rules are unavailable; retry", body = ErrorBodySchema),
    ),
)]
pub fn partner_event() {}

/// Tribe's partner events (see [`partner_event`]).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/tribe/{event}",
    tag = "rewards",
    params(("event" = String, Path, description = "event-attendance, contribution, staking-started, coaching-milestone or referral-success")),
    request_body(content = String, description = "The partner's event, verified by its signature; numbers are read exactly", content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted: the decision and the reward recorded, if any", body = Object),
        (status = 200, description = "The same message again", body = InboundAccepted),
        (status = 400, description = "Missing, repeated or malformed signature header", body = ErrorBodySchema),
        (status = 401, description = "Timestamp outside the window or bad signature", body = ErrorBodySchema),
        (status = 404, description = "Unknown source or event", body = ErrorBodySchema),
        (status = 409, description = "Same message id, other body", body = ErrorBodySchema),
        (status = 413, description = "Body too large", body = ErrorBodySchema),
        (status = 422, description = "Invalid payload: `details.field` names the field; nothing written", body = ErrorBodySchema),
        (status = 429, description = "Rate limited", body = ErrorBodySchema),
        (status = 500, description = "Server error", body = ErrorBodySchema),
        (status = 503, description = "The database or the fraud rules are unavailable; retry", body = ErrorBodySchema),
    ),
)]
pub fn partner_event_tribe() {}

/// The answer to an inbound webhook: `accepted` (with the stored `id`) or `duplicate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundAccepted {
    /// `accepted` or `duplicate`.
    pub status: String,
    /// The stored event's id (`accepted`).
    pub id: Option<i64>,
}

/// The api's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "haven api", description = "Backend building blocks for on-chain token programs."),
    paths(
        crate::routes::health::health,
        crate::routes::health::ready,
        crate::metrics::render,
        spec,
        crate::routes::console::index,
        crate::routes::console::script,
        crate::routes::console::style,
        crate::routes::addresses::validate,
        crate::routes::auth::login,
        crate::routes::auth::refresh,
        crate::routes::auth::whoami,
        crate::routes::auth::logout,
        crate::routes::auth::logout_all,
        crate::routes::auth::sessions,
        crate::routes::auth::revoke_session,
        crate::routes::api_keys::create,
        crate::routes::api_keys::list,
        crate::routes::api_keys::revoke,
        crate::routes::users::create,
        crate::routes::users::list,
        crate::routes::users::set_role,
        crate::routes::users::disable,
        crate::routes::transactions::list,
        crate::routes::transactions::status,
        crate::routes::transactions::get,
        crate::routes::transactions::retry,
        crate::routes::alerts::list,
        crate::routes::alerts::transition,
        crate::routes::wallets::list,
        crate::routes::wallets::get,
        crate::routes::wallets::revoke,
        crate::routes::wallets::create,
        crate::routes::wallets::rotate,
        crate::routes::status::status,
        crate::routes::nonces::list,
        crate::routes::nonces::get,
        crate::routes::nonces::reset,
        crate::routes::breakers::list,
        crate::routes::breakers::reset,
        crate::routes::breakers::force_open,
        crate::routes::breakers::disable,
        crate::routes::audit::verify,
        crate::routes::audit::wallet_logs,
        crate::routes::audit::records,
        crate::routes::webhook_endpoints::list,
        crate::routes::webhook_endpoints::create,
        crate::routes::webhook_endpoints::get,
        crate::routes::webhook_endpoints::update,
        crate::routes::webhook_endpoints::delete,
        crate::routes::webhook_endpoints::rotate_secret,
        crate::routes::webhook_endpoints::dead_letters,
        crate::routes::webhook_deliveries::list,
        crate::routes::webhook_endpoints::replay,
        crate::routes::fraud::report,
        crate::routes::members::get,
        crate::routes::members::rewards_of,
        crate::routes::members::rewards_in_state,
        crate::routes::members::link,
        crate::routes::members::payout_addresses,
        crate::routes::members::add_payout_address,
        crate::routes::withdrawals::create,
        crate::routes::withdrawals::get,
        crate::routes::token::mint,
        crate::routes::token::redeem,
        crate::routes::token::list_redemptions,
        crate::routes::token::get_redemption,
        crate::routes::token::approve,
        crate::routes::token::reject,
        crate::routes::token::mark_paid,
        crate::routes::stats::network,
        crate::guardian::routes::create_vault,
        crate::guardian::routes::get_vault,
        crate::guardian::routes::invite,
        crate::guardian::routes::remove_guardian,
        crate::guardian::routes::submit,
        crate::guardian::threshold::start_dkg,
        crate::guardian::threshold::start_signing,
        crate::guardian::threshold::status,
        crate::guardian::routes::join,
        crate::guardian::routes::refresh,
        crate::guardian::routes::sessions,
        crate::guardian::routes::revoke_session,
        crate::guardian::ws::connect,
        inbound_webhook,
        partner_event,
        partner_event_tribe,
    ),
    components(schemas(ErrorBodySchema)),
    modifiers(&SecuritySchemes, &StandardErrors),
)]
pub struct ApiDoc;

/// `GET /openapi.json`: this document. (Not named `openapi`: that name clashes with the
/// derive.)
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")),
)]
pub async fn spec() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_error_body_schema_names_exactly_the_fields_of_the_error_body() {
        let body = haven_core::ErrorBody::from_problem(
            &haven_core::Problem::new(haven_core::ErrorCode::NotFound, "nope"),
            Some("req".into()),
        );
        let value = serde_json::to_value(body).unwrap();
        let mut actual: Vec<&String> = value.as_object().unwrap().keys().collect();
        actual.sort();
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let props = doc["components"]["schemas"]["ErrorBody"]["properties"]
            .as_object()
            .unwrap();
        let mut described: Vec<&String> = props.keys().collect();
        described.sort();
        assert_eq!(actual, described);
    }
}

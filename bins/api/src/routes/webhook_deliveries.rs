//! The outbound webhooks' delivery history for administrators: every attempt, newest first,
//! what the receiver answered, what is still due. Reading changes nothing.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use haven_db::{Delivery, PgWebhookOutbox};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::routes::admin::page_limit;
use crate::state::AppState;

/// `GET /api/v1/admin/webhooks/deliveries` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Only this endpoint's deliveries.
    pub endpoint: Option<Uuid>,
    /// The `next` of the previous page.
    pub before: Option<i64>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<u32>,
}

/// One delivery attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The message (`msg_…`).
    pub message_id: String,
    /// Its endpoint.
    pub endpoint_id: Uuid,
    /// Its event type.
    pub event_type: String,
    /// The attempt number, from 1.
    pub attempt: i32,
    /// `pending`, `delivered`, `failed` (a later attempt follows) or `dead`.
    pub status: String,
    /// When a pending attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    pub response_status: Option<i16>,
    /// Why the attempt failed without an answer.
    pub error: Option<String>,
    /// When the attempt was queued.
    pub created_at: DateTime<Utc>,
    /// When it was made; absent while pending.
    pub attempted_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            message_id: d.message_id,
            endpoint_id: d.endpoint_id,
            event_type: d.event_type,
            attempt: d.attempt,
            status: d.status,
            next_attempt_at: d.next_attempt_at,
            response_status: d.response_status,
            error: d.error.map(|e| haven_core::redact(&e)),
            created_at: d.created_at,
            attempted_at: d.attempted_at,
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPageView {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next: Option<i64>,
}

/// Delivery attempts of outbound webhooks, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/admin/webhooks/deliveries",
    tag = "admin",
    params(DeliveriesQuery),
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of deliveries", body = DeliveryPageView)),
)]
pub async fn list(
    _: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit)?;
    let page = PgWebhookOutbox::new(state.db.clone())
        .delivery_page(query.endpoint, query.before, i64::from(limit))
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryPageView {
        deliveries: page
            .deliveries
            .into_iter()
            .map(DeliveryView::from)
            .collect(),
        next: page.next,
    }))
}

//! The delivery history operators read: every attempt of every outbound message, newest
//! first, with the message's endpoint and event type.

use super::*;

/// One attempt to deliver one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The attempt row's id (the page cursor).
    pub id: i64,
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
    /// When the attempt row was written.
    pub created_at: DateTime<Utc>,
    /// When the attempt was made; `None` while pending.
    pub attempted_at: Option<DateTime<Utc>>,
}

/// A page of deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    /// The cursor of the next (older) page; `None` on the last page.
    pub next: Option<i64>,
}

#[derive(QueryableByName)]
struct DeliveryRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    message_id: String,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    endpoint_id: Uuid,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Timestamptz)]
    next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    response_status: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    attempted_at: Option<DateTime<Utc>>,
}

const DELIVERY_PAGE: &str = "\
    SELECT d.id, d.message_id, m.endpoint_id, m.event_type, d.attempt, d.status, \
           d.next_attempt_at, d.response_status, d.error, d.created_at, d.attempted_at \
    FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id \
    WHERE ($1::bigint IS NULL OR d.id < $1) AND ($2::uuid IS NULL OR m.endpoint_id = $2) \
    ORDER BY d.id DESC \
    LIMIT $3";

impl PgWebhookOutbox {
    /// Up to `limit` delivery attempts before the cursor `before`, newest first, only
    /// `endpoint`'s when given.
    pub async fn delivery_page(
        &self,
        endpoint: Option<Uuid>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<DeliveryPage> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<DeliveryRow> = diesel::sql_query(DELIVERY_PAGE)
            .bind::<Nullable<diesel::sql_types::BigInt>, _>(before)
            .bind::<Nullable<diesel::sql_types::Uuid>, _>(endpoint)
            .bind::<diesel::sql_types::BigInt, _>(limit)
            .load(&mut conn)
            .await?;
        let next = next_cursor(&rows, limit, |r| r.id);
        let deliveries = rows
            .into_iter()
            .map(|r| Delivery {
                id: r.id,
                message_id: r.message_id,
                endpoint_id: r.endpoint_id,
                event_type: r.event_type,
                attempt: r.attempt,
                status: r.status,
                next_attempt_at: r.next_attempt_at,
                response_status: r.response_status,
                error: r.error,
                created_at: r.created_at,
                attempted_at: r.attempted_at,
            })
            .collect();
        Ok(DeliveryPage { deliveries, next })
    }
}

//! `PgWebhookOutbox`: outbound endpoints, messages, attempts, dead letters and replay.

use super::*;

/// An outbound webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = we, check_for_backend(diesel::pg::Pg))]
pub struct WebhookEndpoint {
    /// Its id.
    pub id: Uuid,
    /// Where messages are POSTed.
    pub url: String,
    /// Free text for operators.
    pub description: String,
    /// Whether deliveries are attempted.
    pub enabled: bool,
    /// When it was disabled (after failing for too long, or by an operator).
    pub disabled_at: Option<DateTime<Utc>>,
    /// Start of the current run of failed attempts; `None` after a success.
    pub failing_since: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// One attempt of a message, as stored in `webhook_deliveries`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = wd, check_for_backend(diesel::pg::Pg))]
pub struct WebhookAttempt {
    /// The row id.
    pub id: i64,
    /// The message.
    pub message_id: String,
    /// The attempt number, from 1.
    pub attempt: i32,
    /// `pending`, `delivered`, `failed` (a later attempt follows) or `dead`.
    pub status: String,
    /// When a pending attempt is due (while a worker holds it: when its lease ends).
    pub next_attempt_at: DateTime<Utc>,
    /// How many times a worker claimed this attempt (more than 1 after a crash).
    pub claims: i32,
    /// The receiver's HTTP status, if it answered.
    pub response_status: Option<i16>,
    /// Why the attempt failed, when it did without an answer.
    pub error: Option<String>,
    /// When the attempt row was written.
    pub created_at: DateTime<Utc>,
    /// When the attempt was made; `None` while pending.
    pub attempted_at: Option<DateTime<Utc>>,
}

/// A dead-lettered message, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message id (`msg_…`), for [`PgWebhookOutbox::replay_dead`].
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

/// An attempt a worker holds: everything needed to sign and send it.
#[derive(Debug)]
pub struct ClaimedWebhook {
    /// The `webhook_deliveries` row.
    pub delivery_id: i64,
    /// The message id (`msg_…`), sent as `webhook-id`.
    pub message_id: String,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// Where to POST.
    pub url: String,
    /// The event type.
    pub event_type: String,
    /// The exact bytes to sign and send.
    pub payload: Vec<u8>,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The endpoint's active signing secrets, newest first (each with its expiry).
    pub secrets: Vec<Secret>,
    lease: Uuid,
}

/// How an attempt ended, for [`PgWebhookOutbox::record_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered with `status` (2xx is a delivery).
    Answered {
        /// The HTTP status.
        status: u16,
        /// The receiver's `Retry-After`, honoured on 429 and 503 within the policy's bounds.
        retry_after: Option<Duration>,
    },
    /// No answer: connection failure, timeout, refused destination, no usable secret.
    NoAnswer {
        /// Why, short and free of secrets.
        error: String,
    },
}

/// What [`PgWebhookOutbox::record_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedAttempt {
    /// Delivered, retried at a time, or dead-lettered.
    pub decision: Decision,
    /// The endpoint's health after the attempt.
    pub health: HealthVerdict,
    /// Whether this attempt disabled the endpoint (raise an alert).
    pub disabled_endpoint: bool,
}

/// An endpoint and its first signing secret, as created. `Debug` leaves the secret out.
pub struct CreatedEndpoint {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// Its `whsec_…` secret, to hand to the receiver once.
    pub secret: String,
}

impl std::fmt::Debug for CreatedEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedEndpoint")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The outbound webhook outbox: `webhook_endpoints`, `webhook_endpoint_secrets`,
/// `webhook_messages` and `webhook_deliveries`.
///
/// **Invariants:** a message is written with [`enqueue_in`](Self::enqueue_in) inside the
/// caller's transaction together with its first pending attempt, so it exists (and will be
/// delivered) exactly when the business change commits. Claims use `FOR UPDATE SKIP LOCKED`
/// and lease the attempt (its `next_attempt_at` moves a lease into the future and a fresh
/// `lease_token` names the holder): concurrent workers claim disjoint attempts, and an
/// attempt whose worker died becomes due again when the lease ends. An outcome is recorded
/// only by the current lease holder, once. A message has at most one pending attempt (a
/// unique partial index), so a replay cannot queue it twice.
#[derive(Debug, Clone)]
pub struct PgWebhookOutbox {
    pub(super) pool: PgPool,
}

#[derive(QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    delivery_id: i64,
    #[diesel(sql_type = Text)]
    message_id: String,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    lease_token: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    endpoint_id: Uuid,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Bytea)]
    payload: Vec<u8>,
    #[diesel(sql_type = Text)]
    url: String,
}

const CLAIM_DUE: &str = "\
    WITH due AS ( \
        SELECT d.id FROM webhook_deliveries d \
        JOIN webhook_messages m ON m.id = d.message_id \
        JOIN webhook_endpoints e ON e.id = m.endpoint_id \
        WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.enabled \
        ORDER BY d.next_attempt_at, d.id \
        LIMIT $1 \
        FOR UPDATE OF d SKIP LOCKED \
    ), claimed AS ( \
        UPDATE webhook_deliveries d \
        SET next_attempt_at = now() + make_interval(secs => $2), \
            lease_token = gen_random_uuid(), claims = d.claims + 1 \
        FROM due WHERE d.id = due.id \
        RETURNING d.id, d.message_id, d.attempt, d.lease_token \
    ) \
    SELECT c.id AS delivery_id, c.message_id, c.attempt, c.lease_token, \
           m.endpoint_id, m.event_type, m.payload, e.url \
    FROM claimed c \
    JOIN webhook_messages m ON m.id = c.message_id \
    JOIN webhook_endpoints e ON e.id = m.endpoint_id \
    ORDER BY c.id";

#[derive(QueryableByName)]
struct HeldRow {
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    endpoint_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

const LOCK_HELD: &str = "\
    SELECT d.attempt, m.endpoint_id, now() AS now \
    FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id \
    WHERE d.id = $1 AND d.lease_token = $2 AND d.status = 'pending' \
    FOR UPDATE OF d";

pub(super) const REPLAY_DEAD: &str = "\
    INSERT INTO webhook_deliveries (message_id, attempt, status, next_attempt_at) \
    SELECT d.message_id, d.attempt + 1, 'pending', now() FROM webhook_deliveries d \
    WHERE d.message_id = $1 AND d.status = 'dead' \
      AND d.attempt = (SELECT max(attempt) FROM webhook_deliveries WHERE message_id = $1) \
    ON CONFLICT DO NOTHING";

fn corrupt(table: &'static str, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        table,
        reason: reason.into(),
    }
}

impl PgWebhookOutbox {
    /// The outbox on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates an enabled endpoint with a fresh `whsec_` secret.
    pub async fn create_endpoint(&self, url: &str, description: &str) -> Result<CreatedEndpoint> {
        let mut conn = get(&self.pool).await?;
        let secret = Secret::generate_whsec();
        let endpoint = conn
            .transaction::<_, Error, _>(async |conn| {
                let endpoint: WebhookEndpoint = diesel::insert_into(we::table)
                    .values((
                        we::id.eq(Uuid::now_v7()),
                        we::url.eq(url),
                        we::description.eq(description),
                    ))
                    .returning(WebhookEndpoint::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(Error::from_write)?;
                diesel::insert_into(ws::table)
                    .values((ws::endpoint_id.eq(endpoint.id), ws::secret.eq(&secret)))
                    .execute(conn)
                    .await?;
                Ok(endpoint)
            })
            .await?;
        Ok(CreatedEndpoint { endpoint, secret })
    }

    /// Rotates the endpoint's secret: a fresh `whsec_` secret signs from now on, and the
    /// secrets active until now keep signing for `overlap` (both appear in
    /// `webhook-signature`), then expire. Returns the new secret, or `None` for an unknown
    /// endpoint.
    pub async fn rotate_secret(&self, endpoint: Uuid, overlap: Duration) -> Result<Option<String>> {
        let mut conn = get(&self.pool).await?;
        let secret = Secret::generate_whsec();
        let overlap = chrono::Duration::from_std(overlap)
            .unwrap_or(chrono::Duration::MAX)
            .min(chrono::Duration::days(36_500));
        conn.transaction::<_, Error, _>(async |conn| {
            let exists: Option<Uuid> = we::table
                .find(endpoint)
                .select(we::id)
                .for_no_key_update()
                .first(conn)
                .await
                .optional()?;
            if exists.is_none() {
                return Ok(None);
            }
            let until = Utc::now() + overlap;
            diesel::update(
                ws::table
                    .filter(ws::endpoint_id.eq(endpoint))
                    .filter(ws::expires_at.is_null().or(ws::expires_at.gt(until))),
            )
            .set(ws::expires_at.eq(Some(until)))
            .execute(conn)
            .await?;
            diesel::insert_into(ws::table)
                .values((ws::endpoint_id.eq(endpoint), ws::secret.eq(&secret)))
                .execute(conn)
                .await?;
            Ok(Some(secret.clone()))
        })
        .await
    }

    /// The endpoint `id`.
    pub async fn endpoint(&self, id: Uuid) -> Result<Option<WebhookEndpoint>> {
        let mut conn = get(&self.pool).await?;
        Ok(we::table
            .find(id)
            .select(WebhookEndpoint::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// Enables an endpoint (after an operator fixed it): its failure streak starts over and
    /// its pending messages become deliverable. `false` for an unknown endpoint.
    pub async fn enable_endpoint(&self, id: Uuid) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        let updated = diesel::update(we::table.find(id))
            .set((
                we::enabled.eq(true),
                we::disabled_at.eq(None::<DateTime<Utc>>),
                we::failing_since.eq(None::<DateTime<Utc>>),
                we::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(updated == 1)
    }

    /// Disables an endpoint: nothing is sent to it until [`enable_endpoint`](Self::enable_endpoint).
    /// `false` for an unknown or already disabled endpoint.
    pub async fn disable_endpoint(&self, id: Uuid) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        let updated = diesel::update(we::table.find(id).filter(we::enabled.eq(true)))
            .set((
                we::enabled.eq(false),
                we::disabled_at.eq(Some(Utc::now())),
                we::updated_at.eq(diesel::dsl::now),
            ))
            .execute(&mut conn)
            .await?;
        Ok(updated == 1)
    }

    /// Queues `payload` (serialised once; those bytes are signed and sent) as an `event_type`
    /// message to `endpoint`, inside the caller's open transaction: the message and its first
    /// attempt commit or roll back with the business change that causes them. Returns the
    /// message id (`msg_…`), which receivers see as `webhook-id`.
    pub async fn enqueue_in(
        conn: &mut AsyncPgConnection,
        endpoint: Uuid,
        event_type: &str,
        payload: &serde_json::Value,
    ) -> Result<String> {
        let bytes = serde_json::to_vec(payload).map_err(|e| Error::Config {
            reason: format!("webhook payload does not serialise: {e}"),
        })?;
        let id = format!("msg_{}", Uuid::now_v7().simple());
        diesel::insert_into(wm::table)
            .values((
                wm::id.eq(&id),
                wm::endpoint_id.eq(endpoint),
                wm::event_type.eq(event_type),
                wm::payload.eq(&bytes),
            ))
            .execute(conn)
            .await
            .map_err(Error::from_write)?;
        diesel::insert_into(wd::table)
            .values((
                wd::message_id.eq(&id),
                wd::attempt.eq(1),
                wd::status.eq("pending"),
                wd::next_attempt_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        Ok(id)
    }

    /// [`enqueue_in`](Self::enqueue_in) in a transaction of its own, for callers with no
    /// business change to commit alongside.
    pub async fn enqueue(
        &self,
        endpoint: Uuid,
        event_type: &str,
        payload: &serde_json::Value,
    ) -> Result<String> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |conn| {
            Self::enqueue_in(conn, endpoint, event_type, payload).await
        })
        .await
    }

    /// Claims up to `limit` due attempts of enabled endpoints (`FOR UPDATE SKIP LOCKED`)
    /// and leases them for `lease`: if the worker dies before recording an outcome, the
    /// attempt is due again when the lease ends. Make `lease` longer than an attempt can take.
    pub async fn claim_due(&self, limit: usize, lease: Duration) -> Result<Vec<ClaimedWebhook>> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<ClaimRow> = diesel::sql_query(CLAIM_DUE)
            .bind::<Integer, _>(i32::try_from(limit).unwrap_or(i32::MAX))
            .bind::<Double, _>(secs(lease))
            .load(&mut conn)
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut endpoints: Vec<Uuid> = rows.iter().map(|r| r.endpoint_id).collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        let secrets: Vec<(Uuid, String, Option<DateTime<Utc>>)> = ws::table
            .filter(ws::endpoint_id.eq_any(&endpoints))
            .filter(
                ws::expires_at
                    .is_null()
                    .or(ws::expires_at.gt(diesel::dsl::now)),
            )
            .order((ws::endpoint_id, ws::created_at.desc(), ws::id.desc()))
            .select((ws::endpoint_id, ws::secret, ws::expires_at))
            .load(&mut conn)
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let mut keys = Vec::new();
            for (_, text, expires_at) in secrets.iter().filter(|s| s.0 == row.endpoint_id) {
                match Secret::standard(text) {
                    Ok(secret) => keys.push(match expires_at {
                        Some(at) => secret.expires_at(at.timestamp()),
                        None => secret,
                    }),
                    // The attempt goes ahead without it and fails visibly if none is left.
                    Err(e) => tracing::error!(
                        endpoint = %row.endpoint_id,
                        error = %e,
                        "unusable webhook signing secret"
                    ),
                }
            }
            claimed.push(ClaimedWebhook {
                delivery_id: row.delivery_id,
                message_id: row.message_id,
                endpoint_id: row.endpoint_id,
                url: row.url,
                event_type: row.event_type,
                payload: row.payload,
                attempt: u32::try_from(row.attempt)
                    .map_err(|_| corrupt("webhook_deliveries", "negative attempt"))?,
                secrets: keys,
                lease: row.lease_token,
            });
        }
        Ok(claimed)
    }

    /// Records how the claimed attempt ended and decides what follows, in one transaction:
    /// a 2xx answer delivers; otherwise `policy` schedules the next attempt (its wait with
    /// jitter, or the receiver's `Retry-After` on 429/503 within bounds) or, after the last
    /// attempt, dead-letters the message. The endpoint's failure streak is updated, and an
    /// endpoint failing without a success for `disable_after` is disabled.
    ///
    /// `None` (and nothing written) when the claim was lost: its lease ended and another
    /// worker claimed the attempt again, or an outcome was already recorded.
    pub async fn record_attempt(
        &self,
        claim: &ClaimedWebhook,
        outcome: &AttemptOutcome,
        policy: &RetryPolicy,
        disable_after: Duration,
    ) -> Result<Option<RecordedAttempt>> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |conn| {
            let held: Option<HeldRow> = diesel::sql_query(LOCK_HELD)
                .bind::<diesel::sql_types::BigInt, _>(claim.delivery_id)
                .bind::<diesel::sql_types::Uuid, _>(claim.lease)
                .get_result(conn)
                .await
                .optional()?;
            let Some(held) = held else {
                return Ok(None);
            };
            let attempt = u32::try_from(held.attempt)
                .map_err(|_| corrupt("webhook_deliveries", "negative attempt"))?;
            let now = held.now;
            let (status, retry_after, error) = match outcome {
                AttemptOutcome::Answered {
                    status,
                    retry_after,
                } => (Some(*status), *retry_after, None),
                AttemptOutcome::NoAnswer { error } => (None, None, Some(error.as_str())),
            };
            let decision = policy.next_attempt(attempt, status, retry_after, now);
            let row_status = match decision {
                Decision::Delivered => "delivered",
                Decision::RetryAt { .. } => "failed",
                Decision::DeadLetter => "dead",
            };
            let response_status = status.map(|s| i16::try_from(s).unwrap_or(i16::MAX));
            diesel::update(wd::table.find(claim.delivery_id))
                .set((
                    wd::status.eq(row_status),
                    wd::response_status.eq(response_status),
                    wd::error.eq(error),
                    wd::attempted_at.eq(Some(now)),
                    wd::lease_token.eq(None::<Uuid>),
                ))
                .execute(conn)
                .await?;
            if let Decision::RetryAt { at, attempt_no } = decision {
                diesel::insert_into(wd::table)
                    .values((
                        wd::message_id.eq(&claim.message_id),
                        wd::attempt.eq(i32::try_from(attempt_no).unwrap_or(i32::MAX)),
                        wd::status.eq("pending"),
                        wd::next_attempt_at.eq(at),
                    ))
                    .execute(conn)
                    .await?;
            }

            // FOR NO KEY UPDATE: does not block enqueue_in's foreign-key check (KEY SHARE).
            let (enabled, failing_since): (bool, Option<DateTime<Utc>>) = we::table
                .find(held.endpoint_id)
                .select((we::enabled, we::failing_since))
                .for_no_key_update()
                .first(conn)
                .await?;
            let mut health = EndpointHealth { failing_since };
            let verdict = if decision == Decision::Delivered {
                health.record_success()
            } else {
                health.record_failure(now, disable_after)
            };
            let disable = enabled && matches!(verdict, HealthVerdict::Disable { .. });
            if disable {
                diesel::update(we::table.find(held.endpoint_id))
                    .set((
                        we::enabled.eq(false),
                        we::disabled_at.eq(Some(now)),
                        we::failing_since.eq(health.failing_since),
                        we::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
            } else if health.failing_since != failing_since {
                diesel::update(we::table.find(held.endpoint_id))
                    .set((
                        we::failing_since.eq(health.failing_since),
                        we::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .await?;
            }
            Ok(Some(RecordedAttempt {
                decision,
                health: verdict,
                disabled_endpoint: disable,
            }))
        })
        .await
    }

    /// Queues one more attempt of a dead-lettered message, due now (an operator's replay;
    /// if it fails too, the message is dead again). `false` when the message is not dead
    /// (unknown, pending, delivered, or already replayed).
    pub async fn replay_dead(&self, message_id: &str) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        let inserted = diesel::sql_query(REPLAY_DEAD)
            .bind::<Text, _>(message_id)
            .execute(&mut conn)
            .await?;
        Ok(inserted == 1)
    }

    /// Up to `limit` dead-lettered messages, oldest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self.dead_letter_page(None, None, limit).await?.letters)
    }

    /// Every attempt of a message, in order.
    pub async fn attempts(&self, message_id: &str) -> Result<Vec<WebhookAttempt>> {
        let mut conn = get(&self.pool).await?;
        Ok(wd::table
            .filter(wd::message_id.eq(message_id))
            .order(wd::attempt.asc())
            .select(WebhookAttempt::as_select())
            .load(&mut conn)
            .await?)
    }
}

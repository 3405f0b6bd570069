//! Operator management of outbound endpoints: pages of endpoints with their backlog and the
//! validity of their signing secrets (never the secrets), and the audited changes — create,
//! update, rotate a secret, delete, replay a dead letter. Each change and its `audit_log` row
//! commit in one transaction; a change that does not happen writes no audit row (callers
//! record refusals themselves).

use std::collections::HashMap;

use haven_core::audit::AuditEvent;
use serde_json::json;

use super::outbox::REPLAY_DEAD;
use super::*;
use crate::PgAuditLog;
use crate::webhooks::outbox::{CreatedEndpoint, DeadLetter, WebhookEndpoint};

/// The longest an old secret may keep signing after a rotation.
pub const MAX_SECRET_OVERLAP: chrono::Duration = chrono::Duration::days(7);

/// When one signing secret of an endpoint signs; never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = ws, check_for_backend(diesel::pg::Pg))]
pub struct SecretValidity {
    /// The secret's row id.
    pub id: i64,
    /// When it was created (it signs from then on).
    pub created_at: DateTime<Utc>,
    /// When it stops signing; `None`: until the next rotation.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An endpoint with what an operator needs to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointDetails {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// Attempts waiting to be sent (messages not yet delivered nor dead).
    pub pending_deliveries: i64,
    /// Dead-lettered messages not replayed.
    pub dead_letters: i64,
    /// The secrets that still sign (not expired), newest first.
    pub secrets: Vec<SecretValidity>,
}

/// The changes of an endpoint update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChange {
    /// A new URL (the caller checked it against the destination policy).
    pub url: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// Enable (the failure streak starts over) or disable.
    pub enabled: Option<bool>,
}

/// A rotated secret. `Debug` leaves the secret out.
pub struct RotatedSecret {
    /// The new `whsec_…` secret, to hand to the receiver once.
    pub secret: String,
    /// When the secrets that signed until now stop signing.
    pub old_valid_until: DateTime<Utc>,
    /// How many older secrets were given that expiry.
    pub retired: usize,
}

impl std::fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSecret")
            .field("old_valid_until", &self.old_valid_until)
            .field("retired", &self.retired)
            .finish_non_exhaustive()
    }
}

/// Why a rotation's `old_valid_until` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverlapRefusal {
    /// The time is not in the future.
    #[error("old_valid_until must be in the future")]
    NotInFuture,
    /// The time is more than [`MAX_SECRET_OVERLAP`] ahead.
    #[error("old_valid_until must be at most 7 days ahead")]
    TooFar,
}

impl OverlapRefusal {
    /// A stable reason code (`not_in_future`, `too_far`).
    pub fn reason(self) -> &'static str {
        match self {
            OverlapRefusal::NotInFuture => "not_in_future",
            OverlapRefusal::TooFar => "too_far",
        }
    }
}

/// Checks the time until which the old secrets keep signing: after `now`, at most
/// [`MAX_SECRET_OVERLAP`] ahead.
pub fn check_overlap(
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> std::result::Result<(), OverlapRefusal> {
    if until <= now {
        Err(OverlapRefusal::NotInFuture)
    } else if until - now > MAX_SECRET_OVERLAP {
        Err(OverlapRefusal::TooFar)
    } else {
        Ok(())
    }
}

/// What [`PgWebhookOutbox::delete_endpoint_audited`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointDeletion {
    /// No such endpoint.
    NotFound,
    /// Refused, nothing written: messages are still undelivered (pass `force`).
    Undelivered {
        /// Pending attempts.
        pending: i64,
        /// Dead letters not replayed.
        dead: i64,
    },
    /// Deleted with its secrets, messages and attempts; audited.
    Deleted {
        /// The endpoint as it was.
        endpoint: WebhookEndpoint,
        /// Messages deleted with it.
        messages: i64,
        /// Of which pending (dropped undelivered).
        pending: i64,
        /// Of which dead letters.
        dead: i64,
    },
}

/// A page of dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterPage {
    /// Oldest first.
    pub letters: Vec<DeadLetter>,
    /// The cursor of the next page; `None` on the last page.
    pub next: Option<i64>,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    endpoint_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pending: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    dead: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    messages: i64,
}

/// Per endpoint: pending attempts, dead letters not replayed (a message's latest attempt is
/// its state), messages.
const COUNTS: &str = "\
    SELECT m.endpoint_id, \
           count(*) FILTER (WHERE d.status = 'pending') AS pending, \
           count(*) FILTER (WHERE d.status = 'dead') AS dead, \
           count(*) AS messages \
    FROM webhook_messages m \
    JOIN LATERAL (SELECT status FROM webhook_deliveries \
                  WHERE message_id = m.id ORDER BY attempt DESC LIMIT 1) d ON true \
    WHERE m.endpoint_id = ANY($1) \
    GROUP BY m.endpoint_id";

#[derive(QueryableByName)]
struct DeadPageRow {
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
    #[diesel(sql_type = Nullable<SmallInt>)]
    response_status: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    attempted_at: Option<DateTime<Utc>>,
}

const DEAD_PAGE: &str = "\
    SELECT d.id, d.message_id, m.endpoint_id, m.event_type, d.attempt, d.response_status, \
           d.error, d.attempted_at \
    FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id \
    WHERE d.status = 'dead' AND d.id > $1 AND ($2::uuid IS NULL OR m.endpoint_id = $2) \
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries l \
                      WHERE l.message_id = d.message_id AND l.attempt > d.attempt) \
    ORDER BY d.id \
    LIMIT $3";

/// `event` with the entries of `extra` added to its details and its target set.
fn audited(mut event: AuditEvent, target: String, extra: serde_json::Value) -> AuditEvent {
    match (&mut event.details, extra) {
        (serde_json::Value::Object(details), serde_json::Value::Object(extra)) => {
            details.extend(extra);
        }
        (details, extra) => *details = extra,
    }
    event.target(target)
}

fn endpoint_target(id: Uuid) -> String {
    format!("webhook_endpoint:{id}")
}

async fn counts_in(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (i64, i64, i64)>> {
    let rows: Vec<CountRow> = diesel::sql_query(COUNTS)
        .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.endpoint_id, (r.pending, r.dead, r.messages)))
        .collect())
}

async fn details_in(
    conn: &mut AsyncPgConnection,
    endpoints: Vec<WebhookEndpoint>,
) -> Result<Vec<EndpointDetails>> {
    let ids: Vec<Uuid> = endpoints.iter().map(|e| e.id).collect();
    let counts = counts_in(conn, &ids).await?;
    let secrets: Vec<(Uuid, SecretValidity)> = ws::table
        .filter(ws::endpoint_id.eq_any(&ids))
        .filter(
            ws::expires_at
                .is_null()
                .or(ws::expires_at.gt(diesel::dsl::now)),
        )
        .order((ws::created_at.desc(), ws::id.desc()))
        .select((ws::endpoint_id, SecretValidity::as_select()))
        .load(conn)
        .await?;
    Ok(endpoints
        .into_iter()
        .map(|endpoint| {
            let (pending, dead, _) = counts.get(&endpoint.id).copied().unwrap_or_default();
            let secrets = secrets
                .iter()
                .filter(|(id, _)| *id == endpoint.id)
                .map(|(_, s)| s.clone())
                .collect();
            EndpointDetails {
                endpoint,
                pending_deliveries: pending,
                dead_letters: dead,
                secrets,
            }
        })
        .collect())
}

async fn lock_endpoint(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<WebhookEndpoint>> {
    // FOR UPDATE: also holds off enqueue_in's foreign-key check until the change commits.
    Ok(we::table
        .find(id)
        .select(WebhookEndpoint::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

impl PgWebhookOutbox {
    /// Up to `limit` endpoints with ids after `after` (UUIDv7: creation order), each with
    /// its backlog and the validity of its secrets.
    pub async fn list_endpoints(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<EndpointDetails>> {
        let mut conn = get(&self.pool).await?;
        let mut query = we::table.select(WebhookEndpoint::as_select()).into_boxed();
        if let Some(after) = after {
            query = query.filter(we::id.gt(after));
        }
        let endpoints = query
            .order(we::id.asc())
            .limit(limit)
            .load(&mut conn)
            .await?;
        details_in(&mut conn, endpoints).await
    }

    /// The endpoint `id` with its backlog and the validity of its secrets.
    pub async fn endpoint_details(&self, id: Uuid) -> Result<Option<EndpointDetails>> {
        let mut conn = get(&self.pool).await?;
        let endpoint: Option<WebhookEndpoint> = we::table
            .find(id)
            .select(WebhookEndpoint::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        match endpoint {
            Some(e) => Ok(details_in(&mut conn, vec![e]).await?.pop()),
            None => Ok(None),
        }
    }

    /// Creates an enabled endpoint with a fresh `whsec_` secret and appends `audit`
    /// (targeted at the endpoint, its URL added), in one transaction.
    pub async fn create_endpoint_audited(
        &self,
        url: &str,
        description: &str,
        audit: AuditEvent,
    ) -> Result<CreatedEndpoint> {
        let mut conn = get(&self.pool).await?;
        let secret = Secret::generate_whsec();
        let endpoint = conn
            .transaction::<_, Error, _>(async |c| {
                let endpoint: WebhookEndpoint = diesel::insert_into(we::table)
                    .values((
                        we::id.eq(Uuid::now_v7()),
                        we::url.eq(url),
                        we::description.eq(description),
                    ))
                    .returning(WebhookEndpoint::as_returning())
                    .get_result(c)
                    .await
                    .map_err(Error::from_write)?;
                diesel::insert_into(ws::table)
                    .values((ws::endpoint_id.eq(endpoint.id), ws::secret.eq(&secret)))
                    .execute(c)
                    .await?;
                let audit = audited(
                    audit,
                    endpoint_target(endpoint.id),
                    json!({"url": endpoint.url, "description": endpoint.description}),
                );
                PgAuditLog::append_in(c, audit).await?;
                Ok(endpoint)
            })
            .await?;
        Ok(CreatedEndpoint { endpoint, secret })
    }

    /// Applies `change` to endpoint `id` and appends `audit` (the fields changed, from and
    /// to), in one transaction. Enabling starts the failure streak over; disabling stops
    /// deliveries (pending attempts wait). `None` for an unknown endpoint.
    pub async fn update_endpoint_audited(
        &self,
        id: Uuid,
        change: EndpointChange,
        audit: AuditEvent,
    ) -> Result<Option<WebhookEndpoint>> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |c| {
            let Some(before) = lock_endpoint(c, id).await? else {
                return Ok(None);
            };
            let now = Utc::now();
            let mut changed = serde_json::Map::new();
            if let Some(url) = change.url.as_ref().filter(|u| **u != before.url) {
                diesel::update(we::table.find(id))
                    .set(we::url.eq(url))
                    .execute(c)
                    .await
                    .map_err(Error::from_write)?;
                changed.insert("url".into(), json!({"from": before.url, "to": url}));
            }
            if let Some(d) = change
                .description
                .as_ref()
                .filter(|d| **d != before.description)
            {
                diesel::update(we::table.find(id))
                    .set(we::description.eq(d))
                    .execute(c)
                    .await
                    .map_err(Error::from_write)?;
                changed.insert(
                    "description".into(),
                    json!({"from": before.description, "to": d}),
                );
            }
            match change.enabled {
                Some(true) if !before.enabled => {
                    diesel::update(we::table.find(id))
                        .set((
                            we::enabled.eq(true),
                            we::disabled_at.eq(None::<DateTime<Utc>>),
                            we::failing_since.eq(None::<DateTime<Utc>>),
                        ))
                        .execute(c)
                        .await?;
                    changed.insert("enabled".into(), json!({"from": false, "to": true}));
                }
                Some(false) if before.enabled => {
                    diesel::update(we::table.find(id))
                        .set((we::enabled.eq(false), we::disabled_at.eq(Some(now))))
                        .execute(c)
                        .await?;
                    changed.insert("enabled".into(), json!({"from": true, "to": false}));
                }
                _ => {}
            }
            let after: WebhookEndpoint = diesel::update(we::table.find(id))
                .set(we::updated_at.eq(now))
                .returning(WebhookEndpoint::as_returning())
                .get_result(c)
                .await?;
            let audit = audited(audit, endpoint_target(id), json!({"changed": changed}));
            PgAuditLog::append_in(c, audit).await?;
            Ok(Some(after))
        })
        .await
    }

    /// Rotates the endpoint's secret: a fresh `whsec_` secret signs from now on, and every
    /// secret signing until now keeps signing until `old_valid_until` (both appear in
    /// `webhook-signature`), then expires; `audit` is appended in the same transaction. The
    /// caller checked `old_valid_until` ([`check_overlap`]). `None` for an unknown endpoint.
    pub async fn rotate_secret_audited(
        &self,
        id: Uuid,
        old_valid_until: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<Option<RotatedSecret>> {
        let mut conn = get(&self.pool).await?;
        let secret = Secret::generate_whsec();
        conn.transaction::<_, Error, _>(async |c| {
            if lock_endpoint(c, id).await?.is_none() {
                return Ok(None);
            }
            let retired = diesel::update(
                ws::table.filter(ws::endpoint_id.eq(id)).filter(
                    ws::expires_at
                        .is_null()
                        .or(ws::expires_at.gt(old_valid_until)),
                ),
            )
            .set(ws::expires_at.eq(Some(old_valid_until)))
            .execute(c)
            .await?;
            diesel::insert_into(ws::table)
                .values((ws::endpoint_id.eq(id), ws::secret.eq(&secret)))
                .execute(c)
                .await?;
            let audit = audited(
                audit,
                endpoint_target(id),
                json!({"old_valid_until": old_valid_until, "retired_secrets": retired}),
            );
            PgAuditLog::append_in(c, audit).await?;
            Ok(Some(RotatedSecret {
                secret: secret.clone(),
                old_valid_until,
                retired,
            }))
        })
        .await
    }

    /// Deletes endpoint `id` with its secrets, messages and attempts, appending `audit`
    /// (what was dropped) in the same transaction. While messages are undelivered (pending
    /// attempts or dead letters) it is refused unless `force`; the endpoint row is locked
    /// meanwhile, so no message is queued for it between the count and the delete.
    pub async fn delete_endpoint_audited(
        &self,
        id: Uuid,
        force: bool,
        audit: AuditEvent,
    ) -> Result<EndpointDeletion> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |c| {
            let Some(endpoint) = lock_endpoint(c, id).await? else {
                return Ok(EndpointDeletion::NotFound);
            };
            let (pending, dead, messages) = counts_in(c, &[id])
                .await?
                .get(&id)
                .copied()
                .unwrap_or_default();
            if (pending > 0 || dead > 0) && !force {
                return Ok(EndpointDeletion::Undelivered { pending, dead });
            }
            diesel::delete(we::table.find(id)).execute(c).await?;
            let audit = audited(
                audit,
                endpoint_target(id),
                json!({
                    "url": endpoint.url,
                    "forced": force,
                    "messages_deleted": messages,
                    "pending_dropped": pending,
                    "dead_dropped": dead,
                }),
            );
            PgAuditLog::append_in(c, audit).await?;
            Ok(EndpointDeletion::Deleted {
                endpoint,
                messages,
                pending,
                dead,
            })
        })
        .await
    }

    /// Up to `limit` dead letters (not replayed) after the cursor `after`, oldest first,
    /// only `endpoint`'s when given.
    pub async fn dead_letter_page(
        &self,
        endpoint: Option<Uuid>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<DeadLetterPage> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<DeadPageRow> = diesel::sql_query(DEAD_PAGE)
            .bind::<diesel::sql_types::BigInt, _>(after.unwrap_or(0))
            .bind::<Nullable<diesel::sql_types::Uuid>, _>(endpoint)
            .bind::<diesel::sql_types::BigInt, _>(limit)
            .load(&mut conn)
            .await?;
        let next = next_cursor(&rows, limit, |r| r.id);
        let letters = rows
            .into_iter()
            .map(|r| DeadLetter {
                message_id: r.message_id,
                endpoint_id: r.endpoint_id,
                event_type: r.event_type,
                attempts: r.attempt,
                last_status: r.response_status,
                last_error: r.error,
                dead_since: r.attempted_at,
            })
            .collect();
        Ok(DeadLetterPage { letters, next })
    }

    /// [`replay_dead`](Self::replay_dead) with `audit` appended in the same transaction;
    /// `false` (nothing written) when the message is not dead.
    pub async fn replay_dead_audited(&self, message_id: &str, audit: AuditEvent) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |c| {
            let inserted = diesel::sql_query(REPLAY_DEAD)
                .bind::<Text, _>(message_id)
                .execute(c)
                .await?;
            if inserted != 1 {
                return Ok(false);
            }
            let audit = audited(audit, format!("webhook_message:{message_id}"), json!({}));
            PgAuditLog::append_in(c, audit).await?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlap_is_in_the_future_and_at_most_seven_days() {
        let now = Utc::now();
        assert_eq!(check_overlap(now, now), Err(OverlapRefusal::NotInFuture));
        assert_eq!(
            check_overlap(now - chrono::Duration::hours(1), now),
            Err(OverlapRefusal::NotInFuture)
        );
        assert_eq!(check_overlap(now + chrono::Duration::hours(1), now), Ok(()));
        assert_eq!(check_overlap(now + MAX_SECRET_OVERLAP, now), Ok(()));
        assert_eq!(
            check_overlap(now + MAX_SECRET_OVERLAP + chrono::Duration::seconds(1), now),
            Err(OverlapRefusal::TooFar)
        );
    }
}

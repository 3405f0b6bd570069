//! Accepting partner events into the ledger, and the ledger's state changes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bytea, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::AuditEvent;
use haven_fraud::Alert;
use haven_rewards::{Decision, Effect, Hnv, PartnerEvent, RewardKind, RewardState};
use haven_webhooks::Fingerprint;
use uuid::Uuid;

use super::{PgRewards, REWARD_COLUMNS, RewardRecord, RewardRow, hnv_of, records};
use crate::pool::get;
use crate::{Error, PgAlertStore, PgAuditLog, PgWebhookOutbox, Result};

/// The inbound webhook that carried an event, stored in `inbound_webhooks` in the event's
/// transaction (its `(source, message_id)` is the replay store).
#[derive(Debug, Clone, Copy)]
pub struct InboxEntry<'a> {
    /// The message id the signature covered.
    pub message_id: &'a str,
    /// The raw body as received.
    pub body: &'a [u8],
}

/// One partner event to record, priced and fraud-checked by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Ingest<'a> {
    /// `webhook:<message id>` or `sync:<item id>`: unique per source.
    pub origin: &'a str,
    /// The inbound webhook, when the event came as one.
    pub inbox: Option<InboxEntry<'a>>,
    /// The member ([`PgRewards::resolve_member`]).
    pub member_id: Uuid,
    /// The parsed event.
    pub event: &'a PartnerEvent,
    /// The raw payload.
    pub payload: &'a [u8],
    /// How the rules priced it.
    pub decision: &'a Decision,
    /// The fraud alerts its reward raised; stored with it.
    pub alerts: &'a [Alert],
    /// A HIGH alert holds the reward until an operator approves or rejects it.
    pub hold: bool,
}

/// What [`PgRewards::ingest`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// A new event, stored.
    Accepted {
        /// Its `partner_events` id.
        event_id: i64,
        /// The reward it created, if it earned one that was not recorded before.
        reward: Option<Box<RewardRecord>>,
        /// The reward already recorded for the same business key (sync and webhook, or a
        /// partner's redelivery under a new message id): not rewarded twice.
        already_rewarded: Option<Box<RewardRecord>>,
        /// Rewards its cancellation cancelled or queued for reversal.
        reversals: Vec<RewardRecord>,
    },
    /// The same message, or the same sync item, was stored before: nothing written.
    Duplicate,
    /// The message id was stored with another body: nothing written.
    Conflict {
        /// The stored `inbound_webhooks` row.
        inbox_id: i64,
    },
}

/// A state change of one reward ([`PgRewards::update_reward`]).
#[derive(Debug, Clone, Default)]
pub struct RewardUpdate {
    /// The new state.
    pub state: Option<RewardState>,
    /// The reversal burn's transaction id.
    pub reversal_tx_id: Option<String>,
    /// What the reversal burns.
    pub reversed_amount: Option<Hnv>,
    /// What it cannot burn.
    pub shortfall: Option<Hnv>,
    /// A failure to record (`None` keeps the current one; `Some("")` clears it).
    pub error: Option<String>,
    /// An alert to store with the change.
    pub alert: Option<Alert>,
    /// The outbound webhook event type to send (`reward.confirmed`, …).
    pub webhook: Option<&'static str>,
    /// The audit row of an operator's change.
    pub audit: Option<AuditEvent>,
}

/// What the ledger says was minted and burned, for the `totalSupply` check and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct LedgerTotals {
    /// Rewards whose mint is confirmed.
    pub minted: Hnv,
    /// What confirmed reversals burned.
    pub burned: Hnv,
    /// Rewards waiting to be minted.
    pub pending: Hnv,
}

impl LedgerTotals {
    /// `minted - burned`: what the token's `totalSupply` must be, when only the ledger mints.
    pub fn outstanding(&self) -> Hnv {
        self.minted.saturating_sub(self.burned)
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct HashRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Bytea)]
    body_sha256: Vec<u8>,
}

#[derive(QueryableByName)]
struct EndpointRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Sends `event_type` to every enabled endpoint subscribed to it, in the caller's
/// transaction.
pub(crate) async fn enqueue_subscribed(
    conn: &mut AsyncPgConnection,
    event_type: &str,
    payload: &serde_json::Value,
) -> Result<usize> {
    let endpoints: Vec<EndpointRow> = diesel::sql_query(
        "SELECT id FROM webhook_endpoints WHERE enabled AND $1 = ANY (event_types) ORDER BY id",
    )
    .bind::<Text, _>(event_type)
    .load(conn)
    .await?;
    for endpoint in &endpoints {
        PgWebhookOutbox::enqueue_in(conn, endpoint.id, event_type, payload).await?;
    }
    Ok(endpoints.len())
}

/// The webhook event a reward in `state` announces.
pub(crate) fn state_event(state: RewardState) -> Option<&'static str> {
    match state {
        RewardState::Pending => Some("reward.pending"),
        RewardState::Held => Some("reward.held"),
        RewardState::Confirmed => Some("reward.confirmed"),
        RewardState::Reversed | RewardState::Cancelled => Some("reward.reversed"),
        RewardState::Submitted | RewardState::FailedNeedsReview => None,
    }
}

impl PgRewards {
    /// Records one partner event and what it does to the ledger, in one transaction (see the
    /// module invariants).
    pub async fn ingest(&self, ingest: Ingest<'_>) -> Result<IngestOutcome> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |conn| ingest_in(conn, ingest).await)
            .await
    }

    /// Changes a reward from `from` (a compare-and-set on its state): `None` when it is no
    /// longer in `from`. Its webhook, alert and audit row commit with it.
    pub async fn update_reward(
        &self,
        id: Uuid,
        from: RewardState,
        update: RewardUpdate,
    ) -> Result<Option<RewardRecord>> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |conn| update_in(conn, id, from, update).await)
            .await
    }

    /// Settles the rewards held by `alert`: approved ones go back to `pending` (and are
    /// minted), rejected ones are cancelled; each writes its audit row (`audit` with the
    /// reward as target) and webhook in one transaction. Idempotent: rewards no longer held
    /// are left alone.
    pub async fn settle_held(
        &self,
        alert: Uuid,
        approve: bool,
        audit: AuditEvent,
    ) -> Result<Vec<RewardRecord>> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |conn| {
            let to = if approve {
                RewardState::Pending
            } else {
                RewardState::Cancelled
            };
            let rows: Vec<RewardRow> = diesel::sql_query(format!(
                "UPDATE rewards SET state = $2, version = version + 1, updated_at = now() \
                 WHERE alert_id = $1 AND state = 'held' RETURNING {REWARD_COLUMNS}"
            ))
            .bind::<SqlUuid, _>(alert)
            .bind::<Text, _>(to.as_str())
            .load(conn)
            .await?;
            let settled = records(rows)?;
            for reward in &settled {
                if approve {
                    schedule_in(conn, reward.id, "mint").await?;
                }
                let action = if approve {
                    "reward.approved"
                } else {
                    "reward.rejected"
                };
                let mut event = audit.clone();
                event.action = action.to_owned();
                let event = event.target(format!("reward:{}", reward.id)).details(
                    serde_json::json!({"alert_id": alert, "amount_hnv": reward.amount.to_string(),
                                       "business_key": reward.business_key}),
                );
                PgAuditLog::append_in(conn, event).await?;
                if let Some(event_type) = state_event(reward.state) {
                    enqueue_subscribed(conn, event_type, &reward.webhook_payload(event_type))
                        .await?;
                }
            }
            Ok(settled)
        })
        .await
    }

    /// Held rewards whose alert review is over (`resolved` or `false_positive`) but which
    /// were not settled yet (the api settles at the review; this is the sweep for a step
    /// that failed between the two): `(reward, approved)`.
    pub async fn unsettled_holds(&self) -> Result<Vec<(Uuid, bool)>> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = SqlUuid)]
            alert_id: Uuid,
            #[diesel(sql_type = Text)]
            state: String,
        }
        let mut conn = get(&self.pool).await?;
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT DISTINCT r.alert_id, a.state FROM rewards r \
             JOIN transaction_monitoring a ON a.id = r.alert_id \
             WHERE r.state = 'held' AND a.state IN ('resolved', 'false_positive')",
        )
        .load(&mut conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.alert_id, r.state == "false_positive"))
            .collect())
    }

    /// One reward.
    pub async fn reward(&self, id: Uuid) -> Result<Option<RewardRecord>> {
        let mut conn = get(&self.pool).await?;
        let row: Option<RewardRow> = diesel::sql_query(format!(
            "SELECT {REWARD_COLUMNS} FROM rewards WHERE id = $1"
        ))
        .bind::<SqlUuid, _>(id)
        .get_result(&mut conn)
        .await
        .optional()?;
        row.map(RewardRecord::try_from).transpose()
    }

    /// The reward recorded under `business_key`.
    pub async fn reward_by_key(&self, business_key: &str) -> Result<Option<RewardRecord>> {
        let mut conn = get(&self.pool).await?;
        let row: Option<RewardRow> = diesel::sql_query(format!(
            "SELECT {REWARD_COLUMNS} FROM rewards WHERE business_key = $1"
        ))
        .bind::<Text, _>(business_key)
        .get_result(&mut conn)
        .await
        .optional()?;
        row.map(RewardRecord::try_from).transpose()
    }

    /// A member's rewards, newest first; `before` is the `(created_at, id)` of the last row
    /// of the previous page.
    pub async fn rewards_of(
        &self,
        member: Uuid,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<RewardRecord>> {
        let mut conn = get(&self.pool).await?;
        let (at, id) = before.unzip();
        let rows: Vec<RewardRow> = diesel::sql_query(format!(
            "SELECT {REWARD_COLUMNS} FROM rewards WHERE member_id = $1 \
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .bind::<SqlUuid, _>(member)
        .bind::<Nullable<Timestamptz>, _>(at)
        .bind::<Nullable<SqlUuid>, _>(id)
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?;
        records(rows)
    }

    /// Rewards in `state`, oldest first (operators, sweeps).
    pub async fn rewards_in(&self, state: RewardState, limit: i64) -> Result<Vec<RewardRecord>> {
        self.rewards_where(Some(state), limit).await
    }

    /// Rewards in every state, oldest first, read in one statement: one consistent snapshot
    /// while the worker moves rows between states (reading state by state could see a row
    /// twice, or not at all).
    pub async fn all_rewards(&self, limit: i64) -> Result<Vec<RewardRecord>> {
        self.rewards_where(None, limit).await
    }

    async fn rewards_where(
        &self,
        state: Option<RewardState>,
        limit: i64,
    ) -> Result<Vec<RewardRecord>> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<RewardRow> = diesel::sql_query(format!(
            "SELECT {REWARD_COLUMNS} FROM rewards WHERE ($1::text IS NULL OR state = $1) \
             ORDER BY created_at, id LIMIT $2"
        ))
        .bind::<Nullable<Text>, _>(state.map(RewardState::as_str))
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?;
        records(rows)
    }

    /// What the ledger minted and burned, overall or for one member.
    pub async fn totals(&self, member: Option<Uuid>) -> Result<LedgerTotals> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            minted: String,
            #[diesel(sql_type = Text)]
            burned: String,
            #[diesel(sql_type = Text)]
            pending: String,
        }
        let mut conn = get(&self.pool).await?;
        let row: Row = diesel::sql_query(
            "SELECT \
               COALESCE(SUM(amount) FILTER (WHERE state IN ('confirmed', 'reversed')), 0)::text AS minted, \
               COALESCE(SUM(reversed_amount) FILTER (WHERE state = 'reversed'), 0)::text AS burned, \
               COALESCE(SUM(amount) FILTER (WHERE state IN ('pending', 'held', 'submitted')), 0)::text AS pending \
             FROM rewards WHERE ($1::uuid IS NULL OR member_id = $1)",
        )
        .bind::<Nullable<SqlUuid>, _>(member)
        .get_result(&mut conn)
        .await?;
        Ok(LedgerTotals {
            minted: hnv_of("rewards", &row.minted)?,
            burned: hnv_of("rewards", &row.burned)?,
            pending: hnv_of("rewards", &row.pending)?,
        })
    }

    /// Subscribes `endpoint` to `event_types` (replacing its list).
    pub async fn subscribe(&self, endpoint: Uuid, event_types: &[String]) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        let updated = diesel::sql_query(
            "UPDATE webhook_endpoints SET event_types = $2, updated_at = now() WHERE id = $1",
        )
        .bind::<SqlUuid, _>(endpoint)
        .bind::<Array<Text>, _>(event_types)
        .execute(&mut conn)
        .await?;
        Ok(updated == 1)
    }
}

/// Stores the inbox row; `Err(outcome)` when the message was seen before.
async fn receive_in(
    conn: &mut AsyncPgConnection,
    source: &str,
    entry: InboxEntry<'_>,
) -> Result<std::result::Result<i64, IngestOutcome>> {
    let fingerprint = Fingerprint::of(entry.body);
    let inserted: Option<IdRow> = diesel::sql_query(
        "INSERT INTO inbound_webhooks (source, message_id, body_sha256, body, processed_at) \
         VALUES ($1, $2, $3, $4, now()) ON CONFLICT (source, message_id) DO NOTHING RETURNING id",
    )
    .bind::<Text, _>(source)
    .bind::<Text, _>(entry.message_id)
    .bind::<Bytea, _>(fingerprint.0.as_slice())
    .bind::<Bytea, _>(entry.body)
    .get_result(conn)
    .await
    .optional()?;
    if let Some(row) = inserted {
        return Ok(Ok(row.id));
    }
    let stored: HashRow = diesel::sql_query(
        "SELECT id, body_sha256 FROM inbound_webhooks WHERE source = $1 AND message_id = $2",
    )
    .bind::<Text, _>(source)
    .bind::<Text, _>(entry.message_id)
    .get_result(conn)
    .await?;
    Ok(Err(
        if stored.body_sha256.as_slice() == fingerprint.0.as_slice() {
            IngestOutcome::Duplicate
        } else {
            IngestOutcome::Conflict {
                inbox_id: stored.id,
            }
        },
    ))
}

async fn ingest_in(conn: &mut AsyncPgConnection, ingest: Ingest<'_>) -> Result<IngestOutcome> {
    let source = ingest.event.name.source().as_str();
    if let Some(entry) = ingest.inbox
        && let Err(seen) = receive_in(conn, source, entry).await?
    {
        return Ok(seen);
    }
    let decision_json = serde_json::json!({
        "reward": ingest.decision.reward,
        "amount_hnv": ingest.decision.amount.to_string(),
        "rules_version": ingest.decision.rules_version,
        "reason": ingest.decision.reason,
        "business_key": ingest.decision.business_key.as_ref().map(|k| k.as_string()),
    });
    let event_id: Option<IdRow> = diesel::sql_query(
        "INSERT INTO partner_events (source, event, origin, member_id, payload, decision) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source, origin) DO NOTHING RETURNING id",
    )
    .bind::<Text, _>(source)
    .bind::<Text, _>(ingest.event.name.as_str())
    .bind::<Text, _>(ingest.origin)
    .bind::<SqlUuid, _>(ingest.member_id)
    .bind::<Bytea, _>(ingest.payload)
    .bind::<Jsonb, _>(&decision_json)
    .get_result(conn)
    .await
    .optional()?;
    let Some(IdRow { id: event_id }) = event_id else {
        return Ok(IngestOutcome::Duplicate);
    };
    let mut outcome = (None, None, Vec::new());
    match &ingest.decision.effect {
        Effect::Reward => {
            let (new, existing) = record_reward(conn, &ingest, event_id).await?;
            outcome.0 = new;
            outcome.1 = existing;
        }
        Effect::ReverseBooking { booking_id } => {
            outcome.2 = cancel_booking(conn, source, booking_id, event_id).await?;
        }
        Effect::RecordStake {
            stake_id,
            amount,
            ends_at,
        } => {
            let started_at = ingest.event.occurred_at.unwrap_or_else(Utc::now);
            diesel::sql_query(
                "INSERT INTO stakes (id, source, stake_id, member_id, amount, started_at, ends_at, event_id) \
                 VALUES ($1, $2, $3, $4, $5::numeric, $6, $7, $8) ON CONFLICT (source, stake_id) DO NOTHING",
            )
            .bind::<SqlUuid, _>(Uuid::now_v7())
            .bind::<Text, _>(source)
            .bind::<Text, _>(stake_id)
            .bind::<SqlUuid, _>(ingest.member_id)
            .bind::<Text, _>(amount.base_units().to_string())
            .bind::<Timestamptz, _>(started_at)
            .bind::<Nullable<Timestamptz>, _>(*ends_at)
            .bind::<BigInt, _>(event_id)
            .execute(conn)
            .await?;
        }
        Effect::None => {}
    }
    Ok(IngestOutcome::Accepted {
        event_id,
        reward: outcome.0.map(Box::new),
        already_rewarded: outcome.1.map(Box::new),
        reversals: outcome.2,
    })
}

/// Inserts the reward of a priced event once per business key; `(new, existing)`.
async fn record_reward(
    conn: &mut AsyncPgConnection,
    ingest: &Ingest<'_>,
    event_id: i64,
) -> Result<(Option<RewardRecord>, Option<RewardRecord>)> {
    let decision = ingest.decision;
    let (Some(key), Some(kind)) = (&decision.business_key, decision.kind) else {
        return Ok((None, None));
    };
    if !decision.reward || decision.amount.is_zero() {
        return Ok((None, None));
    }
    // A reward for a booking already cancelled is recorded cancelled: never minted.
    let cancelled = matches!(kind, RewardKind::Booking | RewardKind::Review)
        && exists_cancellation(conn, &key.source, &key.external_id).await?;
    let alert_id = ingest
        .alerts
        .iter()
        .find(|a| a.severity >= haven_fraud::Severity::High)
        .map(|a| a.id);
    let state = if cancelled {
        RewardState::Cancelled
    } else if ingest.hold && alert_id.is_some() {
        RewardState::Held
    } else {
        RewardState::Pending
    };
    let inserted: Option<RewardRow> = diesel::sql_query(format!(
        "INSERT INTO rewards (id, business_key, source, kind, external_id, member_id, amount, \
           rules_version, reason, state, tx_id, event_id, alert_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (business_key) DO NOTHING RETURNING {REWARD_COLUMNS}"
    ))
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<Text, _>(key.as_string())
    .bind::<Text, _>(&key.source)
    .bind::<Text, _>(kind.as_str())
    .bind::<Text, _>(&key.external_id)
    .bind::<SqlUuid, _>(ingest.member_id)
    .bind::<Text, _>(decision.amount.base_units().to_string())
    .bind::<Text, _>(&decision.rules_version)
    .bind::<Text, _>(&decision.reason)
    .bind::<Text, _>(state.as_str())
    .bind::<Text, _>(key.tx_id())
    .bind::<BigInt, _>(event_id)
    .bind::<Nullable<SqlUuid>, _>(alert_id)
    .get_result(conn)
    .await
    .optional()?;
    let Some(row) = inserted else {
        let existing: RewardRow = diesel::sql_query(format!(
            "SELECT {REWARD_COLUMNS} FROM rewards WHERE business_key = $1"
        ))
        .bind::<Text, _>(key.as_string())
        .get_result(conn)
        .await?;
        return Ok((None, Some(RewardRecord::try_from(existing)?)));
    };
    let reward = RewardRecord::try_from(row)?;
    for alert in ingest.alerts {
        PgAlertStore::insert_in(conn, alert).await?;
    }
    if reward.state == RewardState::Pending {
        schedule_in(conn, reward.id, "mint").await?;
    }
    if let Some(event_type) = state_event(reward.state) {
        enqueue_subscribed(conn, event_type, &reward.webhook_payload(event_type)).await?;
    }
    Ok((Some(reward), None))
}

async fn exists_cancellation(
    conn: &mut AsyncPgConnection,
    source: &str,
    booking_id: &str,
) -> Result<bool> {
    let found: Option<IdRow> = diesel::sql_query(
        "SELECT event_id AS id FROM booking_cancellations WHERE source = $1 AND booking_id = $2",
    )
    .bind::<Text, _>(source)
    .bind::<Text, _>(booking_id)
    .get_result(conn)
    .await
    .optional()?;
    Ok(found.is_some())
}

/// Records the cancellation and reverses the booking's rewards: not yet minted ones are
/// cancelled here, minted (or minting) ones get a `reverse` job for the worker.
async fn cancel_booking(
    conn: &mut AsyncPgConnection,
    source: &str,
    booking_id: &str,
    event_id: i64,
) -> Result<Vec<RewardRecord>> {
    diesel::sql_query(
        "INSERT INTO booking_cancellations (source, booking_id, event_id) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(source)
    .bind::<Text, _>(booking_id)
    .bind::<BigInt, _>(event_id)
    .execute(conn)
    .await?;
    let cancelled: Vec<RewardRow> = diesel::sql_query(format!(
        "UPDATE rewards SET state = 'cancelled', version = version + 1, updated_at = now() \
         WHERE source = $1 AND external_id = $2 AND kind IN ('booking', 'review') \
           AND state IN ('pending', 'held') RETURNING {REWARD_COLUMNS}"
    ))
    .bind::<Text, _>(source)
    .bind::<Text, _>(booking_id)
    .load(conn)
    .await?;
    let mut affected = records(cancelled)?;
    for reward in &affected {
        diesel::sql_query(
            "UPDATE reward_jobs SET done_at = now() WHERE reward_id = $1 AND done_at IS NULL",
        )
        .bind::<SqlUuid, _>(reward.id)
        .execute(conn)
        .await?;
        enqueue_subscribed(
            conn,
            "reward.reversed",
            &reward.webhook_payload("reward.reversed"),
        )
        .await?;
    }
    let minted: Vec<RewardRow> = diesel::sql_query(format!(
        "SELECT {REWARD_COLUMNS} FROM rewards WHERE source = $1 AND external_id = $2 \
           AND kind IN ('booking', 'review') \
           AND state IN ('submitted', 'confirmed', 'failed_needs_review') FOR UPDATE"
    ))
    .bind::<Text, _>(source)
    .bind::<Text, _>(booking_id)
    .load(conn)
    .await?;
    for reward in records(minted)? {
        schedule_in(conn, reward.id, "reverse").await?;
        affected.push(reward);
    }
    Ok(affected)
}

/// Makes the reward's `action` job due now (creating it, or reopening a finished one).
pub(crate) async fn schedule_in(
    conn: &mut AsyncPgConnection,
    reward: Uuid,
    action: &str,
) -> Result<()> {
    diesel::sql_query(
        "INSERT INTO reward_jobs (reward_id, action) VALUES ($1, $2) \
         ON CONFLICT (reward_id, action) DO UPDATE SET due_at = now(), done_at = NULL, \
           locked_until = NULL",
    )
    .bind::<SqlUuid, _>(reward)
    .bind::<Text, _>(action)
    .execute(conn)
    .await?;
    Ok(())
}

async fn update_in(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    from: RewardState,
    update: RewardUpdate,
) -> Result<Option<RewardRecord>> {
    let to = update.state.unwrap_or(from);
    let row: Option<RewardRow> = diesel::sql_query(format!(
        "UPDATE rewards SET state = $3, \
           reversal_tx_id = COALESCE($4, reversal_tx_id), \
           reversed_amount = COALESCE($5::numeric, reversed_amount), \
           shortfall = COALESCE($6::numeric, shortfall), \
           error = CASE WHEN $7::text IS NULL THEN error WHEN $7 = '' THEN NULL ELSE $7 END, \
           confirmed_at = CASE WHEN $3 = 'confirmed' AND confirmed_at IS NULL THEN now() ELSE confirmed_at END, \
           version = version + 1, updated_at = now() \
         WHERE id = $1 AND state = $2 RETURNING {REWARD_COLUMNS}"
    ))
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(from.as_str())
    .bind::<Text, _>(to.as_str())
    .bind::<Nullable<Text>, _>(update.reversal_tx_id.as_deref())
    .bind::<Nullable<Text>, _>(update.reversed_amount.map(|a| a.base_units().to_string()))
    .bind::<Nullable<Text>, _>(update.shortfall.map(|a| a.base_units().to_string()))
    .bind::<Nullable<Text>, _>(update.error.as_deref())
    .get_result(conn)
    .await
    .optional()?;
    let Some(row) = row else { return Ok(None) };
    let reward = RewardRecord::try_from(row)?;
    if let Some(alert) = &update.alert {
        PgAlertStore::insert_in(conn, alert).await?;
    }
    if let Some(event_type) = update.webhook {
        enqueue_subscribed(conn, event_type, &reward.webhook_payload(event_type)).await?;
    }
    if let Some(audit) = update.audit {
        PgAuditLog::append_in(conn, audit).await?;
    }
    Ok(Some(reward))
}

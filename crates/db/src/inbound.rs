//! The durable inbox of verified inbound webhooks (`inbound_webhooks`).
//!
//! The unique `(source, message_id)` constraint is the replay store of the inbound endpoint:
//! an event is acknowledged only after its row is committed, so an acknowledged event is
//! never lost and a redelivery is recognised for as long as the row exists.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Integer, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_webhooks::Fingerprint;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::inbound_group::GroupCommit;
use crate::pool::get;
use crate::{Error, PgPool, PgWebhookOutbox, Result};

/// What receiving one verified webhook did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxOutcome {
    /// A new event: stored under this row id.
    Accepted {
        /// The new row's id.
        id: i64,
    },
    /// The same message id with the same body is already stored (a redelivery).
    Duplicate {
        /// The stored row's id.
        id: i64,
    },
    /// The message id is already stored with a different body: nothing was written.
    Conflict {
        /// The stored row's id.
        id: i64,
    },
}

/// Verified inbound webhooks in `inbound_webhooks`, one row per `(source, message_id)`.
///
/// **Invariant:** [`PgInbox::receive`] is an `INSERT … ON CONFLICT (source, message_id) DO
/// NOTHING RETURNING`; Postgres serialises concurrent inserts of one key, so of any number
/// of concurrent deliveries of one message exactly one is [`InboxOutcome::Accepted`], and a
/// stored row is never overwritten.
///
/// **Group commit:** clones of one `PgInbox` share a queue. While one insert is in flight,
/// the webhooks that arrive wait and then go together, up to 128 per statement
/// (`INSERT … SELECT FROM unnest(…)`, one commit); a lone webhook goes at once, alone. Each
/// caller is answered only after the statement carrying its row committed. If a batch
/// statement fails, its webhooks are inserted one by one, so a row Postgres refuses fails
/// only its own caller. Keep one `PgInbox` per process (not one per request) for batches
/// to form.
#[derive(Debug, Clone)]
pub struct PgInbox {
    pool: PgPool,
    group: Arc<GroupCommit>,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Bytea)]
    body_sha256: Vec<u8>,
}

const INSERT: &str = "\
    INSERT INTO inbound_webhooks (source, message_id, body_sha256, body) \
    VALUES ($1, $2, $3, $4) \
    ON CONFLICT (source, message_id) DO NOTHING \
    RETURNING id";

const READ: &str = "\
    SELECT id, body_sha256 FROM inbound_webhooks WHERE source = $1 AND message_id = $2";

impl PgInbox {
    /// The inbox on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            group: Arc::default(),
        }
    }

    /// Stores a verified webhook of `source` under `message_id` unless that id is already
    /// stored; reports whether it was new, a redelivery or a conflicting reuse of the id.
    /// A failure to reach the database is [`Error::Unavailable`] and writes nothing.
    pub async fn receive(
        &self,
        source: &str,
        message_id: &str,
        body: &[u8],
    ) -> Result<InboxOutcome> {
        self.group
            .receive(&self.pool, source, message_id, body)
            .await
    }

    /// Insert statements this inbox (and its clones) ran so far: fewer than the webhooks
    /// received when concurrent deliveries shared statements.
    pub fn statements(&self) -> u64 {
        self.group.statements()
    }

    /// How many rows `source` has under `message_id` (0 or 1), for tests and operators.
    pub async fn count(&self, source: &str, message_id: &str) -> Result<i64> {
        let mut conn = get(&self.pool).await?;
        let row: IdRow = diesel::sql_query(
            "SELECT count(*) AS id FROM inbound_webhooks WHERE source = $1 AND message_id = $2",
        )
        .bind::<Text, _>(source)
        .bind::<Text, _>(message_id)
        .get_result(&mut conn)
        .await?;
        Ok(row.id)
    }
}

/// Where verified inbound events of each source are relayed: outbound webhook endpoints
/// (`webhook_endpoints` ids), by source name.
pub type RelayRoutes = BTreeMap<String, Vec<Uuid>>;

/// What one [`PgInbox::relay_due`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Inbound events marked processed.
    pub events: usize,
    /// Outbound messages queued for them.
    pub messages: usize,
}

/// One unprocessed inbound event.
#[derive(QueryableByName)]
struct DueRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Text)]
    message_id: String,
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
    #[diesel(sql_type = Timestamptz)]
    received_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct WaitingRow {
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = BigInt)]
    waiting: i64,
}

const CLAIM_DUE: &str = "\
    SELECT id, source, message_id, body, received_at FROM inbound_webhooks \
    WHERE processed_at IS NULL AND source = ANY($1) \
    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED";

/// The outbound payload relaying one inbound event: its source, id and reception time, and
/// the body as JSON (`data`) when it is JSON, else base64 (`body_base64`).
fn relay_payload(row: &DueRow) -> Value {
    let mut payload = json!({
        "type": format!("inbound.{}", row.source),
        "source": row.source,
        "message_id": row.message_id,
        "received_at": row.received_at,
    });
    match serde_json::from_slice::<Value>(&row.body) {
        Ok(data) => payload["data"] = data,
        Err(_) => {
            payload["body_base64"] =
                json!(base64::engine::general_purpose::STANDARD.encode(&row.body));
        }
    }
    payload
}

impl PgInbox {
    /// Relays up to `limit` unprocessed events of the routed sources, oldest first: for each
    /// event, one `inbound.<source>` message per endpoint of its route is queued in the
    /// outbound webhook outbox and the event is marked processed, all in one transaction.
    ///
    /// **Invariant:** an event is relayed exactly once. Concurrent callers skip each other's
    /// rows (`FOR UPDATE SKIP LOCKED`), and the queued messages commit with the processed
    /// mark or not at all, so a crash or an error part-way relays nothing and the next call
    /// starts over. Events of sources without a route stay unprocessed (see
    /// [`waiting_by_source`](Self::waiting_by_source)).
    pub async fn relay_due(&self, routes: &RelayRoutes, limit: usize) -> Result<RelayReport> {
        let sources: Vec<&str> = routes
            .iter()
            .filter(|(_, endpoints)| !endpoints.is_empty())
            .map(|(source, _)| source.as_str())
            .collect();
        if sources.is_empty() || limit == 0 {
            return Ok(RelayReport::default());
        }
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |c| {
            let due: Vec<DueRow> = diesel::sql_query(CLAIM_DUE)
                .bind::<Array<Text>, _>(&sources)
                .bind::<Integer, _>(i32::try_from(limit).unwrap_or(i32::MAX))
                .load(c)
                .await?;
            let mut report = RelayReport::default();
            let mut ids = Vec::with_capacity(due.len());
            for row in &due {
                let payload = relay_payload(row);
                let event_type = format!("inbound.{}", row.source);
                for endpoint in routes.get(&row.source).into_iter().flatten() {
                    PgWebhookOutbox::enqueue_in(c, *endpoint, &event_type, &payload).await?;
                    report.messages += 1;
                }
                ids.push(row.id);
            }
            diesel::sql_query(
                "UPDATE inbound_webhooks SET processed_at = now() WHERE id = ANY($1)",
            )
            .bind::<Array<BigInt>, _>(&ids)
            .execute(c)
            .await?;
            report.events = ids.len();
            Ok(report)
        })
        .await
    }

    /// Unprocessed events per source, for operators and the relay's start-up log.
    pub async fn waiting_by_source(&self) -> Result<BTreeMap<String, i64>> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<WaitingRow> = diesel::sql_query(
            "SELECT source, count(*) AS waiting FROM inbound_webhooks \
             WHERE processed_at IS NULL GROUP BY source",
        )
        .load(&mut conn)
        .await?;
        Ok(rows.into_iter().map(|r| (r.source, r.waiting)).collect())
    }
}

/// One webhook in its own statement (what a batch of one, and a failed batch's rows, use).
pub(crate) async fn insert_one(
    conn: &mut AsyncPgConnection,
    source: &str,
    message_id: &str,
    fingerprint: &Fingerprint,
    body: &[u8],
) -> Result<InboxOutcome> {
    let inserted: Option<IdRow> = diesel::sql_query(INSERT)
        .bind::<Text, _>(source)
        .bind::<Text, _>(message_id)
        .bind::<Bytea, _>(fingerprint.0.as_slice())
        .bind::<Bytea, _>(body)
        .get_result(conn)
        .await
        .optional()
        .map_err(unavailable)?;
    if let Some(row) = inserted {
        return Ok(InboxOutcome::Accepted { id: row.id });
    }
    // Rows are never deleted by the api, so the row we collided with is still there.
    let stored: StoredRow = diesel::sql_query(READ)
        .bind::<Text, _>(source)
        .bind::<Text, _>(message_id)
        .get_result(conn)
        .await
        .map_err(unavailable)?;
    Ok(
        if stored.body_sha256.as_slice() == fingerprint.0.as_slice() {
            InboxOutcome::Duplicate { id: stored.id }
        } else {
            InboxOutcome::Conflict { id: stored.id }
        },
    )
}

/// A statement that fails on a live connection means the database went away or refused
/// the write: the sender retries, and since nothing was committed nothing is lost.
fn unavailable(e: diesel::result::Error) -> Error {
    Error::Unavailable(Box::new(e))
}

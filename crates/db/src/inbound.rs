//! The durable inbox of verified inbound webhooks (`inbound_webhooks`).
//!
//! The unique `(source, message_id)` constraint is the replay store of the inbound endpoint:
//! an event is acknowledged only after its row is committed, so an acknowledged event is
//! never lost and a redelivery is recognised for as long as the row exists.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Text};
use diesel_async::RunQueryDsl;
use haven_webhooks::Fingerprint;

use crate::pool::get;
use crate::{Error, PgPool, Result};

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
/// **Invariant:** [`PgInbox::receive`] is one `INSERT … ON CONFLICT (source, message_id) DO
/// NOTHING RETURNING id`; Postgres serialises concurrent inserts of one key, so of any number
/// of concurrent deliveries of one message exactly one is [`InboxOutcome::Accepted`], and a
/// stored row is never overwritten.
#[derive(Debug, Clone)]
pub struct PgInbox {
    pool: PgPool,
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
        Self { pool }
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
        let fingerprint = Fingerprint::of(body);
        let mut conn = get(&self.pool).await?;
        let inserted: Option<IdRow> = diesel::sql_query(INSERT)
            .bind::<Text, _>(source)
            .bind::<Text, _>(message_id)
            .bind::<Bytea, _>(fingerprint.0.as_slice())
            .bind::<Bytea, _>(body)
            .get_result(&mut conn)
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
            .get_result(&mut conn)
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

/// A statement that fails on a live connection means the database went away or refused
/// the write: the sender retries, and since nothing was committed nothing is lost.
fn unavailable(e: diesel::result::Error) -> Error {
    Error::Unavailable(Box::new(e))
}

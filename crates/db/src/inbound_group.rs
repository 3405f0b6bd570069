//! Group commit for the inbox: while one insert is in flight, the webhooks that arrive queue
//! and go together in the next statement — one `INSERT … SELECT FROM unnest(…)` and one
//! commit for the whole batch, each caller answered from its own row.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use haven_webhooks::Fingerprint;
use tokio::sync::oneshot;

use crate::inbound::{InboxOutcome, insert_one};
use crate::pool::get;
use crate::{Error, PgPool, Result};

/// The most webhooks one statement carries.
const MAX_BATCH: usize = 128;

/// One queued webhook and where its outcome goes.
struct Pending {
    source: String,
    message_id: String,
    fingerprint: Fingerprint,
    body: Vec<u8>,
    reply: oneshot::Sender<Result<InboxOutcome>>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    /// Whether a flusher task is draining the queue.
    flushing: bool,
}

/// The queue shared by every clone of one `PgInbox`.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    /// Insert statements run (a batch is one).
    statements: AtomicU64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

#[derive(QueryableByName)]
struct KeyedRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Text)]
    message_id: String,
    #[diesel(sql_type = Bytea)]
    body_sha256: Vec<u8>,
}

const INSERT_MANY: &str = "\
    INSERT INTO inbound_webhooks (source, message_id, body_sha256, body) \
    SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[]) \
    ON CONFLICT (source, message_id) DO NOTHING \
    RETURNING id, source, message_id, body_sha256";

const READ_MANY: &str = "\
    SELECT w.id, w.source, w.message_id, w.body_sha256 FROM inbound_webhooks w \
    JOIN unnest($1::text[], $2::text[]) AS k(source, message_id) \
      ON w.source = k.source AND w.message_id = k.message_id";

impl GroupCommit {
    /// Insert statements run so far (a batch counts once).
    pub(crate) fn statements(&self) -> u64 {
        AtomicU64::load(&self.statements, Ordering::Relaxed)
    }

    /// Queues one webhook and waits for its outcome. The statement runs on a task of its
    /// own, so a caller that goes away (a client hanging up) never strands the others.
    pub(crate) async fn receive(
        self: &Arc<Self>,
        pool: &PgPool,
        source: &str,
        message_id: &str,
        body: &[u8],
    ) -> Result<InboxOutcome> {
        let (reply, outcome) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.pending.push(Pending {
                source: source.to_owned(),
                message_id: message_id.to_owned(),
                fingerprint: Fingerprint::of(body),
                body: body.to_vec(),
                reply,
            });
            !std::mem::replace(&mut queue.flushing, true)
        };
        if start {
            let (this, pool) = (self.clone(), pool.clone());
            tokio::spawn(async move { this.flush(&pool).await });
        }
        outcome
            .await
            .map_err(|_| Error::Unavailable("the inbox's writer stopped".into()))?
    }

    /// Drains the queue, a batch per statement, until it is empty.
    async fn flush(&self, pool: &PgPool) {
        loop {
            let batch: Vec<Pending> = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.pending.is_empty() {
                    queue.flushing = false;
                    return;
                }
                let n = queue.pending.len().min(MAX_BATCH);
                queue.pending.drain(..n).collect()
            };
            let mut conn = match get(pool).await {
                Ok(conn) => conn,
                Err(error) => {
                    // No connection for anyone: every caller hears it now, none waits for
                    // a connection of its own.
                    for p in batch {
                        let _ = p
                            .reply
                            .send(Err(Error::Unavailable(error.to_string().into())));
                    }
                    continue;
                }
            };
            let together = if batch.len() > 1 {
                self.statements.fetch_add(1, Ordering::Relaxed);
                insert_many(&mut conn, &batch)
                    .await
                    .inspect_err(|error| {
                        // A row the statement refused fails the whole statement: each webhook
                        // is tried on its own, so only that one gets the error.
                        tracing::warn!(%error, rows = batch.len(), "inbox batch insert failed; inserting one by one");
                    })
                    .ok()
            } else {
                None
            };
            match together {
                Some(outcomes) => {
                    for (p, outcome) in batch.into_iter().zip(outcomes) {
                        let _ = p.reply.send(Ok(outcome));
                    }
                }
                None => {
                    for p in batch {
                        self.statements.fetch_add(1, Ordering::Relaxed);
                        let outcome = insert_one(
                            &mut conn,
                            &p.source,
                            &p.message_id,
                            &p.fingerprint,
                            &p.body,
                        )
                        .await;
                        let _ = p.reply.send(outcome);
                    }
                }
            }
        }
    }
}

/// One statement for the batch: the outcome of each webhook, in order.
async fn insert_many(conn: &mut AsyncPgConnection, batch: &[Pending]) -> Result<Vec<InboxOutcome>> {
    let sources: Vec<&str> = batch.iter().map(|p| p.source.as_str()).collect();
    let ids: Vec<&str> = batch.iter().map(|p| p.message_id.as_str()).collect();
    let fingerprints: Vec<&[u8]> = batch.iter().map(|p| p.fingerprint.0.as_slice()).collect();
    let bodies: Vec<&[u8]> = batch.iter().map(|p| p.body.as_slice()).collect();
    let inserted: Vec<KeyedRow> = diesel::sql_query(INSERT_MANY)
        .bind::<Array<Text>, _>(&sources)
        .bind::<Array<Text>, _>(&ids)
        .bind::<Array<Bytea>, _>(&fingerprints)
        .bind::<Array<Bytea>, _>(&bodies)
        .load(conn)
        .await
        .map_err(|e| Error::Unavailable(Box::new(e)))?;
    let mut fresh: HashMap<(String, String), (i64, Vec<u8>)> = inserted
        .into_iter()
        .map(|r| ((r.source, r.message_id), (r.id, r.body_sha256)))
        .collect();
    // The keys that were already stored (rows are never deleted by the api).
    let mut stored: HashMap<(String, String), (i64, Vec<u8>)> = HashMap::new();
    if fresh.len() < batch.len() {
        let rows: Vec<KeyedRow> = diesel::sql_query(READ_MANY)
            .bind::<Array<Text>, _>(&sources)
            .bind::<Array<Text>, _>(&ids)
            .load(conn)
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))?;
        for r in rows {
            stored.insert((r.source, r.message_id), (r.id, r.body_sha256));
        }
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for p in batch {
        let key = (p.source.clone(), p.message_id.clone());
        let same = |sha: &[u8]| sha == p.fingerprint.0.as_slice();
        let outcome = match fresh.get(&key) {
            // The one of the batch whose body was written is accepted (the first of its key,
            // as Postgres inserts in order); the others with its key are then duplicates or
            // conflicts.
            Some((id, sha)) if same(sha) => {
                let id = *id;
                if let Some(row) = fresh.remove(&key) {
                    stored.insert(key, row);
                }
                InboxOutcome::Accepted { id }
            }
            Some((id, _)) => InboxOutcome::Conflict { id: *id },
            None => match stored.get(&key) {
                Some((id, sha)) if same(sha) => InboxOutcome::Duplicate { id: *id },
                Some((id, _)) => InboxOutcome::Conflict { id: *id },
                None => {
                    return Err(Error::Unavailable(
                        format!(
                            "inbox row {}/{} neither inserted nor found",
                            p.source, p.message_id
                        )
                        .into(),
                    ));
                }
            },
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

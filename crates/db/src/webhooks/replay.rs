//! `PgReplayStore`: replay records in `webhook_replay`.

use super::*;

/// Replay records in the `webhook_replay` table, unique per (source, id).
///
/// **Invariant:** a record is one `INSERT … ON CONFLICT (source, id) DO UPDATE … WHERE
/// expires_at <= now()`, which reports a row exactly when it recorded, so of concurrent
/// records of one id exactly one is [`ReplayOutcome::First`]; the others compare their body
/// hash with the winner's. A conflicting body never overwrites the record.
#[derive(Debug, Clone)]
pub struct PgReplayStore {
    pool: PgPool,
}

#[derive(QueryableByName)]
struct HashRow {
    #[diesel(sql_type = Bytea)]
    body_hash: Vec<u8>,
}

const RECORD_REPLAY: &str = "\
    INSERT INTO webhook_replay AS r (source, id, body_hash, expires_at) \
    VALUES ($1, $2, $3, now() + make_interval(secs => $4)) \
    ON CONFLICT (source, id) DO UPDATE SET \
        body_hash = EXCLUDED.body_hash, created_at = now(), expires_at = EXCLUDED.expires_at \
    WHERE r.expires_at <= now()";

const READ_REPLAY: &str = "\
    SELECT body_hash FROM webhook_replay \
    WHERE source = $1 AND id = $2 AND expires_at > now()";

impl PgReplayStore {
    /// The store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Deletes expired records. Returns how many rows went.
    pub async fn purge_expired(&self) -> Result<usize> {
        let mut conn = get(&self.pool).await?;
        Ok(
            diesel::sql_query("DELETE FROM webhook_replay WHERE expires_at <= now()")
                .execute(&mut conn)
                .await?,
        )
    }
}

#[async_trait]
impl ReplayStore for PgReplayStore {
    async fn record(
        &self,
        source: &str,
        id: &str,
        fingerprint: &Fingerprint,
        ttl: Duration,
    ) -> Result<ReplayOutcome, StoreError> {
        let mut conn = get(&self.pool).await.map_err(unavailable)?;
        for _ in 0..RACE_RETRIES {
            let inserted = diesel::sql_query(RECORD_REPLAY)
                .bind::<Text, _>(source)
                .bind::<Text, _>(id)
                .bind::<Bytea, _>(fingerprint.0.as_slice())
                .bind::<Double, _>(secs(ttl))
                .execute(&mut conn)
                .await
                .map_err(unavailable)?;
            if inserted == 1 {
                return Ok(ReplayOutcome::First);
            }
            let row: Option<HashRow> = diesel::sql_query(READ_REPLAY)
                .bind::<Text, _>(source)
                .bind::<Text, _>(id)
                .get_result(&mut conn)
                .await
                .optional()
                .map_err(unavailable)?;
            if let Some(row) = row {
                return Ok(if row.body_hash.as_slice() == fingerprint.0.as_slice() {
                    ReplayOutcome::Duplicate
                } else {
                    ReplayOutcome::Conflict
                });
            }
        }
        Err(unavailable(Contention {
            table: "webhook_replay",
        }))
    }
}

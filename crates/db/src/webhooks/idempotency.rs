//! `PgIdempotencyStore`: idempotency keys in `idempotency_keys`.

use super::*;

/// Idempotency keys in the `idempotency_keys` table, one row per (scope, key).
///
/// **Invariant:** a claim is one `INSERT … ON CONFLICT (scope, key) DO UPDATE … WHERE
/// expires_at <= now()`, which reports a row exactly when it took the key. Postgres
/// serialises concurrent claims of one key on the row, so of any number of concurrent claims
/// for a free (absent or expired) key exactly one inserts or takes the row over; the others
/// read the winner's row. `complete` and `release` change the row only while it is in
/// flight, unexpired and held by the caller's token. The clock is the database server's
/// (`now()`).
#[derive(Debug, Clone)]
pub struct PgIdempotencyStore {
    pool: PgPool,
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Bytea)]
    fingerprint: Vec<u8>,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<SmallInt>)]
    status: Option<i16>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    header_names: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Array<Bytea>>)]
    header_values: Option<Vec<Vec<u8>>>,
    #[diesel(sql_type = Nullable<Bytea>)]
    body: Option<Vec<u8>>,
}

impl KeyRow {
    fn into_claim(self, fingerprint: &Fingerprint) -> Result<Claim, StoreError> {
        let corrupt = || StoreError::Corrupt {
            what: "idempotency_keys row",
        };
        if self.fingerprint.as_slice() != fingerprint.0.as_slice() {
            return Ok(Claim::Mismatch);
        }
        match self.state.as_str() {
            "in_flight" => Ok(Claim::InFlight),
            "completed" => {
                let (Some(status), Some(names), Some(values), Some(body)) = (
                    self.status,
                    self.header_names,
                    self.header_values,
                    self.body,
                ) else {
                    return Err(corrupt());
                };
                if names.len() != values.len() {
                    return Err(corrupt());
                }
                Ok(Claim::Completed(StoredResponse {
                    status: u16::try_from(status).map_err(|_| corrupt())?,
                    headers: names.into_iter().zip(values).collect(),
                    body,
                }))
            }
            _ => Err(corrupt()),
        }
    }
}

const CLAIM_KEY: &str = "\
    INSERT INTO idempotency_keys AS k \
        (scope, key, fingerprint, state, lock_token, locked_until, expires_at) \
    VALUES ($1, $2, $3, 'in_flight', $4, now() + make_interval(secs => $5), \
            now() + make_interval(secs => $5)) \
    ON CONFLICT (scope, key) DO UPDATE SET \
        fingerprint = EXCLUDED.fingerprint, state = 'in_flight', \
        lock_token = EXCLUDED.lock_token, locked_until = EXCLUDED.locked_until, \
        status = NULL, header_names = NULL, header_values = NULL, body = NULL, \
        created_at = now(), expires_at = EXCLUDED.expires_at \
    WHERE k.expires_at <= now()";

const READ_KEY: &str = "\
    SELECT fingerprint, state, status, header_names, header_values, body \
    FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at > now()";

const COMPLETE_KEY: &str = "\
    UPDATE idempotency_keys SET state = 'completed', lock_token = NULL, locked_until = NULL, \
        status = $4, header_names = $5, header_values = $6, body = $7, \
        expires_at = now() + make_interval(secs => $8) \
    WHERE scope = $1 AND key = $2 AND state = 'in_flight' AND lock_token = $3 \
      AND expires_at > now()";

const RELEASE_KEY: &str = "\
    DELETE FROM idempotency_keys \
    WHERE scope = $1 AND key = $2 AND state = 'in_flight' AND lock_token = $3 \
      AND expires_at > now()";

impl PgIdempotencyStore {
    /// The store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Deletes expired keys (they are ignored anyway; this only reclaims space). Returns how
    /// many rows went.
    pub async fn purge_expired(&self) -> Result<usize> {
        let mut conn = get(&self.pool).await?;
        Ok(
            diesel::sql_query("DELETE FROM idempotency_keys WHERE expires_at <= now()")
                .execute(&mut conn)
                .await?,
        )
    }

    async fn conn(
        &self,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>, StoreError>
    {
        get(&self.pool).await.map_err(unavailable)
    }
}

#[async_trait]
impl IdempotencyStore for PgIdempotencyStore {
    async fn claim(
        &self,
        key: &ScopedKey,
        fingerprint: &Fingerprint,
        token: &LockToken,
        lock_ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let mut conn = self.conn().await?;
        let scope = scope_text(key);
        for _ in 0..RACE_RETRIES {
            // One row inserted or taken over: ours. None: a live row is someone else's.
            let acquired = diesel::sql_query(CLAIM_KEY)
                .bind::<Text, _>(&scope)
                .bind::<Text, _>(key.key.as_str())
                .bind::<Bytea, _>(fingerprint.0.as_slice())
                .bind::<Text, _>(token.as_str())
                .bind::<Double, _>(secs(lock_ttl))
                .execute(&mut conn)
                .await
                .map_err(unavailable)?;
            if acquired == 1 {
                return Ok(Claim::Acquired);
            }
            // Someone else's live row blocked the insert: read it (a new statement sees it).
            let row: Option<KeyRow> = diesel::sql_query(READ_KEY)
                .bind::<Text, _>(&scope)
                .bind::<Text, _>(key.key.as_str())
                .get_result(&mut conn)
                .await
                .optional()
                .map_err(unavailable)?;
            if let Some(row) = row {
                return row.into_claim(fingerprint);
            }
        }
        Err(unavailable(Contention {
            table: "idempotency_keys",
        }))
    }

    async fn complete(
        &self,
        key: &ScopedKey,
        token: &LockToken,
        response: &StoredResponse,
        retention: Duration,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let names: Vec<&str> = response.headers.iter().map(|(n, _)| n.as_str()).collect();
        let values: Vec<&[u8]> = response.headers.iter().map(|(_, v)| v.as_slice()).collect();
        let status = i16::try_from(response.status).map_err(|_| StoreError::Corrupt {
            what: "idempotent response status",
        })?;
        let updated = diesel::sql_query(COMPLETE_KEY)
            .bind::<Text, _>(scope_text(key))
            .bind::<Text, _>(key.key.as_str())
            .bind::<Text, _>(token.as_str())
            .bind::<SmallInt, _>(status)
            .bind::<Array<Text>, _>(names)
            .bind::<Array<Bytea>, _>(values)
            .bind::<Bytea, _>(response.body.as_slice())
            .bind::<Double, _>(secs(retention))
            .execute(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(updated == 1)
    }

    async fn release(&self, key: &ScopedKey, token: &LockToken) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let deleted = diesel::sql_query(RELEASE_KEY)
            .bind::<Text, _>(scope_text(key))
            .bind::<Text, _>(key.key.as_str())
            .bind::<Text, _>(token.as_str())
            .execute(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(deleted == 1)
    }
}

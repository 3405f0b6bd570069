//! The Postgres [`NonceStore`]: one locked row per account, one row per remembered nonce.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::sql_types::{
    BigInt, Bool, Bytea, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_nonce::{
    Error, Lease, LeaseId, LeaseInfo, NonceKey, NonceStatus, NonceStore, ResetOutcome, Result,
    STATUS_LIST_LIMIT, SyncOutcome,
};

use crate::PgPool;

const BACKEND: &str = "postgres";

/// A [`NonceStore`] on the `nonce_accounts` / `nonce_slots` tables.
///
/// Every operation is one atomic transition under the account row's lock: `reserve` and
/// `release` are single calls of the SQL functions `nonce_reserve` / `nonce_release` (one round
/// trip), `commit` a single `UPDATE` on the nonce's row, `sync` and `reset` one transaction.
/// The clock is the database server's (`now()`). The `*_in` functions run the same steps on a
/// connection the caller holds inside its own transaction, so that a nonce and the
/// transaction row that uses it commit together.
#[derive(Debug, Clone)]
pub struct PgNonceStore {
    pool: PgPool,
}

#[derive(QueryableByName)]
struct AccountRow {
    #[diesel(sql_type = BigInt)]
    next_nonce: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    chain_floor: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_sync: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct ReservedRow {
    #[diesel(sql_type = BigInt)]
    nonce: i64,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Bool)]
    chain_synced: bool,
}

#[derive(QueryableByName)]
struct OutcomeRow {
    #[diesel(sql_type = Text)]
    outcome: String,
}

#[derive(QueryableByName)]
struct NonceRow {
    #[diesel(sql_type = BigInt)]
    nonce: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct LeaseRow {
    #[diesel(sql_type = BigInt)]
    nonce: i64,
    #[diesel(sql_type = SqlUuid)]
    lease_id: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    leased_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Bool)]
    expired: bool,
}

fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::StoreUnavailable {
        backend: BACKEND,
        source: Box::new(source),
    }
}

fn to_i64(key: &NonceKey, nonce: u64) -> Result<i64> {
    i64::try_from(nonce).map_err(|_| Error::NonceOutOfRange {
        key: *key,
        nonce,
        max: i64::MAX as u64,
    })
}

fn to_u64(key: &NonceKey, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::CorruptState {
        backend: BACKEND,
        key: *key,
        detail: "negative nonce",
    })
}

fn chain(key: &NonceKey) -> Result<i64> {
    i64::try_from(key.chain_id()).map_err(|_| Error::NonceOutOfRange {
        key: *key,
        nonce: key.chain_id(),
        max: i64::MAX as u64,
    })
}

/// Creates the account row if needed and locks it for the rest of the transaction.
async fn lock_account(conn: &mut AsyncPgConnection, key: &NonceKey) -> Result<AccountRow> {
    diesel::sql_query(
        "INSERT INTO nonce_accounts (chain_id, address) VALUES ($1, $2) \
         ON CONFLICT (chain_id, address) DO UPDATE SET next_nonce = nonce_accounts.next_nonce \
         RETURNING next_nonce, chain_floor, last_sync, now() AS now",
    )
    .bind::<BigInt, _>(chain(key)?)
    .bind::<Bytea, _>(key.address().to_vec())
    .get_result(conn)
    .await
    .map_err(unavailable)
}

impl PgNonceStore {
    /// A store on `pool` (migrations applied).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// [`NonceStore::reserve`] on the caller's connection (inside its transaction, if any).
    pub async fn reserve_in(
        conn: &mut AsyncPgConnection,
        key: &NonceKey,
        lease_ttl: Duration,
    ) -> Result<Lease> {
        let lease_id = LeaseId::new();
        let row: ReservedRow = diesel::sql_query(
            "SELECT r_nonce AS nonce, r_expires_at AS expires_at, r_chain_synced AS chain_synced \
             FROM nonce_reserve($1, $2, $3, $4)",
        )
        .bind::<BigInt, _>(chain(key)?)
        .bind::<Bytea, _>(key.address().to_vec())
        .bind::<SqlUuid, _>(lease_id.as_uuid())
        .bind::<Double, _>(lease_ttl.as_secs_f64())
        .get_result(conn)
        .await
        .map_err(unavailable)?;
        Ok(Lease {
            key: *key,
            nonce: to_u64(key, row.nonce)?,
            lease_id,
            // nonce_reserve sets expires_at = now() + ttl.
            leased_at: row.expires_at
                - chrono::TimeDelta::from_std(lease_ttl).unwrap_or(chrono::TimeDelta::zero()),
            expires_at: row.expires_at,
            chain_synced: row.chain_synced,
        })
    }

    /// [`NonceStore::commit`] on the caller's connection, inside its open transaction.
    pub async fn commit_in(conn: &mut AsyncPgConnection, lease: &Lease) -> Result<()> {
        let key = &lease.key;
        // The slot's row lock orders this against a reserve that reclaims the same lease.
        let updated = diesel::sql_query(
            "UPDATE nonce_slots SET state = 'committed', expires_at = NULL \
             WHERE chain_id = $1 AND address = $2 AND nonce = $3 AND lease_id = $4 AND state <> 'free'",
        )
        .bind::<BigInt, _>(chain(key)?)
        .bind::<Bytea, _>(key.address().to_vec())
        .bind::<BigInt, _>(to_i64(key, lease.nonce)?)
        .bind::<SqlUuid, _>(lease.lease_id.as_uuid())
        .execute(conn)
        .await
        .map_err(unavailable)?;
        if updated == 1 {
            Ok(())
        } else {
            Err(Error::LeaseLost {
                key: *key,
                nonce: lease.nonce,
                lease_id: lease.lease_id,
            })
        }
    }

    /// [`NonceStore::release`] on the caller's connection (inside its transaction, if any).
    pub async fn release_in(conn: &mut AsyncPgConnection, lease: &Lease) -> Result<()> {
        let key = &lease.key;
        let outcome: OutcomeRow =
            diesel::sql_query("SELECT nonce_release($1, $2, $3, $4) AS outcome")
                .bind::<BigInt, _>(chain(key)?)
                .bind::<Bytea, _>(key.address().to_vec())
                .bind::<BigInt, _>(to_i64(key, lease.nonce)?)
                .bind::<SqlUuid, _>(lease.lease_id.as_uuid())
                .get_result(conn)
                .await
                .map_err(unavailable)?;
        match outcome.outcome.as_str() {
            "committed" => Err(Error::AlreadyCommitted {
                key: *key,
                nonce: lease.nonce,
            }),
            "released" | "not_held" => Ok(()),
            _ => Err(Error::CorruptState {
                backend: BACKEND,
                key: *key,
                detail: "unknown release outcome",
            }),
        }
    }

    /// [`NonceStore::sync`] on the caller's connection, inside its open transaction.
    pub async fn sync_in(
        conn: &mut AsyncPgConnection,
        key: &NonceKey,
        chain_pending: u64,
    ) -> Result<SyncOutcome> {
        let account = lock_account(conn, key).await?;
        let (chain_id, address) = (chain(key)?, key.address().to_vec());
        let pending = to_i64(key, chain_pending)?;
        let next = account.next_nonce.max(pending);
        let floor = account.chain_floor.map_or(pending, |f| f.max(pending));
        diesel::sql_query(
            "UPDATE nonce_accounts SET next_nonce = $3, chain_floor = $4, last_sync = now() \
             WHERE chain_id = $1 AND address = $2",
        )
        .bind::<BigInt, _>(chain_id)
        .bind::<Bytea, _>(&address)
        .bind::<BigInt, _>(next)
        .bind::<BigInt, _>(floor)
        .execute(conn)
        .await
        .map_err(unavailable)?;
        // Free and committed slots below the chain's pending nonce are settled; the free
        // ones are counted (they were given back but the chain moved past them).
        let dropped_free: CountRow = diesel::sql_query(
            "WITH dropped AS (DELETE FROM nonce_slots WHERE chain_id = $1 AND address = $2 \
             AND state IN ('free', 'committed') AND nonce < $3 RETURNING state) \
             SELECT count(*) FILTER (WHERE state = 'free') AS n FROM dropped",
        )
        .bind::<BigInt, _>(chain_id)
        .bind::<Bytea, _>(&address)
        .bind::<BigInt, _>(pending)
        .get_result(conn)
        .await
        .map_err(unavailable)?;
        let dropped_free = usize::try_from(dropped_free.n).unwrap_or(usize::MAX);
        Ok(SyncOutcome {
            previous_next: to_u64(key, account.next_nonce)?,
            next: to_u64(key, next)?,
            dropped_free,
        })
    }

    /// [`NonceStore::reset`] on the caller's connection, inside its open transaction.
    pub async fn reset_in(
        conn: &mut AsyncPgConnection,
        key: &NonceKey,
        chain_pending: u64,
        force: bool,
    ) -> Result<ResetOutcome> {
        let account = lock_account(conn, key).await?;
        let (chain_id, address) = (chain(key)?, key.address().to_vec());
        let pending = to_i64(key, chain_pending)?;
        let outstanding: CountRow = diesel::sql_query(
            "SELECT count(*) AS n FROM nonce_slots WHERE chain_id = $1 AND address = $2 \
             AND state = 'leased' AND expires_at > now()",
        )
        .bind::<BigInt, _>(chain_id)
        .bind::<Bytea, _>(&address)
        .get_result(conn)
        .await
        .map_err(unavailable)?;
        if outstanding.n > 0 && !force {
            return Err(Error::LeasesOutstanding {
                key: *key,
                count: usize::try_from(outstanding.n).unwrap_or(usize::MAX),
            });
        }
        let dropped: CountRow = diesel::sql_query(
            "WITH gone AS (DELETE FROM nonce_slots WHERE chain_id = $1 AND address = $2 RETURNING state) \
             SELECT count(*) FILTER (WHERE state = 'leased') AS n FROM gone",
        )
        .bind::<BigInt, _>(chain_id)
        .bind::<Bytea, _>(&address)
        .get_result(conn)
        .await
        .map_err(unavailable)?;
        diesel::sql_query(
            "UPDATE nonce_accounts SET next_nonce = $3, chain_floor = $3, last_sync = now() \
             WHERE chain_id = $1 AND address = $2",
        )
        .bind::<BigInt, _>(chain_id)
        .bind::<Bytea, _>(&address)
        .bind::<BigInt, _>(pending)
        .execute(conn)
        .await
        .map_err(unavailable)?;
        Ok(ResetOutcome {
            previous_next: to_u64(key, account.next_nonce)?,
            next: chain_pending,
            dropped_leases: usize::try_from(dropped.n).unwrap_or(usize::MAX),
        })
    }

    /// [`NonceStore::status`] on any connection.
    pub async fn status_in(conn: &mut AsyncPgConnection, key: &NonceKey) -> Result<NonceStatus> {
        let (chain_id, address) = (chain(key)?, key.address().to_vec());
        let account: Option<AccountRow> = diesel::sql_query(
            "SELECT next_nonce, chain_floor, last_sync, now() AS now FROM nonce_accounts \
             WHERE chain_id = $1 AND address = $2",
        )
        .bind::<BigInt, _>(chain_id)
        .bind::<Bytea, _>(&address)
        .get_result(conn)
        .await
        .optional()
        .map_err(unavailable)?;
        let now: DateTime<Utc> = match &account {
            Some(a) => a.now,
            None => {
                #[derive(QueryableByName)]
                struct Now {
                    #[diesel(sql_type = Timestamptz)]
                    now: DateTime<Utc>,
                }
                diesel::sql_query("SELECT now() AS now")
                    .get_result::<Now>(conn)
                    .await
                    .map_err(unavailable)?
                    .now
            }
        };
        let list = |state: &'static str| {
            diesel::sql_query(format!(
                "SELECT nonce FROM nonce_slots WHERE chain_id = $1 AND address = $2 AND state = '{state}' \
                 ORDER BY nonce LIMIT {STATUS_LIST_LIMIT}"
            ))
            .bind::<BigInt, _>(chain_id)
            .bind::<Bytea, _>(address.clone())
        };
        let count = |state: &'static str| {
            diesel::sql_query(format!(
                "SELECT count(*) AS n FROM nonce_slots WHERE chain_id = $1 AND address = $2 AND state = '{state}'"
            ))
            .bind::<BigInt, _>(chain_id)
            .bind::<Bytea, _>(address.clone())
        };
        let free: Vec<NonceRow> = list("free").load(conn).await.map_err(unavailable)?;
        let free_count: CountRow = count("free").get_result(conn).await.map_err(unavailable)?;
        let committed: Vec<NonceRow> = list("committed").load(conn).await.map_err(unavailable)?;
        let committed_count: CountRow = count("committed")
            .get_result(conn)
            .await
            .map_err(unavailable)?;
        let leases: Vec<LeaseRow> = diesel::sql_query(
            "SELECT nonce, lease_id, leased_at, expires_at, expires_at <= now() AS expired FROM nonce_slots \
             WHERE chain_id = $1 AND address = $2 AND state = 'leased' ORDER BY nonce",
        )
        .bind::<BigInt, _>(chain_id)
        .bind::<Bytea, _>(&address)
        .load(conn)
        .await
        .map_err(unavailable)?;
        let nonces = |rows: Vec<NonceRow>| {
            rows.into_iter()
                .map(|r| to_u64(key, r.nonce))
                .collect::<Result<Vec<_>>>()
        };
        Ok(NonceStatus {
            key: *key,
            next: account
                .as_ref()
                .map_or(Ok(0), |a| to_u64(key, a.next_nonce))?,
            chain_floor: account
                .as_ref()
                .and_then(|a| a.chain_floor)
                .map(|f| to_u64(key, f))
                .transpose()?,
            last_sync: account.as_ref().and_then(|a| a.last_sync),
            free: nonces(free)?,
            free_count: to_u64(key, free_count.n)?,
            leases: leases
                .into_iter()
                .map(|l| {
                    Ok(LeaseInfo {
                        nonce: to_u64(key, l.nonce)?,
                        lease_id: LeaseId::from(l.lease_id),
                        leased_at: l.leased_at,
                        expires_at: l.expires_at,
                        age: (now - l.leased_at).to_std().unwrap_or_default(),
                        expired: l.expired,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            committed: nonces(committed)?,
            committed_count: to_u64(key, committed_count.n)?,
            observed_at: now,
        })
    }
}

/// Runs one `*_in` step in its own transaction on a pooled connection.
macro_rules! in_transaction {
    ($store:expr, |$conn:ident| $step:expr) => {{
        let mut conn = $store.pool.get().await.map_err(unavailable)?;
        conn.transaction::<_, TxError, _>(async |$conn| $step.await.map_err(TxError::Store))
            .await
            .map_err(TxError::into_store)
    }};
}

impl PgNonceStore {
    /// [`NonceStore::reset`] with `audit` appended to the audit log in the same transaction:
    /// the reset and its record commit together, or neither does. `audit`'s details gain the
    /// outcome (`previous_next`, `next`, `dropped_leases`). A refusal (outstanding leases
    /// without `force`) writes nothing.
    pub async fn reset_audited(
        &self,
        key: &NonceKey,
        chain_pending: u64,
        force: bool,
        audit: haven_core::audit::AuditEvent,
    ) -> Result<ResetOutcome> {
        in_transaction!(self, |c| async {
            let outcome = Self::reset_in(c, key, chain_pending, force).await?;
            let mut details = audit.details.clone();
            if let serde_json::Value::Object(map) = &mut details {
                map.insert("previous_next".into(), outcome.previous_next.into());
                map.insert("next".into(), outcome.next.into());
                map.insert("dropped_leases".into(), outcome.dropped_leases.into());
            }
            crate::PgAuditLog::append_in(c, audit.details(details))
                .await
                .map_err(unavailable)?;
            Ok(outcome)
        })
    }
}

/// Either a store error raised inside the transaction or the transaction's own failure.
#[derive(Debug)]
enum TxError {
    Store(Error),
    Db(diesel::result::Error),
}

impl TxError {
    fn into_store(self) -> Error {
        match self {
            TxError::Store(e) => e,
            TxError::Db(e) => unavailable(e),
        }
    }
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

#[async_trait]
impl NonceStore for PgNonceStore {
    async fn reserve(&self, key: &NonceKey, lease_ttl: Duration) -> Result<Lease> {
        let mut conn = self.pool.get().await.map_err(unavailable)?;
        Self::reserve_in(&mut conn, key, lease_ttl).await
    }

    async fn commit(&self, lease: &Lease) -> Result<()> {
        let mut conn = self.pool.get().await.map_err(unavailable)?;
        Self::commit_in(&mut conn, lease).await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let mut conn = self.pool.get().await.map_err(unavailable)?;
        Self::release_in(&mut conn, lease).await
    }

    async fn sync(&self, key: &NonceKey, chain_pending: u64) -> Result<SyncOutcome> {
        in_transaction!(self, |c| Self::sync_in(c, key, chain_pending))
    }

    async fn reset(&self, key: &NonceKey, chain_pending: u64, force: bool) -> Result<ResetOutcome> {
        in_transaction!(self, |c| Self::reset_in(c, key, chain_pending, force))
    }

    async fn status(&self, key: &NonceKey) -> Result<NonceStatus> {
        let mut conn = self.pool.get().await.map_err(unavailable)?;
        Self::status_in(&mut conn, key).await
    }
}

/// One nonce account as operators list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceAccount {
    /// The EVM chain id.
    pub chain_id: u64,
    /// The account's address (20 bytes).
    pub address: [u8; 20],
    /// The next never-used nonce.
    pub next: u64,
    /// The chain's pending nonce at the last sync.
    pub chain_floor: Option<u64>,
    /// When the account last synced with the chain.
    pub last_sync: Option<DateTime<Utc>>,
    /// Leases not committed or released (expired ones included).
    pub leases: u64,
}

#[derive(QueryableByName)]
struct AccountListRow {
    #[diesel(sql_type = BigInt)]
    chain_id: i64,
    #[diesel(sql_type = Bytea)]
    address: Vec<u8>,
    #[diesel(sql_type = BigInt)]
    next_nonce: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    chain_floor: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_sync: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    leases: i64,
}

impl PgNonceStore {
    /// Up to `limit` accounts the store knows, by chain and address, with their leases.
    pub async fn accounts(&self, limit: i64) -> Result<Vec<NonceAccount>> {
        let mut conn = self.pool.get().await.map_err(unavailable)?;
        let rows: Vec<AccountListRow> = diesel::sql_query(
            "SELECT a.chain_id, a.address, a.next_nonce, a.chain_floor, a.last_sync, \
             (SELECT count(*) FROM nonce_slots s WHERE s.chain_id = a.chain_id \
              AND s.address = a.address AND s.state = 'leased') AS leases \
             FROM nonce_accounts a ORDER BY a.chain_id, a.address LIMIT $1",
        )
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(NonceAccount {
                    chain_id: u64::try_from(r.chain_id).ok()?,
                    address: r.address.try_into().ok()?,
                    next: u64::try_from(r.next_nonce).ok()?,
                    chain_floor: r.chain_floor.and_then(|f| u64::try_from(f).ok()),
                    last_sync: r.last_sync,
                    leases: u64::try_from(r.leases).unwrap_or(0),
                })
            })
            .collect())
    }
}

//! The Postgres [`TxStore`] of the chain crate: the `transactions` table.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, Bytes, U256};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::OptionalExtension;
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bytea, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::RunQueryDsl;
use haven_chain::{Error, Inserted, Result, TxKind, TxRecord, TxStatus, TxStore};

use crate::PgPool;

/// A [`TxStore`] on the `transactions` table.
///
/// Every operation is one statement: `insert` is `INSERT … ON CONFLICT (tx_id) DO NOTHING`
/// (the primary key decides the one winner among concurrent submitters, and a loser reads
/// the stored row), and `update` is `UPDATE … WHERE tx_id = $1 AND version = $new - 1
/// RETURNING`, a compare-and-set on the record's version: of two writers racing from one
/// version, exactly one row is returned. Amounts and fees are `NUMERIC`, so
/// `U256` and `u128` values round-trip exactly; timestamps keep microseconds.
#[derive(Debug, Clone)]
pub struct PgTxStore {
    pool: PgPool,
}

/// Why the Postgres transaction store failed, boxed inside [`Error::Store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PgTxError {
    /// No connection could be had from the pool.
    #[error("transactions database unavailable")]
    Unavailable(#[source] crate::Error),
    /// A query failed.
    #[error("transactions query failed")]
    Query(#[source] diesel::result::Error),
    /// A value does not fit its column.
    #[error("{field} {value} does not fit the database column")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// A stored value cannot be decoded.
    #[error("corrupt transactions.{column} value")]
    Corrupt {
        /// The column.
        column: &'static str,
    },
}

fn store_error(operation: &'static str, e: PgTxError) -> Error {
    Error::Store {
        operation,
        source: Box::new(e),
    }
}

fn corrupt(column: &'static str) -> PgTxError {
    PgTxError::Corrupt { column }
}

fn to_i64(field: &'static str, value: u64) -> Result<i64, PgTxError> {
    i64::try_from(value).map_err(|_| PgTxError::OutOfRange {
        field,
        value: value.to_string(),
    })
}

fn to_i32(field: &'static str, value: u32) -> Result<i32, PgTxError> {
    i32::try_from(value).map_err(|_| PgTxError::OutOfRange {
        field,
        value: value.to_string(),
    })
}

fn to_u64(column: &'static str, value: i64) -> Result<u64, PgTxError> {
    u64::try_from(value).map_err(|_| corrupt(column))
}

fn to_u32(column: &'static str, value: i32) -> Result<u32, PgTxError> {
    u32::try_from(value).map_err(|_| corrupt(column))
}

fn address(column: &'static str, bytes: &[u8]) -> Result<Address, PgTxError> {
    Address::try_from(bytes).map_err(|_| corrupt(column))
}

fn hash(column: &'static str, bytes: &[u8]) -> Result<B256, PgTxError> {
    B256::try_from(bytes).map_err(|_| corrupt(column))
}

fn fee(column: &'static str, text: Option<String>) -> Result<Option<u128>, PgTxError> {
    text.map(|t| t.parse::<u128>().map_err(|_| corrupt(column)))
        .transpose()
}

/// The columns in the order [`TxRow`] reads them; NUMERIC travels as text.
const COLUMNS: &str = "tx_id, kind, chain_id, token, from_address, to_address, \
     amount::text AS amount, status, nonce, hash, raw_tx, previous_hashes, gas_limit, \
     max_fee_per_gas::text AS max_fee_per_gas, \
     max_priority_fee_per_gas::text AS max_priority_fee_per_gas, attempts, replacements, \
     error, block_number, block_hash, created_at, updated_at, broadcast_at, confirmed_at, version, \
     reorgs, holder, nonce_lease";

#[derive(QueryableByName)]
struct TxRow {
    #[diesel(sql_type = Text)]
    tx_id: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    chain_id: i64,
    #[diesel(sql_type = Bytea)]
    token: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    from_address: Vec<u8>,
    #[diesel(sql_type = Nullable<Bytea>)]
    to_address: Option<Vec<u8>>,
    #[diesel(sql_type = Text)]
    amount: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    nonce: Option<i64>,
    #[diesel(sql_type = Nullable<Bytea>)]
    hash: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Bytea>)]
    raw_tx: Option<Vec<u8>>,
    #[diesel(sql_type = Array<Bytea>)]
    previous_hashes: Vec<Vec<u8>>,
    #[diesel(sql_type = BigInt)]
    gas_limit: i64,
    #[diesel(sql_type = Nullable<Text>)]
    max_fee_per_gas: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    max_priority_fee_per_gas: Option<String>,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Integer)]
    replacements: i32,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    block_number: Option<i64>,
    #[diesel(sql_type = Nullable<Bytea>)]
    block_hash: Option<Vec<u8>>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    broadcast_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    confirmed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Integer)]
    reorgs: i32,
    #[diesel(sql_type = Nullable<Bytea>)]
    holder: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    nonce_lease: Option<uuid::Uuid>,
}

fn parse_status(raw: &str) -> Option<TxStatus> {
    TxStatus::ALL.into_iter().find(|s| s.as_str() == raw)
}

impl TxRow {
    fn decode(self) -> Result<TxRecord, PgTxError> {
        Ok(TxRecord {
            kind: TxKind::parse(&self.kind).ok_or_else(|| corrupt("kind"))?,
            chain_id: to_u64("chain_id", self.chain_id)?,
            token: address("token", &self.token)?,
            from: address("from_address", &self.from_address)?,
            to: self
                .to_address
                .map(|a| address("to_address", &a))
                .transpose()?,
            holder: self.holder.map(|a| address("holder", &a)).transpose()?,
            nonce_lease: self.nonce_lease.map(haven_nonce::LeaseId::from),
            amount: self.amount.parse::<U256>().map_err(|_| corrupt("amount"))?,
            status: parse_status(&self.status).ok_or_else(|| corrupt("status"))?,
            nonce: self.nonce.map(|n| to_u64("nonce", n)).transpose()?,
            hash: self.hash.map(|h| hash("hash", &h)).transpose()?,
            raw: self.raw_tx.map(Bytes::from),
            previous_hashes: self
                .previous_hashes
                .iter()
                .map(|h| hash("previous_hashes", h))
                .collect::<Result<_, _>>()?,
            gas_limit: to_u64("gas_limit", self.gas_limit)?,
            max_fee_per_gas: fee("max_fee_per_gas", self.max_fee_per_gas)?,
            max_priority_fee_per_gas: fee(
                "max_priority_fee_per_gas",
                self.max_priority_fee_per_gas,
            )?,
            attempts: to_u32("attempts", self.attempts)?,
            replacements: to_u32("replacements", self.replacements)?,
            reorgs: to_u32("reorgs", self.reorgs)?,
            error: self.error,
            block_number: self
                .block_number
                .map(|n| to_u64("block_number", n))
                .transpose()?,
            block_hash: self
                .block_hash
                .map(|h| hash("block_hash", &h))
                .transpose()?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            broadcast_at: self.broadcast_at,
            confirmed_at: self.confirmed_at,
            version: to_u64("version", self.version)?,
            tx_id: self.tx_id,
        })
    }
}

/// A record's columns as bind values.
struct Encoded {
    chain_id: i64,
    nonce: Option<i64>,
    gas_limit: i64,
    attempts: i32,
    replacements: i32,
    reorgs: i32,
    block_number: Option<i64>,
    version: i64,
}

/// Binds every column of `record` as `$1`…`$28` in the order of [`COLUMNS`] (the insert and
/// the compare-and-set update use the same numbering).
fn bind_record<'a>(
    query: diesel::query_builder::SqlQuery,
    record: &'a TxRecord,
    e: &Encoded,
) -> impl diesel_async::methods::LoadQuery<'a, diesel_async::AsyncPgConnection, TxRow> + 'a {
    query
        .bind::<Text, _>(&record.tx_id)
        .bind::<Text, _>(record.kind.as_str())
        .bind::<BigInt, _>(e.chain_id)
        .bind::<Bytea, _>(record.token.to_vec())
        .bind::<Bytea, _>(record.from.to_vec())
        .bind::<Nullable<Bytea>, _>(record.to.map(|a| a.to_vec()))
        .bind::<Text, _>(record.amount.to_string())
        .bind::<Text, _>(record.status.as_str())
        .bind::<Nullable<BigInt>, _>(e.nonce)
        .bind::<Nullable<Bytea>, _>(record.hash.map(|h| h.to_vec()))
        .bind::<Nullable<Bytea>, _>(record.raw.as_ref().map(|r| r.to_vec()))
        .bind::<Array<Bytea>, _>(bytes_of(&record.previous_hashes))
        .bind::<BigInt, _>(e.gas_limit)
        .bind::<Nullable<Text>, _>(record.max_fee_per_gas.map(|f| f.to_string()))
        .bind::<Nullable<Text>, _>(record.max_priority_fee_per_gas.map(|f| f.to_string()))
        .bind::<Integer, _>(e.attempts)
        .bind::<Integer, _>(e.replacements)
        .bind::<Nullable<Text>, _>(record.error.as_deref())
        .bind::<Nullable<BigInt>, _>(e.block_number)
        .bind::<Nullable<Bytea>, _>(record.block_hash.map(|h| h.to_vec()))
        .bind::<Timestamptz, _>(record.created_at)
        .bind::<Timestamptz, _>(record.updated_at)
        .bind::<Nullable<Timestamptz>, _>(record.broadcast_at)
        .bind::<Nullable<Timestamptz>, _>(record.confirmed_at)
        .bind::<BigInt, _>(e.version)
        .bind::<Integer, _>(e.reorgs)
        .bind::<Nullable<Bytea>, _>(record.holder.map(|a| a.to_vec()))
        .bind::<Nullable<SqlUuid>, _>(record.nonce_lease.map(|l| l.as_uuid()))
}

fn encode(record: &TxRecord) -> Result<Encoded, PgTxError> {
    Ok(Encoded {
        chain_id: to_i64("chain_id", record.chain_id)?,
        nonce: record.nonce.map(|n| to_i64("nonce", n)).transpose()?,
        gas_limit: to_i64("gas_limit", record.gas_limit)?,
        attempts: to_i32("attempts", record.attempts)?,
        replacements: to_i32("replacements", record.replacements)?,
        reorgs: to_i32("reorgs", record.reorgs)?,
        block_number: record
            .block_number
            .map(|n| to_i64("block_number", n))
            .transpose()?,
        version: to_i64("version", record.version)?,
    })
}

fn bytes_of(hashes: &[B256]) -> Vec<Vec<u8>> {
    hashes.iter().map(|h| h.to_vec()).collect()
}

impl PgTxStore {
    /// A store on `pool` (migrations applied).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(
        &self,
        operation: &'static str,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>>
    {
        self.pool
            .get()
            .await
            .map_err(|e| store_error(operation, PgTxError::Unavailable(e)))
    }
}

#[async_trait]
impl TxStore for PgTxStore {
    async fn insert(&self, mut record: TxRecord) -> Result<Inserted> {
        const OP: &str = "insert";
        record.version = 1;
        let e = encode(&record).map_err(|e| store_error(OP, e))?;
        let mut conn = self.conn(OP).await?;
        let query = format!(
            "INSERT INTO transactions (tx_id, kind, chain_id, token, from_address, to_address, \
             amount, status, nonce, hash, raw_tx, previous_hashes, gas_limit, max_fee_per_gas, \
             max_priority_fee_per_gas, attempts, replacements, error, block_number, block_hash, \
             created_at, updated_at, broadcast_at, confirmed_at, version, reorgs, holder, \
             nonce_lease) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8, $9, $10, $11, $12, $13, \
             $14::numeric, $15::numeric, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, \
             $26, $27, $28) \
             ON CONFLICT (tx_id) DO NOTHING RETURNING {COLUMNS}"
        );
        let inserted: Option<TxRow> = bind_record(diesel::sql_query(query), &record, &e)
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(|e| store_error(OP, PgTxError::Query(e)))?;
        if let Some(row) = inserted {
            return Ok(Inserted::New(row.decode().map_err(|e| store_error(OP, e))?));
        }
        // Rows are never deleted, so the one that won the conflict is there to read.
        let existing: TxRow = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM transactions WHERE tx_id = $1"
        ))
        .bind::<Text, _>(&record.tx_id)
        .get_result(&mut conn)
        .await
        .map_err(|e| store_error(OP, PgTxError::Query(e)))?;
        Ok(Inserted::Existing(
            existing.decode().map_err(|e| store_error(OP, e))?,
        ))
    }

    async fn get(&self, tx_id: &str) -> Result<Option<TxRecord>> {
        const OP: &str = "get";
        let mut conn = self.conn(OP).await?;
        let row: Option<TxRow> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM transactions WHERE tx_id = $1"
        ))
        .bind::<Text, _>(tx_id)
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(|e| store_error(OP, PgTxError::Query(e)))?;
        row.map(TxRow::decode)
            .transpose()
            .map_err(|e| store_error(OP, e))
    }

    async fn update(&self, record: &TxRecord) -> Result<bool> {
        const OP: &str = "update";
        let e = encode(record).map_err(|e| store_error(OP, e))?;
        let mut conn = self.conn(OP).await?;
        // A whole-record replace, as the trait says; only the version decides.
        let updated: Option<TxRow> = bind_record(
            diesel::sql_query(format!(
                "UPDATE transactions SET kind = $2, chain_id = $3, token = $4, from_address = $5, \
             to_address = $6, amount = $7::numeric, status = $8, nonce = $9, hash = $10, \
             raw_tx = $11, previous_hashes = $12, gas_limit = $13, \
             max_fee_per_gas = $14::numeric, max_priority_fee_per_gas = $15::numeric, \
             attempts = $16, replacements = $17, error = $18, block_number = $19, \
             block_hash = $20, created_at = $21, updated_at = $22, broadcast_at = $23, \
             confirmed_at = $24, version = $25, reorgs = $26, holder = $27, nonce_lease = $28 \
             WHERE tx_id = $1 AND version = $25 - 1 RETURNING {COLUMNS}"
            )),
            record,
            &e,
        )
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(|e| store_error(OP, PgTxError::Query(e)))?;
        Ok(updated.is_some())
    }

    async fn list_by_status(&self, status: TxStatus, limit: usize) -> Result<Vec<TxRecord>> {
        const OP: &str = "list_by_status";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut conn = self.conn(OP).await?;
        let rows: Vec<TxRow> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM transactions WHERE status = $1 \
             ORDER BY created_at, tx_id LIMIT $2"
        ))
        .bind::<Text, _>(status.as_str())
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await
        .map_err(|e| store_error(OP, PgTxError::Query(e)))?;
        rows.into_iter()
            .map(|r| r.decode().map_err(|e| store_error(OP, e)))
            .collect()
    }

    async fn count_by_status(&self) -> Result<HashMap<TxStatus, u64>> {
        const OP: &str = "count_by_status";
        #[derive(QueryableByName)]
        struct CountRow {
            #[diesel(sql_type = Text)]
            status: String,
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.conn(OP).await?;
        let rows: Vec<CountRow> =
            diesel::sql_query("SELECT status, count(*) AS n FROM transactions GROUP BY status")
                .load(&mut conn)
                .await
                .map_err(|e| store_error(OP, PgTxError::Query(e)))?;
        rows.into_iter()
            .map(|r| {
                let status = parse_status(&r.status).ok_or_else(|| corrupt("status"))?;
                Ok((status, to_u64("count", r.n)?))
            })
            .collect::<Result<_, PgTxError>>()
            .map_err(|e| store_error(OP, e))
    }
}

/// What [`PgTxStore::requeue_failed_audited`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// The record went from `failed` back to `queued` (its audit row committed with it);
    /// the worker's monitoring cycle signs and sends it with a fresh nonce.
    Queued(TxRecord),
    /// Nothing was written: the record is not `failed` at `expected_version` (any more).
    /// This is the stored record, if there is one.
    Refused(Option<TxRecord>),
}

impl PgTxStore {
    /// Up to `limit` `broadcast` records last (re)broadcast at or before `broadcast_before`
    /// (stuck: no receipt yet), oldest first.
    pub async fn list_stuck(
        &self,
        broadcast_before: DateTime<Utc>,
        limit: i64,
    ) -> crate::Result<Vec<TxRecord>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<TxRow> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM transactions WHERE status = 'broadcast' \
             AND broadcast_at <= $1 ORDER BY created_at, tx_id LIMIT $2"
        ))
        .bind::<Timestamptz, _>(broadcast_before)
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?;
        rows.into_iter().map(decode_row).collect()
    }

    /// How many `broadcast` records were last (re)broadcast at or before `broadcast_before`.
    pub async fn count_stuck(&self, broadcast_before: DateTime<Utc>) -> crate::Result<u64> {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await?;
        let count: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM transactions WHERE status = 'broadcast' \
             AND broadcast_at <= $1",
        )
        .bind::<Timestamptz, _>(broadcast_before)
        .get_result(&mut conn)
        .await?;
        Ok(u64::try_from(count.n).unwrap_or_default())
    }

    /// An operator retry of a `failed` transaction: in one Postgres transaction, a
    /// compare-and-set from `failed` at `expected_version` back to `queued` — with the
    /// nonce, hashes, raw transaction, fees and receipt cleared exactly as
    /// `TokenOps::retry` clears them — and the append of `audit`.
    ///
    /// **Invariant:** only a `failed` record is re-queued, and `failed` means one of its
    /// signed versions was mined and reverted: its nonce is spent, so none of the earlier
    /// signed versions can ever execute and the fresh submission is the only one that can.
    /// Of concurrent retries exactly one is applied; the others are refused and write
    /// nothing, audit row included.
    pub async fn requeue_failed_audited(
        &self,
        tx_id: &str,
        expected_version: u64,
        audit: haven_core::audit::AuditEvent,
        now: DateTime<Utc>,
    ) -> crate::Result<Requeue> {
        use diesel_async::AsyncConnection;
        let version = i64::try_from(expected_version).map_err(|_| crate::Error::Corrupt {
            table: "transactions",
            reason: format!("version {expected_version} out of range"),
        })?;
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, crate::Error, _>(async |c| {
            let updated: Option<TxRow> = diesel::sql_query(format!(
                "UPDATE transactions SET status = 'queued', nonce = NULL, hash = NULL, \
                 raw_tx = NULL, previous_hashes = '{{}}', max_fee_per_gas = NULL, \
                 max_priority_fee_per_gas = NULL, replacements = 0, block_number = NULL, \
                 block_hash = NULL, broadcast_at = NULL, nonce_lease = NULL, updated_at = $3, \
                 version = version + 1 \
                 WHERE tx_id = $1 AND status = 'failed' AND version = $2 RETURNING {COLUMNS}"
            ))
            .bind::<Text, _>(tx_id)
            .bind::<BigInt, _>(version)
            .bind::<Timestamptz, _>(now)
            .get_result(c)
            .await
            .optional()?;
            match updated {
                Some(row) => {
                    let record = decode_row(row)?;
                    crate::PgAuditLog::append_in(c, audit).await?;
                    Ok(Requeue::Queued(record))
                }
                None => {
                    let current: Option<TxRow> = diesel::sql_query(format!(
                        "SELECT {COLUMNS} FROM transactions WHERE tx_id = $1"
                    ))
                    .bind::<Text, _>(tx_id)
                    .get_result(c)
                    .await
                    .optional()?;
                    Ok(Requeue::Refused(current.map(decode_row).transpose()?))
                }
            }
        })
        .await
    }
}

fn decode_row(row: TxRow) -> crate::Result<TxRecord> {
    row.decode().map_err(|e| crate::Error::Corrupt {
        table: "transactions",
        reason: e.to_string(),
    })
}

//! The Postgres [`WalletStore`] of custody: `wallets` and `wallet_keys`, ciphertexts only.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{
    BigInt, Bool, Bytea, Integer, Jsonb, Nullable, SmallInt, Text, Timestamptz,
};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_custody::{
    Chain, Error, KeyCursor, KeyInfo, KeyRecord, KeyStatus, PageRequest, Result, SealedKey, Wallet,
    WalletFilter, WalletId, WalletPage, WalletRecord, WalletStatus, WalletStore, WrappedDek,
};

use crate::PgPool;

/// A [`WalletStore`] on the `wallets` / `wallet_keys` tables.
///
/// Reads are single statements (one consistent snapshot: a wallet and its keys never come from
/// two different moments). `insert`, `rotate` and `revoke` are one transaction each; `rotate`
/// and `revoke` lock the wallet row (`FOR UPDATE`) so concurrent writers of one wallet run one
/// after the other. `replace_wrapped_dek` is a single compare-and-set `UPDATE`. Timestamps
/// read back exactly as written, to the nanosecond. Database failures surface as
/// [`Error::Storage`] whose source names the failure (pool, query, range or corrupt row).
#[derive(Debug, Clone)]
pub struct PgWalletStore {
    pool: PgPool,
}

/// Why the Postgres wallet store failed, boxed inside [`Error::Storage`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PgCustodyError {
    /// No connection could be had from the pool.
    #[error("wallet database unavailable")]
    Unavailable(#[source] crate::Error),
    /// A query or the transaction failed.
    #[error("wallet query failed")]
    Query(#[source] DieselError),
    /// A version does not fit the `INTEGER` column.
    #[error("{field} {value} does not fit the database column")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// A stored value cannot be decoded.
    #[error("corrupt {table}.{column} value")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
}

fn storage(e: PgCustodyError) -> Error {
    Error::Storage(Box::new(e))
}

fn query_failed(e: DieselError) -> Error {
    storage(PgCustodyError::Query(e))
}

fn corrupt(table: &'static str, column: &'static str) -> Error {
    storage(PgCustodyError::Corrupt { table, column })
}

fn to_i32(field: &'static str, value: u32) -> Result<i32> {
    i32::try_from(value).map_err(|_| {
        storage(PgCustodyError::OutOfRange {
            field,
            value: u64::from(value),
        })
    })
}

fn to_u32(table: &'static str, column: &'static str, value: i32) -> Result<u32> {
    u32::try_from(value).map_err(|_| corrupt(table, column))
}

/// A timestamp split into what `TIMESTAMPTZ` keeps (microseconds) and the nanoseconds below.
pub(crate) fn split_time(at: DateTime<Utc>) -> (DateTime<Utc>, i16) {
    let micros = at.timestamp_micros();
    let truncated = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or(at);
    let rest = (at - truncated).num_nanoseconds().unwrap_or(0);
    (truncated, i16::try_from(rest).unwrap_or(0))
}

/// A timestamp read back from what `TIMESTAMPTZ` kept and the nanoseconds below.
pub(crate) fn join_time(at: DateTime<Utc>, sub_us: i16) -> DateTime<Utc> {
    at + chrono::Duration::nanoseconds(i64::from(sub_us))
}

#[derive(QueryableByName)]
struct WalletRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    chain: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    current_version: i32,
    #[diesel(sql_type = Jsonb)]
    metadata: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = SmallInt)]
    created_at_sub_us: i16,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = SmallInt)]
    updated_at_sub_us: i16,
}

impl WalletRow {
    fn decode(self) -> Result<WalletRecord> {
        const T: &str = "wallets";
        Ok(WalletRecord {
            id: WalletId::new(self.id).map_err(|_| corrupt(T, "id"))?,
            chain: Chain::parse(&self.chain).ok_or_else(|| corrupt(T, "chain"))?,
            status: WalletStatus::parse(&self.status).ok_or_else(|| corrupt(T, "status"))?,
            current_version: to_u32(T, "current_version", self.current_version)?,
            metadata: self.metadata,
            created_at: join_time(self.created_at, self.created_at_sub_us),
            updated_at: join_time(self.updated_at, self.updated_at_sub_us),
        })
    }
}

/// The public columns of a key (aliased `k_*` so they can sit beside a wallet row).
#[derive(QueryableByName)]
struct KeyInfoRow {
    #[diesel(sql_type = Integer)]
    k_version: i32,
    #[diesel(sql_type = Text)]
    k_address: String,
    #[diesel(sql_type = Text)]
    k_status: String,
    #[diesel(sql_type = Integer)]
    k_kek_version: i32,
    #[diesel(sql_type = Timestamptz)]
    k_created_at: DateTime<Utc>,
    #[diesel(sql_type = SmallInt)]
    k_created_at_sub_us: i16,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    k_retired_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = SmallInt)]
    k_retired_at_sub_us: i16,
}

impl KeyInfoRow {
    fn decode(self) -> Result<KeyInfo> {
        const T: &str = "wallet_keys";
        Ok(KeyInfo {
            version: to_u32(T, "version", self.k_version)?,
            address: self.k_address,
            status: KeyStatus::parse(&self.k_status).ok_or_else(|| corrupt(T, "status"))?,
            kek_version: to_u32(T, "kek_version", self.k_kek_version)?,
            created_at: join_time(self.k_created_at, self.k_created_at_sub_us),
            retired_at: self
                .k_retired_at
                .map(|at| join_time(at, self.k_retired_at_sub_us)),
        })
    }
}

/// The sealed columns of a key.
#[derive(QueryableByName)]
struct SealedRow {
    #[diesel(sql_type = Bytea)]
    key_nonce: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    key_ciphertext: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    wrapped_dek: Vec<u8>,
}

/// A wallet joined with one of its keys (public columns only).
#[derive(QueryableByName)]
struct WalletKeyRow {
    #[diesel(embed)]
    wallet: WalletRow,
    #[diesel(embed)]
    key: KeyInfoRow,
}

/// A wallet joined with one key, sealed columns included.
#[derive(QueryableByName)]
struct SigningRow {
    #[diesel(embed)]
    wallet: WalletRow,
    #[diesel(embed)]
    key: KeyInfoRow,
    #[diesel(embed)]
    sealed: SealedRow,
}

/// A key for the rewrap walk.
#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    wallet_id: String,
    #[diesel(embed)]
    key: KeyInfoRow,
    #[diesel(embed)]
    sealed: SealedRow,
}

fn decode_key(wallet_id: WalletId, info: KeyInfoRow, sealed: SealedRow) -> Result<KeyRecord> {
    let info = info.decode()?;
    let nonce: [u8; 12] = sealed
        .key_nonce
        .try_into()
        .map_err(|_| corrupt("wallet_keys", "key_nonce"))?;
    Ok(KeyRecord {
        wallet_id,
        sealed: SealedKey {
            nonce,
            ciphertext: sealed.key_ciphertext,
            wrapped_dek: WrappedDek {
                kek_version: info.kek_version,
                ciphertext: sealed.wrapped_dek,
            },
        },
        info,
    })
}

/// Groups rows ordered by (wallet id, key version) into wallets.
fn group_wallets(rows: Vec<WalletKeyRow>) -> Result<Vec<Wallet>> {
    let mut wallets: Vec<Wallet> = Vec::new();
    for row in rows {
        let info = row.key.decode()?;
        match wallets.last_mut() {
            Some(last) if last.record.id.as_str() == row.wallet.id => last.keys.push(info),
            _ => wallets.push(Wallet {
                record: row.wallet.decode()?,
                keys: vec![info],
            }),
        }
    }
    Ok(wallets)
}

const WALLET_COLUMNS: &str = "w.id, w.chain, w.status, w.current_version, w.metadata, \
     w.created_at, w.created_at_sub_us, w.updated_at, w.updated_at_sub_us";
const KEY_INFO_COLUMNS: &str = "k.version AS k_version, k.address AS k_address, \
     k.status AS k_status, k.kek_version AS k_kek_version, k.created_at AS k_created_at, \
     k.created_at_sub_us AS k_created_at_sub_us, k.retired_at AS k_retired_at, \
     k.retired_at_sub_us AS k_retired_at_sub_us";
const SEALED_COLUMNS: &str = "k.key_nonce, k.key_ciphertext, k.wrapped_dek";

/// The wallet and its keys in one statement, on the caller's connection.
async fn load_wallet(conn: &mut AsyncPgConnection, id: &WalletId) -> Result<Option<Wallet>> {
    let rows: Vec<WalletKeyRow> = diesel::sql_query(format!(
        "SELECT {WALLET_COLUMNS}, {KEY_INFO_COLUMNS} FROM wallets w \
         JOIN wallet_keys k ON k.wallet_id = w.id WHERE w.id = $1 ORDER BY k.version"
    ))
    .bind::<Text, _>(id.as_str())
    .load(conn)
    .await
    .map_err(query_failed)?;
    Ok(group_wallets(rows)?.pop())
}

#[derive(QueryableByName)]
struct LockedWallet {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    current_version: i32,
}

/// Locks the wallet row for the rest of the transaction.
async fn lock_wallet(conn: &mut AsyncPgConnection, id: &WalletId) -> Result<(WalletStatus, u32)> {
    let row: LockedWallet =
        diesel::sql_query("SELECT status, current_version FROM wallets WHERE id = $1 FOR UPDATE")
            .bind::<Text, _>(id.as_str())
            .get_result(conn)
            .await
            .optional()
            .map_err(query_failed)?
            .ok_or_else(|| Error::WalletNotFound { id: id.clone() })?;
    Ok((
        WalletStatus::parse(&row.status).ok_or_else(|| corrupt("wallets", "status"))?,
        to_u32("wallets", "current_version", row.current_version)?,
    ))
}

async fn insert_key(conn: &mut AsyncPgConnection, key: &KeyRecord) -> Result<(), DieselError> {
    let (created_at, created_sub) = split_time(key.info.created_at);
    let retired = key.info.retired_at.map(split_time);
    diesel::sql_query(
        "INSERT INTO wallet_keys (wallet_id, version, address, status, key_nonce, \
         key_ciphertext, kek_version, wrapped_dek, created_at, created_at_sub_us, retired_at, \
         retired_at_sub_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind::<Text, _>(key.wallet_id.as_str())
    .bind::<Integer, _>(i32::try_from(key.info.version).unwrap_or(-1))
    .bind::<Text, _>(&key.info.address)
    .bind::<Text, _>(key.info.status.as_str())
    .bind::<Bytea, _>(key.sealed.nonce.as_slice())
    .bind::<Bytea, _>(key.sealed.ciphertext.as_slice())
    .bind::<Integer, _>(i32::try_from(key.sealed.wrapped_dek.kek_version).unwrap_or(-1))
    .bind::<Bytea, _>(key.sealed.wrapped_dek.ciphertext.as_slice())
    .bind::<Timestamptz, _>(created_at)
    .bind::<SmallInt, _>(created_sub)
    .bind::<Nullable<Timestamptz>, _>(retired.map(|(at, _)| at))
    .bind::<SmallInt, _>(retired.map_or(0, |(_, sub)| sub))
    .execute(conn)
    .await
    .map(|_| ())
}

/// Ends key `version` of wallet `id` at `at` with `status` (rotated or revoked).
async fn retire_key(
    conn: &mut AsyncPgConnection,
    id: &WalletId,
    version: i32,
    status: KeyStatus,
    at: DateTime<Utc>,
) -> Result<(), DieselError> {
    let (at_us, at_sub) = split_time(at);
    diesel::sql_query(
        "UPDATE wallet_keys SET status = $3, retired_at = $4, retired_at_sub_us = $5 \
         WHERE wallet_id = $1 AND version = $2",
    )
    .bind::<Text, _>(id.as_str())
    .bind::<Integer, _>(version)
    .bind::<Text, _>(status.as_str())
    .bind::<Timestamptz, _>(at_us)
    .bind::<SmallInt, _>(at_sub)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Checks that a key's versions fit the columns before anything is written (the insert
/// itself binds them unchecked).
fn check_key_ranges(key: &KeyRecord) -> Result<()> {
    to_i32("key version", key.info.version)?;
    to_i32("KEK version", key.sealed.wrapped_dek.kek_version)?;
    Ok(())
}

fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Either a store error raised inside the transaction or the transaction's own failure.
#[derive(Debug)]
enum TxError {
    Store(Error),
    Db(DieselError),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        TxError::Db(e)
    }
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError::Store(e)
    }
}

impl TxError {
    fn into_store(self) -> Error {
        match self {
            TxError::Store(e) => e,
            TxError::Db(e) => query_failed(e),
        }
    }
}

impl PgWalletStore {
    /// A store on `pool` (migrations applied).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(
        &self,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>> {
        self.pool
            .get()
            .await
            .map_err(|e| storage(PgCustodyError::Unavailable(e)))
    }
}

#[async_trait]
impl WalletStore for PgWalletStore {
    async fn insert(&self, wallet: &WalletRecord, key: &KeyRecord) -> Result<()> {
        let current_version = to_i32("current version", wallet.current_version)?;
        check_key_ranges(key)?;
        let (created_at, created_sub) = split_time(wallet.created_at);
        let (updated_at, updated_sub) = split_time(wallet.updated_at);
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |c| {
            let inserted = diesel::sql_query(
                "INSERT INTO wallets (id, chain, status, current_version, metadata, created_at, \
                 created_at_sub_us, updated_at, updated_at_sub_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind::<Text, _>(wallet.id.as_str())
            .bind::<Text, _>(wallet.chain.as_str())
            .bind::<Text, _>(wallet.status.as_str())
            .bind::<Integer, _>(current_version)
            .bind::<Jsonb, _>(&wallet.metadata)
            .bind::<Timestamptz, _>(created_at)
            .bind::<SmallInt, _>(created_sub)
            .bind::<Timestamptz, _>(updated_at)
            .bind::<SmallInt, _>(updated_sub)
            .execute(c)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(TxError::Store(Error::WalletExists {
                        id: wallet.id.clone(),
                    }));
                }
                Err(e) => return Err(TxError::Db(e)),
            }
            insert_key(c, key).await?;
            Ok(())
        })
        .await
        .map_err(TxError::into_store)
    }

    async fn get(&self, id: &WalletId) -> Result<Option<Wallet>> {
        let mut conn = self.conn().await?;
        load_wallet(&mut conn, id).await
    }

    async fn list(&self, filter: &WalletFilter, page: &PageRequest) -> Result<WalletPage> {
        let limit = page.effective_limit();
        // Only fixed text goes into the statement; every value is a bind parameter. The page
        // is cut first (limit + 1 wallets), then joined with its keys, in one snapshot.
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut next_param = || {
            n += 1;
            n
        };
        if filter.chain.is_some() {
            conditions.push(format!("chain = ${}", next_param()));
        }
        if filter.status.is_some() {
            conditions.push(format!("status = ${}", next_param()));
        }
        if page.after.is_some() {
            conditions.push(format!("id > ${}", next_param()));
        }
        let limit_param = next_param();
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "WITH page AS (SELECT * FROM wallets {where_clause} ORDER BY id LIMIT ${limit_param}) \
             SELECT {WALLET_COLUMNS}, {KEY_INFO_COLUMNS} FROM page w \
             JOIN wallet_keys k ON k.wallet_id = w.id ORDER BY w.id, k.version"
        );
        let mut query = diesel::sql_query(sql).into_boxed::<Pg>();
        if let Some(chain) = filter.chain {
            query = query.bind::<Text, _>(chain.as_str());
        }
        if let Some(status) = filter.status {
            query = query.bind::<Text, _>(status.as_str());
        }
        if let Some(after) = &page.after {
            query = query.bind::<Text, _>(after.as_str().to_owned());
        }
        let query = query.bind::<BigInt, _>(i64::try_from(limit + 1).unwrap_or(i64::MAX));
        let mut conn = self.conn().await?;
        let rows: Vec<WalletKeyRow> = query.load(&mut conn).await.map_err(query_failed)?;
        let mut wallets = group_wallets(rows)?;
        let next = if wallets.len() > limit {
            wallets.truncate(limit);
            wallets.last().map(|w| w.id().clone())
        } else {
            None
        };
        Ok(WalletPage { wallets, next })
    }

    async fn signing_key(
        &self,
        id: &WalletId,
        version: Option<u32>,
    ) -> Result<Option<(WalletRecord, KeyRecord)>> {
        let version = version.map(|v| to_i32("key version", v)).transpose()?;
        let mut conn = self.conn().await?;
        let row: Option<SigningRow> = diesel::sql_query(format!(
            "SELECT {WALLET_COLUMNS}, {KEY_INFO_COLUMNS}, {SEALED_COLUMNS} FROM wallets w \
             JOIN wallet_keys k ON k.wallet_id = w.id \
             AND k.version = COALESCE($2, w.current_version) WHERE w.id = $1"
        ))
        .bind::<Text, _>(id.as_str())
        .bind::<Nullable<Integer>, _>(version)
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(query_failed)?;
        row.map(|row| {
            let wallet = row.wallet.decode()?;
            let key = decode_key(wallet.id.clone(), row.key, row.sealed)?;
            Ok((wallet, key))
        })
        .transpose()
    }

    async fn rotate(
        &self,
        id: &WalletId,
        expected_version: u32,
        new_key: &KeyRecord,
        at: DateTime<Utc>,
    ) -> Result<Wallet> {
        let expected = to_i32("key version", expected_version)?;
        check_key_ranges(new_key)?;
        let (at_us, at_sub) = split_time(at);
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |c| {
            let (status, current) = lock_wallet(c, id).await?;
            if status == WalletStatus::Revoked {
                return Err(Error::NotActive {
                    id: id.clone(),
                    version: current,
                    status: KeyStatus::Revoked,
                }
                .into());
            }
            if current != expected_version
                || Some(new_key.info.version) != expected_version.checked_add(1)
                || new_key.wallet_id != *id
            {
                return Err(Error::Conflict { id: id.clone() }.into());
            }
            retire_key(c, id, expected, KeyStatus::Rotated, at).await?;
            match insert_key(c, new_key).await {
                Ok(()) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::Conflict { id: id.clone() }.into());
                }
                Err(e) => return Err(e.into()),
            }
            diesel::sql_query(
                "UPDATE wallets SET current_version = $2, updated_at = $3, \
                 updated_at_sub_us = $4 WHERE id = $1",
            )
            .bind::<Text, _>(id.as_str())
            .bind::<Integer, _>(expected + 1)
            .bind::<Timestamptz, _>(at_us)
            .bind::<SmallInt, _>(at_sub)
            .execute(c)
            .await?;
            load_wallet(c, id)
                .await?
                .ok_or_else(|| Error::WalletNotFound { id: id.clone() }.into())
        })
        .await
        .map_err(TxError::into_store)
    }

    async fn revoke(&self, id: &WalletId, at: DateTime<Utc>) -> Result<Wallet> {
        let (at_us, at_sub) = split_time(at);
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxError, _>(async |c| {
            let (status, current) = lock_wallet(c, id).await?;
            if status == WalletStatus::Active {
                let current = to_i32("key version", current)?;
                diesel::sql_query(
                    "UPDATE wallets SET status = 'revoked', updated_at = $2, \
                     updated_at_sub_us = $3 WHERE id = $1",
                )
                .bind::<Text, _>(id.as_str())
                .bind::<Timestamptz, _>(at_us)
                .bind::<SmallInt, _>(at_sub)
                .execute(c)
                .await?;
                retire_key(c, id, current, KeyStatus::Revoked, at).await?;
            }
            load_wallet(c, id)
                .await?
                .ok_or_else(|| Error::WalletNotFound { id: id.clone() }.into())
        })
        .await
        .map_err(TxError::into_store)
    }

    async fn keys_to_rewrap(
        &self,
        kek_version: u32,
        after: Option<&KeyCursor>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>> {
        // KEK versions above i32::MAX cannot be stored, so every stored key is below them.
        let below = i64::from(kek_version);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let select = format!(
            "SELECT k.wallet_id, {KEY_INFO_COLUMNS}, {SEALED_COLUMNS} FROM wallet_keys k \
             WHERE k.kek_version < $1"
        );
        let query = match after {
            Some(cursor) => diesel::sql_query(format!(
                "{select} AND (k.wallet_id, k.version) > ($2, $3) \
                 ORDER BY k.wallet_id, k.version LIMIT $4"
            ))
            .into_boxed::<Pg>()
            .bind::<BigInt, _>(below)
            .bind::<Text, _>(cursor.wallet_id.as_str().to_owned())
            .bind::<BigInt, _>(i64::from(cursor.version))
            .bind::<BigInt, _>(limit),
            None => diesel::sql_query(format!("{select} ORDER BY k.wallet_id, k.version LIMIT $2"))
                .into_boxed::<Pg>()
                .bind::<BigInt, _>(below)
                .bind::<BigInt, _>(limit),
        };
        let mut conn = self.conn().await?;
        let rows: Vec<KeyRow> = query.load(&mut conn).await.map_err(query_failed)?;
        rows.into_iter()
            .map(|row| {
                let id = WalletId::new(row.wallet_id)
                    .map_err(|_| corrupt("wallet_keys", "wallet_id"))?;
                decode_key(id, row.key, row.sealed)
            })
            .collect()
    }

    async fn count_keys_to_rewrap(&self, kek_version: u32) -> Result<u64> {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.conn().await?;
        let count: Count =
            diesel::sql_query("SELECT count(*) AS n FROM wallet_keys WHERE kek_version < $1")
                .bind::<BigInt, _>(i64::from(kek_version))
                .get_result(&mut conn)
                .await
                .map_err(query_failed)?;
        u64::try_from(count.n).map_err(|_| corrupt("wallet_keys", "count"))
    }

    async fn replace_wrapped_dek(
        &self,
        id: &WalletId,
        version: u32,
        expected: &WrappedDek,
        new: &WrappedDek,
    ) -> Result<bool> {
        #[derive(QueryableByName)]
        struct Outcome {
            #[diesel(sql_type = Bool)]
            replaced: bool,
            #[diesel(sql_type = Bool)]
            present: bool,
        }
        let version_i32 = to_i32("key version", version)?;
        let new_kek = to_i32("KEK version", new.kek_version)?;
        // An expected version that cannot be stored matches no row: compare as BIGINT.
        let outcome: Outcome = diesel::sql_query(
            "WITH replaced AS (UPDATE wallet_keys SET wrapped_dek = $5, kek_version = $6 \
             WHERE wallet_id = $1 AND version = $2 AND wrapped_dek = $3 AND kek_version = $4 \
             RETURNING 1) \
             SELECT EXISTS (SELECT 1 FROM replaced) AS replaced, \
             EXISTS (SELECT 1 FROM wallet_keys WHERE wallet_id = $1 AND version = $2) AS present",
        )
        .bind::<Text, _>(id.as_str())
        .bind::<Integer, _>(version_i32)
        .bind::<Bytea, _>(expected.ciphertext.as_slice())
        .bind::<BigInt, _>(i64::from(expected.kek_version))
        .bind::<Bytea, _>(new.ciphertext.as_slice())
        .bind::<Integer, _>(new_kek)
        .get_result(&mut self.conn().await?)
        .await
        .map_err(query_failed)?;
        match (outcome.replaced, outcome.present) {
            (true, _) => Ok(true),
            (false, true) => Ok(false),
            (false, false) => Err(Error::KeyNotFound {
                id: id.clone(),
                version,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_split_and_join_exactly() {
        let at = DateTime::<Utc>::from_timestamp(1_790_000_000, 123_456_789).unwrap_or_default();
        let (micros, sub) = split_time(at);
        assert_eq!(sub, 789);
        assert_eq!(micros.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(join_time(micros, sub), at);
    }
}

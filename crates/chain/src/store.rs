//! The `transactions` record and its storage trait.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use alloy::primitives::{Address, B256, Bytes, U256};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a transaction does on the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    /// `mint(to, amount)` by the minter wallet.
    Mint,
    /// `burn(amount)` of the sending wallet's own tokens.
    Burn,
    /// `transfer(to, amount)` from the sending wallet.
    Transfer,
    /// `custodianBurn(holder, amount)`: the sending wallet (holding `CUSTODIAN_ROLE`) burns
    /// a custodial holder's tokens; the holder sends nothing and needs no ETH.
    BurnFrom,
    /// `custodianTransfer(holder, to, amount)`: the sending wallet (holding
    /// `CUSTODIAN_ROLE`) moves a custodial holder's tokens to `to`.
    TransferFrom,
}

impl TxKind {
    /// Every kind.
    pub const ALL: [TxKind; 5] = [
        TxKind::Mint,
        TxKind::Burn,
        TxKind::Transfer,
        TxKind::BurnFrom,
        TxKind::TransferFrom,
    ];

    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TxKind::Mint => "mint",
            TxKind::Burn => "burn",
            TxKind::Transfer => "transfer",
            TxKind::BurnFrom => "burn_from",
            TxKind::TransferFrom => "transfer_from",
        }
    }

    /// The kind stored as `name` ([`as_str`](Self::as_str) read back).
    pub fn parse(name: &str) -> Option<TxKind> {
        TxKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the tokens come from a custodial holder rather than the sending wallet
    /// (`burn_from`, `transfer_from`): such a record names its [`TxRecord::holder`].
    pub fn needs_holder(self) -> bool {
        matches!(self, TxKind::BurnFrom | TxKind::TransferFrom)
    }

    /// Whether the transaction has a recipient (`mint`, `transfer`, `transfer_from`).
    pub fn needs_recipient(self) -> bool {
        matches!(self, TxKind::Mint | TxKind::Transfer | TxKind::TransferFrom)
    }
}

/// Where a transaction is in its life.
///
/// `queued → signed → broadcast → confirmed | failed | replaced`; a confirmed transaction
/// whose block disappeared goes back to `broadcast`, and an operator retry moves `failed`
/// back to `queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// Recorded; no signed transaction yet.
    Queued,
    /// Signed and durably recorded (nonce committed); not yet accepted by a node.
    Signed,
    /// Accepted by a node; waiting for enough confirmations.
    Broadcast,
    /// Mined with status 1 and at least the configured confirmation depth.
    Confirmed,
    /// Mined with status 0, or given up.
    Failed,
    /// The nonce was consumed by a transaction that is not one of ours.
    Replaced,
}

impl TxStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [TxStatus; 6] = [
        TxStatus::Queued,
        TxStatus::Signed,
        TxStatus::Broadcast,
        TxStatus::Confirmed,
        TxStatus::Failed,
        TxStatus::Replaced,
    ];

    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TxStatus::Queued => "queued",
            TxStatus::Signed => "signed",
            TxStatus::Broadcast => "broadcast",
            TxStatus::Confirmed => "confirmed",
            TxStatus::Failed => "failed",
            TxStatus::Replaced => "replaced",
        }
    }

    /// Whether the lifecycle allows going from `self` to `next`.
    pub fn can_become(self, next: TxStatus) -> bool {
        use TxStatus::*;
        matches!(
            (self, next),
            (Queued, Signed)
                | (Queued, Failed)
                | (Signed, Broadcast)
                | (Signed, Failed)
                | (Broadcast, Broadcast)
                | (Broadcast, Confirmed)
                | (Broadcast, Failed)
                | (Broadcast, Replaced)
                | (Confirmed, Broadcast)
                | (Failed, Queued)
        )
    }

    /// Not finished yet: queued, signed or broadcast.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            TxStatus::Queued | TxStatus::Signed | TxStatus::Broadcast
        )
    }
}

impl fmt::Display for TxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `transactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// Caller-chosen idempotency key, e.g. `booking:42:mint`. Unique.
    pub tx_id: String,
    /// What it does.
    pub kind: TxKind,
    /// Chain id.
    pub chain_id: u64,
    /// The token contract.
    pub token: Address,
    /// The sending (signing) wallet's address.
    pub from: Address,
    /// Recipient for mint, transfer and transfer_from; `None` for burn and burn_from.
    pub to: Option<Address>,
    /// The custodial account the tokens come from, for burn_from and transfer_from; `None`
    /// for mint, burn and transfer (the tokens are minted or are the sending wallet's own).
    #[serde(default)]
    pub holder: Option<Address>,
    /// Token amount in base units.
    pub amount: U256,
    /// Lifecycle status.
    pub status: TxStatus,
    /// The nonce, once signed.
    pub nonce: Option<u64>,
    /// Hash of the current signed transaction.
    pub hash: Option<B256>,
    /// The current signed transaction (EIP-2718 bytes), rebroadcast verbatim on retry.
    pub raw: Option<Bytes>,
    /// Hashes of earlier signed versions with the same nonce (fee-bumped replacements).
    pub previous_hashes: Vec<B256>,
    /// Gas limit of the signed transaction.
    pub gas_limit: u64,
    /// EIP-1559 max fee per gas of the current signed transaction.
    pub max_fee_per_gas: Option<u128>,
    /// EIP-1559 priority fee of the current signed transaction.
    pub max_priority_fee_per_gas: Option<u128>,
    /// Broadcast attempts so far.
    pub attempts: u32,
    /// Fee-bumped replacements so far.
    pub replacements: u32,
    /// Confirmations of it that a reorg undid so far. Mints and burns are counted in the
    /// business metrics only when confirmed while this is 0.
    pub reorgs: u32,
    /// The last error, for operators.
    pub error: Option<String>,
    /// Block of the receipt, once mined.
    pub block_number: Option<u64>,
    /// Hash of that block, to detect reorgs.
    pub block_hash: Option<B256>,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Last (re)broadcast, replacement included.
    pub broadcast_at: Option<DateTime<Utc>>,
    /// When it reached `confirmed`.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version: 1 on insert, +1 on every update.
    pub version: u64,
    /// The nonce lease the current signed version was signed under (committed before any
    /// broadcast; see [`TokenOps`](crate::TokenOps) on crash safety).
    pub nonce_lease: Option<haven_nonce::LeaseId>,
}

impl TxRecord {
    /// A fresh `queued` record, without a [`holder`](Self::holder) (see
    /// [`with_holder`](Self::with_holder)).
    #[allow(clippy::too_many_arguments)]
    pub fn queued(
        tx_id: impl Into<String>,
        kind: TxKind,
        chain_id: u64,
        token: Address,
        from: Address,
        to: Option<Address>,
        amount: U256,
        gas_limit: u64,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            tx_id: tx_id.into(),
            kind,
            chain_id,
            token,
            from,
            to,
            holder: None,
            amount,
            status: TxStatus::Queued,
            nonce: None,
            hash: None,
            raw: None,
            previous_hashes: Vec::new(),
            gas_limit,
            max_fee_per_gas: None,
            max_priority_fee_per_gas: None,
            attempts: 0,
            replacements: 0,
            reorgs: 0,
            error: None,
            block_number: None,
            block_hash: None,
            created_at: now,
            updated_at: now,
            broadcast_at: None,
            confirmed_at: None,
            version: 1,
            nonce_lease: None,
        }
    }

    /// The record with `holder` as the custodial account the tokens come from.
    pub fn with_holder(mut self, holder: Option<Address>) -> Self {
        self.holder = holder;
        self
    }

    /// Whether `other` asks for the same thing (same tx_id, kind, parties — holder
    /// included — and amount).
    pub fn same_request(&self, other: &TxRecord) -> bool {
        self.tx_id == other.tx_id
            && self.kind == other.kind
            && self.chain_id == other.chain_id
            && self.token == other.token
            && self.from == other.from
            && self.to == other.to
            && self.holder == other.holder
            && self.amount == other.amount
    }
}

/// The result of [`TxStore::insert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The tx_id was new; the caller owns driving it.
    New(TxRecord),
    /// The tx_id existed; this is the stored record, untouched.
    Existing(TxRecord),
}

/// Storage for `transactions`.
///
/// **Invariants** every implementation keeps:
/// - `tx_id` is unique: of any number of concurrent [`insert`](TxStore::insert)s of one
///   tx_id exactly one returns [`Inserted::New`]; it is the arbiter of exactly-once.
/// - [`update`](TxStore::update) is a compare-and-set on `version`: it writes only if the
///   stored version is `record.version - 1`, so of two writers racing from the same
///   version one wins and the other gets `false`. A signed raw transaction, once stored,
///   is therefore never silently overwritten by a second signing.
/// - Lists are ordered by `created_at`, then `tx_id`.
#[async_trait]
pub trait TxStore: Send + Sync + fmt::Debug {
    /// Inserts `record` (version 1) unless its tx_id exists.
    async fn insert(&self, record: TxRecord) -> Result<Inserted>;
    /// The record with this tx_id.
    async fn get(&self, tx_id: &str) -> Result<Option<TxRecord>>;
    /// Replaces the stored record if its version is `record.version - 1`; `false` if not
    /// (or if the tx_id does not exist).
    async fn update(&self, record: &TxRecord) -> Result<bool>;
    /// Up to `limit` records in `status`, oldest first.
    async fn list_by_status(&self, status: TxStatus, limit: usize) -> Result<Vec<TxRecord>>;
    /// How many records are in each status (statuses with none may be absent).
    async fn count_by_status(&self) -> Result<HashMap<TxStatus, u64>>;
}

/// A [`TxStore`] in process memory: tests, tools, single-process setups.
#[derive(Debug, Default)]
pub struct MemoryTxStore {
    rows: Mutex<HashMap<String, TxRecord>>,
}

impl MemoryTxStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn rows(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, TxRecord>>> {
        self.rows.lock().map_err(|_| Error::Store {
            operation: "lock",
            source: "memory store mutex poisoned".into(),
        })
    }
}

#[async_trait]
impl TxStore for MemoryTxStore {
    async fn insert(&self, mut record: TxRecord) -> Result<Inserted> {
        let mut rows = self.rows()?;
        if let Some(existing) = rows.get(&record.tx_id) {
            return Ok(Inserted::Existing(existing.clone()));
        }
        record.version = 1;
        rows.insert(record.tx_id.clone(), record.clone());
        Ok(Inserted::New(record))
    }

    async fn get(&self, tx_id: &str) -> Result<Option<TxRecord>> {
        Ok(self.rows()?.get(tx_id).cloned())
    }

    async fn update(&self, record: &TxRecord) -> Result<bool> {
        let mut rows = self.rows()?;
        match rows.get_mut(&record.tx_id) {
            Some(stored) if stored.version + 1 == record.version => {
                *stored = record.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list_by_status(&self, status: TxStatus, limit: usize) -> Result<Vec<TxRecord>> {
        let rows = self.rows()?;
        let mut found: Vec<TxRecord> = rows
            .values()
            .filter(|r| r.status == status)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.tx_id).cmp(&(b.created_at, &b.tx_id)));
        found.truncate(limit);
        Ok(found)
    }

    async fn count_by_status(&self) -> Result<HashMap<TxStatus, u64>> {
        let rows = self.rows()?;
        let mut counts = HashMap::new();
        for r in rows.values() {
            *counts.entry(r.status).or_insert(0) += 1;
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_stored_names() {
        for kind in TxKind::ALL {
            assert_eq!(TxKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(TxKind::parse("burnFrom"), None);
        assert_eq!(TxKind::parse("approve"), None);
    }

    #[test]
    fn another_holder_is_another_request() {
        let holder = Address::repeat_byte(0x11);
        let base = TxRecord::queued(
            "booking:7:reverse",
            TxKind::BurnFrom,
            1,
            Address::repeat_byte(0xaa),
            Address::repeat_byte(0xbb),
            None,
            U256::from(5u64),
            70_000,
            Utc::now(),
        )
        .with_holder(Some(holder));
        assert!(base.same_request(&base.clone()));
        let other = base.clone().with_holder(Some(Address::repeat_byte(0x12)));
        assert!(!base.same_request(&other));
        assert!(!base.same_request(&base.clone().with_holder(None)));
    }
}

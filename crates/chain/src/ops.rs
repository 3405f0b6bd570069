//! [`TokenOps`]: exactly-once mint, burn and transfer, and burn and transfer of a custodial
//! holder's tokens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::consensus::{TxEip1559, TypedTransaction};
use alloy::eips::eip2718::Encodable2718;
use alloy::primitives::{Address, B256, Bytes, TxKind as CallTarget, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::SolCall;
use alloy::transports::TransportError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use haven_custody::{Caller, Custody, KeyRef, WalletId};
use haven_nonce::{ChainNonceSource, Lease, NonceKey, NonceManager, NonceStore};
use haven_resilience::{Breaker, BreakerExt, CallError, Outcome};
use serde::{Deserialize, Serialize};

use crate::alert::{ChainAlert, ChainAlertSink};
use crate::fees::{self, FeePolicy, Fees};
use crate::store::{Inserted, TxKind, TxRecord, TxStatus, TxStore};
use crate::token::HavenToken;
use crate::{Error, Result};

/// Settings of [`TokenOps`] and its monitoring cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainConfig {
    /// Fee floor and cap.
    pub fees: FeePolicy,
    /// Gas limit of a mint (fixed, so building a transaction costs no estimate call).
    pub mint_gas: u64,
    /// Gas limit of a burn.
    pub burn_gas: u64,
    /// Gas limit of a transfer.
    pub transfer_gas: u64,
    /// Gas limit of a `burn_from` (`custodianBurn`). Default 90 000: on anvil it takes at
    /// most 36 512 gas (`eth_estimateGas`; burning the holder's whole balance, the costliest
    /// case before the refund).
    pub burn_from_gas: u64,
    /// Gas limit of a `transfer_from` (`custodianTransfer`). Default 100 000: on anvil it
    /// takes at most 54 005 gas (to an address that held no tokens: a fresh storage slot),
    /// 37 121 to an existing holder.
    pub transfer_from_gas: u64,
    /// A broadcast transaction without a receipt for this long is stuck: alert and replace.
    /// Each further replacement waits twice as long as the one before.
    pub pending_threshold: Duration,
    /// Fee-bumped replacements per transaction before giving up on bumping.
    pub max_replacements: u32,
    /// Blocks (the receipt's included) before a transaction counts as confirmed.
    pub confirmations: u64,
    /// Confirmed transactions in this many most recent blocks are re-checked for reorgs.
    pub reorg_window: u64,
    /// A `queued` record untouched this long was abandoned (its submitter crashed before
    /// signing) and the monitoring cycle drives it.
    pub queued_grace: Duration,
    /// A gas price at least this many times the baseline raises [`ChainAlert::GasSpike`].
    pub gas_spike_ratio: f64,
    /// The gas price baseline (wei); `None` takes the first observed plausible price and
    /// then follows non-spiking prices with a slow moving average.
    pub gas_baseline: Option<u128>,
    /// The highest gas price (wei) taken as a market price; above it (or at zero, or when
    /// the node gives none) the reading is a data-quality fault
    /// ([`ChainAlert::GasDataQuality`]) that never moves the baseline. Default 10^6 gwei.
    pub max_plausible_gas_price: u128,
    /// Nonce lease lifetime: longer than signing and recording take.
    pub lease_ttl: Duration,
    /// Records one cycle looks at per status.
    pub batch: usize,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            fees: FeePolicy::default(),
            mint_gas: 120_000,
            burn_gas: 90_000,
            transfer_gas: 90_000,
            burn_from_gas: 90_000,
            transfer_from_gas: 100_000,
            pending_threshold: Duration::from_secs(300),
            max_replacements: 5,
            confirmations: 1,
            reorg_window: 64,
            queued_grace: Duration::from_secs(60),
            gas_spike_ratio: 2.0,
            gas_baseline: None,
            max_plausible_gas_price: 1_000_000 * 1_000_000_000,
            lease_ttl: Duration::from_secs(60),
            batch: 500,
        }
    }
}

/// What to do: the body of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRequest {
    /// Idempotency key, unique across `transactions`.
    pub tx_id: String,
    /// Mint, burn, transfer, burn_from or transfer_from.
    pub kind: TxKind,
    /// Recipient (mint, transfer, transfer_from); ignored for burn and burn_from.
    pub to: Option<Address>,
    /// The custodial account the tokens come from (burn_from, transfer_from); ignored for
    /// mint, burn and transfer.
    #[serde(default)]
    pub holder: Option<Address>,
    /// Amount in base units.
    pub amount: U256,
}

/// Everything [`TokenOps`] works with.
#[derive(Debug, Clone)]
pub struct TokenOpsParts {
    /// A plain provider (no wallet: signing goes through custody).
    pub provider: DynProvider,
    /// Chain id the transactions are signed for.
    pub chain_id: u64,
    /// The HAVEN token contract.
    pub token: Address,
    /// Custody holding the sending wallet.
    pub custody: Arc<Custody>,
    /// The sending wallet (the minter for mints).
    pub wallet: WalletId,
    /// Who custody's audit log records as signing.
    pub caller: Caller,
    /// Nonce leases.
    pub nonces: Arc<dyn NonceStore>,
    /// Breaker around every call to the node.
    pub breaker: Arc<dyn Breaker>,
    /// The `transactions` store.
    pub store: Arc<dyn TxStore>,
    /// Where monitoring alerts go.
    pub alerts: Arc<dyn ChainAlertSink>,
}

/// Interrupts a submission at a chosen stage, to prove recovery from a crash there.
#[cfg(feature = "test-utils")]
pub trait FaultHook: Send + Sync + std::fmt::Debug {
    /// Called after the signed transaction was recorded and before it is broadcast;
    /// `true` stops the submission there as if the process had died.
    fn stop_after_signed(&self, record: &TxRecord) -> bool;
}

/// What one [`TokenOps::monitor_once`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorReport {
    /// Abandoned queued records driven to signed/broadcast.
    pub resumed: u32,
    /// Signed records (re)broadcast.
    pub rebroadcast: u32,
    /// Stuck transactions replaced with bumped fees.
    pub replaced: u32,
    /// Records that reached `confirmed`.
    pub confirmed: u32,
    /// Records that reached `failed`.
    pub failed: u32,
    /// Records whose nonce was used by a foreign transaction.
    pub nonce_taken: u32,
    /// Confirmed records moved back to `broadcast` by a reorg.
    pub reorged: u32,
    /// The node's gas price, if it answered.
    pub gas_price: Option<u128>,
    /// Alerts raised.
    pub alerts: u32,
    /// Per-record errors (the cycle goes on past them), as `tx_id: message`.
    pub errors: Vec<String>,
}

/// The operator summary behind `GET /api/v1/admin/transactions/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSummary {
    /// Queued, signed or broadcast.
    pub pending: u64,
    /// Broadcast longer than the pending threshold ago.
    pub stuck: u64,
    /// Failed.
    pub failed: u64,
    /// Confirmed.
    pub confirmed: u64,
    /// Current gas price (wei), if the node answered.
    pub gas_price: Option<u128>,
}

/// Builds, signs, records and broadcasts HAVEN token transactions exactly once per `tx_id`,
/// and runs the monitoring cycle over them.
///
/// **Invariants:**
/// - one `tx_id`, at most one signed nonce: the store's unique insert decides who signs,
///   and its version check refuses a second signed transaction for the same record;
/// - a recorded signed transaction is only ever rebroadcast byte for byte, or replaced by
///   one with the same nonce and fees at least 12.5 % higher;
/// - a nonce lease is committed only after the signed transaction is durably recorded, and
///   released when signing or recording failed (it never left the process);
/// - the private key never leaves custody.
#[derive(Debug, Clone)]
pub struct TokenOps {
    inner: Arc<Inner>,
}

/// The gas baseline and whether the feed is currently faulty.
#[derive(Debug, Default)]
struct GasWatch {
    baseline: Option<u128>,
    faulty: bool,
}

impl GasWatch {
    /// Compares a gas reading with the baseline. An absent, zero or implausible reading is a
    /// data-quality fault, reported once until a plausible reading returns, and never moves
    /// the baseline; only plausible, non-spiking prices feed the moving average.
    fn observe(&mut self, price: Option<u128>, config: &ChainConfig) -> Option<ChainAlert> {
        let max_plausible = config.max_plausible_gas_price;
        let Some(price) = price.filter(|p| *p > 0 && *p <= max_plausible) else {
            let first = !self.faulty;
            self.faulty = true;
            return first.then_some(ChainAlert::GasDataQuality {
                gas_price: price,
                max_plausible,
            });
        };
        self.faulty = false;
        let Some(base) = self.baseline else {
            self.baseline = Some(price);
            return None;
        };
        if price as f64 >= base as f64 * config.gas_spike_ratio {
            return Some(ChainAlert::GasSpike {
                gas_price: price,
                baseline: base,
            });
        }
        if config.gas_baseline.is_none() {
            self.baseline = Some((base.saturating_mul(7).saturating_add(price)) / 8);
        }
        None
    }
}

#[derive(Debug)]
struct Inner {
    parts: TokenOpsParts,
    config: ChainConfig,
    key: KeyRef,
    from: Address,
    nonce_key: NonceKey,
    nonces: NonceManager,
    gas_baseline: Mutex<GasWatch>,
    #[cfg(feature = "test-utils")]
    fault: Mutex<Option<Arc<dyn FaultHook>>>,
}

/// Reads the pending nonce through the RPC breaker, so a dead node opens it.
#[derive(Debug)]
struct BreakerNonceSource {
    provider: DynProvider,
    breaker: Arc<dyn Breaker>,
}

#[async_trait]
impl ChainNonceSource for BreakerNonceSource {
    async fn pending_nonce(&self, chain_id: u64, address: [u8; 20]) -> haven_nonce::Result<u64> {
        let provider = &self.provider;
        self.breaker
            .call_classified(transport_outcome, || async move {
                provider
                    .get_transaction_count(Address::from(address))
                    .pending()
                    .await
            })
            .await
            .map_err(|e| haven_nonce::Error::ChainUnavailable {
                chain_id,
                source: match e {
                    CallError::Resilience(e) => Box::new(e),
                    CallError::Operation(e) => Box::new(e),
                },
            })
    }
}

/// Only transport failures count against the breaker: a node that answers with a JSON-RPC
/// error (nonce too low, underpriced) is healthy.
fn transport_outcome<T>(result: &std::result::Result<T, TransportError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(e) if e.is_error_resp() => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

impl TokenOps {
    /// Resolves the wallet's address through custody and wires the nonce manager.
    pub async fn new(parts: TokenOpsParts, config: ChainConfig) -> Result<Self> {
        if config.confirmations == 0 {
            return Err(Error::InvalidConfig {
                field: "confirmations",
                reason: "must be at least 1",
            });
        }
        if config.gas_spike_ratio.is_nan() || config.gas_spike_ratio <= 1.0 {
            return Err(Error::InvalidConfig {
                field: "gas_spike_ratio",
                reason: "must be greater than 1",
            });
        }
        let signer = parts
            .custody
            .signer(&parts.wallet, parts.caller.clone())
            .await?;
        let from = alloy::signers::Signer::address(&signer);
        let key = signer.key().clone();
        let nonce_key = NonceKey::new(parts.chain_id, from);
        let source = BreakerNonceSource {
            provider: parts.provider.clone(),
            breaker: parts.breaker.clone(),
        };
        let nonces = NonceManager::new(parts.nonces.clone(), Arc::new(source), config.lease_ttl);
        Ok(Self {
            inner: Arc::new(Inner {
                gas_baseline: Mutex::new(GasWatch {
                    baseline: config.gas_baseline,
                    faulty: false,
                }),
                parts,
                config,
                key,
                from,
                nonce_key,
                nonces,
                #[cfg(feature = "test-utils")]
                fault: Mutex::new(None),
            }),
        })
    }

    /// The sending wallet's address.
    pub fn from_address(&self) -> Address {
        self.inner.from
    }

    /// The token contract.
    pub fn token(&self) -> Address {
        self.inner.parts.token
    }

    /// The settings.
    pub fn config(&self) -> &ChainConfig {
        &self.inner.config
    }

    /// Installs a fault hook (tests only).
    #[cfg(feature = "test-utils")]
    pub fn set_fault_hook(&self, hook: Option<Arc<dyn FaultHook>>) {
        if let Ok(mut slot) = self.inner.fault.lock() {
            *slot = hook;
        }
    }

    /// Mints `amount` to `to` once per `tx_id`.
    pub async fn mint(&self, tx_id: &str, to: Address, amount: U256) -> Result<TxRecord> {
        self.submit(TxRequest {
            tx_id: tx_id.to_owned(),
            kind: TxKind::Mint,
            to: Some(to),
            holder: None,
            amount,
        })
        .await
    }

    /// Burns `amount` of the wallet's own tokens once per `tx_id`.
    pub async fn burn(&self, tx_id: &str, amount: U256) -> Result<TxRecord> {
        self.submit(TxRequest {
            tx_id: tx_id.to_owned(),
            kind: TxKind::Burn,
            to: None,
            holder: None,
            amount,
        })
        .await
    }

    /// Transfers `amount` from the wallet to `to` once per `tx_id`.
    pub async fn transfer(&self, tx_id: &str, to: Address, amount: U256) -> Result<TxRecord> {
        self.submit(TxRequest {
            tx_id: tx_id.to_owned(),
            kind: TxKind::Transfer,
            to: Some(to),
            holder: None,
            amount,
        })
        .await
    }

    /// Burns `amount` of the custodial `holder`'s tokens once per `tx_id` (e.g. reversing a
    /// reward), with `custodianBurn`: the wallet signs and pays the gas, so `holder` never
    /// sends a transaction nor needs ETH. The wallet must hold `CUSTODIAN_ROLE`; a burn
    /// above the holder's balance is mined, reverts and ends `failed`.
    pub async fn burn_from(&self, tx_id: &str, holder: Address, amount: U256) -> Result<TxRecord> {
        self.submit(TxRequest {
            tx_id: tx_id.to_owned(),
            kind: TxKind::BurnFrom,
            to: None,
            holder: Some(holder),
            amount,
        })
        .await
    }

    /// Moves `amount` of the custodial `holder`'s tokens to `to` once per `tx_id` (e.g. a
    /// withdrawal to the member's external address), with `custodianTransfer`: the wallet
    /// signs and pays the gas, `holder` sends nothing. The wallet must hold
    /// `CUSTODIAN_ROLE`.
    pub async fn transfer_from(
        &self,
        tx_id: &str,
        holder: Address,
        to: Address,
        amount: U256,
    ) -> Result<TxRecord> {
        self.submit(TxRequest {
            tx_id: tx_id.to_owned(),
            kind: TxKind::TransferFrom,
            to: Some(to),
            holder: Some(holder),
            amount,
        })
        .await
    }

    /// The token balance of `who`, read through the RPC breaker (latest block).
    pub async fn balance_of(&self, who: Address) -> Result<U256> {
        self.read(HavenToken::balanceOfCall { account: who }).await
    }

    /// The token's total supply, read through the RPC breaker (latest block).
    pub async fn total_supply(&self) -> Result<U256> {
        self.read(HavenToken::totalSupplyCall {}).await
    }

    /// `eth_call`s a view function of the token and decodes its return value.
    async fn read<C: SolCall + Send + 'static>(&self, call: C) -> Result<C::Return> {
        let request = alloy::rpc::types::TransactionRequest::default()
            .to(self.inner.parts.token)
            .input(Bytes::from(call.abi_encode()).into());
        let output = self
            .rpc("eth_call", move |p| async move { p.call(request).await })
            .await?;
        C::abi_decode_returns(&output).map_err(|e| Error::rpc("eth_call", e))
    }

    /// Submits a request exactly once.
    ///
    /// A new `tx_id` is recorded `queued`, then signed, recorded `signed` (nonce committed)
    /// and broadcast. A known `tx_id` with the same request returns the stored record,
    /// rebroadcasting its recorded raw transaction if it was signed but never accepted; a
    /// known `tx_id` with a different request fails with [`Error::TxIdReused`].
    ///
    /// When the breaker is open the request is still recorded (`queued`) and
    /// [`Error::CircuitOpen`] returned; the monitoring cycle submits it later.
    ///
    /// A request without the recipient or holder its kind needs fails with
    /// [`Error::InvalidRequest`] before anything is recorded; a recipient or holder its kind
    /// does not use is dropped.
    pub async fn submit(&self, request: TxRequest) -> Result<TxRecord> {
        let inner = &self.inner;
        let kind = request.kind;
        let gas_limit = match kind {
            TxKind::Mint => inner.config.mint_gas,
            TxKind::Burn => inner.config.burn_gas,
            TxKind::Transfer => inner.config.transfer_gas,
            TxKind::BurnFrom => inner.config.burn_from_gas,
            TxKind::TransferFrom => inner.config.transfer_from_gas,
        };
        let to = request.to.filter(|_| kind.needs_recipient());
        let holder = request.holder.filter(|_| kind.needs_holder());
        let missing = if kind.needs_recipient() && to.is_none() {
            Some("the recipient `to` is missing")
        } else if kind.needs_holder() && holder.is_none() {
            Some("the custodial `holder` is missing")
        } else {
            None
        };
        if let Some(reason) = missing {
            return Err(Error::InvalidRequest {
                tx_id: request.tx_id,
                reason,
            });
        }
        let record = TxRecord::queued(
            request.tx_id,
            kind,
            inner.parts.chain_id,
            inner.parts.token,
            inner.from,
            to,
            request.amount,
            gas_limit,
            Utc::now(),
        )
        .with_holder(holder);
        match inner.parts.store.insert(record.clone()).await? {
            Inserted::New(record) => self.sign_and_send(record).await,
            Inserted::Existing(existing) => {
                if !existing.same_request(&record) {
                    return Err(Error::TxIdReused {
                        tx_id: existing.tx_id,
                    });
                }
                match existing.status {
                    TxStatus::Signed => self.broadcast(existing).await,
                    _ => Ok(existing),
                }
            }
        }
    }

    /// The record of `tx_id`.
    pub async fn get(&self, tx_id: &str) -> Result<Option<TxRecord>> {
        self.inner.parts.store.get(tx_id).await
    }

    /// The record of `tx_id` after checking it now, as a monitoring cycle would check this
    /// one transaction: a `broadcast` one whose receipt has the configured confirmations is
    /// recorded `confirmed` (or `failed` when it reverted). A caller waiting for one
    /// transaction (the rewards job) learns of its confirmation without waiting for the next
    /// cycle; a cycle checking it at the same time is harmless (one of the two records it).
    pub async fn refresh(&self, tx_id: &str) -> Result<Option<TxRecord>> {
        let Some(record) = self.get(tx_id).await? else {
            return Ok(None);
        };
        if record.status != TxStatus::Broadcast {
            return Ok(Some(record));
        }
        let latest = self.block_number().await?;
        let mut report = MonitorReport::default();
        match self
            .check_broadcast(record, latest, Utc::now(), &mut report)
            .await
        {
            Ok(()) | Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        self.get(tx_id).await
    }

    /// Operator view: up to `limit` records in `status`, oldest first.
    pub async fn list(&self, status: TxStatus, limit: usize) -> Result<Vec<TxRecord>> {
        self.inner.parts.store.list_by_status(status, limit).await
    }

    /// Operator action: submits a `failed` transaction again with a fresh nonce and fees.
    pub async fn retry(&self, tx_id: &str) -> Result<TxRecord> {
        let store = &self.inner.parts.store;
        let mut record = store.get(tx_id).await?.ok_or_else(|| Error::NotFound {
            tx_id: tx_id.to_owned(),
        })?;
        if record.status != TxStatus::Failed {
            return Err(Error::InvalidTransition {
                tx_id: record.tx_id,
                status: record.status,
                operation: "retry",
            });
        }
        record.status = TxStatus::Queued;
        record.nonce = None;
        record.hash = None;
        record.raw = None;
        record.previous_hashes.clear();
        record.max_fee_per_gas = None;
        record.max_priority_fee_per_gas = None;
        record.replacements = 0;
        record.block_number = None;
        record.block_hash = None;
        record.broadcast_at = None;
        record = self.save(record, Utc::now()).await?;
        self.sign_and_send(record).await
    }

    /// Operator view: counts and the current gas price.
    pub async fn summary(&self, now: DateTime<Utc>) -> Result<TxSummary> {
        let store = &self.inner.parts.store;
        let counts = store.count_by_status().await?;
        let count = |s: TxStatus| counts.get(&s).copied().unwrap_or(0);
        let threshold = chrono_duration(self.inner.config.pending_threshold);
        let stuck = store
            .list_by_status(TxStatus::Broadcast, usize::MAX)
            .await?
            .iter()
            .filter(|r| r.broadcast_at.is_some_and(|at| now - at >= threshold))
            .count() as u64;
        Ok(TxSummary {
            pending: count(TxStatus::Queued) + count(TxStatus::Signed) + count(TxStatus::Broadcast),
            stuck,
            failed: count(TxStatus::Failed),
            confirmed: count(TxStatus::Confirmed),
            gas_price: self.gas_price().await.ok(),
        })
    }

    /// One monitoring cycle at `now` (the worker runs it every minute):
    /// resumes abandoned `queued` records, rebroadcasts `signed` ones, confirms or fails
    /// `broadcast` ones by receipt and depth, replaces stuck ones with bumped fees (same
    /// nonce), moves reorged confirmations back to `broadcast`, and checks the gas price.
    /// Errors on one record are reported and do not stop the cycle.
    pub async fn monitor_once(&self, now: DateTime<Utc>) -> Result<MonitorReport> {
        let mut report = MonitorReport::default();
        let config = &self.inner.config;
        let store = &self.inner.parts.store;

        let price = match self.gas_price().await {
            Ok(price) => Some(price),
            Err(e) => {
                report.errors.push(format!("gas price: {e}"));
                None
            }
        };
        report.gas_price = price;
        if let Some(alert) = self.check_gas(price) {
            self.raise(alert, &mut report).await;
        }

        let grace = chrono_duration(config.queued_grace);
        for record in store.list_by_status(TxStatus::Queued, config.batch).await? {
            if now - record.updated_at < grace {
                continue;
            }
            let tx_id = record.tx_id.clone();
            // Claim it first: of two cycles (or a cycle and a late submitter) one wins.
            let outcome = match self.save(record, now).await {
                Ok(claimed) => self.sign_and_send(claimed).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(_) => report.resumed += 1,
                Err(e) => report.errors.push(format!("{tx_id}: {e}")),
            }
        }

        for record in store.list_by_status(TxStatus::Signed, config.batch).await? {
            let tx_id = record.tx_id.clone();
            match self.broadcast(record).await {
                Ok(_) => report.rebroadcast += 1,
                Err(e) => report.errors.push(format!("{tx_id}: {e}")),
            }
        }

        let latest = self.block_number().await?;
        for record in store
            .list_by_status(TxStatus::Broadcast, config.batch)
            .await?
        {
            let tx_id = record.tx_id.clone();
            if let Err(e) = self.check_broadcast(record, latest, now, &mut report).await {
                report.errors.push(format!("{tx_id}: {e}"));
            }
        }

        let since = latest.saturating_sub(config.reorg_window);
        for record in store
            .list_by_status(TxStatus::Confirmed, usize::MAX)
            .await?
        {
            if record.block_number.is_none_or(|b| b < since) {
                continue;
            }
            let tx_id = record.tx_id.clone();
            if let Err(e) = self.check_reorg(record, now, &mut report).await {
                report.errors.push(format!("{tx_id}: {e}"));
            }
        }
        Ok(report)
    }

    async fn raise(&self, alert: ChainAlert, report: &mut MonitorReport) {
        report.alerts += 1;
        metrics::counter!(crate::metrics::ALERTS, "kind" => alert.kind()).increment(1);
        self.inner.parts.alerts.alert(alert).await;
    }

    fn check_gas(&self, price: Option<u128>) -> Option<ChainAlert> {
        let mut watch = self.inner.gas_baseline.lock().ok()?;
        watch.observe(price, &self.inner.config)
    }

    async fn check_broadcast(
        &self,
        mut record: TxRecord,
        latest: u64,
        now: DateTime<Utc>,
        report: &mut MonitorReport,
    ) -> Result<()> {
        let config = &self.inner.config;
        let mut hashes: Vec<B256> = record.hash.into_iter().collect();
        hashes.extend(record.previous_hashes.iter().rev().copied());
        for hash in hashes {
            let Some(receipt) = self.receipt(hash).await? else {
                continue;
            };
            let Some(block) = receipt.block_number else {
                continue;
            };
            if latest + 1 < block + config.confirmations {
                return Ok(());
            }
            record.hash = Some(hash);
            record.block_number = Some(block);
            record.block_hash = receipt.block_hash;
            if receipt.status() {
                record.status = TxStatus::Confirmed;
                record.confirmed_at = Some(now);
                record.error = None;
                let (kind, reorged_before) = (record.kind, record.reorgs > 0);
                // Counted only after this cycle's compare-and-set won the move to
                // `confirmed`: a record is confirmed once, by one cycle in one process; a
                // confirmation made anew after a reorg was counted the first time.
                self.save(record, now).await?;
                report.confirmed += 1;
                let confirmed = match kind {
                    _ if reorged_before => None,
                    TxKind::Mint => Some(crate::metrics::TOKENS_MINTED),
                    TxKind::Burn | TxKind::BurnFrom => Some(crate::metrics::TOKENS_BURNED),
                    TxKind::Transfer | TxKind::TransferFrom => None,
                };
                if let Some(name) = confirmed {
                    metrics::counter!(name).increment(1);
                }
            } else {
                record.status = TxStatus::Failed;
                record.error = Some("reverted (receipt status 0)".to_owned());
                let tx_id = record.tx_id.clone();
                self.save(record, now).await?;
                report.failed += 1;
                self.raise(
                    ChainAlert::Failed {
                        tx_id,
                        hash,
                        block_number: block,
                    },
                    report,
                )
                .await;
            }
            return Ok(());
        }

        // No receipt for any of our versions.
        let Some(since) = record.broadcast_at else {
            return Ok(());
        };
        let wait = config
            .pending_threshold
            .saturating_mul(1u32 << record.replacements.min(16));
        if now - since < chrono_duration(wait) {
            return Ok(());
        }
        let Some(nonce) = record.nonce else {
            return Ok(());
        };
        if self.mined_nonce().await? > nonce {
            // Our nonce was mined but none of our hashes: a foreign transaction took it.
            // Re-check our hashes first, a receipt may have appeared meanwhile.
            for hash in record.hash.iter().chain(record.previous_hashes.iter()) {
                if self.receipt(*hash).await?.is_some() {
                    return Ok(());
                }
            }
            record.status = TxStatus::Replaced;
            record.error = Some(format!("nonce {nonce} used by another transaction"));
            self.save(record, now).await?;
            report.nonce_taken += 1;
            return Ok(());
        }
        if record.replacements == 0 {
            self.raise(
                ChainAlert::Stuck {
                    tx_id: record.tx_id.clone(),
                    nonce,
                    pending_for: (now - since).to_std().unwrap_or_default(),
                },
                report,
            )
            .await;
        }
        let old = Fees {
            max_fee_per_gas: record.max_fee_per_gas.unwrap_or(0),
            max_priority_fee_per_gas: record.max_priority_fee_per_gas.unwrap_or(0),
        };
        let bumped = if record.replacements >= config.max_replacements {
            None
        } else {
            fees::bump(old, self.current_fees().await?, &config.fees)
        };
        let Some(bumped) = bumped else {
            if record.replacements < config.max_replacements || record.error.is_none() {
                self.raise(
                    ChainAlert::ReplacementExhausted {
                        tx_id: record.tx_id.clone(),
                        replacements: record.replacements,
                    },
                    report,
                )
                .await;
            }
            // Keep the current version alive in the pool.
            record.error = Some("replacement exhausted; rebroadcasting".to_owned());
            record.broadcast_at = Some(now);
            let record = self.save(record, now).await?;
            self.send(record).await?;
            return Ok(());
        };
        let (hash, raw) = self.sign(&record, nonce, bumped).await?;
        if let Some(old_hash) = record.hash {
            record.previous_hashes.push(old_hash);
        }
        record.hash = Some(hash);
        record.raw = Some(raw);
        record.max_fee_per_gas = Some(bumped.max_fee_per_gas);
        record.max_priority_fee_per_gas = Some(bumped.max_priority_fee_per_gas);
        record.replacements += 1;
        record.broadcast_at = Some(now);
        let record = self.save(record, now).await?;
        report.replaced += 1;
        self.send(record).await?;
        Ok(())
    }

    async fn check_reorg(
        &self,
        mut record: TxRecord,
        now: DateTime<Utc>,
        report: &mut MonitorReport,
    ) -> Result<()> {
        let Some(hash) = record.hash else {
            return Ok(());
        };
        let receipt = self.receipt(hash).await?;
        let still_there = receipt.is_some_and(|r| r.block_hash == record.block_hash);
        if still_there {
            return Ok(());
        }
        let block_number = record.block_number.unwrap_or_default();
        record.status = TxStatus::Broadcast;
        record.block_number = None;
        record.block_hash = None;
        record.confirmed_at = None;
        record.reorgs = record.reorgs.saturating_add(1);
        record.broadcast_at = Some(now);
        record.error = Some(format!("block {block_number} left the chain"));
        let tx_id = record.tx_id.clone();
        let record = self.save(record, now).await?;
        report.reorged += 1;
        self.raise(
            ChainAlert::Reorged {
                tx_id,
                block_number,
            },
            report,
        )
        .await;
        // The reorg may have dropped it from the pool too.
        self.send(record).await
    }

    /// Writes `record` with the next version; [`Error::Conflict`] if someone else did first.
    async fn save(&self, mut record: TxRecord, now: DateTime<Utc>) -> Result<TxRecord> {
        record.version += 1;
        record.updated_at = now;
        if self.inner.parts.store.update(&record).await? {
            Ok(record)
        } else {
            Err(Error::Conflict {
                tx_id: record.tx_id,
            })
        }
    }

    /// Signs a `queued` record this caller owns, records it, commits the nonce, broadcasts.
    async fn sign_and_send(&self, mut record: TxRecord) -> Result<TxRecord> {
        let inner = &self.inner;
        // Fail fast while the node is known to be down; the record stays queued.
        drop(inner.parts.breaker.acquire().await?);
        let fees = self.current_fees().await?;
        let lease = inner.nonces.reserve(&inner.nonce_key).await?;
        let signed = self.sign(&record, lease.nonce, fees).await;
        let (hash, raw) = match signed {
            Ok(signed) => signed,
            Err(e) => return Err(self.release(&lease, e).await),
        };
        record.status = TxStatus::Signed;
        record.nonce = Some(lease.nonce);
        record.hash = Some(hash);
        record.raw = Some(raw);
        record.max_fee_per_gas = Some(fees.max_fee_per_gas);
        record.max_priority_fee_per_gas = Some(fees.max_priority_fee_per_gas);
        let record = match self.save(record, Utc::now()).await {
            Ok(record) => record,
            Err(e) => return Err(self.release(&lease, e).await),
        };
        // Durably recorded: from here on the nonce belongs to this record.
        inner.nonces.commit(&lease).await?;

        #[cfg(feature = "test-utils")]
        {
            let hook = inner.fault.lock().ok().and_then(|h| h.clone());
            if hook.is_some_and(|h| h.stop_after_signed(&record)) {
                return Err(Error::Interrupted {
                    tx_id: record.tx_id,
                    stage: "signed",
                });
            }
        }
        self.broadcast(record).await
    }

    async fn release(&self, lease: &Lease, error: Error) -> Error {
        if let Err(release_error) = self.inner.nonces.release(lease).await {
            tracing::warn!(error = %release_error, nonce = lease.nonce, "nonce release failed; the lease will expire");
        }
        error
    }

    /// Sends a `signed` record's raw transaction and marks it `broadcast`.
    async fn broadcast(&self, record: TxRecord) -> Result<TxRecord> {
        let now = Utc::now();
        match self.send_raw(&record).await {
            Ok(()) => {
                let mut record = record;
                record.status = TxStatus::Broadcast;
                record.attempts += 1;
                record.broadcast_at = Some(now);
                record.error = None;
                let tx_id = record.tx_id.clone();
                match self.save(record, now).await {
                    Ok(record) => Ok(record),
                    // A concurrent rebroadcast of the same bytes got there first.
                    Err(Error::Conflict { .. }) => {
                        self.get(&tx_id).await?.ok_or(Error::NotFound { tx_id })
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e @ Error::CircuitOpen { .. }) => Err(e),
            Err(e) => {
                let mut failed = record;
                failed.attempts += 1;
                failed.error = Some(e.to_string());
                // Best effort: the error is what the caller needs to see.
                let _ = self.save(failed, now).await;
                Err(e)
            }
        }
    }

    /// Sends the record's current raw transaction; "already known" counts as sent.
    async fn send(&self, record: TxRecord) -> Result<()> {
        self.send_raw(&record).await
    }

    async fn send_raw(&self, record: &TxRecord) -> Result<()> {
        let Some(raw) = record.raw.clone() else {
            return Err(Error::InvalidTransition {
                tx_id: record.tx_id.clone(),
                status: record.status,
                operation: "broadcast without a signed transaction",
            });
        };
        let provider = &self.inner.parts.provider;
        let result = self
            .inner
            .parts
            .breaker
            .call_classified(transport_outcome, || async move {
                provider.send_raw_transaction(&raw).await.map(|_| ())
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(CallError::Resilience(e)) => Err(e.into()),
            Err(CallError::Operation(e)) => match e.as_error_resp() {
                Some(payload) if is_already_known(&payload.message) => Ok(()),
                // A concurrent submitter's broadcast of these same bytes was already mined.
                Some(payload)
                    if is_nonce_too_low(&payload.message) && self.is_mined(record).await? =>
                {
                    Ok(())
                }
                Some(payload) => Err(Error::Rejected {
                    tx_id: record.tx_id.clone(),
                    message: payload.message.to_string(),
                }),
                None => Err(Error::rpc("eth_sendRawTransaction", e)),
            },
        }
    }

    /// Whether the current or an earlier version of the record has a receipt.
    async fn is_mined(&self, record: &TxRecord) -> Result<bool> {
        for hash in record.hash.iter().chain(record.previous_hashes.iter()) {
            if self.receipt(*hash).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn sign(&self, record: &TxRecord, nonce: u64, fees: Fees) -> Result<(B256, Bytes)> {
        let input = calldata(record)?;
        let tx = TxEip1559 {
            chain_id: record.chain_id,
            nonce,
            gas_limit: record.gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            to: CallTarget::Call(record.token),
            value: U256::ZERO,
            access_list: Default::default(),
            input,
        };
        let envelope = self
            .inner
            .parts
            .custody
            .sign_transaction(
                self.inner.key.clone(),
                TypedTransaction::Eip1559(tx),
                &self.inner.parts.caller,
            )
            .await?;
        Ok((*envelope.tx_hash(), envelope.encoded_2718().into()))
    }

    async fn rpc<T: Send, F, Fut>(&self, method: &'static str, call: F) -> Result<T>
    where
        F: FnOnce(DynProvider) -> Fut + Send,
        Fut: Future<Output = std::result::Result<T, TransportError>> + Send,
    {
        let provider = self.inner.parts.provider.clone();
        self.inner
            .parts
            .breaker
            .call_classified(transport_outcome, || call(provider))
            .await
            .map_err(|e| match e {
                CallError::Resilience(e) => e.into(),
                CallError::Operation(e) => Error::rpc(method, e),
            })
    }

    async fn current_fees(&self) -> Result<Fees> {
        let history = self
            .rpc("eth_feeHistory", |p| async move {
                p.get_fee_history(10, alloy::eips::BlockNumberOrTag::Latest, &[50.0])
                    .await
            })
            .await?;
        Ok(fees::from_history(&history, &self.inner.config.fees))
    }

    async fn gas_price(&self) -> Result<u128> {
        self.rpc("eth_gasPrice", |p| async move { p.get_gas_price().await })
            .await
    }

    async fn block_number(&self) -> Result<u64> {
        self.rpc(
            "eth_blockNumber",
            |p| async move { p.get_block_number().await },
        )
        .await
    }

    async fn mined_nonce(&self) -> Result<u64> {
        let from = self.inner.from;
        self.rpc("eth_getTransactionCount", move |p| async move {
            p.get_transaction_count(from).latest().await
        })
        .await
    }

    async fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>> {
        self.rpc("eth_getTransactionReceipt", move |p| async move {
            p.get_transaction_receipt(hash).await
        })
        .await
    }
}

/// The token call a record makes, from the record alone: a first signing, a replacement
/// with bumped fees and a retry after a revert all encode the same call.
fn calldata(record: &TxRecord) -> Result<Bytes> {
    let missing = |reason| Error::InvalidRequest {
        tx_id: record.tx_id.clone(),
        reason,
    };
    let to = || {
        record
            .to
            .ok_or_else(|| missing("the recipient `to` is missing"))
    };
    let holder = || {
        record
            .holder
            .ok_or_else(|| missing("the custodial `holder` is missing"))
    };
    let amount = record.amount;
    let input = match record.kind {
        TxKind::Mint => HavenToken::mintCall { to: to()?, amount }.abi_encode(),
        TxKind::Burn => HavenToken::burnCall { amount }.abi_encode(),
        TxKind::Transfer => HavenToken::transferCall { to: to()?, amount }.abi_encode(),
        TxKind::BurnFrom => HavenToken::custodianBurnCall {
            from: holder()?,
            amount,
        }
        .abi_encode(),
        TxKind::TransferFrom => HavenToken::custodianTransferCall {
            from: holder()?,
            to: to()?,
            amount,
        }
        .abi_encode(),
    };
    Ok(input.into())
}

fn is_nonce_too_low(message: &str) -> bool {
    message.to_ascii_lowercase().contains("nonce too low")
}

fn is_already_known(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("already known") || m.contains("already imported") || m.contains("known transaction")
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GWEI: u128 = 1_000_000_000;

    /// Zero, absent and absurd readings are data-quality faults, reported once per episode,
    /// and none of them moves the baseline or makes the next normal price look like a spike.
    #[test]
    fn implausible_gas_readings_are_faults_and_leave_the_baseline_alone() {
        let config = ChainConfig::default();
        let mut watch = GasWatch::default();
        assert_eq!(watch.observe(Some(10 * GWEI), &config), None);
        assert_eq!(watch.baseline, Some(10 * GWEI));
        let fault = watch.observe(Some(0), &config);
        assert!(
            matches!(
                fault,
                Some(ChainAlert::GasDataQuality {
                    gas_price: Some(0),
                    ..
                })
            ),
            "{fault:?}"
        );
        assert_eq!(watch.observe(None, &config), None, "one alert per episode");
        assert_eq!(watch.observe(Some(2 * 1_000_000 * GWEI), &config), None);
        assert_eq!(watch.baseline, Some(10 * GWEI), "the baseline is untouched");
        assert_eq!(
            watch.observe(Some(11 * GWEI), &config),
            None,
            "no spike after"
        );
        let fault = watch.observe(Some(u128::MAX), &config);
        assert!(matches!(fault, Some(ChainAlert::GasDataQuality { .. })));
        let fault = watch.observe(None, &config);
        assert_eq!(fault, None, "still the same episode");
        let spike = watch.observe(Some(30 * GWEI), &config);
        assert!(
            matches!(spike, Some(ChainAlert::GasSpike { .. })),
            "{spike:?}"
        );
    }

    #[test]
    fn an_absent_first_reading_is_a_fault_and_sets_no_baseline() {
        let config = ChainConfig::default();
        let mut watch = GasWatch::default();
        assert!(matches!(
            watch.observe(None, &config),
            Some(ChainAlert::GasDataQuality {
                gas_price: None,
                ..
            })
        ));
        assert_eq!(watch.baseline, None);
        assert_eq!(watch.observe(Some(5 * GWEI), &config), None);
        assert_eq!(watch.baseline, Some(5 * GWEI));
    }
}

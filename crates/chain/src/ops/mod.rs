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

mod monitor;
mod send;

use monitor::GasWatch;
use send::chrono_duration;

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

    /// Called after the signed transaction was recorded and before its nonce lease is
    /// committed; `true` stops the submission there as if the process had died.
    fn stop_before_commit(&self, _record: &TxRecord) -> bool {
        false
    }
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
/// - a nonce lease is committed only after the signed transaction is durably recorded (with
///   the lease's id), and released when signing or recording failed (it never left the
///   process); a signed record is only broadcast once its lease is committed, so a signer
///   that died between recording and committing never leaks a nonce another transaction
///   took: the record is signed anew instead;
/// - the private key never leaves custody.
#[derive(Debug, Clone)]
pub struct TokenOps {
    inner: Arc<Inner>,
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
                    TxStatus::Signed => self.resume_signed(existing).await,
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
}

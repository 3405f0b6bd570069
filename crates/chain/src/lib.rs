//! The HAVEN token on EVM chains: deployment, and mint / burn / transfer — and burn_from /
//! transfer_from of a custodial holder's tokens — exactly once per `tx_id`, with nonce
//! leases (`haven-nonce`), signing inside custody (`haven-custody`), a circuit breaker around
//! the node (`haven-resilience`) and a monitoring cycle.
//!
//! Member wallets are custodial and never send a transaction: the operator wallet, holding
//! `CUSTODIAN_ROLE` on the token, burns ([`TokenOps::burn_from`]) and moves
//! ([`TokenOps::transfer_from`]) their tokens and pays the gas.
//!
//! A submission is recorded in a [`TxStore`] before anything else; the store's unique
//! insert of `tx_id` decides who signs, so concurrent or repeated submissions of one
//! `tx_id` put one transaction on chain. The signed raw transaction is recorded before it is
//! broadcast: a retry, or a run after a crash between signing and broadcasting, sends the
//! same bytes (same nonce, same hash).
//!
//! ```no_run
//! # async fn example(parts: haven_chain::TokenOpsParts) -> haven_chain::Result<()> {
//! use alloy::primitives::{Address, U256};
//! use haven_chain::{ChainConfig, TokenOps, TxStatus};
//!
//! let ops = TokenOps::new(parts, ChainConfig::default()).await?;
//! let user = Address::repeat_byte(0x11);
//! let first = ops.mint("booking:42:mint", user, U256::from(10u64).pow(U256::from(18))).await?;
//! let again = ops.mint("booking:42:mint", user, U256::from(10u64).pow(U256::from(18))).await?;
//! assert_eq!(first.hash, again.hash); // one transaction, whatever the number of calls
//!
//! // The booking was cancelled: burn the reward from the member's custodial wallet. The
//! // operator wallet (CUSTODIAN_ROLE) signs and pays the gas; the member sends nothing.
//! ops.burn_from("booking:42:reverse", user, U256::from(10u64).pow(U256::from(18))).await?;
//! let left = ops.balance_of(user).await?;
//! # let _ = left;
//!
//! // the worker, every minute
//! let report = ops.monitor_once(chrono::Utc::now()).await?;
//! println!("{} confirmed, {} replaced", report.confirmed, report.replaced);
//! let failed = ops.list(TxStatus::Failed, 50).await?;
//! # let _ = failed;
//! # Ok(()) }
//! ```
//!
//! **Invariant:** the private key never leaves custody; this crate only hands custody an
//! unsigned transaction and receives the signed envelope.
//!
//! ## Metrics
//! The monitoring cycle counts confirmed mints and burns, `burn_from` included
//! ([`metrics::TOKENS_MINTED`], [`metrics::TOKENS_BURNED`]: once per transaction) and the alerts it raises
//! ([`metrics::ALERTS`], by kind) through the `metrics` facade; the binary chooses the
//! recorder.
//!
//! ## Features
//! - `test-utils`: the public [`conformance`] suite every [`TxStore`] backend must pass (the
//!   Postgres one lives in `haven-db`), and [`FaultHook`] to interrupt a submission between
//!   signing and broadcasting.

mod alert;
mod error;
pub mod fees;
pub mod metrics;
mod ops;
mod store;
pub mod token;

#[cfg(feature = "test-utils")]
pub mod conformance;

pub use alert::{ChainAlert, ChainAlertSink, LogAlertSink, MemoryAlertSink};
pub use error::{BoxError, Error, Result};
pub use fees::{FeePolicy, Fees};
#[cfg(feature = "test-utils")]
pub use ops::FaultHook;
pub use ops::{ChainConfig, MonitorReport, TokenOps, TokenOpsParts, TxRequest, TxSummary};
pub use store::{Inserted, MemoryTxStore, TxKind, TxRecord, TxStatus, TxStore};
pub use token::{HavenToken, deploy};

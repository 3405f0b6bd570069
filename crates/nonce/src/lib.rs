//! Lease-based EVM nonce management that never burns or duplicates a nonce.
//!
//! A nonce is **leased** ([`NonceStore::reserve`]), then either **committed** (the signed
//! transaction left the process or was durably recorded) or **released** (it never left).
//! Released and expired leases return to a free set that is handed out lowest first, so a
//! transaction that failed before broadcast leaves no gap on chain, and a worker that crashed
//! holding a lease loses nothing. The chain's pending nonce is applied as a floor
//! ([`NonceStore::sync`]); `next` never moves below a lease or commit.
//!
//! ```
//! use std::time::Duration;
//! use haven_nonce::{MemoryNonceStore, NonceKey, NonceStore};
//!
//! # futures::executor::block_on(async {
//! let store = MemoryNonceStore::new();
//! let key = NonceKey::parse(1, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")?;
//! store.sync(&key, 42).await?; // eth_getTransactionCount(address, "pending") said 42
//!
//! let first = store.reserve(&key, Duration::from_secs(30)).await?;
//! let second = store.reserve(&key, Duration::from_secs(30)).await?;
//! assert_eq!((first.nonce, second.nonce), (42, 43));
//!
//! store.release(&first).await?; // signing failed: 42 never left the process
//! store.commit(&second).await?; // 43 was broadcast
//! assert_eq!(store.reserve(&key, Duration::from_secs(30)).await?.nonce, 42);
//! # Ok::<(), haven_nonce::Error>(())
//! # }).unwrap();
//! ```
//!
//! Most callers use [`NonceManager`], which joins a store to a [`ChainNonceSource`]: it syncs
//! an account before its first lease and reads the chain when a node reports
//! [`NonceError::NonceTooLow`] and friends.
//!
//! **Invariant:** the stores never talk to an RPC node; the chain reaches them only as the
//! numbers passed to `sync`, `reset` and `handle_nonce_error`.
//!
//! ## Backends
//! - [`MemoryNonceStore`]: one process, nothing survives a restart. Tests, tools.
//! - `RedisNonceStore` (feature `redis`): many processes, one Lua script (one round trip) per
//!   operation; the fastest shared store.
//! - Postgres (in `haven-db`): when the nonce must be written in the same SQL transaction as
//!   the transaction row.
//!
//! All of them pass the `conformance` suite (feature `test-utils`). [`AccountState`] holds the
//! transitions as pure functions, so a new backend can lock one row, apply them and write back.
//!
//! ## Metrics
//! [`NonceManager`] keeps the gauge [`metrics::LEASES_OUTSTANDING`]
//! (`haven_nonce_leases_outstanding`, per process) through the `metrics` facade; the binary
//! chooses the recorder. The stores record nothing.
//!
//! ## Features
//! - `redis`: `RedisNonceStore` on deadpool-redis.
//! - `alloy`: `AlloyNonceSource`, a [`ChainNonceSource`] over alloy providers.
//! - `test-utils`: the public `conformance` suite for any [`NonceStore`].

mod chain;
mod clock;
#[cfg(feature = "redis")]
mod coalesce;
mod error;
mod key;
mod manager;
mod memory;
pub mod metrics;
#[cfg(feature = "redis")]
mod redis_store;
mod state;
mod store;

#[cfg(feature = "test-utils")]
pub mod conformance;

#[cfg(feature = "alloy")]
pub use chain::AlloyNonceSource;
pub use chain::ChainNonceSource;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BoxError, Error, Result};
pub use key::{Lease, LeaseId, NonceKey};
pub use manager::NonceManager;
pub use memory::MemoryNonceStore;
#[cfg(feature = "redis")]
pub use redis_store::RedisNonceStore;
pub use state::{AccountState, LeaseRecord};
pub use store::{
    LeaseInfo, MAX_REPORTED_GAPS, NonceError, NonceErrorAction, NonceStatus, NonceStore,
    ResetOutcome, STATUS_LIST_LIMIT, SyncOutcome,
};

#[cfg(all(test, feature = "test-utils"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_conformance_suite() {
        conformance::run_all(&MemoryNonceStore::new()).await;
    }
}

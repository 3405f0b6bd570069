use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{Error, Lease, LeaseId, NonceKey, Result};

/// [`NonceStatus`] lists at most this many free and committed nonces (the lowest ones).
pub const STATUS_LIST_LIMIT: usize = 1000;

/// At most this many missing nonces are listed by [`NonceErrorAction::FillGaps`].
pub const MAX_REPORTED_GAPS: usize = 1024;

/// Per-account nonce bookkeeping shared by every process that signs for the account.
///
/// Every nonce below `next` is in exactly one of three places: the **free** set (handed out
/// before, known never to have left the process), an **outstanding lease**, or **committed**
/// (it may be on its way to the chain and is never handed out again).
///
/// # Invariants
///
/// Every implementation guarantees, under any number of concurrent callers in any number of
/// processes:
///
/// - **Unique nonces.** A nonce is held by at most one unexpired lease at a time, and at most
///   one lease ever commits it. A lease whose nonce went to someone else fails `commit` with
///   [`Error::LeaseLost`].
/// - **Lowest first.** [`reserve`](NonceStore::reserve) hands out the lowest free nonce
///   (released leases and reclaimed expired leases) before it advances `next`, so a nonce that
///   never left the process does not leave a gap on chain.
/// - **The chain is a floor.** After [`sync`](NonceStore::sync)`(key, p)`, `next >= p` and no
///   free nonce is below `p`; no nonce below the highest chain value seen is returned to the
///   free set again.
/// - **`next` never rewinds** below an outstanding lease or a commit: only
///   [`reset`](NonceStore::reset) (an operator action, refused while leases are outstanding
///   unless forced) moves it down.
/// - **No silent fallback.** When the backing service is unreachable every operation fails with
///   [`Error::StoreUnavailable`]; nothing is counted locally.
/// - **One atomic step per operation.** Each method is a single atomic transition of the
///   account's state (one Lua script on Redis, one statement or row-locked transaction on
///   Postgres), so a crash between two calls never leaves the state half-updated.
///
/// Expiry is judged by the store's clock (the server's for networked stores): a lease with
/// `expires_at <= now` is reclaimed by the next `reserve` on the key. A zero TTL therefore
/// gives a lease that the very next `reserve` takes back, which tests use to simulate a crash.
#[async_trait]
pub trait NonceStore: Send + Sync + std::fmt::Debug {
    /// Leases the lowest free nonce of `key`, or `next` (advancing it) when none is free, for
    /// `lease_ttl`. Expired leases are reclaimed first.
    async fn reserve(&self, key: &NonceKey, lease_ttl: Duration) -> Result<Lease>;

    /// Marks the lease's nonce as used. Idempotent: committing the same lease again succeeds.
    /// Succeeds on an expired lease as long as its nonce was not handed to another lease;
    /// otherwise fails with [`Error::LeaseLost`] and the caller must not broadcast.
    ///
    /// A commit is remembered until `sync` sees the chain pass the nonce; committing again
    /// after that fails with [`Error::LeaseLost`].
    async fn commit(&self, lease: &Lease) -> Result<()>;

    /// Returns the lease's nonce to the free set (or drops it when it is below the chain floor).
    /// Idempotent, and a no-op when the lease is no longer held (expired and reclaimed, or
    /// reset). Fails with [`Error::AlreadyCommitted`] when the lease was committed.
    async fn release(&self, lease: &Lease) -> Result<()>;

    /// Applies the chain's pending nonce as a floor: `next = max(next, chain_pending)`, free
    /// nonces below it are dropped, commits below it are forgotten. Outstanding leases are
    /// kept (their transactions may be what moved the chain).
    async fn sync(&self, key: &NonceKey, chain_pending: u64) -> Result<SyncOutcome>;

    /// Resynchronises `key` to the chain: `next = chain_pending`, the free set and commit
    /// records are cleared. Refused with [`Error::LeasesOutstanding`] while unexpired leases
    /// exist unless `force`, in which case they are dropped (their commits will fail).
    async fn reset(&self, key: &NonceKey, chain_pending: u64, force: bool) -> Result<ResetOutcome>;

    /// What the store knows about `key`, for operators. An unknown key reports `next == 0`
    /// and no sync.
    async fn status(&self, key: &NonceKey) -> Result<NonceStatus>;

    /// Reacts to a node's nonce error for `lease`'s transaction.
    ///
    /// - [`NonceError::NonceTooLow`]: syncs to `chain_pending`, lets go of the lease and
    ///   returns a fresh one to sign with ([`NonceErrorAction::Retry`]).
    /// - [`NonceError::NonceTooHigh`]: keeps the lease and lists the nonces between
    ///   `chain_pending` and the lease's nonce that no unexpired lease holds
    ///   ([`NonceErrorAction::FillGaps`]); the caller fills them.
    /// - [`NonceError::AlreadyKnown`], [`NonceError::ReplacementUnderpriced`]: the node has a
    ///   transaction with this nonce, so the lease is committed ([`NonceErrorAction::Committed`]).
    async fn handle_nonce_error(
        &self,
        lease: &Lease,
        error: NonceError,
        chain_pending: u64,
        lease_ttl: Duration,
    ) -> Result<NonceErrorAction> {
        match error {
            NonceError::NonceTooLow => {
                self.sync(&lease.key, chain_pending).await?;
                match self.release(lease).await {
                    // Committed earlier: the chain already has it, nothing to give back.
                    Ok(()) | Err(Error::AlreadyCommitted { .. }) => {}
                    Err(other) => return Err(other),
                }
                let fresh = self.reserve(&lease.key, lease_ttl).await?;
                Ok(NonceErrorAction::Retry(fresh))
            }
            NonceError::NonceTooHigh => {
                let status = self.status(&lease.key).await?;
                let held: std::collections::BTreeSet<u64> = status
                    .leases
                    .iter()
                    .filter(|l| !l.expired)
                    .map(|l| l.nonce)
                    .collect();
                let missing = (chain_pending..lease.nonce)
                    .filter(|n| !held.contains(n))
                    .take(MAX_REPORTED_GAPS)
                    .collect();
                Ok(NonceErrorAction::FillGaps { missing })
            }
            NonceError::AlreadyKnown | NonceError::ReplacementUnderpriced => {
                self.commit(lease).await?;
                Ok(NonceErrorAction::Committed)
            }
        }
    }
}

/// A nonce-related rejection reported by a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NonceError {
    /// The nonce was already used on chain (by this or another client).
    NonceTooLow,
    /// Lower nonces are missing; the transaction cannot be included yet.
    NonceTooHigh,
    /// The node already has this exact transaction.
    AlreadyKnown,
    /// The node has another transaction with this nonce and a fee this one does not beat.
    ReplacementUnderpriced,
}

impl NonceError {
    /// Recognises the messages geth, reth, erigon, nethermind, besu and anvil use.
    pub fn classify(message: &str) -> Option<Self> {
        let m = message.to_ascii_lowercase();
        if m.contains("nonce too low")
            || m.contains("oldnonce")
            || m.contains("nonce has already been used")
            || m.contains("nonce is too low")
        {
            Some(Self::NonceTooLow)
        } else if m.contains("nonce too high") || m.contains("nonce is too high") {
            Some(Self::NonceTooHigh)
        } else if m.contains("already known")
            || m.contains("alreadyknown")
            || m.contains("known transaction")
            || m.contains("already imported")
        {
            Some(Self::AlreadyKnown)
        } else if m.contains("replacement transaction underpriced")
            || m.contains("replacement underpriced")
        {
            Some(Self::ReplacementUnderpriced)
        } else {
            None
        }
    }
}

/// What the caller should do after [`NonceStore::handle_nonce_error`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NonceErrorAction {
    /// The old lease is gone; sign again with this one.
    Retry(Lease),
    /// Send transactions for these nonces first (they are missing below the lease, at most
    /// [`MAX_REPORTED_GAPS`] of them), then resend; the lease is kept.
    FillGaps {
        /// The missing nonces, ascending.
        missing: Vec<u64>,
    },
    /// The transaction is known to the node; the lease is committed, nothing more to do.
    Committed,
}

/// What [`NonceStore::sync`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOutcome {
    /// `next` before the sync.
    pub previous_next: u64,
    /// `next` after it (`max(previous_next, chain_pending)`).
    pub next: u64,
    /// How many free nonces were below the floor and dropped.
    pub dropped_free: usize,
}

/// What [`NonceStore::reset`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetOutcome {
    /// `next` before the reset.
    pub previous_next: u64,
    /// `next` after it (the chain's pending nonce).
    pub next: u64,
    /// Leases dropped (only with `force`; expired leases count too).
    pub dropped_leases: usize,
}

/// One lease as seen by [`NonceStore::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The leased nonce.
    pub nonce: u64,
    /// The lease.
    pub lease_id: LeaseId,
    /// When it was taken.
    pub leased_at: DateTime<Utc>,
    /// When it expires (or expired).
    pub expires_at: DateTime<Utc>,
    /// How long it has been held, by the store's clock.
    pub age: Duration,
    /// Whether it expired and awaits reclaiming by the next `reserve`.
    pub expired: bool,
}

/// An operator's view of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceStatus {
    /// The account.
    pub key: NonceKey,
    /// The next never-used nonce.
    pub next: u64,
    /// The highest chain pending nonce applied by `sync`/`reset`, if any.
    pub chain_floor: Option<u64>,
    /// When `sync` or `reset` last ran; `None` for an account the store does not know.
    pub last_sync: Option<DateTime<Utc>>,
    /// The lowest free nonces, ascending (at most [`STATUS_LIST_LIMIT`]).
    pub free: Vec<u64>,
    /// How many nonces are free.
    pub free_count: u64,
    /// Open leases (expired ones included until reclaimed), by nonce.
    pub leases: Vec<LeaseInfo>,
    /// The lowest committed nonces the chain floor has not yet passed, ascending (at most
    /// [`STATUS_LIST_LIMIT`]).
    pub committed: Vec<u64>,
    /// How many commits the chain floor has not yet passed.
    pub committed_count: u64,
    /// The store's clock when the status was read.
    pub observed_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_messages_are_classified() {
        let cases = [
            (
                "nonce too low: next nonce 5, tx nonce 3",
                Some(NonceError::NonceTooLow),
            ),
            ("Nonce too low", Some(NonceError::NonceTooLow)),
            ("OldNonce", Some(NonceError::NonceTooLow)),
            ("nonce too high", Some(NonceError::NonceTooHigh)),
            ("already known", Some(NonceError::AlreadyKnown)),
            ("AlreadyKnown", Some(NonceError::AlreadyKnown)),
            (
                "replacement transaction underpriced",
                Some(NonceError::ReplacementUnderpriced),
            ),
            ("insufficient funds for gas * price + value", None),
        ];
        for (message, expected) in cases {
            assert_eq!(NonceError::classify(message), expected, "{message}");
        }
    }
}

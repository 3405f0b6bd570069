//! The behaviour every [`NonceStore`] must show, as async checks that panic on the first
//! violation. Run [`run_all`] against a fresh store of your backend:
//!
//! ```
//! let store = haven_nonce::MemoryNonceStore::new();
//! futures::executor::block_on(haven_nonce::conformance::run_all(&store));
//! ```
//!
//! Every check works on its own random [`NonceKey`] ([`fresh_key`]), so checks may share a
//! store, run in any order and run against a store other tests use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;

use crate::{Error, Lease, NonceError, NonceErrorAction, NonceKey, NonceStore};

pub mod multiprocess;

/// A TTL no check outlives.
pub const LONG: Duration = Duration::from_secs(3600);

/// A TTL that has passed by the next call: the lease is abandoned as if its holder crashed.
pub const EXPIRED: Duration = Duration::ZERO;

/// A random account no other test uses.
pub fn fresh_key() -> NonceKey {
    let a = uuid::Uuid::new_v4().into_bytes();
    let b = uuid::Uuid::new_v4().into_bytes();
    let mut address = [0u8; 20];
    address[..16].copy_from_slice(&a);
    address[16..].copy_from_slice(&b[..4]);
    let chain_id = u64::from_le_bytes([b[4], b[5], b[6], b[7], 0, 0, 0, 0]) + 1;
    NonceKey::new(chain_id, address)
}

/// Runs every check.
pub async fn run_all(store: &dyn NonceStore) {
    new_account_counts_from_zero(store).await;
    commit_is_idempotent(store).await;
    released_nonces_are_reused_lowest_first(store).await;
    release_is_idempotent_and_ignores_lost_leases(store).await;
    committed_leases_cannot_be_released(store).await;
    expired_leases_are_reclaimed_and_their_commit_is_lost(store).await;
    expired_but_unclaimed_lease_still_commits(store).await;
    sync_is_a_floor_and_never_rewinds(store).await;
    release_below_the_floor_drops_the_nonce(store).await;
    sync_forgets_commits_the_chain_passed(store).await;
    reset_refuses_outstanding_leases_unless_forced(store).await;
    status_reports_leases_ages_and_sync(store).await;
    nonce_too_low_syncs_and_leases_afresh(store).await;
    nonce_too_high_reports_the_gaps(store).await;
    already_known_commits(store).await;
    concurrent_reserves_are_unique(store).await;
    accounts_are_independent(store).await;
}

async fn reserve_n(store: &dyn NonceStore, key: &NonceKey, n: usize) -> Vec<Lease> {
    let mut leases = Vec::with_capacity(n);
    for _ in 0..n {
        leases.push(store.reserve(key, LONG).await.unwrap());
    }
    leases
}

fn nonces(leases: &[Lease]) -> Vec<u64> {
    leases.iter().map(|l| l.nonce).collect()
}

/// An unknown account starts at 0, hands out 0, 1, 2 … and says it was never synced.
pub async fn new_account_counts_from_zero(store: &dyn NonceStore) {
    let key = fresh_key();
    let status = store.status(&key).await.unwrap();
    assert_eq!(status.next, 0);
    assert_eq!(status.last_sync, None);
    let leases = reserve_n(store, &key, 3).await;
    assert_eq!(nonces(&leases), [0, 1, 2]);
    assert!(leases.iter().all(|l| !l.chain_synced && l.key == key));
    let ids: BTreeSet<_> = leases.iter().map(|l| l.lease_id).collect();
    assert_eq!(ids.len(), 3, "lease ids are unique");
    assert_eq!(store.status(&key).await.unwrap().next, 3);
}

/// Committing twice succeeds; the nonce is neither free nor leased afterwards.
pub async fn commit_is_idempotent(store: &dyn NonceStore) {
    let key = fresh_key();
    let lease = store.reserve(&key, LONG).await.unwrap();
    store.commit(&lease).await.unwrap();
    store.commit(&lease).await.unwrap();
    let status = store.status(&key).await.unwrap();
    assert_eq!(status.committed, [0]);
    assert!(status.leases.is_empty() && status.free.is_empty());
    assert_eq!(store.reserve(&key, LONG).await.unwrap().nonce, 1);
}

/// Released nonces come back before `next` advances, lowest first.
pub async fn released_nonces_are_reused_lowest_first(store: &dyn NonceStore) {
    let key = fresh_key();
    let leases = reserve_n(store, &key, 5).await;
    store.release(&leases[3]).await.unwrap();
    store.release(&leases[1]).await.unwrap();
    assert_eq!(store.status(&key).await.unwrap().free, [1, 3]);
    let again = reserve_n(store, &key, 3).await;
    assert_eq!(nonces(&again), [1, 3, 5]);
}

/// Releasing twice frees the nonce once; releasing a lease that lost its nonce frees nothing.
pub async fn release_is_idempotent_and_ignores_lost_leases(store: &dyn NonceStore) {
    let key = fresh_key();
    let first = store.reserve(&key, LONG).await.unwrap();
    store.release(&first).await.unwrap();
    store.release(&first).await.unwrap();
    let second = store.reserve(&key, LONG).await.unwrap();
    assert_eq!(second.nonce, 0);
    // `first` no longer holds 0: releasing it again must not free `second`'s nonce.
    store.release(&first).await.unwrap();
    assert_eq!(store.reserve(&key, LONG).await.unwrap().nonce, 1);
    store.commit(&second).await.unwrap();
    assert!(matches!(
        store.commit(&first).await,
        Err(Error::LeaseLost { nonce: 0, .. })
    ));
}

/// A committed nonce may be on chain: it cannot be released.
pub async fn committed_leases_cannot_be_released(store: &dyn NonceStore) {
    let key = fresh_key();
    let lease = store.reserve(&key, LONG).await.unwrap();
    store.commit(&lease).await.unwrap();
    assert!(matches!(
        store.release(&lease).await,
        Err(Error::AlreadyCommitted { nonce: 0, .. })
    ));
    assert_eq!(store.reserve(&key, LONG).await.unwrap().nonce, 1);
}

/// An expired lease's nonce goes to the next reserve; the old holder's commit fails.
pub async fn expired_leases_are_reclaimed_and_their_commit_is_lost(store: &dyn NonceStore) {
    let key = fresh_key();
    let abandoned = store.reserve(&key, EXPIRED).await.unwrap();
    let taker = store.reserve(&key, LONG).await.unwrap();
    assert_eq!(taker.nonce, abandoned.nonce);
    assert_ne!(taker.lease_id, abandoned.lease_id);
    let lost = store.commit(&abandoned).await;
    assert!(
        matches!(lost, Err(Error::LeaseLost { nonce: 0, lease_id, .. }) if lease_id == abandoned.lease_id),
        "{lost:?}"
    );
    store.commit(&taker).await.unwrap();
    let lost = store.commit(&abandoned).await;
    assert!(matches!(lost, Err(Error::LeaseLost { .. })), "{lost:?}");
    store.release(&abandoned).await.unwrap();
    assert_eq!(store.reserve(&key, LONG).await.unwrap().nonce, 1);
}

/// Expiry only matters once someone else needs the nonce.
pub async fn expired_but_unclaimed_lease_still_commits(store: &dyn NonceStore) {
    let key = fresh_key();
    let lease = store.reserve(&key, EXPIRED).await.unwrap();
    store.commit(&lease).await.unwrap();
    assert_eq!(store.reserve(&key, LONG).await.unwrap().nonce, 1);
}

/// `next = max(next, chain)`; free nonces below the chain are dropped; leases survive.
pub async fn sync_is_a_floor_and_never_rewinds(store: &dyn NonceStore) {
    let key = fresh_key();
    let leases = reserve_n(store, &key, 3).await;
    store.release(&leases[1]).await.unwrap();
    let synced = store.sync(&key, 5).await.unwrap();
    assert_eq!(
        (synced.previous_next, synced.next, synced.dropped_free),
        (3, 5, 1)
    );
    let after = store.reserve(&key, LONG).await.unwrap();
    assert_eq!(after.nonce, 5);
    assert!(after.chain_synced);
    let behind = store.sync(&key, 2).await.unwrap();
    assert_eq!(behind.next, 6, "a lower chain value never rewinds next");
    let status = store.status(&key).await.unwrap();
    assert_eq!(
        status.chain_floor,
        Some(5),
        "the floor is the highest chain value seen"
    );
    assert_eq!(
        status.leases.iter().map(|l| l.nonce).collect::<Vec<_>>(),
        [0, 2, 5]
    );
    store.commit(&leases[0]).await.unwrap();
    let early = fresh_key();
    let held = reserve_n(store, &early, 4).await;
    assert_eq!(store.sync(&early, 1).await.unwrap().next, 4);
    assert_eq!(store.reserve(&early, LONG).await.unwrap().nonce, 4);
    store.commit(&held[3]).await.unwrap();
}

/// A nonce the chain has passed is never free again, even when its lease is released.
pub async fn release_below_the_floor_drops_the_nonce(store: &dyn NonceStore) {
    let key = fresh_key();
    let leases = reserve_n(store, &key, 2).await;
    store.sync(&key, 2).await.unwrap();
    store.release(&leases[0]).await.unwrap();
    let abandoned = store.reserve(&key, EXPIRED).await.unwrap();
    assert_eq!(abandoned.nonce, 2);
    store.sync(&key, 3).await.unwrap();
    assert_eq!(store.reserve(&key, LONG).await.unwrap().nonce, 3);
    let status = store.status(&key).await.unwrap();
    assert!(status.free.is_empty(), "{:?}", status.free);
    store.commit(&leases[1]).await.unwrap();
}

/// Commit records end when the chain passes them.
pub async fn sync_forgets_commits_the_chain_passed(store: &dyn NonceStore) {
    let key = fresh_key();
    let leases = reserve_n(store, &key, 3).await;
    for lease in &leases {
        store.commit(lease).await.unwrap();
    }
    store.sync(&key, 2).await.unwrap();
    assert_eq!(store.status(&key).await.unwrap().committed, [2]);
    store.commit(&leases[2]).await.unwrap();
}

/// Reset moves `next` to the chain, refusing while leases are live unless forced.
pub async fn reset_refuses_outstanding_leases_unless_forced(store: &dyn NonceStore) {
    let key = fresh_key();
    let leases = reserve_n(store, &key, 3).await;
    store.release(&leases[1]).await.unwrap();
    let refused = store.reset(&key, 10, false).await;
    assert!(
        matches!(refused, Err(Error::LeasesOutstanding { count: 2, .. })),
        "{refused:?}"
    );
    let reset = store.reset(&key, 10, true).await.unwrap();
    assert_eq!(
        (reset.previous_next, reset.next, reset.dropped_leases),
        (3, 10, 2)
    );
    assert!(matches!(
        store.commit(&leases[0]).await,
        Err(Error::LeaseLost { .. })
    ));
    let status = store.status(&key).await.unwrap();
    assert!(status.free.is_empty() && status.leases.is_empty() && status.committed.is_empty());
    assert_eq!(status.chain_floor, Some(10));
    assert!(status.last_sync.is_some());
    assert_eq!(store.reserve(&key, LONG).await.unwrap().nonce, 10);

    let only_expired = fresh_key();
    store.reserve(&only_expired, EXPIRED).await.unwrap();
    let reset = store.reset(&only_expired, 0, false).await.unwrap();
    assert_eq!(reset.dropped_leases, 1);
    // Reset may move next down: it is the operator's repair after the chain lost transactions.
    let down = store.reset(&key, 4, true).await.unwrap();
    assert_eq!((down.previous_next, down.next), (11, 4));
    assert_eq!(store.reserve(&key, LONG).await.unwrap().nonce, 4);
}

/// Status lists free nonces, leases (expired or not) with ages, commits and the last sync.
pub async fn status_reports_leases_ages_and_sync(store: &dyn NonceStore) {
    let key = fresh_key();
    let live = store.reserve(&key, LONG).await.unwrap();
    let freed = store.reserve(&key, LONG).await.unwrap();
    let committed = store.reserve(&key, LONG).await.unwrap();
    let dead = store.reserve(&key, EXPIRED).await.unwrap();
    store.release(&freed).await.unwrap();
    store.commit(&committed).await.unwrap();
    let status = store.status(&key).await.unwrap();
    assert_eq!(status.key, key);
    assert_eq!(status.next, 4);
    assert_eq!(status.free, [1]);
    assert_eq!(status.committed, [2]);
    assert_eq!(status.chain_floor, None);
    assert_eq!(status.last_sync, None);
    assert_eq!(status.leases.len(), 2);
    let (l0, l3) = (&status.leases[0], &status.leases[1]);
    assert_eq!(
        (l0.nonce, l0.lease_id, l0.expired),
        (0, live.lease_id, false)
    );
    assert_eq!(
        (l3.nonce, l3.lease_id, l3.expired),
        (3, dead.lease_id, true)
    );
    assert!(l0.leased_at <= status.observed_at);
    assert_eq!(l0.expires_at, live.expires_at);
    assert!(l0.age <= Duration::from_secs(60));
    store.sync(&key, 0).await.unwrap();
    let synced = store.status(&key).await.unwrap();
    assert!(synced.last_sync.is_some_and(|t| t <= synced.observed_at));
    assert_eq!(synced.chain_floor, Some(0));
}

/// `nonce too low`: the chain used the nonce; the caller gets a fresh lease above the floor.
pub async fn nonce_too_low_syncs_and_leases_afresh(store: &dyn NonceStore) {
    let key = fresh_key();
    let leases = reserve_n(store, &key, 2).await;
    let action = store
        .handle_nonce_error(&leases[0], NonceError::NonceTooLow, 5, LONG)
        .await
        .unwrap();
    let NonceErrorAction::Retry(fresh) = action else {
        panic!("expected a retry, got {action:?}");
    };
    assert_eq!(fresh.nonce, 5);
    assert!(matches!(
        store.commit(&leases[0]).await,
        Err(Error::LeaseLost { .. })
    ));
    store.commit(&fresh).await.unwrap();
    assert_eq!(store.reserve(&key, LONG).await.unwrap().nonce, 6);
}

/// `nonce too high`: the nonces below the lease that nobody holds are reported.
pub async fn nonce_too_high_reports_the_gaps(store: &dyn NonceStore) {
    let key = fresh_key();
    let leases = reserve_n(store, &key, 6).await;
    for lease in &leases[..3] {
        store.commit(lease).await.unwrap();
    }
    store.release(&leases[4]).await.unwrap();
    let action = store
        .handle_nonce_error(&leases[5], NonceError::NonceTooHigh, 1, LONG)
        .await
        .unwrap();
    assert_eq!(
        action,
        NonceErrorAction::FillGaps {
            missing: vec![1, 2, 4]
        }
    );
    store.commit(&leases[5]).await.unwrap();
}

/// `already known` / `replacement underpriced`: the node has it, so the lease is committed.
pub async fn already_known_commits(store: &dyn NonceStore) {
    let key = fresh_key();
    for (expected, error) in [
        (0, NonceError::AlreadyKnown),
        (1, NonceError::ReplacementUnderpriced),
    ] {
        let lease = store.reserve(&key, LONG).await.unwrap();
        assert_eq!(lease.nonce, expected);
        let action = store
            .handle_nonce_error(&lease, error, 0, LONG)
            .await
            .unwrap();
        assert_eq!(action, NonceErrorAction::Committed);
        store.commit(&lease).await.unwrap();
    }
    assert_eq!(store.status(&key).await.unwrap().committed, [0, 1]);
}

/// Many reserves in flight at once get distinct, contiguous nonces; released ones come back.
pub async fn concurrent_reserves_are_unique(store: &dyn NonceStore) {
    const N: u64 = 200;
    let key = fresh_key();
    let leases: Vec<Lease> = join_all((0..N).map(|_| store.reserve(&key, LONG)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let got: BTreeSet<u64> = leases.iter().map(|l| l.nonce).collect();
    assert_eq!(got, (0..N).collect::<BTreeSet<_>>());
    let (odd, even): (Vec<&Lease>, Vec<&Lease>) = leases.iter().partition(|l| l.nonce % 2 == 1);
    let ends = join_all(
        odd.iter()
            .map(|l| store.release(l))
            .chain(even.iter().map(|l| store.commit(l))),
    )
    .await;
    assert!(ends.iter().all(Result::is_ok));
    let again: BTreeSet<u64> = join_all((0..odd.len()).map(|_| store.reserve(&key, LONG)))
        .await
        .into_iter()
        .map(|r| r.unwrap().nonce)
        .collect();
    assert_eq!(again, odd.iter().map(|l| l.nonce).collect::<BTreeSet<_>>());
    assert_eq!(store.reserve(&key, LONG).await.unwrap().nonce, N);
}

/// Two chains, one address: two independent sequences.
pub async fn accounts_are_independent(store: &dyn NonceStore) {
    let a = fresh_key();
    let b = NonceKey::new(a.chain_id().wrapping_add(1), a.address());
    store.reserve(&a, LONG).await.unwrap();
    store.sync(&a, 7).await.unwrap();
    assert_eq!(store.reserve(&b, LONG).await.unwrap().nonce, 0);
    assert_eq!(store.reserve(&a, LONG).await.unwrap().nonce, 7);
}

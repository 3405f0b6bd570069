//! A6: any interleaving of reserve / commit / release / expiry / sync keeps nonces unique,
//! keeps `next` at or above the chain floor, and leaves the committed set contiguous once
//! every lease is resolved and the free set is used up.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use haven_nonce::conformance::{EXPIRED, LONG, fresh_key};
use haven_nonce::{
    Error, Lease, LeaseId, ManualClock, MemoryNonceStore, NonceStore, RedisNonceStore,
};
use haven_testkit::TestRedis;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Reserve { ttl_ms: u64 },
    Commit(usize),
    Release(usize),
    Advance { ms: u64 },
    Sync,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..3_000).prop_map(|ttl_ms| Op::Reserve { ttl_ms }),
        3 => any::<usize>().prop_map(Op::Commit),
        2 => any::<usize>().prop_map(Op::Release),
        1 => (0u64..2_000).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Sync),
    ]
}

/// How the run judges time: a manual clock it moves, or (for a server clock it cannot
/// move) short TTLs become already-expired leases and the rest never expire.
enum Time<'a> {
    Manual(&'a ManualClock),
    Server,
}

impl Time<'_> {
    fn ttl(&self, ttl_ms: u64) -> Duration {
        match self {
            Time::Manual(_) => Duration::from_millis(ttl_ms),
            Time::Server if ttl_ms < 300 => EXPIRED,
            Time::Server => LONG,
        }
    }

    fn advance(&self, ms: u64) {
        if let Time::Manual(clock) = self {
            clock.advance(Duration::from_millis(ms));
        }
    }

    fn is_live(&self, lease: &Lease, reserved_with: Duration) -> bool {
        match self {
            Time::Manual(clock) => {
                use haven_nonce::Clock;
                lease.expires_at > clock.now()
            }
            Time::Server => reserved_with == LONG,
        }
    }
}

/// The chain mines committed transactions in nonce order: its pending nonce is the first
/// nonce nobody committed.
fn chain_pending(committed: &BTreeSet<u64>) -> u64 {
    (0..).find(|n| !committed.contains(n)).unwrap_or(0)
}

async fn check(store: &dyn NonceStore, time: Time<'_>, ops: Vec<Op>) {
    let key = fresh_key();
    let mut held: Vec<(Lease, Duration)> = Vec::new();
    let mut committed: BTreeSet<u64> = BTreeSet::new();
    // The last lease each nonce was handed to: only that one may commit it.
    let mut holder: HashMap<u64, LeaseId> = HashMap::new();
    for op in ops {
        match op {
            Op::Reserve { ttl_ms } => {
                let ttl = time.ttl(ttl_ms);
                let lease = store.reserve(&key, ttl).await.unwrap();
                assert!(
                    !committed.contains(&lease.nonce),
                    "committed nonce {} handed out",
                    lease.nonce
                );
                for (other, other_ttl) in &held {
                    assert!(
                        other.nonce != lease.nonce || !time.is_live(other, *other_ttl),
                        "nonce {} handed out while another lease holds it",
                        lease.nonce
                    );
                }
                holder.insert(lease.nonce, lease.lease_id);
                held.push((lease, ttl));
            }
            Op::Commit(i) if !held.is_empty() => {
                let (lease, _) = held.remove(i % held.len());
                match store.commit(&lease).await {
                    Ok(()) => {
                        assert_eq!(
                            holder[&lease.nonce], lease.lease_id,
                            "a superseded lease committed"
                        );
                        assert!(
                            committed.insert(lease.nonce),
                            "nonce {} committed twice",
                            lease.nonce
                        );
                    }
                    Err(Error::LeaseLost { .. }) => {}
                    Err(other) => panic!("commit: {other}"),
                }
            }
            Op::Release(i) if !held.is_empty() => {
                let (lease, _) = held.remove(i % held.len());
                store.release(&lease).await.unwrap();
            }
            Op::Advance { ms } => time.advance(ms),
            Op::Sync => {
                let floor = chain_pending(&committed);
                let outcome = store.sync(&key, floor).await.unwrap();
                let status = store.status(&key).await.unwrap();
                assert!(outcome.next >= floor && status.next >= floor);
                assert!(outcome.next >= outcome.previous_next, "next rewound");
                assert!(
                    status.free.iter().all(|&f| f >= floor),
                    "{:?} below {floor}",
                    status.free
                );
            }
            Op::Commit(_) | Op::Release(_) => {}
        }
    }

    // Resolve every lease still held (a lost one simply fails), then use up the free set.
    for (lease, _) in held.drain(..) {
        match store.commit(&lease).await {
            Ok(()) => {
                assert_eq!(
                    holder[&lease.nonce], lease.lease_id,
                    "a superseded lease committed"
                );
                assert!(
                    committed.insert(lease.nonce),
                    "nonce {} committed twice",
                    lease.nonce
                );
            }
            Err(Error::LeaseLost { .. }) => {}
            Err(other) => panic!("commit: {other}"),
        }
    }
    loop {
        let status = store.status(&key).await.unwrap();
        assert!(status.leases.is_empty(), "{:?}", status.leases);
        if status.free_count == 0 {
            assert_eq!(
                committed,
                (0..status.next).collect::<BTreeSet<_>>(),
                "committed set is not contiguous"
            );
            return;
        }
        let lease = store.reserve(&key, LONG).await.unwrap();
        assert_eq!(
            Some(&lease.nonce),
            status.free.first(),
            "lowest free nonce first"
        );
        store.commit(&lease).await.unwrap();
        assert!(committed.insert(lease.nonce));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn memory_store_keeps_the_invariants(ops in prop::collection::vec(op(), 0..80)) {
        let clock = Arc::new(ManualClock::new(DateTime::<Utc>::UNIX_EPOCH));
        let store = MemoryNonceStore::with_clock(clock.clone());
        runtime().block_on(check(&store, Time::Manual(&clock), ops));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn redis_store_keeps_the_invariants(ops in prop::collection::vec(op(), 0..60)) {
        runtime().block_on(async {
            let redis = TestRedis::new().await;
            let store = RedisNonceStore::new(crate::patient_pool(redis.url(), 16), redis.prefix());
            check(&store, Time::Server, ops).await;
        });
    }
}

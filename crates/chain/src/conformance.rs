//! The conformance suite every [`TxStore`] backend must pass (`haven-db` runs it against
//! Postgres): `run_all(&store).await` panics on the first violated invariant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use chrono::{Duration, Utc};

use crate::store::{Inserted, TxKind, TxRecord, TxStatus, TxStore};

fn record(tx_id: &str, offset_ms: i64) -> TxRecord {
    TxRecord::queued(
        tx_id,
        TxKind::Mint,
        31337,
        Address::repeat_byte(0xaa),
        Address::repeat_byte(0xbb),
        Some(Address::repeat_byte(0xcc)),
        U256::from(5u64),
        120_000,
        Utc::now() + Duration::milliseconds(offset_ms),
    )
}

fn unique(name: &str) -> String {
    format!("conformance:{name}:{}", uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs every check.
pub async fn run_all<S: TxStore + 'static>(store: &Arc<S>) {
    insert_is_unique(store.as_ref()).await;
    concurrent_inserts_have_one_winner(store).await;
    update_is_compare_and_set(store.as_ref()).await;
    round_trips_every_field(store.as_ref()).await;
    lists_by_status_oldest_first(store.as_ref()).await;
}

/// A second insert of a tx_id returns the stored record untouched.
pub async fn insert_is_unique(store: &dyn TxStore) {
    let id = unique("unique");
    let first = record(&id, 0);
    assert!(matches!(
        store.insert(first.clone()).await.unwrap(),
        Inserted::New(_)
    ));
    let mut other = record(&id, 0);
    other.amount = U256::from(99u64);
    match store.insert(other).await.unwrap() {
        Inserted::Existing(existing) => assert_eq!(existing.amount, first.amount),
        Inserted::New(_) => panic!("a second insert of one tx_id must not create a row"),
    }
}

/// Of many concurrent inserts of one tx_id exactly one wins.
pub async fn concurrent_inserts_have_one_winner<S: TxStore + 'static>(store: &Arc<S>) {
    let id = unique("race");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        let r = record(&id, 0);
        tasks.push(tokio::spawn(async move { store.insert(r).await.unwrap() }));
    }
    let mut winners = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Inserted::New(_)) {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one insert of a tx_id wins");
}

/// `update` writes only from the previous version.
pub async fn update_is_compare_and_set(store: &dyn TxStore) {
    let id = unique("cas");
    let Inserted::New(stored) = store.insert(record(&id, 0)).await.unwrap() else {
        panic!("new tx_id");
    };
    assert_eq!(stored.version, 1);
    let mut a = stored.clone();
    a.version = 2;
    a.status = TxStatus::Signed;
    a.nonce = Some(7);
    let mut b = stored.clone();
    b.version = 2;
    b.status = TxStatus::Signed;
    b.nonce = Some(8);
    assert!(store.update(&a).await.unwrap());
    assert!(
        !store.update(&b).await.unwrap(),
        "a stale version must be refused"
    );
    assert_eq!(store.get(&id).await.unwrap().unwrap().nonce, Some(7));
    let mut skip = a.clone();
    skip.version = 4;
    assert!(
        !store.update(&skip).await.unwrap(),
        "versions cannot be skipped"
    );
    let mut missing = record(&unique("missing"), 0);
    missing.version = 2;
    assert!(!store.update(&missing).await.unwrap());
}

/// Every field survives a write and a read.
pub async fn round_trips_every_field(store: &dyn TxStore) {
    let id = unique("fields");
    let Inserted::New(mut r) = store.insert(record(&id, 0)).await.unwrap() else {
        panic!("new tx_id");
    };
    r.version = 2;
    r.status = TxStatus::Broadcast;
    r.nonce = Some(u64::from(u32::MAX) + 5);
    r.hash = Some(alloy::primitives::B256::repeat_byte(1));
    r.raw = Some(vec![2u8, 0xf8, 0x01].into());
    r.previous_hashes = vec![alloy::primitives::B256::repeat_byte(3)];
    r.max_fee_per_gas = Some(3_000_000_000_000);
    r.max_priority_fee_per_gas = Some(1_000_000_000);
    r.attempts = 2;
    r.replacements = 1;
    r.error = Some("replacement underpriced".into());
    r.block_number = Some(12);
    r.block_hash = Some(alloy::primitives::B256::repeat_byte(4));
    r.amount = U256::MAX;
    // Microsecond precision is what Postgres keeps.
    let now = Utc::now();
    let now = now - Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1000));
    r.broadcast_at = Some(now);
    r.confirmed_at = Some(now);
    r.updated_at = now;
    assert!(store.update(&r).await.unwrap());
    let back = store.get(&id).await.unwrap().unwrap();
    assert_eq!(back.status, r.status);
    assert_eq!(back.nonce, r.nonce);
    assert_eq!(back.hash, r.hash);
    assert_eq!(back.raw, r.raw);
    assert_eq!(back.previous_hashes, r.previous_hashes);
    assert_eq!(back.max_fee_per_gas, r.max_fee_per_gas);
    assert_eq!(back.max_priority_fee_per_gas, r.max_priority_fee_per_gas);
    assert_eq!((back.attempts, back.replacements), (2, 1));
    assert_eq!(back.error, r.error);
    assert_eq!(
        (back.block_number, back.block_hash),
        (r.block_number, r.block_hash)
    );
    assert_eq!(back.amount, U256::MAX);
    assert_eq!(back.broadcast_at, r.broadcast_at);
    assert_eq!(back.version, 2);
}

/// Lists filter by status and are ordered by creation.
pub async fn lists_by_status_oldest_first(store: &dyn TxStore) {
    let before = store.count_by_status().await.unwrap();
    let ids: Vec<String> = (0..3).map(|i| unique(&format!("list{i}"))).collect();
    for (i, id) in ids.iter().enumerate().rev() {
        let mut r = record(id, -1_000_000 + i as i64);
        r.status = TxStatus::Replaced;
        store.insert(r).await.unwrap();
    }
    let listed: Vec<String> = store
        .list_by_status(TxStatus::Replaced, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.tx_id)
        .filter(|id| ids.contains(id))
        .collect();
    assert_eq!(listed, ids);
    assert!(
        store
            .list_by_status(TxStatus::Replaced, 1)
            .await
            .unwrap()
            .len()
            <= 1
    );
    let after = store.count_by_status().await.unwrap();
    let replaced = |m: &std::collections::HashMap<TxStatus, u64>| {
        m.get(&TxStatus::Replaced).copied().unwrap_or(0)
    };
    assert_eq!(replaced(&after), replaced(&before) + 3);
}

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
    round_trips_every_kind_with_its_holder(store.as_ref()).await;
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
    r.reorgs = 3;
    r.error = Some("replacement underpriced".into());
    r.block_number = Some(12);
    r.block_hash = Some(alloy::primitives::B256::repeat_byte(4));
    r.amount = U256::MAX;
    // The update is a whole-record replace: kind and holder are written too.
    r.kind = TxKind::TransferFrom;
    r.holder = Some(Address::repeat_byte(0xdd));
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
    assert_eq!((back.attempts, back.replacements, back.reorgs), (2, 1, 3));
    assert_eq!(back.error, r.error);
    assert_eq!(
        (back.block_number, back.block_hash),
        (r.block_number, r.block_hash)
    );
    assert_eq!(back.amount, U256::MAX);
    assert_eq!((back.kind, back.holder), (r.kind, r.holder));
    assert_eq!(back.broadcast_at, r.broadcast_at);
    assert_eq!(back.version, 2);
}

/// Every kind is stored and read back with its parties: the custodial `holder` of a
/// `burn_from` and a `transfer_from`, none for the others. An insert of the same tx_id with
/// another holder returns the stored record, holder untouched.
pub async fn round_trips_every_kind_with_its_holder(store: &dyn TxStore) {
    let holder = Address::repeat_byte(0x5e);
    for kind in TxKind::ALL {
        let id = unique(&format!("kind:{}", kind.as_str()));
        let mut r = record(&id, 0).with_holder(kind.needs_holder().then_some(holder));
        r.kind = kind;
        if !kind.needs_recipient() {
            r.to = None;
        }
        let Inserted::New(inserted) = store.insert(r.clone()).await.unwrap() else {
            panic!("new tx_id");
        };
        assert_eq!((inserted.kind, inserted.holder), (kind, r.holder));
        let back = store.get(&id).await.unwrap().unwrap();
        assert_eq!(back.kind, kind);
        assert_eq!((back.to, back.holder), (r.to, r.holder), "{kind:?}");
        assert!(back.same_request(&r), "{kind:?}: {back:?}");
        if kind.needs_holder() {
            let other = r.clone().with_holder(Some(Address::repeat_byte(0x5f)));
            match store.insert(other.clone()).await.unwrap() {
                Inserted::Existing(existing) => {
                    assert_eq!(existing.holder, Some(holder));
                    assert!(!existing.same_request(&other));
                }
                Inserted::New(_) => panic!("a second insert of one tx_id must not create a row"),
            }
        }
    }
}

/// Lists filter by status and are ordered by creation.
pub async fn lists_by_status_oldest_first(store: &dyn TxStore) {
    let before = store.count_by_status().await.unwrap();
    let ids: Vec<String> = (0..3).map(|i| unique(&format!("list{i}"))).collect();
    // One base instant: a backend that takes over a millisecond per insert must not reorder.
    let base = Utc::now() - Duration::milliseconds(1_000_000);
    for (i, id) in ids.iter().enumerate().rev() {
        let mut r = record(id, 0);
        r.created_at = base + Duration::milliseconds(i as i64);
        r.updated_at = r.created_at;
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

/// Fixtures the backend tests share (this crate's, `haven-db`'s, the worker's): a token
/// deployed and wallets funded on a dev node, custody wallets and their addresses.
pub mod fixtures {
    use std::sync::Arc;

    use alloy::network::TransactionBuilder;
    use alloy::primitives::{Address, U256};
    use alloy::providers::{DynProvider, Provider, ProviderBuilder};
    use alloy::rpc::types::TransactionRequest;
    use alloy::signers::local::PrivateKeySigner;
    use haven_core::audit::MemoryAuditLog;
    use haven_custody::{
        Caller, Chain, Custody, CustodyConfig, LocalKeyProvider, MemoryWalletStore, WalletId,
    };

    /// A provider on `endpoint` that signs locally with `private_key` (a dev account).
    /// The caller installs a rustls crypto provider first (reqwest has none by default).
    pub fn signing_provider(endpoint: &str, private_key: &str) -> DynProvider {
        let signer: PrivateKeySigner = private_key.parse().expect("a valid private key");
        ProviderBuilder::new()
            .wallet(signer)
            .connect_http(endpoint.parse().expect("a valid endpoint URL"))
            .erased()
    }

    /// Deploys the token from the dev account `admin_key` (which becomes its admin) with
    /// `minter`, then sends 100 ETH to each of `funded`. On a fresh dev chain this always
    /// yields the same token address.
    pub async fn deploy_and_fund(
        endpoint: &str,
        admin_key: &str,
        minter: Address,
        funded: &[Address],
    ) -> Address {
        let admin = signing_provider(endpoint, admin_key);
        let admin_address = alloy::signers::Signer::address(
            &admin_key
                .parse::<PrivateKeySigner>()
                .expect("a valid private key"),
        );
        let token = crate::deploy(&admin, admin_address, minter).await.unwrap();
        for to in funded {
            let tx = TransactionRequest::default()
                .with_to(*to)
                .with_value(U256::from(10u64).pow(U256::from(20)));
            admin
                .send_transaction(tx)
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
        }
        token
    }

    /// Custody in memory (fresh master key, memory audit log) with an EVM wallet per name.
    pub async fn memory_custody(wallets: &[&str]) -> Arc<Custody> {
        let keys = LocalKeyProvider::generate_entry(1).unwrap();
        let custody = Arc::new(Custody::new(
            Arc::new(MemoryWalletStore::new()),
            Arc::new(LocalKeyProvider::parse(&keys).unwrap()),
            Arc::new(MemoryAuditLog::new()),
            CustodyConfig::default(),
        ));
        create_wallets(&custody, wallets).await;
        custody
    }

    /// Creates an EVM wallet per name in `custody`.
    pub async fn create_wallets(custody: &Arc<Custody>, wallets: &[&str]) {
        for w in wallets {
            custody
                .create_wallet(
                    WalletId::new(*w).unwrap(),
                    Chain::Evm,
                    serde_json::json!({}),
                    &Caller::new("test"),
                )
                .await
                .unwrap();
        }
    }

    /// The address of a custody wallet's current key.
    pub async fn wallet_address(custody: &Arc<Custody>, wallet: &str) -> Address {
        let signer = custody
            .signer(&WalletId::new(wallet).unwrap(), Caller::new("test"))
            .await
            .unwrap();
        alloy::signers::Signer::address(&signer)
    }
}

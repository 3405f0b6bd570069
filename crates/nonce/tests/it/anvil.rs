//! A3: real transfers on anvil through reserve → sign → send → commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use haven_nonce::{
    AlloyNonceSource, ChainNonceSource, Lease, NonceError, NonceErrorAction, NonceKey,
    NonceManager, NonceStore, RedisNonceStore,
};
use haven_testkit::{Anvil, TestRedis};
use rand::{Rng, SeedableRng};

const TRANSFERS: u64 = 200;
const LEASE_TTL: Duration = Duration::from_secs(60);

struct Chain {
    provider: DynProvider,
    wallet: EthereumWallet,
    from: Address,
    to: Address,
}

impl Chain {
    fn new(anvil: &Anvil) -> Self {
        let provider = ProviderBuilder::new()
            .connect_http(anvil.endpoint().parse().unwrap())
            .erased();
        let signer: PrivateKeySigner = Anvil::DEV_PRIVATE_KEYS[0].parse().unwrap();
        Self {
            provider,
            from: signer.address(),
            wallet: EthereumWallet::from(signer),
            to: Anvil::DEV_ADDRESSES[1].parse().unwrap(),
        }
    }

    async fn sign(&self, nonce: u64) -> Vec<u8> {
        TransactionRequest::default()
            .with_from(self.from)
            .with_to(self.to)
            .with_value(U256::from(1_000 + nonce))
            .with_nonce(nonce)
            .with_chain_id(Anvil::CHAIN_ID)
            .with_gas_limit(21_000)
            .with_max_fee_per_gas(100_000_000_000)
            .with_max_priority_fee_per_gas(1_000_000_000)
            .build(&self.wallet)
            .await
            .unwrap()
            .encoded_2718()
    }

    /// Sends a signed transaction; `Err` carries the node's message.
    async fn send(&self, raw: &[u8]) -> Result<B256, String> {
        self.provider
            .send_raw_transaction(raw)
            .await
            .map(|pending| *pending.tx_hash())
            .map_err(|e| e.to_string())
    }

    /// Waits until the transaction is mined and returns its nonce.
    async fn mined_nonce(&self, hash: B256) -> u64 {
        // Generous: a starved CI machine can slow anvil down a lot.
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(receipt) = self.provider.get_transaction_receipt(hash).await.unwrap() {
                assert!(receipt.status(), "transaction {hash} reverted");
                let tx = self
                    .provider
                    .get_transaction_by_hash(hash)
                    .await
                    .unwrap()
                    .unwrap();
                return alloy::consensus::Transaction::nonce(&tx);
            }
            if Instant::now() >= deadline {
                let latest = self
                    .provider
                    .get_transaction_count(self.from)
                    .latest()
                    .await;
                let pending = self
                    .provider
                    .get_transaction_count(self.from)
                    .pending()
                    .await;
                panic!(
                    "{hash} was not mined (account nonce latest {latest:?}, pending {pending:?})"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One transfer: lease, sign, maybe fail before broadcast (released), send, commit.
async fn transfer(manager: &NonceManager, chain: &Chain, key: &NonceKey, seed: u64) -> (u64, B256) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut lease: Lease = manager.reserve(key).await.unwrap();
    loop {
        let raw = chain.sign(lease.nonce).await;
        if rng.random_bool(0.1) {
            // The send failed before the transaction left the process.
            manager.release(&lease).await.unwrap();
            lease = manager.reserve(key).await.unwrap();
            continue;
        }
        match chain.send(&raw).await {
            Ok(hash) => {
                manager.commit(&lease).await.unwrap();
                return (lease.nonce, hash);
            }
            Err(message) => {
                let error = NonceError::classify(&message)
                    .unwrap_or_else(|| panic!("unexpected send error: {message}"));
                match manager.handle_nonce_error(&lease, error).await.unwrap() {
                    NonceErrorAction::Retry(fresh) => lease = fresh,
                    other => panic!("unexpected action {other:?} after {message}"),
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_are_mined_with_contiguous_nonces_and_sync_recovers() {
    let anvil = tokio::task::spawn_blocking(Anvil::spawn).await.unwrap();
    let redis = TestRedis::new().await;
    let chain = Arc::new(Chain::new(&anvil));
    let source = AlloyNonceSource::new().with_chain(Anvil::CHAIN_ID, chain.provider.clone());
    let store = RedisNonceStore::new(crate::patient_pool(redis.url(), 16), redis.prefix());
    let manager = NonceManager::new(Arc::new(store.clone()), Arc::new(source.clone()), LEASE_TTL);
    let key = NonceKey::new(Anvil::CHAIN_ID, chain.from);

    let tasks: Vec<_> = (0..TRANSFERS)
        .map(|seed| {
            let (manager, chain) = (manager.clone(), chain.clone());
            tokio::spawn(async move { transfer(&manager, &chain, &key, seed).await })
        })
        .collect();
    let mut sent = BTreeMap::new();
    for task in tasks {
        let (nonce, hash) = task.await.unwrap();
        assert!(
            sent.insert(nonce, hash).is_none(),
            "nonce {nonce} used twice"
        );
    }
    assert_eq!(
        sent.keys().copied().collect::<Vec<_>>(),
        (0..TRANSFERS).collect::<Vec<_>>()
    );
    for (nonce, hash) in &sent {
        assert_eq!(chain.mined_nonce(*hash).await, *nonce);
    }
    let mined = chain
        .provider
        .get_transaction_count(chain.from)
        .latest()
        .await
        .unwrap();
    assert_eq!(mined, TRANSFERS);
    let status = store.status(&key).await.unwrap();
    assert!(
        status.leases.is_empty() && status.free.is_empty(),
        "{status:?}"
    );

    // Another client uses the next nonce behind our back.
    let out_of_band = anvil.rpc(
        "eth_sendTransaction",
        serde_json::json!([{ "from": Anvil::DEV_ADDRESSES[0], "to": Anvil::DEV_ADDRESSES[2], "value": "0x1" }]),
    );
    assert!(out_of_band.is_string());
    // anvil answers before it mines; until then a higher-fee transaction with the same
    // nonce would replace this one instead of being refused as too low
    let out_of_band: B256 = out_of_band.as_str().unwrap().parse().unwrap();
    assert_eq!(chain.mined_nonce(out_of_band).await, TRANSFERS);
    let stale = manager.reserve(&key).await.unwrap();
    assert_eq!(
        stale.nonce, TRANSFERS,
        "the store has not seen the out-of-band transaction"
    );
    let message = chain
        .send(&chain.sign(stale.nonce).await)
        .await
        .unwrap_err();
    assert_eq!(
        NonceError::classify(&message),
        Some(NonceError::NonceTooLow),
        "{message}"
    );
    let action = manager
        .handle_nonce_error(&stale, NonceError::NonceTooLow)
        .await
        .unwrap();
    let NonceErrorAction::Retry(fresh) = action else {
        panic!("expected a retry, got {action:?}");
    };
    assert_eq!(fresh.nonce, TRANSFERS + 1);
    let hash = chain.send(&chain.sign(fresh.nonce).await).await.unwrap();
    manager.commit(&fresh).await.unwrap();
    assert_eq!(chain.mined_nonce(hash).await, TRANSFERS + 1);
    assert!(matches!(
        store.commit(&stale).await,
        Err(haven_nonce::Error::LeaseLost { .. })
    ));

    // A wiped store (new prefix) starts from the chain, not from 0.
    let wiped = RedisNonceStore::new(crate::patient_pool(redis.url(), 16), redis.key("wiped:"));
    let fresh_manager = NonceManager::new(Arc::new(wiped), Arc::new(source.clone()), LEASE_TTL);
    let resumed = fresh_manager.reserve(&key).await.unwrap();
    assert_eq!(resumed.nonce, TRANSFERS + 2);
    assert!(resumed.chain_synced);
    assert_eq!(
        source
            .pending_nonce(Anvil::CHAIN_ID, key.address())
            .await
            .unwrap(),
        TRANSFERS + 2
    );
}

#[tokio::test]
async fn an_unknown_chain_is_named() {
    let source = AlloyNonceSource::new();
    let err = source.pending_nonce(5, [0; 20]).await.unwrap_err();
    assert!(
        matches!(err, haven_nonce::Error::UnknownChain { chain_id: 5 }),
        "{err:?}"
    );
}

//! Mint throughput: the full `TokenOps` pipeline (record, fees, nonce lease, custody
//! signing, breaker, broadcast) against bare `eth_sendRawTransaction` of mint transactions
//! signed beforehand with a local key, on the same anvil in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, TxKind as CallTarget, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use haven_chain::{ChainConfig, HavenToken, LogAlertSink, MemoryTxStore, TokenOps, TokenOpsParts};
use haven_core::audit::MemoryAuditLog;
use haven_custody::{
    Caller, Chain, Custody, CustodyConfig, LocalKeyProvider, MemoryWalletStore, WalletId,
};
use haven_nonce::MemoryNonceStore;
use haven_resilience::{BreakerConfig, CircuitBreaker};
use haven_testkit::Anvil;

const BATCH: u64 = 50;

struct Setup {
    ops: TokenOps,
    token: Address,
    reader: DynProvider,
    raw_signer: PrivateKeySigner,
    raw_nonce: AtomicU64,
}

async fn setup(anvil: &Anvil) -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url: alloy::transports::http::reqwest::Url = anvil.endpoint().parse().unwrap();
    let admin_key: PrivateKeySigner = Anvil::DEV_PRIVATE_KEYS[0].parse().unwrap();
    let admin_address = admin_key.address();
    let admin = ProviderBuilder::new()
        .wallet(admin_key)
        .connect_http(url.clone())
        .erased();
    let reader = ProviderBuilder::new().connect_http(url).erased();

    let keys = LocalKeyProvider::generate_entry(1).unwrap();
    let custody = Arc::new(Custody::new(
        Arc::new(MemoryWalletStore::new()),
        Arc::new(LocalKeyProvider::parse(&keys).unwrap()),
        Arc::new(MemoryAuditLog::new()),
        CustodyConfig::default(),
    ));
    let wallet = WalletId::new("minter").unwrap();
    custody
        .create_wallet(
            wallet.clone(),
            Chain::Evm,
            serde_json::json!({}),
            &Caller::new("bench"),
        )
        .await
        .unwrap();
    let signer = custody.signer(&wallet, Caller::new("bench")).await.unwrap();
    let minter = alloy::signers::Signer::address(&signer);

    let token = haven_chain::deploy(&admin, admin_address, minter)
        .await
        .unwrap();
    let fund = TransactionRequest::default()
        .with_to(minter)
        .with_value(U256::from(10u64).pow(U256::from(21)));
    admin
        .send_transaction(fund)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    // The baseline sender: a local key with MINTER_ROLE.
    let raw_signer: PrivateKeySigner = Anvil::DEV_PRIVATE_KEYS[1].parse().unwrap();
    let handle = HavenToken::new(token, &admin);
    let role = handle.MINTER_ROLE().call().await.unwrap();
    handle
        .grantRole(role, raw_signer.address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let raw_nonce = reader
        .get_transaction_count(raw_signer.address())
        .pending()
        .await
        .unwrap();

    let parts = TokenOpsParts {
        provider: reader.clone(),
        chain_id: Anvil::CHAIN_ID,
        token,
        custody,
        wallet,
        caller: Caller::new("bench"),
        nonces: Arc::new(MemoryNonceStore::new()),
        breaker: Arc::new(CircuitBreaker::new("rpc", BreakerConfig::default()).unwrap()),
        store: Arc::new(MemoryTxStore::new()),
        alerts: Arc::new(LogAlertSink),
    };
    let ops = TokenOps::new(parts, ChainConfig::default()).await.unwrap();
    Setup {
        ops,
        token,
        reader,
        raw_signer,
        raw_nonce: AtomicU64::new(raw_nonce),
    }
}

fn presign(setup: &Setup, count: u64) -> Vec<Bytes> {
    (0..count)
        .map(|i| {
            let nonce = setup.raw_nonce.fetch_add(1, Ordering::Relaxed);
            let tx = TxEip1559 {
                chain_id: Anvil::CHAIN_ID,
                nonce,
                gas_limit: 120_000,
                max_fee_per_gas: 20_000_000_000,
                max_priority_fee_per_gas: 1_000_000_000,
                to: CallTarget::Call(setup.token),
                value: U256::ZERO,
                access_list: Default::default(),
                input: HavenToken::mintCall {
                    to: Address::with_last_byte((i % 200) as u8),
                    amount: U256::from(1u64),
                }
                .abi_encode()
                .into(),
            };
            let signature = setup
                .raw_signer
                .sign_hash_sync(&tx.signature_hash())
                .unwrap();
            TxEnvelope::from(tx.into_signed(signature))
                .encoded_2718()
                .into()
        })
        .collect()
}

fn mint_throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let anvil = Anvil::spawn();
    let setup = Arc::new(rt.block_on(setup(&anvil)));
    let seq = Arc::new(AtomicU64::new(0));

    let mut group = c.benchmark_group("mint_throughput");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));

    group.bench_function("raw_presigned_send", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let setup = setup.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let raws = presign(&setup, BATCH);
                    let started = Instant::now();
                    let sends = raws
                        .iter()
                        .map(|raw| setup.reader.send_raw_transaction(raw));
                    for r in futures::future::join_all(sends).await {
                        let _pending = r.unwrap();
                    }
                    total += started.elapsed();
                }
                total
            }
        });
    });

    group.bench_function("token_ops_pipeline", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let setup = setup.clone();
            let seq = seq.clone();
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    let mints = (0..BATCH).map(|i| {
                        let id = seq.fetch_add(1, Ordering::Relaxed);
                        let ops = setup.ops.clone();
                        async move {
                            ops.mint(
                                &format!("bench:{id}"),
                                Address::with_last_byte((i % 200) as u8),
                                U256::from(1u64),
                            )
                            .await
                        }
                    });
                    for r in futures::future::join_all(mints).await {
                        r.unwrap();
                    }
                }
                started.elapsed()
            }
        });
    });
    group.finish();
    drop(anvil);
}

criterion_group!(benches, mint_throughput);
criterion_main!(benches);

//! The money path's throughput: signed partner webhooks into the real api → the worker
//! (a separate process) mints each reward on anvil → the ledger records it `confirmed`;
//! rewards per second with 64 concurrent senders, against raw pre-signed mint transactions
//! sent by 64 senders to the same node until all are mined, measured in the same run with
//! the rounds interleaved.
//!
//! ```sh
//! cargo bench -p haven-worker --bench money_path
//! HAVEN_BENCH_REWARDS=800 HAVEN_BENCH_ROUNDS=5 cargo bench -p haven-worker --bench money_path
//! ```
//!
//! Postgres, Redis and anvil as for the tests (`scripts/services.sh --env`,
//! `scripts/test-tools.sh --env`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/it/stack.rs"]
#[allow(dead_code)]
mod stack;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::primitives::{Address, Bytes, TxKind as CallTarget, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use haven_chain::HavenToken;
use haven_testkit::Anvil;

use stack::Stack;

const SENDERS: usize = 64;
/// Rewards of one member in a round: below `rapid_rewards` (10 an hour), so nothing is held.
const PER_MEMBER: usize = 8;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let count = setting("HAVEN_BENCH_REWARDS", 400);
    let rounds = setting("HAVEN_BENCH_ROUNDS", 3);
    let mut stack = Stack::start_with(|c| {
        let plenty = std::num::NonZeroU32::new(10_000_000).unwrap();
        c.rate_limits.webhook_per_min = plenty;
        c.rate_limits.public_per_min = plenty;
        c.common.db_pool_size = 16;
    })
    .await;
    stack.kill_worker();
    stack.set_worker_env("HAVEN_REWARDS_POLL_MS", "20");
    // With `HAVEN_TEST_WORKER_LOG=<file>` the worker's job steps are logged there.
    let log = if std::env::var_os("HAVEN_TEST_WORKER_LOG").is_some() {
        "warn,haven_worker=debug"
    } else {
        "error"
    };
    stack.set_worker_env("RUST_LOG", log);
    stack.start_worker();
    let raw = RawMinter::new(&stack).await;

    println!(
        "money path: {count} rewards per round, {SENDERS} senders, {rounds} rounds \
         (raw and haven interleaved)"
    );
    println!(
        "{:>5} {:>14} {:>14} {:>7}",
        "round", "raw mints/s", "rewards/s", "ratio"
    );
    let (mut raws, mut havens, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let raw_rate = raw.round(&stack, count).await;
        let haven_rate = rewards_round(&stack, round, count).await;
        let ratio = haven_rate / raw_rate;
        println!("{round:>5} {raw_rate:>14.1} {haven_rate:>14.1} {ratio:>6.2}×");
        raws.push(raw_rate);
        havens.push(haven_rate);
        ratios.push(ratio);
    }
    println!(
        "{:>5} {:>14.1} {:>14.1} {:>6.2}×  (goal ≥ 0.50×)",
        "median",
        median(&mut raws),
        median(&mut havens),
        median(&mut ratios)
    );
    stack.kill_worker();
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `count` signed booking webhooks (200 HNV each) from 64 senders; rewards per second until
/// the ledger records every one `confirmed`.
async fn rewards_round(stack: &Stack, round: usize, count: usize) -> f64 {
    let before = confirmed(stack).await;
    let commits_before = commits(stack).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let bodies: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#"{{"booking_id":"bench-{tag}-{i}","guest_id":"bench-{round}-{tag}-{}","total_price":100,"nights":1}}"#,
                i / PER_MEMBER
            )
        })
        .collect();
    let bodies = Arc::new(bodies);
    let started = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let bodies = bodies.clone();
            async move {
                for body in bodies.iter().skip(sender).step_by(SENDERS) {
                    let (status, answer) = stack.send("aurora/booking-created", body).await;
                    assert_eq!(status, 202, "{answer}");
                }
            }
        })
        .collect();
    futures::future::join_all(senders).await;
    let ingested = started.elapsed();
    let target = before + count as i64;
    loop {
        let now = confirmed(stack).await;
        if now >= target {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{now} of {target} rewards confirmed after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = started.elapsed();
    // Statistics reach pg_stat_database within a second of each transaction's end.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let commits = commits(stack).await - commits_before;
    println!(
        "      haven round {round}: all {count} accepted (202) after {:.2} s ({:.0}/s), \
         all confirmed after {:.2} s; {:.1} Postgres commits per reward",
        ingested.as_secs_f64(),
        count as f64 / ingested.as_secs_f64(),
        total.as_secs_f64(),
        commits as f64 / count as f64
    );
    count as f64 / total.as_secs_f64()
}

async fn confirmed(stack: &Stack) -> i64 {
    use diesel_async::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = stack.pool.get().await.unwrap();
    diesel::sql_query("SELECT count(*) AS n FROM rewards WHERE state = 'confirmed'")
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
}

/// Transactions committed in the stack's database so far (every process).
async fn commits(stack: &Stack) -> i64 {
    use diesel_async::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct Commits {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = stack.pool.get().await.unwrap();
    diesel::sql_query(
        "SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()",
    )
    .get_result::<Commits>(&mut conn)
    .await
    .unwrap()
    .n
}

/// The baseline: a local key with `MINTER_ROLE` whose mints are signed before the clock
/// starts.
struct RawMinter {
    signer: PrivateKeySigner,
    token: Address,
    provider: alloy::providers::DynProvider,
    nonce: std::sync::atomic::AtomicU64,
}

impl RawMinter {
    async fn new(stack: &Stack) -> Self {
        let url: alloy::transports::http::reqwest::Url = stack.anvil.endpoint().parse().unwrap();
        let admin_key: PrivateKeySigner = Anvil::DEV_PRIVATE_KEYS[0].parse().unwrap();
        let admin = ProviderBuilder::new()
            .wallet(admin_key)
            .connect_http(url.clone())
            .erased();
        let signer: PrivateKeySigner = Anvil::DEV_PRIVATE_KEYS[1].parse().unwrap();
        let token = HavenToken::new(stack.token, &admin);
        let role = token.MINTER_ROLE().call().await.unwrap();
        token
            .grantRole(role, signer.address())
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let nonce = provider
            .get_transaction_count(signer.address())
            .pending()
            .await
            .unwrap();
        Self {
            signer,
            token: stack.token,
            provider,
            nonce: nonce.into(),
        }
    }

    fn presign(&self, count: usize) -> Vec<Bytes> {
        (0..count)
            .map(|i| {
                let nonce = self
                    .nonce
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let tx = TxEip1559 {
                    chain_id: Anvil::CHAIN_ID,
                    nonce,
                    gas_limit: 120_000,
                    max_fee_per_gas: 20_000_000_000,
                    max_priority_fee_per_gas: 1_000_000_000,
                    to: CallTarget::Call(self.token),
                    value: U256::ZERO,
                    access_list: Default::default(),
                    input: HavenToken::mintCall {
                        to: Address::with_last_byte((i % 200) as u8 + 1),
                        amount: U256::from(1u64),
                    }
                    .abi_encode()
                    .into(),
                };
                let signature = self.signer.sign_hash_sync(&tx.signature_hash()).unwrap();
                TxEnvelope::from(tx.into_signed(signature))
                    .encoded_2718()
                    .into()
            })
            .collect()
    }

    /// Mints per second: `count` pre-signed mints from 64 senders until all are mined.
    async fn round(&self, _stack: &Stack, count: usize) -> f64 {
        let raws = Arc::new(self.presign(count));
        let target = self.nonce.load(std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let raws = raws.clone();
                async move {
                    for raw in raws.iter().skip(sender).step_by(SENDERS) {
                        let _pending = self.provider.send_raw_transaction(raw).await.unwrap();
                    }
                }
            })
            .collect();
        futures::future::join_all(senders).await;
        loop {
            let mined = self
                .provider
                .get_transaction_count(self.signer.address())
                .await
                .unwrap();
            if mined >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        count as f64 / started.elapsed().as_secs_f64()
    }
}

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use haven_chain::conformance::fixtures;
use haven_chain::{
    ChainConfig, HavenToken, MemoryAlertSink, MemoryTxStore, TokenOps, TokenOpsParts,
};
use haven_custody::{Caller, Custody, WalletId};
use haven_nonce::MemoryNonceStore;
use haven_resilience::{Breaker, BreakerConfig, CircuitBreaker, Clock, ManualClock};
use haven_testkit::Anvil;

pub struct Env {
    pub ops: TokenOps,
    pub token: Address,
    pub store: Arc<MemoryTxStore>,
    pub alerts: Arc<MemoryAlertSink>,
    pub clock: Arc<ManualClock>,
    pub reader: DynProvider,
}

pub fn admin_provider(anvil: &Anvil) -> DynProvider {
    install_crypto();
    fixtures::signing_provider(&anvil.endpoint(), Anvil::DEV_PRIVATE_KEYS[0])
}

pub fn reader(anvil: &Anvil) -> DynProvider {
    install_crypto();
    ProviderBuilder::new()
        .connect_http(anvil.endpoint().parse().unwrap())
        .erased()
}

pub async fn custody_with(wallets: &[&str]) -> Arc<Custody> {
    fixtures::memory_custody(wallets).await
}

pub async fn wallet_address(custody: &Arc<Custody>, wallet: &str) -> Address {
    fixtures::wallet_address(custody, wallet).await
}

/// Deploys the token from dev account 0 (admin) with `minter`, then funds `funded` with ETH.
/// On a fresh chain this always yields the same token address.
pub async fn deploy_and_fund(anvil: &Anvil, minter: Address, funded: &[Address]) -> Address {
    install_crypto();
    fixtures::deploy_and_fund(
        &anvil.endpoint(),
        Anvil::DEV_PRIVATE_KEYS[0],
        minter,
        funded,
    )
    .await
}

pub fn fast_breaker(clock: Arc<ManualClock>) -> Arc<dyn Breaker> {
    let config = BreakerConfig {
        consecutive_failures: Some(3),
        open_timeout: Duration::from_secs(30),
        ..BreakerConfig::default()
    };
    let clock: Arc<dyn Clock> = clock;
    Arc::new(CircuitBreaker::with_clock("rpc", config, clock).unwrap())
}

/// A minter wallet, the token deployed and TokenOps over fresh in-memory stores.
pub async fn setup(anvil: &Anvil, config: ChainConfig) -> Env {
    let custody = custody_with(&["minter"]).await;
    let minter = wallet_address(&custody, "minter").await;
    let token = deploy_and_fund(anvil, minter, &[minter]).await;
    ops_for(anvil, custody, "minter", token, config).await
}

pub async fn ops_for(
    anvil: &Anvil,
    custody: Arc<Custody>,
    wallet: &str,
    token: Address,
    config: ChainConfig,
) -> Env {
    let store = Arc::new(MemoryTxStore::new());
    let alerts = Arc::new(MemoryAlertSink::new());
    let clock = Arc::new(ManualClock::new());
    let parts = TokenOpsParts {
        provider: reader(anvil),
        chain_id: Anvil::CHAIN_ID,
        token,
        custody: custody.clone(),
        wallet: WalletId::new(wallet).unwrap(),
        caller: Caller::new("chain-test"),
        nonces: Arc::new(MemoryNonceStore::new()),
        breaker: fast_breaker(clock.clone()),
        store: store.clone(),
        alerts: alerts.clone(),
    };
    let ops = TokenOps::new(parts, config).await.unwrap();
    Env {
        ops,
        token,
        store,
        alerts,
        clock,
        reader: reader(anvil),
    }
}

pub async fn total_supply(reader: &DynProvider, token: Address) -> U256 {
    HavenToken::new(token, reader)
        .totalSupply()
        .call()
        .await
        .unwrap()
}

pub async fn balance_of(reader: &DynProvider, token: Address, who: Address) -> U256 {
    HavenToken::new(token, reader)
        .balanceOf(who)
        .call()
        .await
        .unwrap()
}

pub async fn chain_nonce(reader: &DynProvider, who: Address) -> u64 {
    reader.get_transaction_count(who).latest().await.unwrap()
}

pub fn user(i: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[0] = 0x42;
    bytes[12..].copy_from_slice(&i.to_be_bytes());
    Address::from(bytes)
}

/// reqwest is built without a default TLS provider; alloy's HTTP client needs one.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs monitoring cycles, as the worker does minute after minute, until `tx_id` reaches
/// `status` (at most 10 s); returns every cycle's report. With automine a transaction is
/// mined just after its send returns, not always before the first cycle asks for the receipt.
pub async fn cycle_until(
    env: &Env,
    tx_id: &str,
    status: haven_chain::TxStatus,
) -> Vec<haven_chain::MonitorReport> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut reports = Vec::new();
    loop {
        reports.push(env.ops.monitor_once(chrono::Utc::now()).await.unwrap());
        let now = env.ops.get(tx_id).await.unwrap().map(|r| r.status);
        if now == Some(status) {
            return reports;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{tx_id} is {now:?}, not {status:?}, after {} cycles: {reports:?}",
            reports.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

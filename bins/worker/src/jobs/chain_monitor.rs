//! The chain monitoring job: one [`TokenOps::monitor_once`] per interval over the
//! `transactions` table.
//!
//! Composition only: the cycle itself (stuck → fee-bumped replacement, receipt status 0 →
//! failed + alert, gas spikes, reorgs) lives in `haven-chain`. The parts are built on the
//! first step rather than at start-up, so the worker starts (and reports the failure in
//! `/jobs`) while Postgres or the node is down.

use std::sync::Arc;

use alloy::providers::{Provider, ProviderBuilder};
use anyhow::Context;
use futures::future::BoxFuture;
use haven_chain::{ChainAlertSink, ChainConfig, TokenOps, TokenOpsParts};
use haven_custody::{Caller, Custody, CustodyConfig, LocalKeyProvider};
use haven_db::{PgAuditLog, PgNonceStore, PgPool, PgTxStore, PgWalletStore};
use haven_resilience::{Breaker, BreakerConfig, CircuitBreaker};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::Job;
use crate::config::ChainSettings;

/// Who custody's audit log records as signing replacements.
const CALLER: &str = "haven-worker:chain_monitor";

/// The token pipeline shared by the chain jobs: custody (with the master keys) and
/// [`TokenOps`], composed on first use so the worker starts while Postgres or the node is
/// down.
pub struct Chain {
    settings: ChainSettings,
    eth_rpc_url: String,
    pool: PgPool,
    alerts: Arc<dyn ChainAlertSink>,
    breaker: Option<Arc<dyn Breaker>>,
    parts: OnceCell<(Arc<Custody>, TokenOps)>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("token", &self.settings.token)
            .field("wallet", &self.settings.wallet)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// The pipeline over `pool` (the `transactions`, nonce, wallet and audit tables) and the
    /// node at `eth_rpc_url`, raising alerts into `alerts`.
    pub fn new(
        settings: ChainSettings,
        eth_rpc_url: impl Into<String>,
        pool: PgPool,
        alerts: Arc<dyn ChainAlertSink>,
    ) -> Self {
        Self {
            settings,
            eth_rpc_url: eth_rpc_url.into(),
            pool,
            alerts,
            breaker: None,
            parts: OnceCell::new(),
        }
    }

    /// Calls the node through `breaker` (e.g. the worker's shared `eth_rpc`) instead of an
    /// in-process breaker of its own.
    #[must_use]
    pub fn with_breaker(mut self, breaker: Arc<dyn Breaker>) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &ChainSettings {
        &self.settings
    }

    /// The composed [`TokenOps`] (built on first use): the same pipeline the api submits
    /// through, over the same tables.
    pub async fn ops(&self) -> anyhow::Result<&TokenOps> {
        Ok(&self.parts().await?.1)
    }

    /// Custody with the master keys (member wallets are created through it).
    pub async fn custody(&self) -> anyhow::Result<&Arc<Custody>> {
        Ok(&self.parts().await?.0)
    }

    async fn parts(&self) -> anyhow::Result<&(Arc<Custody>, TokenOps)> {
        self.parts.get_or_try_init(|| self.compose()).await
    }

    async fn compose(&self) -> anyhow::Result<(Arc<Custody>, TokenOps)> {
        let settings = &self.settings;
        let mut keys = LocalKeyProvider::parse(settings.master_keys.expose_secret())
            .context("HAVEN_MASTER_KEYS")?;
        if let Some(min) = settings.min_decryption_version {
            keys = keys
                .with_min_decryption_version(min)
                .context("HAVEN_MIN_DECRYPTION_VERSION")?;
        }
        let custody = Arc::new(Custody::new(
            Arc::new(PgWalletStore::new(self.pool.clone())),
            Arc::new(keys),
            Arc::new(PgAuditLog::new(self.pool.clone())),
            CustodyConfig::default(),
        ));
        // reqwest is built without a default TLS provider; alloy's HTTP client needs one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let provider = ProviderBuilder::new()
            .connect_http(self.eth_rpc_url.parse().context("ETH_RPC_URL")?)
            .erased();
        let chain_id = provider
            .get_chain_id()
            .await
            .context("reading the chain id from ETH_RPC_URL")?;
        let parts = TokenOpsParts {
            provider,
            chain_id,
            token: settings.token,
            custody: custody.clone(),
            wallet: settings.wallet.clone(),
            caller: Caller::new(CALLER),
            nonces: Arc::new(PgNonceStore::new(self.pool.clone())),
            breaker: match &self.breaker {
                Some(breaker) => breaker.clone(),
                None => Arc::new(CircuitBreaker::new("eth_rpc", BreakerConfig::default())?),
            },
            store: Arc::new(PgTxStore::new(self.pool.clone())),
            alerts: self.alerts.clone(),
        };
        let ops = TokenOps::new(parts, ChainConfig::default())
            .await
            .context("composing the token pipeline (HAVEN_CHAIN_WALLET in custody)")?;
        Ok((custody, ops))
    }
}

/// Runs the chain monitoring cycle on `HAVEN_SCHEDULE_CHAIN_MONITOR` (every minute).
#[derive(Debug)]
pub struct ChainMonitorJob {
    chain: Arc<Chain>,
}

impl ChainMonitorJob {
    /// A job over `pool` (the `transactions`, nonce, wallet and audit tables) and the node at
    /// `eth_rpc_url`, raising alerts into `alerts`.
    pub fn new(
        settings: ChainSettings,
        eth_rpc_url: impl Into<String>,
        pool: PgPool,
        alerts: Arc<dyn ChainAlertSink>,
    ) -> Self {
        Self::over(Arc::new(Chain::new(settings, eth_rpc_url, pool, alerts)))
    }

    /// A job over an already shared pipeline.
    pub fn over(chain: Arc<Chain>) -> Self {
        Self { chain }
    }

    /// The pipeline this job drives.
    pub fn chain(&self) -> Arc<Chain> {
        self.chain.clone()
    }

    /// The composed [`TokenOps`].
    pub async fn ops(&self) -> anyhow::Result<&TokenOps> {
        self.chain.ops().await
    }
}

impl Job for ChainMonitorJob {
    fn name(&self) -> &'static str {
        "chain_monitor"
    }

    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let ops = self.ops().await?;
            let report = ops
                .monitor_once(chrono::Utc::now())
                .await
                .context("monitoring cycle")?;
            for error in &report.errors {
                tracing::warn!(error = %haven_core::redact(error), "chain monitor: a transaction could not be handled");
            }
            tracing::info!(
                resumed = report.resumed,
                rebroadcast = report.rebroadcast,
                replaced = report.replaced,
                confirmed = report.confirmed,
                failed = report.failed,
                nonce_taken = report.nonce_taken,
                reorged = report.reorged,
                alerts = report.alerts,
                gas_price = report.gas_price,
                "chain monitor cycle"
            );
            Ok(())
        })
    }
}

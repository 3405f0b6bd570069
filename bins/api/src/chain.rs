//! Reads of the HAVEN token the api shows (balances, supply), and the node check of
//! `/ready`. The api never signs: every transaction is the worker's.
//!
//! Every call to the node goes through the `eth_rpc` circuit breaker, the one the worker's
//! jobs use (shared through Redis): while the node is failing, reads fail fast on every
//! replica instead of each waiting out its timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use haven_resilience::{Breaker, BreakerExt, CallError};
use serde::Serialize;

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use anyhow::Context;
use haven_chain::HavenToken;

/// The node's breaker: the same name as the worker's, so replicas and workers share it.
pub const NODE_BREAKER: &str = "eth_rpc";

/// How long one read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `/ready` waits for the node (load balancers probe with short timeouts).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the token at one address through `ETH_RPC_URL`.
#[derive(Debug, Clone)]
pub struct TokenReader {
    provider: DynProvider,
    token: Address,
    breaker: Arc<dyn Breaker>,
}

/// A provider for the node at `rpc_url` (no connection is made yet).
pub fn provider(rpc_url: &str) -> anyhow::Result<DynProvider> {
    // reqwest is built without a default TLS provider; alloy's HTTP client needs one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(ProviderBuilder::new()
        .connect_http(rpc_url.parse().context("ETH_RPC_URL")?)
        .erased())
}

/// One call to the node through `breaker`, within [`READ_TIMEOUT`].
async fn guarded<T, F>(breaker: &dyn Breaker, what: &'static str, call: F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = anyhow::Result<T>> + Send,
    T: Send,
{
    let result = breaker
        .call(|| async move {
            tokio::time::timeout(READ_TIMEOUT, call)
                .await
                .context("the node did not answer in time")?
        })
        .await;
    match result {
        Ok(value) => Ok(value),
        Err(CallError::Operation(e)) => Err(e.context(what)),
        Err(CallError::Resilience(e)) => Err(anyhow::Error::new(e).context(what)),
    }
}

impl TokenReader {
    /// A reader of `token` through the node at `rpc_url`, guarded by `breaker`.
    pub fn new(rpc_url: &str, token: Address, breaker: Arc<dyn Breaker>) -> anyhow::Result<Self> {
        Ok(Self {
            provider: provider(rpc_url)?,
            token,
            breaker,
        })
    }

    /// The token's address.
    pub fn token(&self) -> Address {
        self.token
    }

    /// `balanceOf(holder)`.
    pub async fn balance_of(&self, holder: Address) -> anyhow::Result<U256> {
        let token = HavenToken::new(self.token, &self.provider);
        guarded(self.breaker.as_ref(), "reading balanceOf", async move {
            Ok(token.balanceOf(holder).call().await?)
        })
        .await
    }

    /// `totalSupply()`.
    pub async fn total_supply(&self) -> anyhow::Result<U256> {
        let token = HavenToken::new(self.token, &self.provider);
        guarded(self.breaker.as_ref(), "reading totalSupply", async move {
            Ok(token.totalSupply().call().await?)
        })
        .await
    }
}

/// What `/ready` says of the node: its chain and how old its latest block is. The node is
/// reported, never a reason to be unready (only balance and supply reads need it).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeCheck {
    /// `up`, `down`, or `circuit_open` (the shared `eth_rpc` breaker refused the call).
    pub status: &'static str,
    /// Round-trip time of the check in milliseconds.
    pub latency_ms: f64,
    /// The chain id the node serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// The latest block's number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_block: Option<u64>,
    /// Seconds since the latest block's timestamp (a stalled node shows a growing age).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_age_secs: Option<i64>,
    /// Why it is down (no URL: the cause only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Checks the node through `breaker`: chain id and latest block.
pub async fn check_node(provider: &DynProvider, breaker: &dyn Breaker) -> NodeCheck {
    let started = Instant::now();
    let result = breaker
        .call(|| async {
            tokio::time::timeout(CHECK_TIMEOUT, async {
                let chain_id = provider.get_chain_id().await?;
                let block = provider
                    .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
                    .await?
                    .context("the node has no latest block")?;
                anyhow::Ok((chain_id, block.header.number, block.header.timestamp))
            })
            .await
            .context("the node did not answer in time")?
        })
        .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let down = |status, error: String| NodeCheck {
        status,
        latency_ms,
        chain_id: None,
        latest_block: None,
        block_age_secs: None,
        error: Some(haven_core::redact(&error)),
    };
    match result {
        Ok((chain_id, number, timestamp)) => NodeCheck {
            status: "up",
            latency_ms,
            chain_id: Some(chain_id),
            latest_block: Some(number),
            block_age_secs: Some(
                chrono::Utc::now().timestamp() - i64::try_from(timestamp).unwrap_or(i64::MAX),
            ),
            error: None,
        },
        Err(CallError::Resilience(e)) => down("circuit_open", e.to_string()),
        Err(CallError::Operation(e)) => down("down", format!("{e:#}")),
    }
}

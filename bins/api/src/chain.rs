//! Reads of the HAVEN token the api shows (balances, supply). The api never signs: every
//! transaction is the worker's.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use anyhow::Context;
use haven_chain::HavenToken;

/// How long one read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the token at one address through `ETH_RPC_URL`.
#[derive(Debug, Clone)]
pub struct TokenReader {
    provider: DynProvider,
    token: Address,
}

impl TokenReader {
    /// A reader of `token` through the node at `rpc_url` (no connection is made yet).
    pub fn new(rpc_url: &str, token: Address) -> anyhow::Result<Self> {
        // reqwest is built without a default TLS provider; alloy's HTTP client needs one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let provider = ProviderBuilder::new()
            .connect_http(rpc_url.parse().context("ETH_RPC_URL")?)
            .erased();
        Ok(Self { provider, token })
    }

    /// The token's address.
    pub fn token(&self) -> Address {
        self.token
    }

    /// `balanceOf(holder)`.
    pub async fn balance_of(&self, holder: Address) -> anyhow::Result<U256> {
        let token = HavenToken::new(self.token, &self.provider);
        tokio::time::timeout(READ_TIMEOUT, token.balanceOf(holder).call())
            .await
            .context("the node did not answer in time")?
            .context("reading balanceOf")
    }

    /// `totalSupply()`.
    pub async fn total_supply(&self) -> anyhow::Result<U256> {
        let token = HavenToken::new(self.token, &self.provider);
        tokio::time::timeout(READ_TIMEOUT, token.totalSupply().call())
            .await
            .context("the node did not answer in time")?
            .context("reading totalSupply")
    }
}

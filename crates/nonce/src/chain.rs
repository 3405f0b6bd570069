use async_trait::async_trait;

use crate::Result;

/// Reads the chain's view of an account's next nonce: `eth_getTransactionCount(address,
/// "pending")`, i.e. mined transactions plus those in the node's pool.
///
/// **Invariant:** the stores never call it; only [`NonceManager`](crate::NonceManager) and
/// callers do, and pass the value to [`NonceStore::sync`](crate::NonceStore::sync) as a floor.
#[async_trait]
pub trait ChainNonceSource: Send + Sync + std::fmt::Debug {
    /// The pending nonce of `address` on `chain_id`.
    async fn pending_nonce(&self, chain_id: u64, address: [u8; 20]) -> Result<u64>;
}

#[cfg(feature = "alloy")]
pub use self::alloy_source::AlloyNonceSource;

#[cfg(feature = "alloy")]
mod alloy_source {
    use std::collections::HashMap;

    use alloy::primitives::Address;
    use alloy::providers::{DynProvider, Provider};
    use async_trait::async_trait;

    use super::ChainNonceSource;
    use crate::{Error, Result};

    /// A [`ChainNonceSource`] over alloy providers, one per chain id.
    #[derive(Debug, Clone, Default)]
    pub struct AlloyNonceSource {
        providers: HashMap<u64, DynProvider>,
    }

    impl AlloyNonceSource {
        /// A source that knows no chain yet.
        pub fn new() -> Self {
            Self::default()
        }

        /// Uses `provider` for `chain_id`.
        pub fn with_chain(mut self, chain_id: u64, provider: impl Provider + 'static) -> Self {
            self.providers.insert(chain_id, provider.erased());
            self
        }
    }

    #[async_trait]
    impl ChainNonceSource for AlloyNonceSource {
        async fn pending_nonce(&self, chain_id: u64, address: [u8; 20]) -> Result<u64> {
            let provider = self
                .providers
                .get(&chain_id)
                .ok_or(Error::UnknownChain { chain_id })?;
            provider
                .get_transaction_count(Address::from(address))
                .pending()
                .await
                .map_err(|source| Error::ChainUnavailable {
                    chain_id,
                    source: Box::new(source),
                })
        }
    }
}

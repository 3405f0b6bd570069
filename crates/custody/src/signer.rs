//! [`CustodySigner`]: alloy's `Signer` and `TxSigner` over a custody wallet.

use std::fmt;
use std::sync::Arc;

use alloy::consensus::SignableTransaction;
use alloy::network::{EthereumWallet, IntoWallet, TxSigner};
use alloy::primitives::{Address, B256, ChainId, Signature};
use alloy::signers::Signer;
use async_trait::async_trait;

use crate::custody::Custody;
use crate::types::{Caller, KeyRef};

/// An alloy signer that signs through [`Custody`] without ever holding the key.
///
/// Built by [`Custody::signer`], pinned to one key version (its `address` never changes):
/// once that key is rotated or the wallet revoked, every signature is refused with
/// [`crate::Error::NotActive`] (wrapped in `alloy::signers::Error::Other`). Each signature is
/// audited under the caller given at construction.
///
/// Use it wherever alloy takes a signer, e.g.
/// `ProviderBuilder::new().wallet(signer).connect_http(url)`.
#[derive(Clone)]
pub struct CustodySigner {
    custody: Arc<Custody>,
    key: KeyRef,
    address: Address,
    chain_id: Option<ChainId>,
    caller: Caller,
}

impl fmt::Debug for CustodySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustodySigner")
            .field("key", &self.key)
            .field("address", &self.address)
            .field("chain_id", &self.chain_id)
            .field("actor", &self.caller.actor)
            .finish()
    }
}

impl CustodySigner {
    pub(crate) fn new(
        custody: Arc<Custody>,
        key: KeyRef,
        address: Address,
        caller: Caller,
    ) -> Self {
        Self {
            custody,
            key,
            address,
            chain_id: None,
            caller,
        }
    }

    /// The pinned key.
    pub fn key(&self) -> &KeyRef {
        &self.key
    }

    /// Sets the EIP-155 chain id enforced on transactions (builder style).
    pub fn with_chain_id(mut self, chain_id: Option<ChainId>) -> Self {
        self.chain_id = chain_id;
        self
    }
}

#[async_trait]
impl Signer for CustodySigner {
    async fn sign_hash(&self, hash: &B256) -> alloy::signers::Result<Signature> {
        let sig = self
            .custody
            .sign_hash(self.key.clone(), hash, &self.caller)
            .await
            .map_err(alloy::signers::Error::other)?;
        sig.as_evm()
            .copied()
            .ok_or_else(|| alloy::signers::Error::message("not an EVM wallet"))
    }

    fn address(&self) -> Address {
        self.address
    }

    fn chain_id(&self) -> Option<ChainId> {
        self.chain_id
    }

    fn set_chain_id(&mut self, chain_id: Option<ChainId>) {
        self.chain_id = chain_id;
    }
}

#[async_trait]
impl TxSigner<Signature> for CustodySigner {
    fn address(&self) -> Address {
        self.address
    }

    async fn sign_transaction(
        &self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> alloy::signers::Result<Signature> {
        if let Some(chain_id) = self.chain_id
            && !tx.set_chain_id_checked(chain_id)
        {
            return Err(alloy::signers::Error::TransactionChainIdMismatch {
                signer: chain_id,
                tx: tx.chain_id().unwrap_or_default(),
            });
        }
        self.custody
            .sign_signable(&self.key, tx, &self.caller)
            .await
            .map_err(alloy::signers::Error::other)
    }
}

impl IntoWallet for CustodySigner {
    type NetworkWallet = EthereumWallet;

    fn into_wallet(self) -> EthereumWallet {
        EthereumWallet::from(self)
    }
}

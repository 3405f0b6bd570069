//! Wallet key custody for haven: keys are generated here, stored only envelope-encrypted,
//! and used to sign without ever being handed out.
//!
//! - **Keys**: EVM secp256k1 (EIP-55 addresses) and Solana ed25519 (base58 addresses), from
//!   the OS RNG.
//! - **Envelope encryption**: each key version gets its own random 256-bit data key (DEK);
//!   the private key is sealed with AES-256-GCM under it, with the authenticated data
//!   binding wallet id ‖ chain ‖ key version ‖ purpose. The DEK is wrapped by a versioned
//!   key-encryption key from a [`KeyProvider`] ([`LocalKeyProvider`], or Vault Transit
//!   behind the `vault` feature).
//! - **Operations** on [`Custody`]: create, get, list, sign (hash, message, EVM
//!   transaction), export (off unless enabled, with a reason, audited `HIGH`), rotate,
//!   revoke, and [`Custody::rewrap_all`] for KEK rotation. Each appends one event to the
//!   hash-chained audit log ([`haven_core::audit::AuditSink`]).
//! - **Storage** behind [`WalletStore`]; [`MemoryWalletStore`] here, Postgres in `haven-db`.
//! - **alloy**: [`CustodySigner`] implements `Signer` and `TxSigner`, so a transaction
//!   builder hands over an unsigned transaction and gets it back signed.
//!
//! ```
//! use std::sync::Arc;
//! use haven_core::audit::MemoryAuditLog;
//! use haven_custody::{Caller, Chain, Custody, CustodyConfig, LocalKeyProvider,
//!     MemoryWalletStore, WalletId};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // the binary reads HAVEN_MASTER_KEYS and passes the text in
//! let master_keys = LocalKeyProvider::generate_entry(1)?;
//! let provider = LocalKeyProvider::parse(&master_keys)?;
//! let audit = Arc::new(MemoryAuditLog::new());
//! let custody = Custody::new(
//!     Arc::new(MemoryWalletStore::new()),
//!     Arc::new(provider),
//!     audit.clone(),
//!     CustodyConfig::default(),
//! );
//! let caller = Caller::new("alice").with_request_id("req-1");
//! let id = WalletId::new("user_123")?;
//! let wallet = custody
//!     .create_wallet(id.clone(), Chain::Evm, serde_json::json!({"tier": "premium"}), &caller)
//!     .await?;
//!
//! let hash = alloy::primitives::B256::repeat_byte(7);
//! let signature = custody.sign_hash(&id, &hash, &caller).await?;
//! let signer = signature.as_evm().unwrap().recover_address_from_prehash(&hash).unwrap();
//! assert_eq!(signer.to_checksum(None), wallet.address());
//! assert_eq!(audit.records().len(), 2); // wallet.create, wallet.sign_hash
//! # Ok::<_, haven_custody::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Features
//! - `vault`: `VaultTransitKeyProvider` (module `vault`), data keys
//!   wrapped by HashiCorp Vault Transit (`encrypt`, `decrypt`, `rewrap`) over HTTP with
//!   reqwest and rustls.
//! - `test-utils`: the `conformance` module, a suite that every [`WalletStore`] implementation
//!   (e.g. the Postgres one) must pass, and `FaultyWalletStore`, which wraps any store and
//!   makes rewrap writes fail or hang and reads serve tampered ciphertexts.

mod custody;
pub mod envelope;
mod error;
mod keys;
mod provider;
mod signer;
mod store;
mod types;

#[cfg(feature = "test-utils")]
pub mod conformance;
#[cfg(feature = "test-utils")]
mod faulty;
#[cfg(feature = "vault")]
pub mod vault;

pub use custody::{Custody, CustodyConfig, ExportedKey, RewrapProgress};
pub use envelope::DataKey;
pub use error::{BoxError, Error, MasterKeyProblem, Result, SecretKind};
#[cfg(feature = "test-utils")]
pub use faulty::{FaultyWalletStore, RewrapFault};
pub use keys::{ChainSignature, evm_address, sign_evm_prehash};
pub use provider::{KeyProvider, LocalKeyProvider, NoKeyProvider};
pub use signer::CustodySigner;
pub use store::{KeyCursor, MemoryWalletStore, WalletStore};
pub use types::{
    Caller, Chain, KeyInfo, KeyRecord, KeyRef, KeyStatus, PageRequest, SealedKey, Wallet,
    WalletFilter, WalletId, WalletPage, WalletRecord, WalletStatus, WrappedDek,
};
#[cfg(feature = "vault")]
pub use vault::{VaultTransitConfig, VaultTransitKeyProvider};

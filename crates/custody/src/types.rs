//! Public data: wallet ids, chains, statuses and the records a [`crate::WalletStore`] keeps.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// The caller-chosen identifier of a wallet, e.g. `user_123`.
///
/// 1 to 128 characters from `A-Z a-z 0-9 _ - . :`; it ends up in URLs, logs and the
/// authenticated data of the wallet's ciphertexts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WalletId(String);

impl WalletId {
    /// The longest id accepted.
    pub const MAX_LEN: usize = 128;

    /// Validates `raw`.
    pub fn new(raw: impl Into<String>) -> Result<Self> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(Error::InvalidWalletId {
                reason: "it is empty",
            });
        }
        if raw.len() > Self::MAX_LEN {
            return Err(Error::InvalidWalletId {
                reason: "it is longer than 128 characters",
            });
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        {
            return Err(Error::InvalidWalletId {
                reason: "only A-Z a-z 0-9 _ - . : are allowed",
            });
        }
        Ok(Self(raw))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WalletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for WalletId {
    type Error = Error;
    fn try_from(raw: String) -> Result<Self> {
        Self::new(raw)
    }
}

impl TryFrom<&str> for WalletId {
    type Error = Error;
    fn try_from(raw: &str) -> Result<Self> {
        Self::new(raw)
    }
}

impl From<WalletId> for String {
    fn from(id: WalletId) -> Self {
        id.0
    }
}

impl std::str::FromStr for WalletId {
    type Err = Error;
    fn from_str(raw: &str) -> Result<Self> {
        Self::new(raw)
    }
}

/// The key family of a wallet. Every EVM chain shares one secp256k1 key and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Chain {
    /// secp256k1, EIP-55 checksummed `0x` address.
    Evm,
    /// ed25519, base58 address (the public key).
    Solana,
}

impl Chain {
    /// Every chain, in declaration order.
    pub const ALL: &'static [Chain] = &[Chain::Evm, Chain::Solana];

    /// The stored name: `evm` or `solana`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Chain::Evm => "evm",
            Chain::Solana => "solana",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == raw)
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a wallet may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalletStatus {
    /// Its current key signs.
    Active,
    /// Nothing signs, for good.
    Revoked,
}

impl WalletStatus {
    /// The stored name: `active` or `revoked`.
    pub const fn as_str(self) -> &'static str {
        match self {
            WalletStatus::Active => "active",
            WalletStatus::Revoked => "revoked",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [WalletStatus::Active, WalletStatus::Revoked]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// The state of one key version of a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// The wallet's current key; it signs.
    Active,
    /// Replaced by a newer version; listed, never signs again.
    Rotated,
    /// The wallet was revoked while this was its current key.
    Revoked,
}

impl KeyStatus {
    /// The stored name: `active`, `rotated` or `revoked`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Rotated => "rotated",
            KeyStatus::Revoked => "revoked",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [KeyStatus::Active, KeyStatus::Rotated, KeyStatus::Revoked]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public facts about one key version (row of `wallet_keys` without the ciphertexts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// From 1, one more on every rotation.
    pub version: u32,
    /// EIP-55 (`0x…`) or base58 address of this key.
    pub address: String,
    /// Whether it signs.
    pub status: KeyStatus,
    /// The KEK version its data key is wrapped under.
    pub kek_version: u32,
    /// When the key was generated.
    pub created_at: DateTime<Utc>,
    /// When it was rotated or revoked.
    pub retired_at: Option<DateTime<Utc>>,
}

/// A wallet row without its keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalletRecord {
    /// The id.
    pub id: WalletId,
    /// The key family.
    pub chain: Chain,
    /// Whether it may sign.
    pub status: WalletStatus,
    /// The version of the key that signs.
    pub current_version: u32,
    /// Caller-supplied, public JSON (never secrets).
    pub metadata: Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed (rotation, revocation).
    pub updated_at: DateTime<Utc>,
}

/// Everything public about a wallet: the row and every key version, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wallet {
    /// The wallet row.
    #[serde(flatten)]
    pub record: WalletRecord,
    /// Every key version, oldest first; rotated ones stay listed.
    pub keys: Vec<KeyInfo>,
}

impl Wallet {
    /// The id.
    pub fn id(&self) -> &WalletId {
        &self.record.id
    }

    /// The key family.
    pub fn chain(&self) -> Chain {
        self.record.chain
    }

    /// Whether it may sign.
    pub fn status(&self) -> WalletStatus {
        self.record.status
    }

    /// The current key version.
    pub fn current_key(&self) -> Option<&KeyInfo> {
        self.keys
            .iter()
            .find(|k| k.version == self.record.current_version)
    }

    /// The address of the current key (empty if the store returned no keys).
    pub fn address(&self) -> &str {
        self.current_key().map_or("", |k| k.address.as_str())
    }
}

/// A data key wrapped by a KEK of a [`crate::KeyProvider`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedDek {
    /// Which KEK version wrapped it.
    pub kek_version: u32,
    /// The provider's opaque ciphertext (for Vault, the `vault:vN:…` text as bytes).
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for WrappedDek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedDek")
            .field("kek_version", &self.kek_version)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// A private key sealed under its data key, with the wrapped data key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    /// The AES-GCM nonce, random per encryption.
    pub nonce: [u8; 12],
    /// AES-256-GCM ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
    /// The data key, wrapped.
    pub wrapped_dek: WrappedDek,
}

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedKey")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("wrapped_dek", &self.wrapped_dek)
            .finish()
    }
}

/// One key version as stored: public facts plus the sealed private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The wallet it belongs to.
    pub wallet_id: WalletId,
    /// Public facts.
    pub info: KeyInfo,
    /// The encrypted private key.
    pub sealed: SealedKey,
}

/// Which wallets [`crate::Custody::list_wallets`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletFilter {
    /// Only this key family.
    pub chain: Option<Chain>,
    /// Only this status.
    pub status: Option<WalletStatus>,
}

/// A keyset page: wallets ordered by id, strictly after `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// At most this many (clamped to 1..=[`PageRequest::MAX_LIMIT`]).
    pub limit: u32,
    /// The `next` cursor of the previous page.
    pub after: Option<WalletId>,
}

impl PageRequest {
    /// The largest page served.
    pub const MAX_LIMIT: u32 = 500;

    /// The first page of `limit` wallets.
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    /// `limit` clamped to the allowed range.
    pub fn effective_limit(&self) -> usize {
        self.limit.clamp(1, Self::MAX_LIMIT) as usize
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(50)
    }
}

/// One page of wallets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalletPage {
    /// The wallets, ordered by id.
    pub wallets: Vec<Wallet>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<WalletId>,
}

/// Who asks, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The principal (user id, API key prefix, `system`, …).
    pub actor: String,
    /// The request id, when the call came through HTTP.
    pub request_id: Option<String>,
    /// The client address, when known.
    pub ip: Option<String>,
}

impl Caller {
    /// A caller with only an actor.
    pub fn new(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            request_id: None,
            ip: None,
        }
    }

    /// The built-in principal for jobs and tools.
    pub fn system() -> Self {
        Self::new("system")
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Sets the client address.
    pub fn with_ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }
}

/// Which key of a wallet to sign with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRef {
    /// The wallet.
    pub wallet_id: WalletId,
    /// A pinned version; `None` means the wallet's current key.
    pub version: Option<u32>,
}

impl KeyRef {
    /// The wallet's current key.
    pub fn current(wallet_id: WalletId) -> Self {
        Self {
            wallet_id,
            version: None,
        }
    }

    /// Exactly this version; refused once it is rotated or revoked.
    pub fn pinned(wallet_id: WalletId, version: u32) -> Self {
        Self {
            wallet_id,
            version: Some(version),
        }
    }
}

impl From<WalletId> for KeyRef {
    fn from(id: WalletId) -> Self {
        Self::current(id)
    }
}

impl From<&WalletId> for KeyRef {
    fn from(id: &WalletId) -> Self {
        Self::current(id.clone())
    }
}

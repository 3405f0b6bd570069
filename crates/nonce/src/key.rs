use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Error;

/// The account a nonce sequence belongs to: a chain id and a 20-byte EVM address.
///
/// Its [`Display`](fmt::Display) form, `"<chain_id>:0x<lowercase hex>"`, is what the Redis store
/// wraps in a hash tag, so every key of one account lands in one cluster slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NonceKey {
    chain_id: u64,
    address: [u8; 20],
}

impl NonceKey {
    /// The key of `address` on `chain_id`.
    pub fn new(chain_id: u64, address: impl Into<[u8; 20]>) -> Self {
        Self {
            chain_id,
            address: address.into(),
        }
    }

    /// Parses a `0x`-prefixed (or bare) 40-digit hex address; the checksum is not checked
    /// here (validating user input is the address crate's job).
    pub fn parse(chain_id: u64, address: &str) -> Result<Self, Error> {
        let digits = address
            .strip_prefix("0x")
            .or_else(|| address.strip_prefix("0X"))
            .unwrap_or(address);
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes).map_err(|source| Error::InvalidAddress {
            input: address.chars().take(64).collect(),
            source,
        })?;
        Ok(Self::new(chain_id, bytes))
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The raw address.
    pub fn address(&self) -> [u8; 20] {
        self.address
    }

    /// The address as `0x` + 40 lowercase hex digits.
    pub fn address_hex(&self) -> String {
        format!("0x{}", hex::encode(self.address))
    }
}

impl fmt::Display for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:0x{}", self.chain_id, hex::encode(self.address))
    }
}

/// Identifies one lease; a nonce handed out again after its lease expired gets a new id, which
/// is how a late `commit` of the old lease is recognised and refused.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct LeaseId(Uuid);

impl LeaseId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for LeaseId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for LeaseId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for LeaseId {
    /// 32 lowercase hex digits, no dashes (the form stores keep).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.simple())
    }
}

impl FromStr for LeaseId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// The right to use one nonce until `expires_at`.
///
/// End every lease with [`commit`](crate::NonceStore::commit) (the signed transaction left the
/// process or was durably recorded) or [`release`](crate::NonceStore::release) (it never left).
/// A lease that is neither is reclaimed after `expires_at` and its nonce handed out again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The account.
    pub key: NonceKey,
    /// The nonce to sign with.
    pub nonce: u64,
    /// This lease's identity.
    pub lease_id: LeaseId,
    /// When the store handed the nonce out (the store's clock).
    pub leased_at: DateTime<Utc>,
    /// When the store may hand the nonce to someone else if the lease is still open.
    pub expires_at: DateTime<Utc>,
    /// Whether the store had applied a chain floor to the account when the lease was taken.
    /// `false` means the count started from 0 (a new or wiped store): callers that have a
    /// chain should [`sync`](crate::NonceStore::sync) first, as
    /// [`NonceManager`](crate::NonceManager) does.
    pub chain_synced: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_lowercase_and_tag_friendly() {
        let key = NonceKey::parse(31337, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266").unwrap();
        assert_eq!(
            key.to_string(),
            "31337:0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
        assert_eq!(key.chain_id(), 31337);
        assert_eq!(NonceKey::parse(31337, &key.address_hex()).unwrap(), key);
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "",
            "0x12",
            "0xzz9Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "0x00f39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        ] {
            assert!(
                matches!(NonceKey::parse(1, bad), Err(Error::InvalidAddress { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn lease_ids_round_trip() {
        let id = LeaseId::new();
        assert_eq!(id.to_string().len(), 32);
        assert_eq!(id.to_string().parse::<LeaseId>().unwrap(), id);
        assert_ne!(LeaseId::new(), id);
    }
}

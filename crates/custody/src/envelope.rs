//! AES-256-GCM envelope encryption of private keys under per-key data keys.
//!
//! The authenticated data binds a ciphertext to its row: wallet id ‖ chain ‖ key version ‖
//! purpose, each length-prefixed so no two tuples encode alike. A ciphertext copied to
//! another wallet, chain, version or purpose fails to decrypt.

use std::fmt;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::TryRngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::error::{Error, Result, SecretKind};
use crate::types::{Chain, WalletId};

/// Length of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of an AES-GCM nonce.
pub const NONCE_LEN: usize = 12;

/// What a sealed secret is for; part of the authenticated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// A wallet's signing key.
    SigningKey,
}

impl Purpose {
    /// The name that goes into the authenticated data.
    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::SigningKey => "wallet-signing-key",
        }
    }
}

/// Fills `buf` from the operating system's random number generator.
pub fn os_random(buf: &mut [u8]) -> Result<()> {
    OsRng
        .try_fill_bytes(buf)
        .map_err(|e| Error::Random(Box::new(e)))
}

/// A 256-bit data-encryption key. Zeroed on drop; `Debug` shows nothing.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A fresh key from the OS RNG.
    pub fn generate() -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        os_random(key.as_mut())?;
        Ok(Self(key))
    }

    /// Takes ownership of key bytes (e.g. decrypted by a provider).
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(bytes)
    }

    /// Copies a 32-byte slice; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != key.len() {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    /// The key bytes. Handle with care: never log them.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

/// The authenticated data of a sealed secret.
pub fn associated_data(id: &WalletId, chain: Chain, version: u32, purpose: Purpose) -> Vec<u8> {
    const DOMAIN: &[u8] = b"haven-custody/aad/v1";
    let mut aad = Vec::with_capacity(DOMAIN.len() + id.as_str().len() + 32);
    push_field(&mut aad, DOMAIN);
    push_field(&mut aad, id.as_str().as_bytes());
    push_field(&mut aad, chain.as_str().as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    push_field(&mut aad, purpose.as_str().as_bytes());
    aad
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    // ids are at most 128 bytes, so a u16 length always fits
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

/// Encrypts `plaintext` under `key` with a random nonce; returns the nonce and
/// ciphertext ‖ tag.
pub fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<([u8; 12], Vec<u8>)> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| Error::Encryption)?;
    let mut nonce = [0u8; NONCE_LEN];
    os_random(&mut nonce)?;
    let mut buffer = Vec::with_capacity(plaintext.len() + TAG_LEN);
    buffer.extend_from_slice(plaintext);
    cipher
        .encrypt_in_place(&Nonce::from(nonce), aad, &mut buffer)
        .map_err(|_| Error::Encryption)?;
    Ok((nonce, buffer))
}

/// Decrypts ciphertext ‖ tag; any tampering, truncation or wrong `aad` is an
/// [`Error::Decryption`] for `what`. The plaintext is zeroed on drop.
pub fn open(
    key: &[u8; 32],
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
    what: SecretKind,
) -> Result<Zeroizing<Vec<u8>>> {
    let fail = || Error::Decryption { what };
    let nonce = Nonce::try_from(nonce).map_err(|_| fail())?;
    if ciphertext.len() < TAG_LEN {
        return Err(fail());
    }
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| fail())?;
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_in_place(&nonce, aad, &mut *buffer)
        .map_err(|_| fail())?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> WalletId {
        WalletId::new(s).unwrap()
    }

    #[test]
    fn round_trip_and_binding() {
        let key = DataKey::generate().unwrap();
        let aad = associated_data(&id("a"), Chain::Evm, 1, Purpose::SigningKey);
        let (nonce, ct) = seal(key.expose_secret(), b"secret", &aad).unwrap();
        let pt = open(
            key.expose_secret(),
            &nonce,
            &ct,
            &aad,
            SecretKind::PrivateKey,
        )
        .unwrap();
        assert_eq!(pt.as_slice(), b"secret");
        for other in [
            associated_data(&id("b"), Chain::Evm, 1, Purpose::SigningKey),
            associated_data(&id("a"), Chain::Solana, 1, Purpose::SigningKey),
            associated_data(&id("a"), Chain::Evm, 2, Purpose::SigningKey),
        ] {
            assert!(matches!(
                open(
                    key.expose_secret(),
                    &nonce,
                    &ct,
                    &other,
                    SecretKind::PrivateKey
                ),
                Err(Error::Decryption { .. })
            ));
        }
    }

    #[test]
    fn aad_fields_cannot_run_into_each_other() {
        // "ab" + "c" and "a" + "bc" must differ once length-prefixed
        let a = associated_data(&id("a:b"), Chain::Evm, 1, Purpose::SigningKey);
        let b = associated_data(&id("a"), Chain::Evm, 1, Purpose::SigningKey);
        assert_ne!(a, b);
    }

    #[test]
    fn debug_hides_the_key() {
        let key = DataKey::from_slice(&[7u8; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "DataKey([REDACTED])");
        assert!(DataKey::from_slice(&[1u8; 31]).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_single_bit_flip_or_truncation_fails(
            plaintext in prop::collection::vec(any::<u8>(), 0..64),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
            cut in 1usize..=TAG_LEN,
        ) {
            let key = DataKey::generate().unwrap();
            let aad = associated_data(&id("w"), Chain::Evm, 3, Purpose::SigningKey);
            let (nonce, ct) = seal(key.expose_secret(), &plaintext, &aad).unwrap();
            let pt = open(key.expose_secret(), &nonce, &ct, &aad, SecretKind::PrivateKey).unwrap();
            prop_assert_eq!(pt.as_slice(), plaintext.as_slice());

            let mut flipped = ct.clone();
            let i = flip.index(flipped.len());
            flipped[i] ^= 1 << bit;
            prop_assert!(open(key.expose_secret(), &nonce, &flipped, &aad, SecretKind::PrivateKey).is_err());

            let mut bad_nonce = nonce;
            bad_nonce[i % NONCE_LEN] ^= 1 << bit;
            prop_assert!(open(key.expose_secret(), &bad_nonce, &ct, &aad, SecretKind::PrivateKey).is_err());

            let truncated = &ct[..ct.len() - cut];
            prop_assert!(open(key.expose_secret(), &nonce, truncated, &aad, SecretKind::PrivateKey).is_err());
        }
    }
}

//! Key generation, address derivation and the signing primitives.
//!
//! Private keys live only in [`Zeroizing`] buffers and in signing-key types that zero
//! themselves on drop; nothing here logs.

use std::fmt;

use alloy::primitives::{Address, B256, Signature};
use alloy::signers::k256::ecdsa::hazmat::SignPrimitive;
use alloy::signers::k256::ecdsa::{SigningKey as K256SigningKey, VerifyingKey as K256VerifyingKey};
use alloy::signers::k256::{FieldBytes, NonZeroScalar};
use alloy::signers::utils::public_key_to_address;
use ed25519_dalek::Signer as _;
use zeroize::Zeroizing;

use crate::envelope::os_random;
use crate::error::{Error, Result};
use crate::types::Chain;

/// A signature from a wallet, by key family.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainSignature {
    /// A recoverable secp256k1 signature (`r`, `s`, y-parity), low-s.
    Evm(Signature),
    /// An ed25519 signature.
    Ed25519(ed25519_dalek::Signature),
}

impl ChainSignature {
    /// The EVM signature, if this is one.
    pub fn as_evm(&self) -> Option<&Signature> {
        match self {
            ChainSignature::Evm(sig) => Some(sig),
            ChainSignature::Ed25519(_) => None,
        }
    }

    /// The ed25519 signature, if this is one.
    pub fn as_ed25519(&self) -> Option<&ed25519_dalek::Signature> {
        match self {
            ChainSignature::Ed25519(sig) => Some(sig),
            ChainSignature::Evm(_) => None,
        }
    }

    /// Wire bytes: 65 (`r ‖ s ‖ v` with v = 27/28) for EVM, 64 for ed25519.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            ChainSignature::Evm(sig) => sig.as_bytes().to_vec(),
            ChainSignature::Ed25519(sig) => sig.to_bytes().to_vec(),
        }
    }
}

/// A decrypted private key. Zeroed on drop; `Debug` shows nothing.
pub(crate) struct PrivateKey {
    chain: Chain,
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A new key from the OS RNG.
    pub(crate) fn generate(chain: Chain) -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        loop {
            os_random(bytes.as_mut())?;
            // a secp256k1 scalar must be non-zero and below the group order (p ≈ 1 - 2^-128)
            if chain == Chain::Solana || NonZeroScalar::try_from(&bytes[..]).is_ok() {
                return Ok(Self { chain, bytes });
            }
        }
    }

    /// Wraps decrypted bytes, checking their length and range.
    pub(crate) fn from_plaintext(chain: Chain, plaintext: &[u8]) -> Option<Self> {
        if plaintext.len() != 32 {
            return None;
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(plaintext);
        if chain == Chain::Evm && NonZeroScalar::try_from(&bytes[..]).is_err() {
            return None;
        }
        Some(Self { chain, bytes })
    }

    pub(crate) fn expose_secret(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The public address: EIP-55 for EVM, base58 of the public key for Solana.
    pub(crate) fn address(&self) -> Result<String> {
        match self.chain {
            Chain::Evm => {
                let key = K256SigningKey::from_slice(&self.bytes[..])
                    .map_err(|e| Error::Signing(Box::new(e)))?;
                Ok(evm_address(key.verifying_key()).to_checksum(None))
            }
            Chain::Solana => {
                let key = ed25519_dalek::SigningKey::from_bytes(&self.bytes);
                Ok(bs58::encode(key.verifying_key().to_bytes()).into_string())
            }
        }
    }

    /// Signs a 32-byte digest: ECDSA over the prehash for EVM, ed25519 over the bytes for
    /// Solana.
    pub(crate) fn sign_hash(&self, hash: &B256) -> Result<ChainSignature> {
        match self.chain {
            Chain::Evm => sign_evm_prehash(&self.bytes, hash).map(ChainSignature::Evm),
            Chain::Solana => Ok(ChainSignature::Ed25519(self.sign_ed25519(hash.as_slice()))),
        }
    }

    /// ed25519 over `message`.
    pub(crate) fn sign_ed25519(&self, message: &[u8]) -> ed25519_dalek::Signature {
        ed25519_dalek::SigningKey::from_bytes(&self.bytes).sign(message)
    }
}

/// The EVM address of a secp256k1 public key.
pub fn evm_address(key: &K256VerifyingKey) -> Address {
    public_key_to_address(key)
}

/// ECDSA-sign a prehash with RFC 6979 nonces, low-s, with the recovery id, straight from
/// the secret scalar: building a full signing key would also compute the public key,
/// doubling the cost of every signature.
pub fn sign_evm_prehash(secret: &[u8; 32], hash: &B256) -> Result<Signature> {
    let scalar = Zeroizing::new(
        NonZeroScalar::try_from(&secret[..]).map_err(|e| Error::Signing(Box::new(e)))?,
    );
    let z = FieldBytes::from(hash.0);
    let (sig, recid) = scalar
        .as_ref()
        .try_sign_prehashed_rfc6979::<sha2::Sha256>(&z, &[])
        .map_err(|e| Error::Signing(Box::new(e)))?;
    let recid = recid.ok_or_else(|| Error::Signing("no recovery id".into()))?;
    Ok(Signature::from((sig, recid)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::SignerSync;
    use alloy::signers::local::PrivateKeySigner;
    use ed25519_dalek::Verifier;
    use proptest::prelude::*;

    #[test]
    fn evm_key_matches_alloy_local_signer() {
        let key = PrivateKey::generate(Chain::Evm).unwrap();
        let reference = PrivateKeySigner::from_slice(key.expose_secret()).unwrap();
        assert_eq!(
            key.address().unwrap(),
            reference.address().to_checksum(None)
        );
        let hash = B256::repeat_byte(0x42);
        let ours = key.sign_hash(&hash).unwrap();
        assert_eq!(
            ours.as_evm().unwrap(),
            &reference.sign_hash_sync(&hash).unwrap()
        );
    }

    #[test]
    fn solana_address_is_base58_public_key() {
        let key = PrivateKey::generate(Chain::Solana).unwrap();
        let address = key.address().unwrap();
        let public = bs58::decode(&address).into_vec().unwrap();
        assert_eq!(public.len(), 32);
        let verifying =
            ed25519_dalek::VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
        let sig = key.sign_ed25519(b"hello");
        verifying.verify(b"hello", &sig).unwrap();
    }

    #[test]
    fn out_of_range_evm_scalars_are_refused() {
        assert!(PrivateKey::from_plaintext(Chain::Evm, &[0u8; 32]).is_none());
        assert!(PrivateKey::from_plaintext(Chain::Evm, &[0xff; 32]).is_none());
        assert!(PrivateKey::from_plaintext(Chain::Evm, &[1u8; 31]).is_none());
        assert!(PrivateKey::from_plaintext(Chain::Solana, &[0xff; 32]).is_some());
    }

    #[test]
    fn debug_shows_no_bytes() {
        let key = PrivateKey::from_plaintext(Chain::Evm, &[0x11; 32]).unwrap();
        let text = format!("{key:?}");
        assert!(!text.contains("11"), "{text}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn evm_signatures_recover_to_the_address(hash in any::<[u8; 32]>()) {
            let key = PrivateKey::generate(Chain::Evm).unwrap();
            let hash = B256::from(hash);
            let sig = key.sign_hash(&hash).unwrap();
            let recovered = sig.as_evm().unwrap().recover_address_from_prehash(&hash).unwrap();
            prop_assert_eq!(recovered.to_checksum(None), key.address().unwrap());
        }
    }
}

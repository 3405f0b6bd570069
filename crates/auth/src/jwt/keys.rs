//! The keys of the allow-listed algorithms and the [`Keyring`] that names them by `kid`.

use super::*;

/// The allow-listed signing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519 signatures (asymmetric; verifiers hold only the public key).
    EdDSA,
    /// HMAC-SHA256 with a secret of at least 256 bits.
    HS256,
}

impl KeyAlgorithm {
    /// The JOSE `alg` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EdDSA => "EdDSA",
            KeyAlgorithm::HS256 => "HS256",
        }
    }

    pub(super) fn from_header(alg: &str) -> Option<Self> {
        match alg {
            "EdDSA" => Some(KeyAlgorithm::EdDSA),
            "HS256" => Some(KeyAlgorithm::HS256),
            _ => None,
        }
    }

    pub(super) const fn jsonwebtoken(self) -> Algorithm {
        match self {
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
            KeyAlgorithm::HS256 => Algorithm::HS256,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key that checks signatures of tokens whose header names its `kid`.
#[derive(Clone)]
pub struct VerificationKey {
    pub(super) kid: String,
    pub(super) alg: KeyAlgorithm,
    pub(super) decoding: DecodingKey,
    pub(super) public_key: Option<Vec<u8>>,
}

impl VerificationKey {
    /// An Ed25519 public key (32 raw bytes).
    pub fn ed25519(kid: impl Into<String>, public_key: &[u8]) -> Result<Self, JwtError> {
        if public_key.len() != 32 {
            return Err(JwtError::InvalidKey {
                alg: KeyAlgorithm::EdDSA,
                reason: "an Ed25519 public key has 32 bytes",
            });
        }
        Ok(Self {
            kid: kid.into(),
            alg: KeyAlgorithm::EdDSA,
            decoding: DecodingKey::from_ed_der(public_key),
            public_key: Some(public_key.to_vec()),
        })
    }

    /// An HS256 secret of at least [`MIN_HS256_SECRET_LEN`] bytes.
    pub fn hs256(kid: impl Into<String>, secret: &[u8]) -> Result<Self, JwtError> {
        check_hs256_secret(secret)?;
        Ok(Self {
            kid: kid.into(),
            alg: KeyAlgorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
            public_key: None,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's algorithm.
    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The raw Ed25519 public key, for publishing (none for HS256).
    pub fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The key new tokens are signed with, and its verification counterpart.
#[derive(Clone)]
pub struct SigningKey {
    pub(super) kid: String,
    pub(super) alg: KeyAlgorithm,
    pub(super) encoding: EncodingKey,
    pub(super) verification: VerificationKey,
}

impl SigningKey {
    /// A fresh Ed25519 key from the operating system's random number generator.
    pub fn generate_ed25519(kid: impl Into<String>) -> Result<Self, JwtError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| {
            JwtError::InvalidKey {
                alg: KeyAlgorithm::EdDSA,
                reason: "key generation failed",
            }
        })?;
        Self::ed25519_from_pkcs8(kid, pkcs8.as_ref())
    }

    /// An Ed25519 private key in PKCS#8 DER.
    pub fn ed25519_from_pkcs8(kid: impl Into<String>, pkcs8: &[u8]) -> Result<Self, JwtError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| {
            JwtError::InvalidKey {
                alg: KeyAlgorithm::EdDSA,
                reason: "not an Ed25519 PKCS#8 private key",
            }
        })?;
        let kid = kid.into();
        let verification = VerificationKey::ed25519(kid.clone(), pair.public_key().as_ref())?;
        Ok(Self {
            kid,
            alg: KeyAlgorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8),
            verification,
        })
    }

    /// An HS256 secret of at least [`MIN_HS256_SECRET_LEN`] bytes; shorter ones are refused.
    pub fn hs256(kid: impl Into<String>, secret: &[u8]) -> Result<Self, JwtError> {
        let kid = kid.into();
        let verification = VerificationKey::hs256(kid.clone(), secret)?;
        Ok(Self {
            kid,
            alg: KeyAlgorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
            verification,
        })
    }

    /// The key id written into each token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's algorithm.
    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The key that verifies this key's signatures.
    pub fn verification_key(&self) -> &VerificationKey {
        &self.verification
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

pub(super) fn check_hs256_secret(secret: &[u8]) -> Result<(), JwtError> {
    if secret.len() < MIN_HS256_SECRET_LEN {
        return Err(JwtError::WeakSecret {
            bits: secret.len() * 8,
        });
    }
    Ok(())
}

/// One signing key and the verification keys by `kid`.
///
/// Rotation: [`Keyring::rotate`] to a new signing key keeps the old one's verification key,
/// so tokens it signed stay valid until they expire; [`Keyring::remove_verification_key`]
/// once the longest-lived of them (the refresh TTL) has passed.
#[derive(Debug, Clone)]
pub struct Keyring {
    pub(super) signing: SigningKey,
    pub(super) verification: BTreeMap<String, VerificationKey>,
}

impl Keyring {
    /// A keyring that signs with `signing` and verifies its tokens.
    pub fn new(signing: SigningKey) -> Self {
        let mut verification = BTreeMap::new();
        verification.insert(signing.kid.clone(), signing.verification.clone());
        Self {
            signing,
            verification,
        }
    }

    /// Adds (or replaces) a verification key. The signing key's own cannot be replaced.
    pub fn add_verification_key(&mut self, key: VerificationKey) -> Result<(), JwtError> {
        if key.kid == self.signing.kid {
            return Err(JwtError::SigningKeyInUse { kid: key.kid });
        }
        self.verification.insert(key.kid.clone(), key);
        Ok(())
    }

    /// Removes the verification key `kid`; tokens it signed stop verifying. Returns whether
    /// it was present. The signing key's own cannot be removed.
    pub fn remove_verification_key(&mut self, kid: &str) -> Result<bool, JwtError> {
        if kid == self.signing.kid {
            return Err(JwtError::SigningKeyInUse {
                kid: kid.to_owned(),
            });
        }
        Ok(self.verification.remove(kid).is_some())
    }

    /// Signs from now on with `signing`; the previous signing key stays a verification key.
    pub fn rotate(&mut self, signing: SigningKey) {
        self.verification
            .insert(signing.kid.clone(), signing.verification.clone());
        self.signing = signing;
    }

    /// The current signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The verification key `kid`, if present.
    pub fn verification_key(&self, kid: &str) -> Option<&VerificationKey> {
        self.verification.get(kid)
    }

    /// Every verification key id.
    pub fn verification_kids(&self) -> impl Iterator<Item = &str> {
        self.verification.keys().map(String::as_str)
    }
}

use std::fmt;

use rand::RngCore as _;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use zeroize::Zeroizing;

use crate::encoding::{base64_any, base64_encode};
use crate::error::SecretError;
use crate::mac::HmacKey;
use crate::verify::Scheme;

/// Prefix of a Standard Webhooks symmetric secret.
pub const WHSEC_PREFIX: &str = "whsec_";
/// Prefix of a Standard Webhooks ed25519 public key (verification only).
pub const WHPK_PREFIX: &str = "whpk_";
/// Prefix of a Standard Webhooks ed25519 private key (a 32-byte seed).
pub const WHSK_PREFIX: &str = "whsk_";

/// One signing or verification key with an optional expiry.
///
/// A source may have several (rotation): during the overlap the old and the new secret both
/// verify; once `expires_at` has passed a secret is ignored. The key bytes are never
/// printed by `Debug`.
pub struct Secret {
    pub(crate) key: Key,
    expires_at: Option<i64>,
    hmac_len: Option<usize>,
}

/// The shortest HMAC key a deployment should accept from configuration, in bytes (128
/// bits). [`Secret`] itself takes any non-empty key, as the schemes define none; callers
/// that read secrets from configuration refuse shorter ones
/// ([`Secret::hmac_key_len`]).
pub const MIN_HMAC_KEY_LEN: usize = 16;

pub(crate) enum Key {
    Hmac(HmacKey),
    Ed25519Public([u8; 32]),
    Ed25519Private(Box<Ed25519KeyPair>),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.key {
            Key::Hmac(_) => "hmac-sha256",
            Key::Ed25519Public(_) => "ed25519-public",
            Key::Ed25519Private(_) => "ed25519-private",
        };
        f.debug_struct("Secret")
            .field("kind", &kind)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// Parses a Standard Webhooks key: `whsec_<base64>` (HMAC), `whpk_<base64>` (ed25519
    /// public key) or `whsk_<base64>` (ed25519 32-byte seed). A bare base64 string is taken
    /// as a `whsec_` secret, as the reference libraries do. Base64 must be canonical.
    pub fn standard(text: &str) -> Result<Self, SecretError> {
        if let Some(rest) = text.strip_prefix(WHPK_PREFIX) {
            let bytes = Zeroizing::new(base64_any(rest).ok_or(SecretError::Encoding)?);
            let public: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| SecretError::Ed25519Key)?;
            return Ok(Self::new(Key::Ed25519Public(public)));
        }
        if let Some(rest) = text.strip_prefix(WHSK_PREFIX) {
            let seed = Zeroizing::new(base64_any(rest).ok_or(SecretError::Encoding)?);
            return Self::ed25519_seed(&seed);
        }
        let rest = text.strip_prefix(WHSEC_PREFIX).unwrap_or(text);
        let bytes = Zeroizing::new(base64_any(rest).ok_or(SecretError::Encoding)?);
        Self::hmac_bytes(&bytes)
    }

    /// An HMAC-SHA256 key made of the secret string's own bytes (Stripe and the partner
    /// schemes: the `whsec_…` string itself is the key, it is not decoded).
    pub fn raw(text: &str) -> Result<Self, SecretError> {
        Self::hmac_bytes(text.as_bytes())
    }

    /// An HMAC-SHA256 key from raw bytes.
    pub fn hmac_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.is_empty() {
            return Err(SecretError::Empty);
        }
        let mut secret = Self::new(Key::Hmac(HmacKey::new(bytes)));
        secret.hmac_len = Some(bytes.len());
        Ok(secret)
    }

    /// An ed25519 signing key from its 32-byte seed.
    pub fn ed25519_seed(seed: &[u8]) -> Result<Self, SecretError> {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| SecretError::Ed25519Key)?;
        Ok(Self::new(Key::Ed25519Private(Box::new(pair))))
    }

    /// Parses a secret the way `scheme` defines it: [`Secret::standard`] for Standard
    /// Webhooks, [`Secret::raw`] for Stripe and the partner schemes.
    pub fn for_scheme(scheme: Scheme, text: &str) -> Result<Self, SecretError> {
        match scheme {
            Scheme::Standard => Self::standard(text),
            Scheme::Stripe | Scheme::Aurora | Scheme::Tribe => Self::raw(text),
        }
    }

    /// Generates a fresh `whsec_` secret (32 random bytes) for a new endpoint.
    pub fn generate_whsec() -> String {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut_slice());
        format!("{WHSEC_PREFIX}{}", base64_encode(bytes.as_slice()))
    }

    /// Sets the expiry (Unix seconds): the secret is used while `now < expires_at`.
    #[must_use]
    pub fn expires_at(mut self, unix_secs: i64) -> Self {
        self.expires_at = Some(unix_secs);
        self
    }

    /// The expiry, if any.
    pub fn expiry(&self) -> Option<i64> {
        self.expires_at
    }

    /// The length in bytes of an HMAC key (`None` for ed25519 keys); compare it with
    /// [`MIN_HMAC_KEY_LEN`].
    pub fn hmac_key_len(&self) -> Option<usize> {
        self.hmac_len
    }

    /// Whether the secret may be used at `now` (Unix seconds).
    pub fn is_active(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|exp| now < exp)
    }

    /// The `whpk_` public key of an ed25519 key, for handing to receivers.
    pub fn ed25519_public(&self) -> Option<String> {
        let public = match &self.key {
            Key::Hmac(_) => return None,
            Key::Ed25519Public(p) => p.as_slice(),
            Key::Ed25519Private(pair) => pair.public_key().as_ref(),
        };
        Some(format!("{WHPK_PREFIX}{}", base64_encode(public)))
    }

    fn new(key: Key) -> Self {
        Self {
            key,
            expires_at: None,
            hmac_len: None,
        }
    }

    pub(crate) fn verify_ed25519(&self, message: &[u8], sig: &[u8; 64]) -> bool {
        let public: &[u8] = match &self.key {
            Key::Hmac(_) => return false,
            Key::Ed25519Public(p) => p,
            Key::Ed25519Private(pair) => pair.public_key().as_ref(),
        };
        signature::UnparsedPublicKey::new(&signature::ED25519, public)
            .verify(message, sig)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_material() {
        let s = Secret::standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("MfKQ"), "{text}");
        assert!(text.contains("hmac-sha256"));
    }

    #[test]
    fn parsing_rules() {
        assert!(Secret::standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(Secret::standard("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert_eq!(
            Secret::standard("whsec_not base64").unwrap_err(),
            SecretError::Encoding
        );
        assert_eq!(Secret::standard("whsec_").unwrap_err(), SecretError::Empty);
        assert_eq!(Secret::raw("").unwrap_err(), SecretError::Empty);
        assert_eq!(
            Secret::standard("whpk_AAAA").unwrap_err(),
            SecretError::Ed25519Key
        );
        let generated = Secret::generate_whsec();
        assert!(generated.starts_with(WHSEC_PREFIX));
        assert!(Secret::standard(&generated).is_ok());
    }

    #[test]
    fn expiry_is_exclusive() {
        let s = Secret::raw("k").unwrap().expires_at(100);
        assert!(s.is_active(99));
        assert!(!s.is_active(100));
        assert!(Secret::raw("k").unwrap().is_active(i64::MAX));
    }
}

//! Key-encryption keys: the [`KeyProvider`] trait and the [`LocalKeyProvider`].

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::envelope::{DataKey, NONCE_LEN, open, seal};
use crate::error::{Error, MasterKeyProblem, Result, SecretKind};
use crate::types::WrappedDek;

/// Wraps and unwraps data keys under versioned key-encryption keys (KEKs).
///
/// **Invariant:** `wrap` always uses the newest KEK version ([`KeyProvider::current_version`]);
/// `unwrap` refuses ciphertexts below the provider's minimum decryption version; `rewrap`
/// never returns or stores the data key, only its new wrapping.
#[async_trait]
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The KEK version new wrappings use.
    async fn current_version(&self) -> Result<u32>;

    /// Wraps a data key under the current KEK.
    async fn wrap(&self, dek: &DataKey) -> Result<WrappedDek>;

    /// Unwraps a data key.
    async fn unwrap(&self, wrapped: &WrappedDek) -> Result<DataKey>;

    /// Re-wraps under the current KEK. The default unwraps and wraps in memory; providers
    /// that can do it server-side (Vault `rewrap`) never expose the data key.
    async fn rewrap(&self, wrapped: &WrappedDek) -> Result<WrappedDek> {
        let dek = self.unwrap(wrapped).await?;
        self.wrap(&dek).await
    }
}

/// A provider holding no key-encryption keys, for processes that only read wallets'
/// public data (`Custody::list_wallets`, `Custody::get_wallet`) and must never hold master
/// keys: every wrap and unwrap fails with [`MasterKeyProblem::Empty`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKeyProvider;

#[async_trait]
impl KeyProvider for NoKeyProvider {
    async fn current_version(&self) -> Result<u32> {
        Err(Error::MasterKeys(MasterKeyProblem::Empty))
    }

    async fn wrap(&self, _: &DataKey) -> Result<WrappedDek> {
        Err(Error::MasterKeys(MasterKeyProblem::Empty))
    }

    async fn unwrap(&self, _: &WrappedDek) -> Result<DataKey> {
        Err(Error::MasterKeys(MasterKeyProblem::Empty))
    }
}

/// Versioned master keys held in process memory, parsed from
/// `HAVEN_MASTER_KEYS=v1:<base64>,v2:<base64>` (the binary reads the variable and passes the
/// text in). The highest version wraps; versions below `min_decryption_version` are refused.
///
/// A wrapped data key is `nonce (12) ‖ AES-256-GCM(KEK_v, dek) ‖ tag (16)`, with the KEK
/// version in the authenticated data so relabelling a ciphertext's version fails.
pub struct LocalKeyProvider {
    keys: BTreeMap<u32, Zeroizing<[u8; 32]>>,
    current: u32,
    min_decryption_version: u32,
}

impl fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyProvider")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .field("min_decryption_version", &self.min_decryption_version)
            .finish()
    }
}

impl LocalKeyProvider {
    /// Parses `v1:<base64>,v2:<base64>` (the `v` is optional; whitespace around entries is
    /// ignored; each key must decode to 32 bytes). Every version decrypts.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut keys = BTreeMap::new();
        for (index, entry) in spec
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (version, encoded) = entry
                .split_once(':')
                .ok_or(MasterKeyProblem::Malformed { index })?;
            let version: u32 = version
                .trim()
                .strip_prefix('v')
                .unwrap_or(version.trim())
                .parse()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or(MasterKeyProblem::Malformed { index })?;
            let decoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| MasterKeyProblem::BadBase64 { version })?,
            );
            let mut key = Zeroizing::new([0u8; 32]);
            if decoded.len() != key.len() {
                return Err(MasterKeyProblem::WrongLength {
                    version,
                    len: decoded.len(),
                }
                .into());
            }
            key.copy_from_slice(&decoded);
            if keys.insert(version, key).is_some() {
                return Err(MasterKeyProblem::DuplicateVersion { version }.into());
            }
        }
        Self::from_keys(keys)
    }

    /// Builds a provider from raw keys by version.
    pub fn from_keys(keys: BTreeMap<u32, Zeroizing<[u8; 32]>>) -> Result<Self> {
        let current = *keys.keys().next_back().ok_or(MasterKeyProblem::Empty)?;
        Ok(Self {
            keys,
            current,
            min_decryption_version: 1,
        })
    }

    /// Refuses to unwrap data keys wrapped under versions below `min`. Raise it once
    /// `rewrap_all` has moved every data key to a newer version.
    pub fn with_min_decryption_version(mut self, min: u32) -> Result<Self> {
        if min > self.current {
            return Err(MasterKeyProblem::MinAboveNewest {
                min,
                newest: self.current,
            }
            .into());
        }
        self.min_decryption_version = min.max(1);
        Ok(self)
    }

    /// The versions configured, ascending.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// The minimum version that still decrypts.
    pub fn min_decryption_version(&self) -> u32 {
        self.min_decryption_version
    }

    /// A fresh random master key in the `v<N>:<base64>` form, for `haven-admin` to print
    /// when an operator adds a version.
    pub fn generate_entry(version: u32) -> Result<Zeroizing<String>> {
        let key = DataKey::generate()?;
        Ok(Zeroizing::new(format!(
            "v{version}:{}",
            base64::engine::general_purpose::STANDARD.encode(key.expose_secret())
        )))
    }

    fn kek_aad(version: u32) -> Vec<u8> {
        let mut aad = b"haven-custody/kek/v1".to_vec();
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }
}

#[async_trait]
impl KeyProvider for LocalKeyProvider {
    async fn current_version(&self) -> Result<u32> {
        Ok(self.current)
    }

    async fn wrap(&self, dek: &DataKey) -> Result<WrappedDek> {
        let kek = self
            .keys
            .get(&self.current)
            .ok_or(Error::UnknownKekVersion {
                version: self.current,
            })?;
        let (nonce, ciphertext) = seal(kek, dek.expose_secret(), &Self::kek_aad(self.current))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(WrappedDek {
            kek_version: self.current,
            ciphertext: out,
        })
    }

    async fn unwrap(&self, wrapped: &WrappedDek) -> Result<DataKey> {
        let version = wrapped.kek_version;
        if version < self.min_decryption_version {
            return Err(Error::KekVersionRetired { version });
        }
        let kek = self
            .keys
            .get(&version)
            .ok_or(Error::UnknownKekVersion { version })?;
        if wrapped.ciphertext.len() < NONCE_LEN {
            return Err(Error::Decryption {
                what: SecretKind::DataKey,
            });
        }
        let (nonce, ciphertext) = wrapped.ciphertext.split_at(NONCE_LEN);
        let plaintext = open(
            kek,
            nonce,
            ciphertext,
            &Self::kek_aad(version),
            SecretKind::DataKey,
        )?;
        DataKey::from_slice(&plaintext).ok_or(Error::Decryption {
            what: SecretKind::DataKey,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(byte: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    }

    #[tokio::test]
    async fn highest_version_wraps_and_every_version_unwraps() {
        let v1 = LocalKeyProvider::parse(&format!("v1:{}", b64(1))).unwrap();
        let both = LocalKeyProvider::parse(&format!(" v2:{} , 1:{}", b64(2), b64(1))).unwrap();
        assert_eq!(both.current_version().await.unwrap(), 2);
        let dek = DataKey::generate().unwrap();
        let old = v1.wrap(&dek).await.unwrap();
        assert_eq!(old.kek_version, 1);
        let new = both.rewrap(&old).await.unwrap();
        assert_eq!(new.kek_version, 2);
        let back = both.unwrap(&new).await.unwrap();
        assert_eq!(back.expose_secret(), dek.expose_secret());

        let strict = both.with_min_decryption_version(2).unwrap();
        assert!(matches!(
            strict.unwrap(&old).await,
            Err(Error::KekVersionRetired { version: 1 })
        ));
        assert!(strict.unwrap(&new).await.is_ok());
    }

    #[tokio::test]
    async fn relabelled_version_fails() {
        let p = LocalKeyProvider::parse(&format!("v1:{},v2:{}", b64(1), b64(1))).unwrap();
        let mut wrapped = p.wrap(&DataKey::generate().unwrap()).await.unwrap();
        wrapped.kek_version = 1;
        assert!(matches!(
            p.unwrap(&wrapped).await,
            Err(Error::Decryption {
                what: SecretKind::DataKey
            })
        ));
        wrapped.kek_version = 7;
        assert!(matches!(
            p.unwrap(&wrapped).await,
            Err(Error::UnknownKekVersion { version: 7 })
        ));
    }

    #[test]
    fn bad_configurations_name_the_entry_not_the_key() {
        let short = base64::engine::general_purpose::STANDARD.encode([9u8; 16]);
        let cases = [
            (String::new(), MasterKeyProblem::Empty),
            ("v1".to_owned(), MasterKeyProblem::Malformed { index: 0 }),
            (
                format!("v1:{},v0:{}", b64(1), b64(2)),
                MasterKeyProblem::Malformed { index: 1 },
            ),
            (
                format!("v1:{},v1:{}", b64(1), b64(2)),
                MasterKeyProblem::DuplicateVersion { version: 1 },
            ),
            (
                "v3:!!!".to_owned(),
                MasterKeyProblem::BadBase64 { version: 3 },
            ),
            (
                format!("v2:{short}"),
                MasterKeyProblem::WrongLength {
                    version: 2,
                    len: 16,
                },
            ),
        ];
        for (spec, expected) in cases {
            match LocalKeyProvider::parse(&spec) {
                Err(Error::MasterKeys(problem)) => {
                    assert_eq!(problem, expected, "{spec}");
                    let text = Error::MasterKeys(problem).to_string();
                    assert!(!text.contains(&short) && !text.contains(&b64(1)), "{text}");
                }
                other => panic!("{spec}: {other:?}"),
            }
        }
        let p = LocalKeyProvider::parse(&format!("v1:{}", b64(1))).unwrap();
        assert!(matches!(
            p.with_min_decryption_version(2),
            Err(Error::MasterKeys(MasterKeyProblem::MinAboveNewest {
                min: 2,
                newest: 1
            }))
        ));
    }

    #[test]
    fn debug_lists_versions_only() {
        let p = LocalKeyProvider::parse(&format!("v1:{}", b64(0xab))).unwrap();
        let text = format!("{p:?}");
        assert!(text.contains("versions: [1]"), "{text}");
        assert!(
            !text.contains(&b64(0xab)) && !text.contains("171"),
            "{text}"
        );
        let entry = LocalKeyProvider::generate_entry(4).unwrap();
        assert!(LocalKeyProvider::parse(&entry).is_ok());
    }
}

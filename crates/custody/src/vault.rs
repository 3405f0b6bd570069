//! [`VaultTransitKeyProvider`]: data keys wrapped by HashiCorp Vault Transit.
//!
//! Uses three endpoints of a transit mount plus the key read:
//! `POST /v1/<mount>/encrypt/<key>`, `POST /v1/<mount>/decrypt/<key>`,
//! `POST /v1/<mount>/rewrap/<key>` and `GET /v1/<mount>/keys/<key>` (for the latest version).
//! Vault owns the KEK versions and `min_decryption_version`; rewrap happens inside Vault, so
//! rotating the KEK never exposes a data key to this process.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::envelope::DataKey;
use crate::error::{Error, Result, SecretKind};
use crate::provider::KeyProvider;
use crate::types::WrappedDek;

/// Where and how to reach Vault.
#[derive(Clone)]
pub struct VaultTransitConfig {
    /// Base address, e.g. `https://vault.internal:8200`.
    pub address: String,
    /// The token sent as `X-Vault-Token`.
    pub token: SecretString,
    /// The transit mount path, usually `transit`.
    pub mount: String,
    /// The transit key name.
    pub key_name: String,
    /// The Vault Enterprise namespace (`X-Vault-Namespace`), if any.
    pub namespace: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl fmt::Debug for VaultTransitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultTransitConfig")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .field("key_name", &self.key_name)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl VaultTransitConfig {
    /// A config for `key_name` on the `transit` mount with a 10 s timeout.
    pub fn new(
        address: impl Into<String>,
        token: SecretString,
        key_name: impl Into<String>,
    ) -> Self {
        Self {
            address: address.into(),
            token,
            mount: "transit".into(),
            key_name: key_name.into(),
            namespace: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A [`KeyProvider`] backed by Vault Transit. The KEK version of a wrapped data key is the
/// `N` of its `vault:vN:` prefix.
#[derive(Debug, Clone)]
pub struct VaultTransitKeyProvider {
    client: reqwest::Client,
    config: VaultTransitConfig,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct CiphertextData {
    ciphertext: String,
}

#[derive(Deserialize)]
struct PlaintextData {
    plaintext: SecretString,
}

#[derive(Deserialize)]
struct KeyData {
    latest_version: u32,
}

#[derive(Deserialize, Default)]
struct VaultErrors {
    #[serde(default)]
    errors: Vec<String>,
}

impl VaultTransitKeyProvider {
    /// A provider with its own HTTP client.
    ///
    /// # Panics
    /// When the process has no rustls crypto provider installed: the library does not choose
    /// one (the binaries install ring at start-up); or pass a configured client to
    /// [`with_client`](Self::with_client).
    pub fn new(config: VaultTransitConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::ProviderUnavailable(Box::new(e)))?;
        Ok(Self::with_client(config, client))
    }

    /// A provider sharing an existing client.
    pub fn with_client(config: VaultTransitConfig, client: reqwest::Client) -> Self {
        Self { client, config }
    }

    fn url(&self, operation: &str) -> String {
        format!(
            "{}/v1/{}/{}/{}",
            self.config.address.trim_end_matches('/'),
            self.config.mount.trim_matches('/'),
            operation,
            self.config.key_name
        )
    }

    fn request(&self, method: reqwest::Method, operation: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, self.url(operation))
            .header("X-Vault-Token", self.config.token.expose_secret());
        if let Some(ns) = &self.config.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        request
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T> {
        let response = request
            .send()
            .await
            .map_err(|e| Error::ProviderUnavailable(Box::new(e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            let body: VaultErrors = response.json().await.unwrap_or_default();
            return Err(Error::ProviderRefused {
                status: status.as_u16(),
                errors: body.errors,
            });
        }
        let envelope: Envelope<T> = response
            .json()
            .await
            .map_err(|e| Error::ProviderUnavailable(Box::new(e.without_url())))?;
        Ok(envelope.data)
    }

    fn wrapped(ciphertext: String) -> Result<WrappedDek> {
        let kek_version = parse_version(&ciphertext).ok_or_else(|| {
            Error::ProviderUnavailable(
                "Vault returned a ciphertext without a vault:vN: prefix".into(),
            )
        })?;
        Ok(WrappedDek {
            kek_version,
            ciphertext: ciphertext.into_bytes(),
        })
    }

    fn ciphertext_text(wrapped: &WrappedDek) -> Result<&str> {
        std::str::from_utf8(&wrapped.ciphertext)
            .ok()
            .filter(|c| parse_version(c) == Some(wrapped.kek_version))
            .ok_or(Error::Decryption {
                what: SecretKind::DataKey,
            })
    }

    /// Vault answers 400 for both tampering and retired versions; tell them apart.
    fn map_refusal(error: Error, version: u32) -> Error {
        match error {
            Error::ProviderRefused {
                status: 400,
                errors,
            } if errors.iter().any(|e| e.contains("disallowed by policy")) => {
                let _ = errors;
                Error::KekVersionRetired { version }
            }
            Error::ProviderRefused {
                status: 400,
                errors,
            } if errors.iter().any(|e| {
                e.contains("message authentication failed") || e.contains("invalid ciphertext")
            }) =>
            {
                let _ = errors;
                Error::Decryption {
                    what: SecretKind::DataKey,
                }
            }
            other => other,
        }
    }
}

/// The `N` of `vault:vN:…`.
fn parse_version(ciphertext: &str) -> Option<u32> {
    let rest = ciphertext.strip_prefix("vault:v")?;
    let (version, body) = rest.split_once(':')?;
    if body.is_empty() {
        return None;
    }
    version.parse().ok()
}

#[async_trait]
impl KeyProvider for VaultTransitKeyProvider {
    async fn current_version(&self) -> Result<u32> {
        let request = self
            .client
            .get(format!(
                "{}/v1/{}/keys/{}",
                self.config.address.trim_end_matches('/'),
                self.config.mount.trim_matches('/'),
                self.config.key_name
            ))
            .header("X-Vault-Token", self.config.token.expose_secret());
        let request = match &self.config.namespace {
            Some(ns) => request.header("X-Vault-Namespace", ns),
            None => request,
        };
        let data: KeyData = self.send(request).await?;
        Ok(data.latest_version)
    }

    async fn wrap(&self, dek: &DataKey) -> Result<WrappedDek> {
        let plaintext =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(dek.expose_secret()));
        let body = json!({ "plaintext": plaintext.as_str() });
        let data: CiphertextData = self
            .send(self.request(reqwest::Method::POST, "encrypt").json(&body))
            .await?;
        Self::wrapped(data.ciphertext)
    }

    async fn unwrap(&self, wrapped: &WrappedDek) -> Result<DataKey> {
        let ciphertext = Self::ciphertext_text(wrapped)?;
        let data: PlaintextData = self
            .send(
                self.request(reqwest::Method::POST, "decrypt")
                    .json(&json!({ "ciphertext": ciphertext })),
            )
            .await
            .map_err(|e| Self::map_refusal(e, wrapped.kek_version))?;
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(data.plaintext.expose_secret().as_bytes())
                .map_err(|_| Error::Decryption {
                    what: SecretKind::DataKey,
                })?,
        );
        DataKey::from_slice(&bytes).ok_or(Error::Decryption {
            what: SecretKind::DataKey,
        })
    }

    async fn rewrap(&self, wrapped: &WrappedDek) -> Result<WrappedDek> {
        let ciphertext = Self::ciphertext_text(wrapped)?;
        let data: CiphertextData = self
            .send(
                self.request(reqwest::Method::POST, "rewrap")
                    .json(&json!({ "ciphertext": ciphertext })),
            )
            .await
            .map_err(|e| Self::map_refusal(e, wrapped.kek_version))?;
        Self::wrapped(data.ciphertext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_the_prefix() {
        assert_eq!(parse_version("vault:v1:abc"), Some(1));
        assert_eq!(parse_version("vault:v12:abc"), Some(12));
        assert_eq!(parse_version("vault:v1:"), None);
        assert_eq!(parse_version("vault:x1:abc"), None);
        assert_eq!(parse_version("v1:abc"), None);
    }

    #[test]
    fn debug_hides_the_token() {
        let config = VaultTransitConfig::new(
            "http://127.0.0.1:8200",
            SecretString::from("s.supersecret"),
            "haven",
        );
        assert!(!format!("{config:?}").contains("supersecret"));
    }
}

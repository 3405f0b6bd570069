//! The admin CLI's configuration: the only place it reads the environment.

use haven_service::config::{CommonConfig, ConfigError, load_with_common};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Settings of the admin CLI.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Shared settings (`DATABASE_URL`, …).
    pub common: CommonConfig,
    /// `HAVEN_MASTER_KEYS`: the custody master keys, `v1:<base64>,v2:<base64>`.
    pub master_keys: Option<SecretString>,
    /// `HAVEN_MIN_DECRYPTION_VERSION`: master-key versions below it no longer decrypt.
    pub min_decryption_version: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Own {
    #[serde(default)]
    master_keys: Option<SecretString>,
    #[serde(default)]
    min_decryption_version: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Defaults {}

impl AdminConfig {
    /// Loads and validates the configuration (defaults → `HAVEN_CONFIG` file → environment).
    pub fn load() -> Result<Self, ConfigError> {
        let (common, own) = load_with_common::<Own>(Defaults {})?;
        Ok(Self {
            common,
            master_keys: own.master_keys.filter(|k| {
                use secrecy::ExposeSecret;
                !k.expose_secret().trim().is_empty()
            }),
            min_decryption_version: own.min_decryption_version,
        })
    }
}

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
    /// `HAVEN_WEBHOOK_ALLOW` and `HAVEN_WEBHOOK_ALLOW_HTTP` (the worker's delivery settings):
    /// the URLs `webhooks endpoints create|update` accept (public `https` by default).
    pub webhook_destinations: haven_webhooks::DestinationPolicy,
}

#[derive(Debug, Deserialize)]
struct Own {
    #[serde(default)]
    master_keys: Option<SecretString>,
    #[serde(default)]
    min_decryption_version: Option<u32>,
    webhook_allow: String,
    webhook_allow_http: bool,
}

/// The defaults of the commands that use the master keys: unset.
#[derive(Debug, Serialize)]
struct Defaults {
    master_keys: &'static str,
    min_decryption_version: Option<u32>,
    webhook_allow: &'static str,
    webhook_allow_http: bool,
}

const DEFAULTS: Defaults = Defaults {
    master_keys: "",
    min_decryption_version: None,
    webhook_allow: "",
    webhook_allow_http: false,
};

/// Every environment variable the admin CLI reads (each command reads its part), sorted.
pub fn variables() -> Vec<String> {
    use haven_service::config::variables;
    let mut names = haven_service::config::common_variables();
    names.extend(variables(&DEFAULTS));
    names.extend(variables(&DEPLOY_DEFAULTS));
    names.extend(variables(&SYNC_DEFAULTS));
    names.extend(variables(&API_CLIENT_DEFAULTS));
    names.extend([WEBHOOK_SECRET_VAR, REWARDS_RULES_VAR].map(str::to_owned));
    names.sort();
    names.dedup();
    names
}

impl AdminConfig {
    /// Loads and validates the configuration (defaults → `HAVEN_CONFIG` file → environment).
    pub fn load() -> Result<Self, ConfigError> {
        let (common, own) = load_with_common::<Own>(DEFAULTS)?;
        if own.webhook_allow_http && common.env == haven_service::config::Environment::Production {
            return Err(ConfigError::Invalid {
                var: "HAVEN_WEBHOOK_ALLOW_HTTP",
                reason: "plain http webhooks are not allowed in production".into(),
            });
        }
        let webhook_destinations = haven_webhooks::DestinationPolicy::from_settings(
            &own.webhook_allow,
            own.webhook_allow_http,
        )
        .map_err(|reason| ConfigError::Invalid {
            var: "HAVEN_WEBHOOK_ALLOW",
            reason,
        })?;
        Ok(Self {
            webhook_destinations,
            common,
            master_keys: own.master_keys.filter(|k| {
                use secrecy::ExposeSecret;
                !k.expose_secret().trim().is_empty()
            }),
            min_decryption_version: own.min_decryption_version,
        })
    }
}

/// `HAVEN_WEBHOOK_SECRET`: the secret `haven-admin webhooks sign|verify` signs or checks
/// with (it never comes from the command line, where `ps` and shell history would show it).
pub const WEBHOOK_SECRET_VAR: &str = "HAVEN_WEBHOOK_SECRET";

/// The value of [`WEBHOOK_SECRET_VAR`], if set and not blank.
pub fn webhook_secret() -> Option<SecretString> {
    std::env::var(WEBHOOK_SECRET_VAR)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(SecretString::from)
}

/// `HAVEN_REWARDS_RULES`: the rules file `haven-admin rewards quote` prices with
/// (`--rules` overrides it; unset, the shipped rules).
pub const REWARDS_RULES_VAR: &str = "HAVEN_REWARDS_RULES";

/// The value of [`REWARDS_RULES_VAR`], if set and not blank.
pub fn rewards_rules() -> Option<std::path::PathBuf> {
    std::env::var_os(REWARDS_RULES_VAR)
        .filter(|path| !path.to_string_lossy().trim().is_empty())
        .map(std::path::PathBuf::from)
}

/// The private key of anvil's first dev account: the deployer when `HAVEN_DEPLOYER_KEY` is
/// unset and `HAVEN_ENV=development`. Public knowledge, so refused everywhere else.
pub const ANVIL_DEV_DEPLOYER_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// Settings of `haven-admin chain deploy`.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Shared settings (`ETH_RPC_URL`, `HAVEN_ENV`, …).
    pub common: CommonConfig,
    /// `HAVEN_DEPLOYER_KEY`: the hex private key that deploys the token and becomes its admin.
    pub deployer_key: secrecy::SecretString,
}

#[derive(Debug, Deserialize)]
struct DeployOwn {
    #[serde(default)]
    deployer_key: Option<secrecy::SecretString>,
}

#[derive(Debug, Serialize)]
struct DeployDefaults {
    deployer_key: &'static str,
}

/// `chain deploy`: no key (development falls back to anvil's first dev account).
const DEPLOY_DEFAULTS: DeployDefaults = DeployDefaults { deployer_key: "" };

impl DeployConfig {
    /// Loads and validates the configuration (defaults → `HAVEN_CONFIG` file → environment).
    pub fn load() -> Result<Self, ConfigError> {
        use haven_service::config::Environment;
        use secrecy::ExposeSecret;
        let (common, own) = load_with_common::<DeployOwn>(DEPLOY_DEFAULTS)?;
        let given = own
            .deployer_key
            .filter(|k| !k.expose_secret().trim().is_empty());
        let deployer_key = match given {
            Some(key) => {
                let is_dev_key = key.expose_secret().trim().trim_start_matches("0x")
                    == ANVIL_DEV_DEPLOYER_KEY.trim_start_matches("0x");
                haven_service::config::refuse_dev_secret(
                    "HAVEN_DEPLOYER_KEY",
                    is_dev_key && common.env == Environment::Production,
                )?;
                key
            }
            None if common.env == Environment::Development => ANVIL_DEV_DEPLOYER_KEY.into(),
            None => {
                return Err(ConfigError::Invalid {
                    var: "HAVEN_DEPLOYER_KEY",
                    reason: "required unless HAVEN_ENV=development (which uses anvil's first dev account)"
                        .into(),
                });
            }
        };
        Ok(Self {
            common,
            deployer_key,
        })
    }
}

/// Settings of `haven-admin rewards sync`.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Shared settings (`DATABASE_URL`, `REDIS_URL`, …).
    pub common: CommonConfig,
    /// `HAVEN_AURORA_URL` and `HAVEN_AURORA_API_KEY`: Aurora's API, when set.
    pub aurora: Option<haven_partners::PartnerConfig>,
    /// `HAVEN_TRIBE_URL` and `HAVEN_TRIBE_API_KEY`: Tribe's API, when set.
    pub tribe: Option<haven_partners::PartnerConfig>,
    /// `HAVEN_REWARDS_RULES`: the tokenomics rules file (default: the shipped rules).
    pub rewards_rules: Option<std::path::PathBuf>,
    /// `HAVEN_REDIS_PREFIX` (default `haven:`): where the fraud windows live, shared with
    /// the api.
    pub redis_prefix: String,
}

#[derive(Debug, Deserialize)]
struct SyncOwn {
    #[serde(default)]
    aurora_url: String,
    #[serde(default)]
    aurora_api_key: Option<SecretString>,
    #[serde(default)]
    tribe_url: String,
    #[serde(default)]
    tribe_api_key: Option<SecretString>,
    #[serde(default)]
    rewards_rules: String,
    redis_prefix: String,
}

#[derive(Debug, Serialize)]
struct SyncDefaults {
    aurora_url: &'static str,
    aurora_api_key: &'static str,
    tribe_url: &'static str,
    tribe_api_key: &'static str,
    rewards_rules: &'static str,
    redis_prefix: &'static str,
}

/// `rewards sync`: no partner configured, the shipped rules, the api's Redis prefix.
const SYNC_DEFAULTS: SyncDefaults = SyncDefaults {
    aurora_url: "",
    aurora_api_key: "",
    tribe_url: "",
    tribe_api_key: "",
    rewards_rules: "",
    redis_prefix: "haven:",
};

fn partner(
    url: &str,
    key: Option<SecretString>,
    url_var: &'static str,
    key_var: &'static str,
) -> Result<Option<haven_partners::PartnerConfig>, ConfigError> {
    haven_partners::PartnerConfig::from_settings(url, key).map_err(|e| match e {
        haven_partners::PartnerSettingError::Url(reason) => ConfigError::Invalid {
            var: url_var,
            reason,
        },
        haven_partners::PartnerSettingError::MissingKey => ConfigError::Invalid {
            var: key_var,
            reason: format!("required with {url_var}"),
        },
    })
}

impl SyncConfig {
    /// Loads and validates the configuration (defaults → `HAVEN_CONFIG` file → environment).
    pub fn load() -> Result<Self, ConfigError> {
        let (common, own) = load_with_common::<SyncOwn>(SYNC_DEFAULTS)?;
        let rewards_rules = match own.rewards_rules.trim() {
            "" => None,
            path => Some(std::path::PathBuf::from(path)),
        };
        Ok(Self {
            common,
            aurora: partner(
                &own.aurora_url,
                own.aurora_api_key,
                "HAVEN_AURORA_URL",
                "HAVEN_AURORA_API_KEY",
            )?,
            tribe: partner(
                &own.tribe_url,
                own.tribe_api_key,
                "HAVEN_TRIBE_URL",
                "HAVEN_TRIBE_API_KEY",
            )?,
            rewards_rules,
            redis_prefix: own.redis_prefix,
        })
    }
}

/// Settings of the commands that ask the running api (`haven-admin breakers`: a breaker
/// lives in the api process).
#[derive(Debug, Clone)]
pub struct ApiClientConfig {
    /// `HAVEN_API_URL`: the api to ask, e.g. `https://api.internal:8080`.
    pub api_url: url::Url,
    /// `HAVEN_ADMIN_API_KEY`: an API key with the `system:operate` scope (only an admin can
    /// create one); read from the environment only, never from the command line.
    pub api_key: Option<SecretString>,
}

#[derive(Debug, Deserialize)]
struct ApiClientOwn {
    api_url: String,
    #[serde(default)]
    admin_api_key: Option<SecretString>,
}

#[derive(Debug, Serialize)]
struct ApiClientDefaults {
    api_url: &'static str,
    admin_api_key: &'static str,
}

/// The api of a development machine; no key.
const API_CLIENT_DEFAULTS: ApiClientDefaults = ApiClientDefaults {
    api_url: "http://127.0.0.1:8080",
    admin_api_key: "",
};

impl ApiClientConfig {
    /// Loads and validates the configuration (defaults → `HAVEN_CONFIG` file → environment).
    pub fn load() -> Result<Self, ConfigError> {
        use secrecy::ExposeSecret;
        let (_, own) = load_with_common::<ApiClientOwn>(API_CLIENT_DEFAULTS)?;
        let api_url = url::Url::parse(own.api_url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| ConfigError::Invalid {
                var: "HAVEN_API_URL",
                reason: format!("{:?} is not an http(s) URL", own.api_url),
            })?;
        Ok(Self {
            api_url,
            api_key: own
                .admin_api_key
                .filter(|k| !k.expose_secret().trim().is_empty()),
        })
    }
}

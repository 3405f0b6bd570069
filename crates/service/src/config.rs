//! Layered, typed configuration.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where the process runs; production refuses development secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// A developer machine (the default).
    #[default]
    Development,
    /// Automated tests.
    Test,
    /// Production: strict checks at start-up.
    Production,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (the default).
    #[default]
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

/// A configuration problem, naming the variable to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value could not be parsed or is missing; the message names the key and its source.
    #[error("configuration error: {0}")]
    Parse(String),
    /// A value parsed but is not acceptable.
    #[error("invalid configuration: {var}: {reason}")]
    Invalid {
        /// The environment variable (or file key) to fix.
        var: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

/// Standard variable names that carry no `HAVEN_` prefix, and the key each maps to.
const STANDARD_NAMES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    ("REDIS_URL", "redis_url"),
    ("ETH_RPC_URL", "eth_rpc_url"),
];

/// Loads `T` from, in increasing priority: `defaults`, the TOML file named by
/// `HAVEN_CONFIG` (if set), `HAVEN_*` variables (`HAVEN_API_ADDR` → `api_addr`, nested keys
/// with `__`), and the standard `DATABASE_URL`, `REDIS_URL`, `ETH_RPC_URL`.
pub fn load<T: DeserializeOwned>(defaults: impl Serialize) -> Result<T, ConfigError> {
    figment(defaults)?
        .extract()
        .map_err(|e| ConfigError::Parse(describe(e)))
}

/// Loads the [`CommonConfig`] (validated) and a binary's own settings `T` from the same layers.
///
/// `T` must not `#[serde(flatten)]` the common part: kept apart, every error names its key.
pub fn load_with_common<T: DeserializeOwned>(
    defaults: impl Serialize,
) -> Result<(CommonConfig, T), ConfigError> {
    let figment = figment(defaults)?.join(Serialized::defaults(CommonDefaults::default()));
    let common: CommonConfig = figment
        .extract()
        .map_err(|e| ConfigError::Parse(describe(e)))?;
    common.validate()?;
    let own = figment
        .extract()
        .map_err(|e| ConfigError::Parse(describe(e)))?;
    Ok((common, own))
}

/// One line per problem: what is wrong, the key, and where the value came from
/// (e.g. "the `HAVEN_ENV` environment variable").
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let origin = e.metadata.as_ref().map(|m| {
                if m.name.contains("environment") {
                    let var = STANDARD_NAMES
                        .iter()
                        .find(|(_, k)| *k == key)
                        .map(|(v, _)| (*v).to_owned())
                        .unwrap_or_else(|| format!("HAVEN_{}", e.path.join("__").to_uppercase()));
                    format!("the environment variable {var}")
                } else {
                    match &m.source {
                        Some(source) => format!("{} {source}", m.name),
                        None => m.name.to_string(),
                    }
                }
            });
            match (key.is_empty(), origin) {
                (true, _) => e.kind.to_string(),
                (false, Some(origin)) => format!("{} for `{key}` (from {origin})", e.kind),
                (false, None) => format!("{} for `{key}`", e.kind),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn figment(defaults: impl Serialize) -> Result<Figment, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Ok(path) = std::env::var("HAVEN_CONFIG") {
        if !std::path::Path::new(&path).is_file() {
            return Err(ConfigError::Invalid {
                var: "HAVEN_CONFIG",
                reason: format!("no such file: {path}"),
            });
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(
        Env::prefixed("HAVEN_")
            .ignore(&["CONFIG"])
            .split("__")
            .lowercase(true),
    );
    for (var, key) in STANDARD_NAMES {
        figment = figment.merge(Env::raw().only(&[var]).map(move |_| (*key).into()));
    }
    Ok(figment)
}

/// The environment variable that sets each key of `defaults` (`api_addr` →
/// `HAVEN_API_ADDR`, `database_url` → `DATABASE_URL`), sorted. A binary whose defaults
/// name every key it reads — the convention of every `config.rs` here — lists its settings
/// with this, and the README table is checked against that list.
pub fn variables(defaults: &impl Serialize) -> Vec<String> {
    let mut names: Vec<String> = match serde_json::to_value(defaults) {
        Ok(serde_json::Value::Object(keys)) => keys
            .keys()
            .map(|key| {
                STANDARD_NAMES
                    .iter()
                    .find(|(_, k)| k == key)
                    .map(|(var, _)| (*var).to_owned())
                    .unwrap_or_else(|| format!("HAVEN_{}", key.to_uppercase()))
            })
            .collect(),
        _ => Vec::new(),
    };
    names.sort();
    names
}

/// The variables of the [`CommonConfig`] and `HAVEN_CONFIG`, which every binary reads.
pub fn common_variables() -> Vec<String> {
    let mut names = variables(&CommonDefaults::default());
    names.push("HAVEN_CONFIG".to_owned());
    names.sort();
    names
}

/// The settings every binary shares.
#[derive(Debug, Clone, Deserialize)]
pub struct CommonConfig {
    /// `HAVEN_ENV`.
    pub env: Environment,
    /// `DATABASE_URL`.
    pub database_url: SecretString,
    /// `REDIS_URL`.
    pub redis_url: SecretString,
    /// `ETH_RPC_URL`.
    pub eth_rpc_url: String,
    /// `HAVEN_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `HAVEN_DB_POOL_SIZE`.
    pub db_pool_size: usize,
}

/// Development defaults for [`CommonConfig`] that work with `scripts/services.sh`.
#[derive(Debug, Clone, Serialize)]
pub struct CommonDefaults {
    env: Environment,
    database_url: &'static str,
    redis_url: &'static str,
    eth_rpc_url: &'static str,
    log_format: LogFormat,
    db_pool_size: usize,
}

/// The development database URL (refused in production).
pub const DEV_DATABASE_URL: &str = "postgres://haven:haven@127.0.0.1:5432/haven";

impl Default for CommonDefaults {
    fn default() -> Self {
        Self {
            env: Environment::Development,
            database_url: DEV_DATABASE_URL,
            redis_url: "redis://127.0.0.1:6379",
            eth_rpc_url: "http://127.0.0.1:8545",
            log_format: LogFormat::Json,
            db_pool_size: 16,
        }
    }
}

impl CommonConfig {
    /// Checks values that parse but make no sense, and production's stricter rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (var, url, schemes) in [
            (
                "DATABASE_URL",
                self.database_url.expose_secret(),
                &["postgres", "postgresql"][..],
            ),
            (
                "REDIS_URL",
                self.redis_url.expose_secret(),
                &["redis", "rediss"][..],
            ),
            (
                "ETH_RPC_URL",
                self.eth_rpc_url.as_str(),
                &["http", "https"][..],
            ),
        ] {
            let scheme = url.split("://").next().unwrap_or_default();
            if !url.contains("://") || !schemes.contains(&scheme) {
                return Err(ConfigError::Invalid {
                    var,
                    reason: format!("expected a {} URL", schemes.join("/")),
                });
            }
        }
        if self.db_pool_size == 0 {
            return Err(ConfigError::Invalid {
                var: "HAVEN_DB_POOL_SIZE",
                reason: "must be at least 1".into(),
            });
        }
        if self.env == Environment::Production {
            refuse_dev_secret(
                "DATABASE_URL",
                self.database_url.expose_secret() == DEV_DATABASE_URL
                    || self.database_url.expose_secret().contains(":haven@"),
            )?;
            if self.log_format != LogFormat::Json {
                return Err(ConfigError::Invalid {
                    var: "HAVEN_LOG_FORMAT",
                    reason: "production logs must be json".into(),
                });
            }
        }
        Ok(())
    }
}

/// Fails with a clear message when a production process would start on a development secret.
pub fn refuse_dev_secret(var: &'static str, is_dev_secret: bool) -> Result<(), ConfigError> {
    if is_dev_secret {
        return Err(ConfigError::Invalid {
            var,
            reason: "the development default is refused with HAVEN_ENV=production".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        api_addr: String,
        nested: Nested,
    }

    #[derive(Debug, Deserialize)]
    struct Nested {
        size: u32,
    }

    #[derive(Serialize)]
    struct Defaults {
        api_addr: &'static str,
        nested: NestedDefaults,
    }

    #[derive(Serialize)]
    struct NestedDefaults {
        size: u32,
    }

    fn defaults() -> Defaults {
        Defaults {
            api_addr: "127.0.0.1:8080",
            nested: NestedDefaults { size: 1 },
        }
    }

    fn load_sample() -> Result<(CommonConfig, Sample), ConfigError> {
        load_with_common(defaults())
    }

    #[test]
    fn layers_defaults_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "haven.toml",
                "api_addr = \"0.0.0.0:9000\"\n[nested]\nsize = 5\n",
            )?;
            jail.set_env("HAVEN_CONFIG", "haven.toml");
            let (common, s) = load_sample().map_err(|e| e.to_string())?;
            assert_eq!(s.api_addr, "0.0.0.0:9000");
            assert_eq!(s.nested.size, 5);
            assert_eq!(common.env, Environment::Development);
            assert_eq!(common.database_url.expose_secret(), DEV_DATABASE_URL);

            jail.set_env("HAVEN_API_ADDR", "127.0.0.1:1234");
            jail.set_env("HAVEN_NESTED__SIZE", "9");
            jail.set_env("HAVEN_ENV", "test");
            jail.set_env("DATABASE_URL", "postgres://x@db/haven");
            let (common, s) = load_sample().map_err(|e| e.to_string())?;
            assert_eq!(s.api_addr, "127.0.0.1:1234");
            assert_eq!(s.nested.size, 9);
            assert_eq!(common.env, Environment::Test);
            assert_eq!(common.database_url.expose_secret(), "postgres://x@db/haven");
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_variable() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HAVEN_ENV", "staging");
            let err = load_sample().unwrap_err().to_string();
            assert!(err.contains("HAVEN_ENV"), "{err}");
            assert!(err.contains("staging"), "{err}");

            jail.set_env("HAVEN_ENV", "development");
            jail.set_env("HAVEN_NESTED__SIZE", "many");
            let err = load_sample().unwrap_err().to_string();
            assert!(err.contains("HAVEN_NESTED__SIZE"), "{err}");

            jail.set_env("HAVEN_NESTED__SIZE", "2");
            jail.set_env("HAVEN_CONFIG", "missing.toml");
            let err = load_sample().unwrap_err().to_string();
            assert!(err.contains("HAVEN_CONFIG"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn production_refuses_development_secrets() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HAVEN_ENV", "production");
            let err = load_sample().unwrap_err().to_string();
            assert!(err.contains("DATABASE_URL"), "{err}");

            jail.set_env("DATABASE_URL", "postgres://app:Str0ng@db/haven");
            load_sample().map_err(|e| e.to_string())?;

            jail.set_env("REDIS_URL", "http://nope");
            let err = load_sample().unwrap_err().to_string();
            assert!(err.contains("REDIS_URL"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn variables_name_each_key_as_its_environment_variable() {
        #[derive(Serialize)]
        struct Keys {
            worker_tick_secs: u64,
            database_url: &'static str,
            master_keys: Option<u32>,
        }
        let keys = Keys {
            worker_tick_secs: 60,
            database_url: "",
            master_keys: None,
        };
        assert_eq!(
            variables(&keys),
            [
                "DATABASE_URL",
                "HAVEN_MASTER_KEYS",
                "HAVEN_WORKER_TICK_SECS"
            ]
        );
        let common = common_variables();
        for var in [
            "HAVEN_CONFIG",
            "HAVEN_ENV",
            "HAVEN_DB_POOL_SIZE",
            "REDIS_URL",
            "ETH_RPC_URL",
        ] {
            assert!(common.iter().any(|v| v == var), "{var} in {common:?}");
        }
    }
}

//! The worker's configuration: the only place it reads the environment.

pub mod jobs;

use std::net::SocketAddr;
use std::time::Duration;

use alloy::primitives::Address;
use haven_custody::WalletId;
use haven_service::config::{CommonConfig, ConfigError, Environment, LogFormat, load_with_common};
use haven_webhooks::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Everything the worker needs to start.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// `HAVEN_WORKER_ADDR`: the health listener (default `127.0.0.1:8081`).
    pub addr: SocketAddr,
    /// `HAVEN_WORKER_TICK_SECS`: how often periodic jobs run (default 60).
    pub tick_secs: u64,
    /// The chain monitoring job's settings; the job runs only when they are complete.
    pub chain: ChainJobConfig,
    /// Fraud alert delivery (`HAVEN_FRAUD_*`).
    pub fraud: FraudDeliveryConfig,
    /// Outbound webhook delivery (`HAVEN_WEBHOOK_*`).
    pub webhooks: WebhookDeliveryConfig,
    /// Where verified inbound webhooks are relayed (`HAVEN_INBOUND_RELAY*`).
    pub inbound_relay: InboundRelayConfig,
    /// The rewards job (`HAVEN_REWARDS_POLL_MS`); it runs with the chain settings.
    pub rewards: crate::jobs::rewards::RewardsSettings,
    /// `HAVEN_REDIS_PREFIX` (default `haven:`): the keys shared with the api (the network
    /// statistics cache the worker invalidates after a mint or burn).
    pub redis_prefix: String,
    /// Schedules, attempts, timeouts, the shutdown bound and retention (`HAVEN_SCHEDULE_*`,
    /// `HAVEN_JOB_*`, `HAVEN_JOBS_TIMEZONE`, `HAVEN_SHUTDOWN_GRACE_SECS`,
    /// `HAVEN_RETENTION_*`).
    pub jobs: jobs::JobsConfig,
    /// `HAVEN_REWARDS_RULES`: the tokenomics rules file (default: the shipped rules); the
    /// staking accrual and the partner syncs price with it.
    pub rewards_rules: Option<std::path::PathBuf>,
    /// `HAVEN_AURORA_URL` and `HAVEN_AURORA_API_KEY`: Aurora's API; the `aurora_sync` job
    /// runs when set.
    pub aurora: Option<haven_partners::PartnerConfig>,
    /// `HAVEN_TRIBE_URL` and `HAVEN_TRIBE_API_KEY`: Tribe's API; the `tribe_sync` job runs
    /// when set.
    pub tribe: Option<haven_partners::PartnerConfig>,
}

/// The inbound relay: which outbound endpoints receive each source's verified events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRelayConfig {
    /// `HAVEN_INBOUND_RELAY`: `source=<endpoint id>[,<endpoint id>…]` entries separated by
    /// `;` (e.g. `aurora=0190…,0190…;tribe=0190…`). Empty (the default) turns the job off.
    pub routes: haven_db::RelayRoutes,
    /// `HAVEN_INBOUND_RELAY_SECS` (1): how often the job looks for new events.
    pub interval: Duration,
}

impl Default for InboundRelayConfig {
    /// No routes (off), every 5 s.
    fn default() -> Self {
        Self {
            routes: haven_db::RelayRoutes::new(),
            interval: Duration::from_secs(DEFAULTS.inbound_relay_secs),
        }
    }
}

impl InboundRelayConfig {
    /// Parses `HAVEN_INBOUND_RELAY` and `HAVEN_INBOUND_RELAY_SECS`.
    pub fn parse(raw: &str, interval_secs: u64) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            var: "HAVEN_INBOUND_RELAY",
            reason,
        };
        let mut routes = haven_db::RelayRoutes::new();
        for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (source, endpoints) = entry
                .split_once('=')
                .ok_or_else(|| invalid(format!("{entry:?} is not source=<endpoint id>,…")))?;
            let source = source.trim();
            if source.is_empty()
                || !source
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(invalid(format!(
                    "{source:?} is not a source name ([A-Za-z0-9_-]+)"
                )));
            }
            let ids = endpoints
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(|e| {
                    e.parse::<uuid::Uuid>()
                        .map_err(|_| invalid(format!("{e:?} is not an endpoint id (a UUID)")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if ids.is_empty() {
                return Err(invalid(format!("{source:?} names no endpoint")));
            }
            if routes.insert(source.to_owned(), ids).is_some() {
                return Err(invalid(format!("{source:?} is given twice")));
            }
        }
        if interval_secs == 0 {
            return Err(ConfigError::Invalid {
                var: "HAVEN_INBOUND_RELAY_SECS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            routes,
            interval: Duration::from_secs(interval_secs),
        })
    }
}

/// The chain monitoring job's settings as given; any may be unset, and the job is then off.
#[derive(Debug, Clone)]
pub struct ChainJobConfig {
    /// `HAVEN_TOKEN_ADDRESS`: the HAVEN token (`haven-admin chain deploy` prints it).
    pub token_address: Option<Address>,
    /// `HAVEN_CHAIN_WALLET`: the custody wallet that signs token transactions (the minter).
    pub wallet: Option<WalletId>,
    /// `HAVEN_MASTER_KEYS`: custody's master keys, `v1:<base64>,…`.
    pub master_keys: Option<SecretString>,
    /// `HAVEN_MIN_DECRYPTION_VERSION`: master-key versions below it no longer decrypt.
    pub min_decryption_version: Option<u32>,
}

/// Complete chain settings: what the monitoring job is composed from.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    /// The HAVEN token.
    pub token: Address,
    /// The custody wallet that signs.
    pub wallet: WalletId,
    /// Custody's master keys.
    pub master_keys: SecretString,
    /// Master-key versions below it no longer decrypt.
    pub min_decryption_version: Option<u32>,
}

impl ChainJobConfig {
    /// No chain settings: the job is off.
    pub fn off() -> Self {
        Self {
            token_address: None,
            wallet: None,
            master_keys: None,
            min_decryption_version: None,
        }
    }

    /// The complete settings, or the variables that are unset.
    pub fn settings(&self) -> Result<ChainSettings, Vec<&'static str>> {
        match (&self.token_address, &self.wallet, &self.master_keys) {
            (Some(token), Some(wallet), Some(master_keys)) => Ok(ChainSettings {
                token: *token,
                wallet: wallet.clone(),
                master_keys: master_keys.clone(),
                min_decryption_version: self.min_decryption_version,
            }),
            (token, wallet, keys) => Err([
                ("HAVEN_TOKEN_ADDRESS", token.is_none()),
                ("HAVEN_CHAIN_WALLET", wallet.is_none()),
                ("HAVEN_MASTER_KEYS", keys.is_none()),
            ]
            .into_iter()
            .filter_map(|(var, missing)| missing.then_some(var))
            .collect()),
        }
    }
}

/// The worker's settings as read from the configuration layers: every key has its default
/// in [`DEFAULTS`] (empty text for "unset"), so the defaults are written once and
/// [`variables`] lists every setting.
#[derive(Debug, Deserialize)]
struct Own {
    webhook_allow: String,
    webhook_allow_http: bool,
    webhook_delivery_secs: u64,
    inbound_relay: String,
    inbound_relay_secs: u64,
    rewards_poll_ms: u64,
    rewards_lease_secs: u64,
    redis_prefix: String,
    rewards_rules: String,
    aurora_url: String,
    aurora_api_key: Option<SecretString>,
    tribe_url: String,
    tribe_api_key: Option<SecretString>,
    worker_addr: String,
    worker_tick_secs: u64,
    token_address: Option<String>,
    chain_wallet: Option<String>,
    master_keys: Option<SecretString>,
    #[serde(default)]
    min_decryption_version: Option<u32>,
    fraud_delivery_secs: u64,
    fraud_delivery_batch: u64,
    fraud_delivery_concurrency: u64,
    fraud_delivery_max_attempts: u64,
    fraud_delivery_backoff_secs: u64,
    fraud_delivery_max_backoff_secs: u64,
    fraud_delivery_lease_secs: u64,
    fraud_webhook_url: Option<String>,
    fraud_webhook_secret: Option<SecretString>,
    fraud_smtp_host: Option<String>,
    fraud_smtp_port: u16,
    fraud_smtp_security: String,
    fraud_smtp_user: Option<String>,
    fraud_smtp_password: Option<SecretString>,
    fraud_smtp_from: Option<String>,
    fraud_smtp_to: Option<String>,
    fraud_smtp_timeout_secs: u64,
    #[serde(flatten)]
    jobs: jobs::JobsOwn,
}

#[derive(Debug, Serialize)]
struct Defaults {
    worker_addr: &'static str,
    worker_tick_secs: u64,
    webhook_allow: &'static str,
    webhook_allow_http: bool,
    webhook_delivery_secs: u64,
    inbound_relay: &'static str,
    inbound_relay_secs: u64,
    rewards_poll_ms: u64,
    rewards_lease_secs: u64,
    redis_prefix: &'static str,
    rewards_rules: &'static str,
    aurora_url: &'static str,
    aurora_api_key: &'static str,
    tribe_url: &'static str,
    tribe_api_key: &'static str,
    token_address: &'static str,
    chain_wallet: &'static str,
    master_keys: &'static str,
    min_decryption_version: Option<u32>,
    fraud_delivery_secs: u64,
    fraud_delivery_batch: u64,
    fraud_delivery_concurrency: u64,
    fraud_delivery_max_attempts: u64,
    fraud_delivery_backoff_secs: u64,
    fraud_delivery_max_backoff_secs: u64,
    fraud_delivery_lease_secs: u64,
    fraud_webhook_url: &'static str,
    fraud_webhook_secret: &'static str,
    fraud_smtp_host: &'static str,
    fraud_smtp_port: u16,
    fraud_smtp_security: &'static str,
    fraud_smtp_user: &'static str,
    fraud_smtp_password: &'static str,
    fraud_smtp_from: &'static str,
    fraud_smtp_to: &'static str,
    fraud_smtp_timeout_secs: u64,
    #[serde(flatten)]
    jobs: jobs::JobsDefaults,
}

/// Every default of the worker, in one place (the README's configuration table lists them).
const DEFAULTS: Defaults = Defaults {
    worker_addr: "127.0.0.1:8081",
    worker_tick_secs: 60,
    webhook_allow: "",
    webhook_allow_http: false,
    webhook_delivery_secs: 1,
    inbound_relay: "",
    inbound_relay_secs: 1,
    rewards_poll_ms: 500,
    rewards_lease_secs: 120,
    redis_prefix: "haven:",
    rewards_rules: "",
    aurora_url: "",
    aurora_api_key: "",
    tribe_url: "",
    tribe_api_key: "",
    token_address: "",
    chain_wallet: "",
    master_keys: "",
    min_decryption_version: None,
    fraud_delivery_secs: 1,
    fraud_delivery_batch: 50,
    fraud_delivery_concurrency: 8,
    fraud_delivery_max_attempts: 8,
    fraud_delivery_backoff_secs: 30,
    fraud_delivery_max_backoff_secs: 3600,
    fraud_delivery_lease_secs: 300,
    fraud_webhook_url: "",
    fraud_webhook_secret: "",
    fraud_smtp_host: "",
    fraud_smtp_port: 587,
    fraud_smtp_security: "starttls",
    fraud_smtp_user: "",
    fraud_smtp_password: "",
    fraud_smtp_from: "",
    fraud_smtp_to: "",
    fraud_smtp_timeout_secs: 10,
    jobs: jobs::DEFAULTS,
};

/// Every environment variable the worker reads, sorted.
pub fn variables() -> Vec<String> {
    let mut names = haven_service::config::common_variables();
    names.extend(haven_service::config::variables(&DEFAULTS));
    names.sort();
    names
}

impl WorkerConfig {
    /// Loads and validates the configuration (defaults → `HAVEN_CONFIG` file → environment).
    pub fn load() -> Result<Self, ConfigError> {
        let (common, own) = load_with_common::<Own>(DEFAULTS)?;
        let addr = own.worker_addr.parse().map_err(|e| ConfigError::Invalid {
            var: "HAVEN_WORKER_ADDR",
            reason: format!("{:?} is not host:port ({e})", own.worker_addr),
        })?;
        if own.worker_tick_secs == 0 {
            return Err(ConfigError::Invalid {
                var: "HAVEN_WORKER_TICK_SECS",
                reason: "must be at least 1".into(),
            });
        }
        let chain = ChainJobConfig::from_own(&own)?;
        let fraud = FraudDeliveryConfig::from_own(&own)?;
        let webhooks = WebhookDeliveryConfig::from_own(common.env, &own)?;
        let inbound_relay = InboundRelayConfig::parse(&own.inbound_relay, own.inbound_relay_secs)?;
        if own.rewards_poll_ms == 0 {
            return Err(ConfigError::Invalid {
                var: "HAVEN_REWARDS_POLL_MS",
                reason: "must be at least 1".into(),
            });
        }
        let rewards = crate::jobs::rewards::RewardsSettings {
            interval: Duration::from_millis(own.rewards_poll_ms),
            lease: Duration::from_secs(own.rewards_lease_secs.max(1)),
            ..crate::jobs::rewards::RewardsSettings::default()
        };
        Ok(Self {
            common,
            addr,
            tick_secs: own.worker_tick_secs,
            chain,
            fraud,
            webhooks,
            inbound_relay,
            rewards,
            redis_prefix: own.redis_prefix,
            jobs: jobs::JobsConfig::from_own(own.jobs)?,
            rewards_rules: Some(own.rewards_rules.trim())
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from),
            aurora: partner(
                &own.aurora_url,
                own.aurora_api_key,
                ("HAVEN_AURORA_URL", "HAVEN_AURORA_API_KEY"),
            )?,
            tribe: partner(
                &own.tribe_url,
                own.tribe_api_key,
                ("HAVEN_TRIBE_URL", "HAVEN_TRIBE_API_KEY"),
            )?,
        })
    }

    /// A configuration for tests with the given service URLs.
    pub fn for_tests(database_url: &str, redis_url: &str) -> Self {
        Self {
            common: CommonConfig {
                env: Environment::Test,
                database_url: database_url.to_owned().into(),
                redis_url: redis_url.to_owned().into(),
                eth_rpc_url: "http://127.0.0.1:8545".into(),
                log_format: LogFormat::Json,
                db_pool_size: 4,
            },
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tick_secs: DEFAULTS.worker_tick_secs,
            chain: ChainJobConfig::off(),
            fraud: FraudDeliveryConfig::log_only(),
            webhooks: WebhookDeliveryConfig::default(),
            inbound_relay: InboundRelayConfig::default(),
            rewards: crate::jobs::rewards::RewardsSettings {
                interval: Duration::from_millis(DEFAULTS.rewards_poll_ms),
                ..crate::jobs::rewards::RewardsSettings::default()
            },
            redis_prefix: DEFAULTS.redis_prefix.to_owned(),
            jobs: jobs::JobsConfig {
                attempts: 3,
                backoff: Duration::from_millis(50),
                shutdown_grace: Duration::from_secs(5),
                ..jobs::JobsConfig::test_defaults()
            },
            rewards_rules: None,
            aurora: None,
            tribe: None,
        }
    }
}

/// A partner's API settings; `vars` names the URL and key settings in errors.
fn partner(
    url: &str,
    key: Option<SecretString>,
    (url_var, key_var): (&'static str, &'static str),
) -> Result<Option<haven_partners::PartnerConfig>, ConfigError> {
    haven_partners::PartnerConfig::from_settings(url, key).map_err(|e| ConfigError::Invalid {
        var: match e {
            haven_partners::PartnerSettingError::Url(_) => url_var,
            haven_partners::PartnerSettingError::MissingKey => key_var,
        },
        reason: e.to_string(),
    })
}

impl ChainJobConfig {
    fn from_own(own: &Own) -> Result<Self, ConfigError> {
        let set = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let token_address = set(&own.token_address)
            .map(|raw| {
                raw.parse::<Address>().map_err(|_| ConfigError::Invalid {
                    var: "HAVEN_TOKEN_ADDRESS",
                    reason: format!("{raw:?} is not a 0x-prefixed 20-byte hex address"),
                })
            })
            .transpose()?;
        let wallet = set(&own.chain_wallet)
            .map(|raw| {
                WalletId::new(raw.clone()).map_err(|_| ConfigError::Invalid {
                    var: "HAVEN_CHAIN_WALLET",
                    reason: format!("{raw:?} is not a wallet id"),
                })
            })
            .transpose()?;
        Ok(Self {
            token_address,
            wallet,
            master_keys: own
                .master_keys
                .clone()
                .filter(|k| !k.expose_secret().trim().is_empty()),
            min_decryption_version: own.min_decryption_version,
        })
    }
}

/// Fraud alert delivery: retry policy and the optional webhook and SMTP sinks (the log sink
/// is always on).
#[derive(Debug, Clone)]
pub struct FraudDeliveryConfig {
    /// `HAVEN_FRAUD_DELIVERY_BATCH` (50), `…_CONCURRENCY` (8), `…_MAX_ATTEMPTS` (8),
    /// `…_BACKOFF_SECS` (30), `…_MAX_BACKOFF_SECS` (3600), `…_LEASE_SECS` (300).
    pub policy: crate::jobs::fraud_delivery::DeliveryPolicy,
    /// `HAVEN_FRAUD_DELIVERY_SECS` (1): how often the delivery job looks for due alerts.
    pub interval: Duration,
    /// `HAVEN_FRAUD_WEBHOOK_URL` and `HAVEN_FRAUD_WEBHOOK_SECRET`; off when the URL is empty.
    pub webhook: Option<FraudWebhookConfig>,
    /// `HAVEN_FRAUD_SMTP_*`; off when `HAVEN_FRAUD_SMTP_HOST` is empty.
    pub smtp: Option<haven_fraud::SmtpConfig>,
}

/// Where signed alert webhooks go.
#[derive(Debug, Clone)]
pub struct FraudWebhookConfig {
    /// The endpoint (http or https).
    pub url: String,
    /// The Standard Webhooks secret (`whsec_…`, base64).
    pub secret: SecretString,
}

/// `HAVEN_FRAUD_SMTP_SECURITY` for a relay at `host`: `none` (plain text) only for a relay
/// on this machine.
fn smtp_security(raw: &str, host: &str) -> Result<haven_fraud::SmtpSecurity, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        var: "HAVEN_FRAUD_SMTP_SECURITY",
        reason,
    };
    match raw {
        "starttls" => Ok(haven_fraud::SmtpSecurity::StartTls),
        "tls" => Ok(haven_fraud::SmtpSecurity::Tls),
        "none" if haven_fraud::is_loopback_host(host) => Ok(haven_fraud::SmtpSecurity::None),
        "none" => Err(invalid(format!(
            "none sends alerts in plain text; it is allowed only for a relay on this machine (localhost), not {host:?}"
        ))),
        other => Err(invalid(format!("{other:?} is not starttls, tls or none"))),
    }
}

impl FraudDeliveryConfig {
    /// The defaults: log sink only, every 5 s, 50 alerts a batch, 8 attempts from 30 s
    /// doubling up to 1 h, 300 s leases.
    pub fn log_only() -> Self {
        Self {
            policy: crate::jobs::fraud_delivery::DeliveryPolicy {
                batch: DEFAULTS.fraud_delivery_batch as usize,
                concurrency: DEFAULTS.fraud_delivery_concurrency as usize,
                max_attempts: DEFAULTS.fraud_delivery_max_attempts as u32,
                backoff: Duration::from_secs(DEFAULTS.fraud_delivery_backoff_secs),
                max_backoff: Duration::from_secs(DEFAULTS.fraud_delivery_max_backoff_secs),
                lease: Duration::from_secs(DEFAULTS.fraud_delivery_lease_secs),
            },
            interval: Duration::from_secs(DEFAULTS.fraud_delivery_secs),
            webhook: None,
            smtp: None,
        }
    }

    fn from_own(own: &Own) -> Result<Self, ConfigError> {
        let invalid = |var: &'static str, reason: String| ConfigError::Invalid { var, reason };
        for (var, value) in [
            ("HAVEN_FRAUD_DELIVERY_SECS", own.fraud_delivery_secs),
            ("HAVEN_FRAUD_DELIVERY_BATCH", own.fraud_delivery_batch),
            (
                "HAVEN_FRAUD_DELIVERY_CONCURRENCY",
                own.fraud_delivery_concurrency,
            ),
            (
                "HAVEN_FRAUD_DELIVERY_MAX_ATTEMPTS",
                own.fraud_delivery_max_attempts,
            ),
            (
                "HAVEN_FRAUD_DELIVERY_LEASE_SECS",
                own.fraud_delivery_lease_secs,
            ),
        ] {
            if value == 0 {
                return Err(invalid(var, "must be at least 1".into()));
            }
        }
        let policy = crate::jobs::fraud_delivery::DeliveryPolicy {
            batch: usize::try_from(own.fraud_delivery_batch).unwrap_or(usize::MAX),
            concurrency: usize::try_from(own.fraud_delivery_concurrency).unwrap_or(usize::MAX),
            max_attempts: u32::try_from(own.fraud_delivery_max_attempts)
                .map_err(|_| invalid("HAVEN_FRAUD_DELIVERY_MAX_ATTEMPTS", "is too large".into()))?,
            backoff: Duration::from_secs(own.fraud_delivery_backoff_secs),
            max_backoff: Duration::from_secs(own.fraud_delivery_max_backoff_secs),
            lease: Duration::from_secs(own.fraud_delivery_lease_secs),
        };
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let webhook = match (text(&own.fraud_webhook_url), &own.fraud_webhook_secret) {
            (None, _) => None,
            (Some(url), Some(secret)) if !secret.expose_secret().trim().is_empty() => {
                Some(FraudWebhookConfig {
                    url,
                    secret: secret.clone(),
                })
            }
            (Some(_), _) => {
                return Err(invalid(
                    "HAVEN_FRAUD_WEBHOOK_SECRET",
                    "required when HAVEN_FRAUD_WEBHOOK_URL is set".into(),
                ));
            }
        };
        let smtp = match text(&own.fraud_smtp_host) {
            None => None,
            Some(host) => {
                let security = smtp_security(&own.fraud_smtp_security, &host)?;
                let from = text(&own.fraud_smtp_from).ok_or_else(|| {
                    invalid(
                        "HAVEN_FRAUD_SMTP_FROM",
                        "required when HAVEN_FRAUD_SMTP_HOST is set".into(),
                    )
                })?;
                let to: Vec<String> = text(&own.fraud_smtp_to)
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if to.is_empty() {
                    return Err(invalid(
                        "HAVEN_FRAUD_SMTP_TO",
                        "required (comma-separated) when HAVEN_FRAUD_SMTP_HOST is set".into(),
                    ));
                }
                let credentials = text(&own.fraud_smtp_user).map(|user| {
                    (
                        user,
                        own.fraud_smtp_password
                            .clone()
                            .unwrap_or_else(|| SecretString::from(String::new())),
                    )
                });
                Some(haven_fraud::SmtpConfig {
                    host,
                    port: own.fraud_smtp_port,
                    security,
                    credentials,
                    from,
                    to,
                    timeout: Duration::from_secs(own.fraud_smtp_timeout_secs.max(1)),
                })
            }
        };
        Ok(Self {
            policy,
            interval: Duration::from_secs(own.fraud_delivery_secs),
            webhook,
            smtp,
        })
    }
}

/// Outbound webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDeliveryConfig {
    /// `HAVEN_WEBHOOK_ALLOW`: comma-separated address ranges (`127.0.0.1/32`, `10.0.0.0/8`,
    /// `::1`) webhooks may be sent to although they are not public. Default: none, so
    /// loopback, private, link-local and other internal addresses are refused.
    pub allow: Vec<IpNet>,
    /// `HAVEN_WEBHOOK_ALLOW_HTTP`: also send to plain `http` URLs (development and tests;
    /// refused in production). Default `false`.
    pub allow_http: bool,
    /// `HAVEN_WEBHOOK_DELIVERY_SECS` (1): how often the delivery job looks for due attempts.
    pub interval: Duration,
}

impl Default for WebhookDeliveryConfig {
    /// Public `https` destinations only, every 5 s.
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            allow_http: false,
            interval: Duration::from_secs(DEFAULTS.webhook_delivery_secs),
        }
    }
}

impl WebhookDeliveryConfig {
    fn from_own(env: Environment, own: &Own) -> Result<Self, ConfigError> {
        Self::parse(
            env,
            &own.webhook_allow,
            own.webhook_allow_http,
            own.webhook_delivery_secs,
        )
    }

    fn parse(
        env: Environment,
        allow: &str,
        allow_http: bool,
        interval_secs: u64,
    ) -> Result<Self, ConfigError> {
        let allow = allow
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|range| {
                range.parse::<IpNet>().map_err(|_| ConfigError::Invalid {
                    var: "HAVEN_WEBHOOK_ALLOW",
                    reason: format!("{range:?} is not an address or address/prefix"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if allow_http && env == Environment::Production {
            return Err(ConfigError::Invalid {
                var: "HAVEN_WEBHOOK_ALLOW_HTTP",
                reason: "plain http webhooks are not allowed in production".into(),
            });
        }
        if interval_secs == 0 {
            return Err(ConfigError::Invalid {
                var: "HAVEN_WEBHOOK_DELIVERY_SECS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            allow,
            allow_http,
            interval: Duration::from_secs(interval_secs),
        })
    }
}

#[cfg(test)]
mod tests;

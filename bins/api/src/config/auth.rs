//! Authentication settings: JWT keys, issuer and audience, the API-key pepper.

use haven_auth::{KeyEnv, KeyHasher, SigningKey};
use haven_service::config::{ConfigError, Environment, refuse_dev_secret};
use std::time::Duration;

use haven_resilience::LockoutPolicy;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The HS256 secret used when `HAVEN_JWT_SECRET` is unset in development and tests only.
pub const DEV_JWT_SECRET: &str = "haven-development-jwt-secret-never-in-production";
/// The pepper used when `HAVEN_API_KEY_PEPPER` is unset in development and tests only.
pub const DEV_API_KEY_PEPPER: &str = "haven-development-api-key-pepper-never-in-production";

/// How tokens are signed: an HS256 secret or an Ed25519 private key.
#[derive(Debug, Clone)]
pub enum JwtKeyConfig {
    /// `HAVEN_JWT_SECRET`: HS256 with a secret of at least 256 bits.
    Hs256(SecretString),
    /// `HAVEN_JWT_ED25519_KEY`: EdDSA with this base64 PKCS#8 DER private key.
    Ed25519(SecretString),
}

/// Authentication settings, validated at start-up.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The signing key.
    pub jwt_key: JwtKeyConfig,
    /// `HAVEN_JWT_KID`: the `kid` written into token headers (default `k1`).
    pub jwt_kid: String,
    /// `HAVEN_JWT_ISSUER` (default `haven`).
    pub jwt_issuer: String,
    /// `HAVEN_JWT_AUDIENCE` (default `haven-api`).
    pub jwt_audience: String,
    /// `HAVEN_API_KEY_PEPPER`: the HMAC key API keys are hashed under (≥ 32 bytes).
    pub api_key_pepper: SecretString,
    /// Which keys this deployment issues: `live` in production, `test` elsewhere.
    pub key_env: KeyEnv,
    /// Back-off and bans after failed authentication (`HAVEN_AUTH_FREE_FAILURES`,
    /// `HAVEN_AUTH_BACKOFF_BASE_MS`, `HAVEN_AUTH_BACKOFF_MAX_SECS`, `HAVEN_AUTH_BAN_AFTER`,
    /// `HAVEN_AUTH_BAN_SECS`, `HAVEN_AUTH_FAILURE_WINDOW_SECS`); see [`crate::lockout`].
    pub lockout: LockoutPolicy,
    /// Prefix of the Redis keys of the failure counts and of the fraud windows they feed
    /// (`haven:`; tests give each server its own).
    pub redis_prefix: String,
    /// `HAVEN_AUTH_TRUSTED_NETWORKS`: client networks whose logins the lockout never
    /// blocks (failures are still counted and reported), so an administrator can always
    /// log in from there. Default none.
    pub trusted_networks: Vec<ipnet::IpNet>,
    /// `HAVEN_AUTH_HASH_CONCURRENCY`: password hashes that may run at once in this process
    /// (default 0: one per core); beyond it, and a short queue, logins get 503.
    pub password_hash_concurrency: usize,
    /// `HAVEN_AUTH_CACHE_MS` (1000, at most 1000): how long an access token the session
    /// store allowed, and a user's role, are answered from memory. Revocations made through
    /// any replica apply at once (Redis pub/sub); this bounds how long one the channel lost
    /// can go unseen. 0 asks the store on every request.
    pub cache_ttl: Duration,
}

impl AuthConfig {
    /// Whether the signing secret or the pepper is the development value.
    pub fn uses_development_secrets(&self) -> Option<&'static str> {
        if let JwtKeyConfig::Hs256(secret) = &self.jwt_key
            && secret.expose_secret() == DEV_JWT_SECRET
        {
            return Some("HAVEN_JWT_SECRET");
        }
        (self.api_key_pepper.expose_secret() == DEV_API_KEY_PEPPER)
            .then_some("HAVEN_API_KEY_PEPPER")
    }
}

/// Refuses the development JWT secret or pepper unless every listener is a loopback
/// address: whatever `HAVEN_ENV` says, a public listener never runs on secrets that are
/// in the repository.
pub fn refuse_dev_secrets_off_loopback(
    auth: &AuthConfig,
    listeners: &[std::net::SocketAddr],
) -> Result<(), ConfigError> {
    let Some(var) = auth.uses_development_secrets() else {
        return Ok(());
    };
    match listeners.iter().find(|addr| !addr.ip().is_loopback()) {
        Some(public) => Err(ConfigError::Invalid {
            var,
            reason: format!(
                "the development default serves loopback addresses only, and {public} is not one: set HAVEN_JWT_SECRET (or HAVEN_JWT_ED25519_KEY) and HAVEN_API_KEY_PEPPER, or listen on 127.0.0.1"
            ),
        }),
        None => Ok(()),
    }
}

impl AuthConfig {
    /// Builds the signing key the configuration names.
    pub fn signing_key(&self) -> Result<SigningKey, ConfigError> {
        match &self.jwt_key {
            JwtKeyConfig::Hs256(secret) => {
                SigningKey::hs256(&self.jwt_kid, secret.expose_secret().as_bytes()).map_err(|e| {
                    ConfigError::Invalid {
                        var: "HAVEN_JWT_SECRET",
                        reason: e.to_string(),
                    }
                })
            }
            JwtKeyConfig::Ed25519(pkcs8) => {
                use base64::Engine as _;
                let der = base64::engine::general_purpose::STANDARD
                    .decode(pkcs8.expose_secret().trim())
                    .map_err(|_| ConfigError::Invalid {
                        var: "HAVEN_JWT_ED25519_KEY",
                        reason: "not base64 (expected a PKCS#8 DER private key in base64)".into(),
                    })?;
                SigningKey::ed25519_from_pkcs8(&self.jwt_kid, &der).map_err(|e| {
                    ConfigError::Invalid {
                        var: "HAVEN_JWT_ED25519_KEY",
                        reason: e.to_string(),
                    }
                })
            }
        }
    }

    /// Builds the API-key hasher.
    pub fn key_hasher(&self) -> Result<KeyHasher, ConfigError> {
        KeyHasher::new(self.api_key_pepper.expose_secret().as_bytes()).map_err(|e| {
            ConfigError::Invalid {
                var: "HAVEN_API_KEY_PEPPER",
                reason: e.to_string(),
            }
        })
    }

    /// Development settings: the development secret and pepper.
    pub fn development() -> Self {
        Self {
            jwt_key: JwtKeyConfig::Hs256(DEV_JWT_SECRET.into()),
            jwt_kid: DEFAULTS.jwt_kid.into(),
            jwt_issuer: DEFAULTS.jwt_issuer.into(),
            jwt_audience: DEFAULTS.jwt_audience.into(),
            api_key_pepper: DEV_API_KEY_PEPPER.into(),
            key_env: KeyEnv::Test,
            lockout: LockoutPolicy::default(),
            redis_prefix: "haven:".into(),
            trusted_networks: Vec::new(),
            password_hash_concurrency: 0,
            cache_ttl: Duration::from_millis(DEFAULTS.auth_cache_ms),
        }
    }
}

/// The raw settings as read from the configuration layers.
#[derive(Debug, Deserialize)]
pub(super) struct AuthOwn {
    jwt_secret: SecretString,
    jwt_ed25519_key: SecretString,
    jwt_kid: String,
    jwt_issuer: String,
    jwt_audience: String,
    api_key_pepper: SecretString,
    auth_free_failures: u32,
    auth_backoff_base_ms: u64,
    auth_backoff_max_secs: u64,
    auth_ban_after: u32,
    auth_ban_secs: u64,
    auth_failure_window_secs: u64,
    auth_trusted_networks: String,
    auth_hash_concurrency: usize,
    auth_cache_ms: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct AuthDefaults {
    jwt_secret: &'static str,
    jwt_ed25519_key: &'static str,
    jwt_kid: &'static str,
    jwt_issuer: &'static str,
    jwt_audience: &'static str,
    api_key_pepper: &'static str,
    auth_free_failures: u32,
    auth_backoff_base_ms: u64,
    auth_backoff_max_secs: u64,
    auth_ban_after: u32,
    auth_ban_secs: u64,
    auth_failure_window_secs: u64,
    auth_trusted_networks: &'static str,
    auth_hash_concurrency: usize,
    auth_cache_ms: u64,
}

pub(super) const DEFAULTS: AuthDefaults = AuthDefaults {
    jwt_secret: "",
    jwt_ed25519_key: "",
    jwt_kid: "k1",
    jwt_issuer: "haven",
    jwt_audience: "haven-api",
    api_key_pepper: "",
    auth_free_failures: 3,
    auth_backoff_base_ms: 1000,
    auth_backoff_max_secs: 300,
    auth_ban_after: 10,
    auth_ban_secs: 900,
    auth_failure_window_secs: 900,
    auth_trusted_networks: "",
    auth_hash_concurrency: 0,
    auth_cache_ms: 1000,
};

fn required(var: &'static str) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: "required outside HAVEN_ENV=development and test".into(),
    }
}

/// Validates the raw settings: development defaults only in development and tests, and the
/// development values refused in production.
pub(super) fn auth_from(env: Environment, own: AuthOwn) -> Result<AuthConfig, ConfigError> {
    let dev = matches!(env, Environment::Development | Environment::Test);
    let secret = own.jwt_secret.expose_secret().trim().to_owned();
    let ed25519 = own.jwt_ed25519_key.expose_secret().trim().to_owned();
    let jwt_key = match (secret.is_empty(), ed25519.is_empty()) {
        (false, false) => {
            return Err(ConfigError::Invalid {
                var: "HAVEN_JWT_SECRET",
                reason: "set HAVEN_JWT_SECRET or HAVEN_JWT_ED25519_KEY, not both".into(),
            });
        }
        (false, true) => JwtKeyConfig::Hs256(secret.into()),
        (true, false) => JwtKeyConfig::Ed25519(ed25519.into()),
        (true, true) if dev => JwtKeyConfig::Hs256(DEV_JWT_SECRET.into()),
        (true, true) => return Err(required("HAVEN_JWT_SECRET")),
    };
    if env == Environment::Production
        && let JwtKeyConfig::Hs256(secret) = &jwt_key
    {
        refuse_dev_secret("HAVEN_JWT_SECRET", secret.expose_secret() == DEV_JWT_SECRET)?;
    }
    let pepper = own.api_key_pepper.expose_secret().trim().to_owned();
    let api_key_pepper: SecretString = match pepper.is_empty() {
        false => pepper.into(),
        true if dev => DEV_API_KEY_PEPPER.into(),
        true => return Err(required("HAVEN_API_KEY_PEPPER")),
    };
    if env == Environment::Production {
        refuse_dev_secret(
            "HAVEN_API_KEY_PEPPER",
            api_key_pepper.expose_secret() == DEV_API_KEY_PEPPER,
        )?;
    }
    for (var, value) in [
        ("HAVEN_JWT_KID", &own.jwt_kid),
        ("HAVEN_JWT_ISSUER", &own.jwt_issuer),
        ("HAVEN_JWT_AUDIENCE", &own.jwt_audience),
    ] {
        if value.trim().is_empty() {
            return Err(ConfigError::Invalid {
                var,
                reason: "must not be empty".into(),
            });
        }
    }
    let lockout = LockoutPolicy {
        free_failures: own.auth_free_failures,
        base_delay: Duration::from_millis(own.auth_backoff_base_ms),
        max_delay: Duration::from_secs(own.auth_backoff_max_secs),
        ban_after: own.auth_ban_after,
        ban_for: Duration::from_secs(own.auth_ban_secs),
        window: Duration::from_secs(own.auth_failure_window_secs),
    };
    lockout.validate().map_err(|e| {
        let var = match &e {
            haven_resilience::Error::InvalidConfig { field, .. } => match *field {
                "base_delay" => "HAVEN_AUTH_BACKOFF_BASE_MS",
                "max_delay" => "HAVEN_AUTH_BACKOFF_MAX_SECS",
                "ban_for" => "HAVEN_AUTH_BAN_SECS",
                "window" => "HAVEN_AUTH_FAILURE_WINDOW_SECS",
                _ => "HAVEN_AUTH_BAN_AFTER",
            },
            _ => "HAVEN_AUTH_BAN_AFTER",
        };
        ConfigError::Invalid {
            var,
            reason: e.to_string(),
        }
    })?;
    let config = AuthConfig {
        jwt_key,
        jwt_kid: own.jwt_kid,
        jwt_issuer: own.jwt_issuer,
        jwt_audience: own.jwt_audience,
        api_key_pepper,
        key_env: if env == Environment::Production {
            KeyEnv::Live
        } else {
            KeyEnv::Test
        },
        lockout,
        redis_prefix: "haven:".into(),
        trusted_networks: crate::ratelimit::parse_networks(&own.auth_trusted_networks).map_err(
            |reason| ConfigError::Invalid {
                var: "HAVEN_AUTH_TRUSTED_NETWORKS",
                reason,
            },
        )?,
        password_hash_concurrency: own.auth_hash_concurrency,
        cache_ttl: match own.auth_cache_ms {
            ms @ 0..=1000 => Duration::from_millis(ms),
            _ => {
                return Err(ConfigError::Invalid {
                    var: "HAVEN_AUTH_CACHE_MS",
                    reason: "at most 1000: a revocation must take effect on every replica within a second".into(),
                });
            }
        },
    };
    config.signing_key()?;
    config.key_hasher()?;
    Ok(config)
}

/// Settings valid in every environment (non-development secrets), for config tests.
#[cfg(test)]
pub(super) fn dev_own() -> AuthOwn {
    AuthOwn {
        jwt_secret: "test-only-jwt-secret-of-at-least-32-bytes".into(),
        jwt_ed25519_key: "".into(),
        jwt_kid: DEFAULTS.jwt_kid.into(),
        jwt_issuer: DEFAULTS.jwt_issuer.into(),
        jwt_audience: DEFAULTS.jwt_audience.into(),
        api_key_pepper: "test-only-api-key-pepper-of-at-least-32-bytes".into(),
        ..lockout_defaults()
    }
}

/// The raw settings with only the lockout defaults filled in, for config tests.
#[cfg(test)]
pub(super) fn lockout_defaults() -> AuthOwn {
    AuthOwn {
        jwt_secret: "".into(),
        jwt_ed25519_key: "".into(),
        jwt_kid: "".into(),
        jwt_issuer: "".into(),
        jwt_audience: "".into(),
        api_key_pepper: "".into(),
        auth_free_failures: DEFAULTS.auth_free_failures,
        auth_backoff_base_ms: DEFAULTS.auth_backoff_base_ms,
        auth_backoff_max_secs: DEFAULTS.auth_backoff_max_secs,
        auth_ban_after: DEFAULTS.auth_ban_after,
        auth_ban_secs: DEFAULTS.auth_ban_secs,
        auth_failure_window_secs: DEFAULTS.auth_failure_window_secs,
        auth_trusted_networks: String::new(),
        auth_hash_concurrency: 0,
        auth_cache_ms: DEFAULTS.auth_cache_ms,
    }
}

/// The development settings (no secrets set), for config tests.
#[cfg(test)]
pub(super) fn lockout_defaults_with_kid() -> AuthOwn {
    AuthOwn {
        jwt_kid: DEFAULTS.jwt_kid.into(),
        jwt_issuer: DEFAULTS.jwt_issuer.into(),
        jwt_audience: DEFAULTS.jwt_audience.into(),
        ..lockout_defaults()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(secret: &str, pepper: &str) -> AuthOwn {
        AuthOwn {
            jwt_secret: secret.into(),
            jwt_ed25519_key: "".into(),
            jwt_kid: "k1".into(),
            jwt_issuer: "haven".into(),
            jwt_audience: "haven-api".into(),
            api_key_pepper: pepper.into(),
            ..lockout_defaults()
        }
    }

    fn err(env: Environment, own: AuthOwn) -> String {
        auth_from(env, own).unwrap_err().to_string()
    }

    #[test]
    fn development_gets_defaults_production_must_set_secrets() {
        let dev = auth_from(Environment::Development, own("", "")).unwrap();
        assert!(
            matches!(dev.jwt_key, JwtKeyConfig::Hs256(ref s) if s.expose_secret() == DEV_JWT_SECRET)
        );
        assert_eq!(dev.api_key_pepper.expose_secret(), DEV_API_KEY_PEPPER);
        assert!(
            err(Environment::Production, own("", "p".repeat(32).as_str()))
                .contains("HAVEN_JWT_SECRET")
        );
        assert!(
            err(Environment::Production, own(&"s".repeat(32), "")).contains("HAVEN_API_KEY_PEPPER")
        );
    }

    #[test]
    fn production_refuses_the_development_values() {
        let e = err(
            Environment::Production,
            own(DEV_JWT_SECRET, &"p".repeat(32)),
        );
        assert!(e.contains("HAVEN_JWT_SECRET"), "{e}");
        let e = err(
            Environment::Production,
            own(&"s".repeat(32), DEV_API_KEY_PEPPER),
        );
        assert!(e.contains("HAVEN_API_KEY_PEPPER"), "{e}");
        let ok = auth_from(
            Environment::Production,
            own(&"s".repeat(32), &"p".repeat(32)),
        )
        .unwrap();
        assert_eq!(ok.key_env, KeyEnv::Live);
    }

    #[test]
    fn weak_secrets_and_bad_keys_name_their_variable() {
        let e = err(Environment::Development, own("short", ""));
        assert!(e.contains("HAVEN_JWT_SECRET"), "{e}");
        let e = err(Environment::Development, own("", "short"));
        assert!(e.contains("HAVEN_API_KEY_PEPPER"), "{e}");
        let mut o = own("", "");
        o.jwt_ed25519_key = "bm90IGEga2V5".into();
        let e = err(Environment::Development, o);
        assert!(e.contains("HAVEN_JWT_ED25519_KEY"), "{e}");
    }

    #[test]
    fn lockout_settings_are_read_and_bad_ones_name_their_variable() {
        let dev = auth_from(Environment::Development, own("", "")).unwrap();
        assert_eq!(dev.lockout, LockoutPolicy::default());
        let mut o = own("", "");
        o.auth_ban_after = 0;
        let e = err(Environment::Development, o);
        assert!(e.contains("HAVEN_AUTH_BAN_AFTER"), "{e}");
        let mut o = own("", "");
        o.auth_backoff_base_ms = 0;
        let e = err(Environment::Development, o);
        assert!(e.contains("HAVEN_AUTH_BACKOFF_BASE_MS"), "{e}");
        let mut o = own("", "");
        (o.auth_free_failures, o.auth_ban_secs) = (5, 60);
        let custom = auth_from(Environment::Development, o).unwrap().lockout;
        assert_eq!(
            (custom.free_failures, custom.ban_for),
            (5, Duration::from_secs(60))
        );
    }
}

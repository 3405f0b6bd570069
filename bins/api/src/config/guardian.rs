//! Guardian vault settings: invitation and request lifetimes, guardian tokens and the
//! WebSocket's limits.

use std::time::Duration;

use haven_service::config::ConfigError;
use serde::{Deserialize, Serialize};

/// Vaults, guardian tokens and the guardian WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianConfig {
    /// `HAVEN_VAULT_INVITATION_TTL_SECS` (86400): how long an invitation code works.
    pub invitation_ttl: Duration,
    /// `HAVEN_VAULT_REQUEST_TTL_SECS` (86400): how long a vault request stays open.
    pub request_ttl: Duration,
    /// `HAVEN_GUARDIAN_ACCESS_TTL_SECS` (900): lifetime of a guardian access token; the
    /// socket it opened closes when it expires unless a later frame carries a newer one.
    pub access_ttl: Duration,
    /// `HAVEN_GUARDIAN_MAX_CONNECTIONS` (3): concurrent sockets per guardian, across
    /// replicas; the next one is refused with 429.
    pub max_connections: u32,
    /// `HAVEN_GUARDIAN_MAX_FRAME_BYTES` (16384): the largest frame read; a larger one
    /// closes the socket (1009, message too big).
    pub max_frame_bytes: usize,
    /// `HAVEN_GUARDIAN_MESSAGES_PER_SEC` (10): frames per second per socket (bursts of
    /// twice that); beyond it each frame gets an error frame and is not processed.
    pub messages_per_sec: u32,
    /// `HAVEN_GUARDIAN_HEARTBEAT_SECS` (5): how often the server pings and re-checks the
    /// socket's token (expiry, revocation, the guardian's membership).
    pub heartbeat: Duration,
    /// `HAVEN_GUARDIAN_IDLE_TIMEOUT_SECS` (30): a socket that sends nothing (not even a
    /// pong) this long is closed.
    pub idle_timeout: Duration,
    /// `HAVEN_GUARDIAN_ROUND_TIMEOUT_SECS` (30): how long a FROST key generation or signing
    /// attempt waits for its participants.
    pub round_timeout: Duration,
    /// `HAVEN_GUARDIAN_SIGNING_ATTEMPTS` (3): signing attempts per job; a timed-out attempt
    /// is retried without its silent signers while the cap and the threshold allow.
    pub signing_attempts: u32,
}

impl Default for GuardianConfig {
    /// [`DEFAULTS`], validated (a test holds the two equal).
    fn default() -> Self {
        Self {
            invitation_ttl: Duration::from_secs(DEFAULTS.vault_invitation_ttl_secs),
            request_ttl: Duration::from_secs(DEFAULTS.vault_request_ttl_secs),
            access_ttl: Duration::from_secs(DEFAULTS.guardian_access_ttl_secs),
            max_connections: DEFAULTS.guardian_max_connections,
            max_frame_bytes: DEFAULTS.guardian_max_frame_bytes,
            messages_per_sec: DEFAULTS.guardian_messages_per_sec,
            heartbeat: Duration::from_secs(DEFAULTS.guardian_heartbeat_secs),
            idle_timeout: Duration::from_secs(DEFAULTS.guardian_idle_timeout_secs),
            round_timeout: Duration::from_secs(DEFAULTS.guardian_round_timeout_secs),
            signing_attempts: DEFAULTS.guardian_signing_attempts,
        }
    }
}

/// The environment's view, before validation.
#[derive(Debug, Deserialize)]
pub(crate) struct GuardianOwn {
    vault_invitation_ttl_secs: u64,
    vault_request_ttl_secs: u64,
    guardian_access_ttl_secs: u64,
    guardian_max_connections: u32,
    guardian_max_frame_bytes: usize,
    guardian_messages_per_sec: u32,
    guardian_heartbeat_secs: u64,
    guardian_idle_timeout_secs: u64,
    guardian_round_timeout_secs: u64,
    guardian_signing_attempts: u32,
}

/// The guardian settings' defaults, flattened into the api's `DEFAULTS`.
#[derive(Debug, Serialize)]
pub(crate) struct GuardianDefaults {
    vault_invitation_ttl_secs: u64,
    vault_request_ttl_secs: u64,
    guardian_access_ttl_secs: u64,
    guardian_max_connections: u32,
    guardian_max_frame_bytes: usize,
    guardian_messages_per_sec: u32,
    guardian_heartbeat_secs: u64,
    guardian_idle_timeout_secs: u64,
    guardian_round_timeout_secs: u64,
    guardian_signing_attempts: u32,
}

/// Every default of the guardian settings.
pub(crate) const DEFAULTS: GuardianDefaults = GuardianDefaults {
    vault_invitation_ttl_secs: 86_400,
    vault_request_ttl_secs: 86_400,
    guardian_access_ttl_secs: 900,
    guardian_max_connections: 3,
    guardian_max_frame_bytes: haven_vault::protocol::MAX_FRAME_BYTES,
    guardian_messages_per_sec: 10,
    guardian_heartbeat_secs: 5,
    guardian_idle_timeout_secs: 30,
    guardian_round_timeout_secs: 30,
    guardian_signing_attempts: 3,
};

impl Default for GuardianOwn {
    fn default() -> Self {
        Self {
            vault_invitation_ttl_secs: DEFAULTS.vault_invitation_ttl_secs,
            vault_request_ttl_secs: DEFAULTS.vault_request_ttl_secs,
            guardian_access_ttl_secs: DEFAULTS.guardian_access_ttl_secs,
            guardian_max_connections: DEFAULTS.guardian_max_connections,
            guardian_max_frame_bytes: DEFAULTS.guardian_max_frame_bytes,
            guardian_messages_per_sec: DEFAULTS.guardian_messages_per_sec,
            guardian_heartbeat_secs: DEFAULTS.guardian_heartbeat_secs,
            guardian_idle_timeout_secs: DEFAULTS.guardian_idle_timeout_secs,
            guardian_round_timeout_secs: DEFAULTS.guardian_round_timeout_secs,
            guardian_signing_attempts: DEFAULTS.guardian_signing_attempts,
        }
    }
}

fn at_least(var: &'static str, value: u64, min: u64) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::Invalid {
            var,
            reason: format!("must be at least {min}"),
        });
    }
    Ok(())
}

pub(crate) fn guardian_from(own: GuardianOwn) -> Result<GuardianConfig, ConfigError> {
    at_least(
        "HAVEN_VAULT_INVITATION_TTL_SECS",
        own.vault_invitation_ttl_secs,
        60,
    )?;
    at_least(
        "HAVEN_VAULT_REQUEST_TTL_SECS",
        own.vault_request_ttl_secs,
        60,
    )?;
    at_least(
        "HAVEN_GUARDIAN_ACCESS_TTL_SECS",
        own.guardian_access_ttl_secs,
        1,
    )?;
    at_least(
        "HAVEN_GUARDIAN_MAX_CONNECTIONS",
        own.guardian_max_connections.into(),
        1,
    )?;
    at_least(
        "HAVEN_GUARDIAN_MAX_FRAME_BYTES",
        own.guardian_max_frame_bytes as u64,
        1024,
    )?;
    at_least(
        "HAVEN_GUARDIAN_MESSAGES_PER_SEC",
        own.guardian_messages_per_sec.into(),
        1,
    )?;
    at_least(
        "HAVEN_GUARDIAN_HEARTBEAT_SECS",
        own.guardian_heartbeat_secs,
        1,
    )?;
    at_least(
        "HAVEN_GUARDIAN_ROUND_TIMEOUT_SECS",
        own.guardian_round_timeout_secs,
        1,
    )?;
    at_least(
        "HAVEN_GUARDIAN_SIGNING_ATTEMPTS",
        own.guardian_signing_attempts.into(),
        1,
    )?;
    if own.guardian_idle_timeout_secs <= own.guardian_heartbeat_secs {
        return Err(ConfigError::Invalid {
            var: "HAVEN_GUARDIAN_IDLE_TIMEOUT_SECS",
            reason: "must be longer than HAVEN_GUARDIAN_HEARTBEAT_SECS".into(),
        });
    }
    Ok(GuardianConfig {
        invitation_ttl: Duration::from_secs(own.vault_invitation_ttl_secs),
        request_ttl: Duration::from_secs(own.vault_request_ttl_secs),
        access_ttl: Duration::from_secs(own.guardian_access_ttl_secs),
        max_connections: own.guardian_max_connections,
        max_frame_bytes: own.guardian_max_frame_bytes,
        messages_per_sec: own.guardian_messages_per_sec,
        heartbeat: Duration::from_secs(own.guardian_heartbeat_secs),
        idle_timeout: Duration::from_secs(own.guardian_idle_timeout_secs),
        round_timeout: Duration::from_secs(own.guardian_round_timeout_secs),
        signing_attempts: own.guardian_signing_attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_refusals() {
        assert_eq!(
            guardian_from(GuardianOwn::default()).unwrap(),
            GuardianConfig::default()
        );
        let refused = |change: fn(&mut GuardianOwn)| {
            let mut o = GuardianOwn::default();
            change(&mut o);
            guardian_from(o).unwrap_err().to_string()
        };
        assert!(
            refused(|o| o.guardian_max_connections = 0).contains("HAVEN_GUARDIAN_MAX_CONNECTIONS")
        );
        assert!(
            refused(|o| o.guardian_idle_timeout_secs = 5)
                .contains("HAVEN_GUARDIAN_IDLE_TIMEOUT_SECS")
        );
        assert!(
            refused(|o| o.guardian_max_frame_bytes = 10).contains("HAVEN_GUARDIAN_MAX_FRAME_BYTES")
        );
    }
}

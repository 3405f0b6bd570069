//! The job runtime's settings: schedules, attempts, timeouts, the shutdown bound and
//! retention.

use std::str::FromStr;
use std::time::Duration;

use haven_service::config::ConfigError;
use serde::{Deserialize, Serialize};

/// A validated cron expression (seconds first: `sec min hour day-of-month month
/// day-of-week`, e.g. `0 0 2 * * *` for 02:00 every day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    text: String,
    schedule: cron::Schedule,
}

impl CronExpr {
    /// Parses `raw`; `var` names the setting in the error.
    pub fn parse(var: &'static str, raw: &str) -> Result<Self, ConfigError> {
        let text = raw.trim().to_owned();
        let schedule = cron::Schedule::from_str(&text).map_err(|e| ConfigError::Invalid {
            var,
            reason: format!(
                "{text:?} is not a cron expression `sec min hour day month weekday` ({e})"
            ),
        })?;
        Ok(Self { text, schedule })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed schedule.
    pub fn schedule(&self) -> &cron::Schedule {
        &self.schedule
    }
}

/// The schedules and the runtime's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    /// `HAVEN_JOBS_TIMEZONE` (`UTC`): the time zone the schedules are read in (an IANA
    /// name such as `America/Toronto`).
    pub timezone: chrono_tz::Tz,
    /// `HAVEN_SCHEDULE_CHAIN_MONITOR` (`0 * * * * *`, every minute).
    pub chain_monitor: CronExpr,
    /// `HAVEN_SCHEDULE_AURORA_SYNC` (`0 0 2 * * *`, daily 02:00).
    pub aurora_sync: CronExpr,
    /// `HAVEN_SCHEDULE_TRIBE_SYNC` (`0 0 4 * * *`, daily 04:00).
    pub tribe_sync: CronExpr,
    /// `HAVEN_SCHEDULE_STAKING` (`0 0 3 * * Mon`, Mondays 03:00): the past week's staking
    /// rewards.
    pub staking: CronExpr,
    /// `HAVEN_SCHEDULE_RETENTION` (`0 30 3 * * *`, daily 03:30).
    pub retention: CronExpr,
    /// `HAVEN_JOB_ATTEMPTS` (3): attempts of a run before it is dead-lettered.
    pub attempts: u32,
    /// `HAVEN_JOB_BACKOFF_MS` (1000): the wait after the first failed attempt, doubled
    /// after each further one.
    pub backoff: Duration,
    /// `HAVEN_JOB_TIMEOUT_SECS` (600): an attempt running longer fails.
    pub timeout: Duration,
    /// `HAVEN_SHUTDOWN_GRACE_SECS` (20): on SIGTERM, running work gets this long to
    /// finish; what is still running then is given back for another run.
    pub shutdown_grace: Duration,
    /// `HAVEN_RETENTION_*_DAYS`: how long rows are kept.
    pub retention_policy: haven_db::RetentionPolicy,
}

/// The environment's view (flattened into the worker's settings).
#[derive(Debug, Deserialize)]
pub(crate) struct JobsOwn {
    jobs_timezone: String,
    schedule_chain_monitor: String,
    schedule_aurora_sync: String,
    schedule_tribe_sync: String,
    schedule_staking: String,
    schedule_retention: String,
    job_attempts: u32,
    job_backoff_ms: u64,
    job_timeout_secs: u64,
    shutdown_grace_secs: u64,
    retention_alerts_days: u64,
    retention_error_logs_days: u64,
    retention_webhooks_days: u64,
    retention_job_runs_days: u64,
}

/// Every default of [`JobsConfig`].
#[derive(Debug, Serialize)]
pub(crate) struct JobsDefaults {
    jobs_timezone: &'static str,
    schedule_chain_monitor: &'static str,
    schedule_aurora_sync: &'static str,
    schedule_tribe_sync: &'static str,
    schedule_staking: &'static str,
    schedule_retention: &'static str,
    job_attempts: u32,
    job_backoff_ms: u64,
    job_timeout_secs: u64,
    shutdown_grace_secs: u64,
    retention_alerts_days: u64,
    retention_error_logs_days: u64,
    retention_webhooks_days: u64,
    retention_job_runs_days: u64,
}

pub(crate) const DEFAULTS: JobsDefaults = JobsDefaults {
    jobs_timezone: "UTC",
    schedule_chain_monitor: "0 * * * * *",
    schedule_aurora_sync: "0 0 2 * * *",
    schedule_tribe_sync: "0 0 4 * * *",
    schedule_staking: "0 0 3 * * Mon",
    schedule_retention: "0 30 3 * * *",
    job_attempts: 3,
    job_backoff_ms: 1000,
    job_timeout_secs: 600,
    shutdown_grace_secs: 20,
    retention_alerts_days: 90,
    retention_error_logs_days: 90,
    retention_webhooks_days: 30,
    retention_job_runs_days: 30,
};

const DAY: u64 = 24 * 60 * 60;

impl JobsOwn {
    fn defaults() -> Self {
        Self {
            jobs_timezone: DEFAULTS.jobs_timezone.into(),
            schedule_chain_monitor: DEFAULTS.schedule_chain_monitor.into(),
            schedule_aurora_sync: DEFAULTS.schedule_aurora_sync.into(),
            schedule_tribe_sync: DEFAULTS.schedule_tribe_sync.into(),
            schedule_staking: DEFAULTS.schedule_staking.into(),
            schedule_retention: DEFAULTS.schedule_retention.into(),
            job_attempts: DEFAULTS.job_attempts,
            job_backoff_ms: DEFAULTS.job_backoff_ms,
            job_timeout_secs: DEFAULTS.job_timeout_secs,
            shutdown_grace_secs: DEFAULTS.shutdown_grace_secs,
            retention_alerts_days: DEFAULTS.retention_alerts_days,
            retention_error_logs_days: DEFAULTS.retention_error_logs_days,
            retention_webhooks_days: DEFAULTS.retention_webhooks_days,
            retention_job_runs_days: DEFAULTS.retention_job_runs_days,
        }
    }
}

impl JobsConfig {
    /// The defaults (what the README lists).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::from_own(JobsOwn::defaults())
    }

    /// The defaults, for tests (the shipped defaults always parse).
    pub fn test_defaults() -> Self {
        match Self::defaults() {
            Ok(config) => config,
            Err(e) => panic!("the shipped job defaults are invalid: {e}"),
        }
    }

    pub(crate) fn from_own(own: JobsOwn) -> Result<Self, ConfigError> {
        let timezone = own
            .jobs_timezone
            .trim()
            .parse::<chrono_tz::Tz>()
            .map_err(|_| ConfigError::Invalid {
                var: "HAVEN_JOBS_TIMEZONE",
                reason: format!(
                    "{:?} is not an IANA time zone such as UTC",
                    own.jobs_timezone
                ),
            })?;
        let at_least_one = |var: &'static str, value: u64| {
            if value == 0 {
                Err(ConfigError::Invalid {
                    var,
                    reason: "must be at least 1".into(),
                })
            } else {
                Ok(value)
            }
        };
        let days = |var, value| at_least_one(var, value).map(|d| Duration::from_secs(d * DAY));
        Ok(Self {
            timezone,
            chain_monitor: CronExpr::parse(
                "HAVEN_SCHEDULE_CHAIN_MONITOR",
                &own.schedule_chain_monitor,
            )?,
            aurora_sync: CronExpr::parse("HAVEN_SCHEDULE_AURORA_SYNC", &own.schedule_aurora_sync)?,
            tribe_sync: CronExpr::parse("HAVEN_SCHEDULE_TRIBE_SYNC", &own.schedule_tribe_sync)?,
            staking: CronExpr::parse("HAVEN_SCHEDULE_STAKING", &own.schedule_staking)?,
            retention: CronExpr::parse("HAVEN_SCHEDULE_RETENTION", &own.schedule_retention)?,
            attempts: u32::try_from(at_least_one(
                "HAVEN_JOB_ATTEMPTS",
                u64::from(own.job_attempts),
            )?)
            .unwrap_or(1),
            backoff: Duration::from_millis(own.job_backoff_ms),
            timeout: Duration::from_secs(at_least_one(
                "HAVEN_JOB_TIMEOUT_SECS",
                own.job_timeout_secs,
            )?),
            shutdown_grace: Duration::from_secs(own.shutdown_grace_secs),
            retention_policy: haven_db::RetentionPolicy {
                alerts: days("HAVEN_RETENTION_ALERTS_DAYS", own.retention_alerts_days)?,
                error_logs: days(
                    "HAVEN_RETENTION_ERROR_LOGS_DAYS",
                    own.retention_error_logs_days,
                )?,
                webhooks: days("HAVEN_RETENTION_WEBHOOKS_DAYS", own.retention_webhooks_days)?,
                job_runs: days("HAVEN_RETENTION_JOB_RUNS_DAYS", own.retention_job_runs_days)?,
                ..haven_db::RetentionPolicy::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_bad_values_are_named() {
        let config = JobsConfig::defaults().unwrap();
        assert_eq!(config.timezone, chrono_tz::UTC);
        assert_eq!(config.attempts, 3);
        assert_eq!(config.chain_monitor.as_str(), "0 * * * * *");
        assert_eq!(
            config.retention_policy.alerts,
            Duration::from_secs(90 * DAY)
        );
        let refused = |change: fn(&mut JobsOwn)| {
            let mut own = JobsOwn::defaults();
            change(&mut own);
            JobsConfig::from_own(own).unwrap_err().to_string()
        };
        assert!(
            refused(|o| o.jobs_timezone = "Mars/Olympus".into()).contains("HAVEN_JOBS_TIMEZONE")
        );
        assert!(
            refused(|o| o.schedule_staking = "every monday".into())
                .contains("HAVEN_SCHEDULE_STAKING")
        );
        assert!(refused(|o| o.job_attempts = 0).contains("HAVEN_JOB_ATTEMPTS"));
        assert!(refused(|o| o.retention_alerts_days = 0).contains("HAVEN_RETENTION_ALERTS_DAYS"));
    }

    #[test]
    fn a_timezone_moves_the_schedule() {
        let mut own = JobsOwn::defaults();
        own.jobs_timezone = "America/Toronto".into();
        let config = JobsConfig::from_own(own).unwrap();
        let after = chrono::DateTime::parse_from_rfc3339("2026-12-07T00:00:00Z")
            .unwrap()
            .with_timezone(&config.timezone);
        let next = config.aurora_sync.schedule().after(&after).next().unwrap();
        // 02:00 in Toronto (UTC-5 in December) is 07:00 UTC
        assert_eq!(
            next.with_timezone(&chrono::Utc).to_rfc3339(),
            "2026-12-07T07:00:00+00:00"
        );
    }
}

//! `haven-admin rewards sync aurora|tribe [--since …]`: asks a partner what happened
//! recently and feeds every item through the same path as a webhook
//! (`haven_db::rewards::Intake`), so a sync plus the webhook — or two syncs over one window —
//! reward once. Prints one JSON line with the counts; exits 1 when an item could not be
//! taken in (each is named on standard error).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use clap::{Args, ValueEnum};
use haven_db::rewards::{Intake, feed};
use haven_partners::{AuroraClient, HttpAurora, HttpTribe, TribeClient};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::config::SyncConfig;
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// Which partner to sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Partner {
    /// Aurora PMS bookings (`HAVEN_AURORA_URL`, `HAVEN_AURORA_API_KEY`).
    Aurora,
    /// Tribe attendances (`HAVEN_TRIBE_URL`, `HAVEN_TRIBE_API_KEY`).
    Tribe,
}

/// `rewards sync` options.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The partner.
    pub partner: Partner,
    /// The start of the window: an RFC 3339 time, or an age like `24h`, `90m`, `7d`
    /// (default `24h`).
    #[arg(long, default_value = "24h")]
    pub since: String,
}

/// Parses `--since`: RFC 3339, or `<n>d|h|m` before `now`.
pub fn parse_since(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    let (number, unit) = raw.split_at(raw.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("--since {raw:?} is neither RFC 3339 nor <n>d|h|m"))?;
    let age = match unit {
        "d" => Duration::days(n),
        "h" => Duration::hours(n),
        "m" => Duration::minutes(n),
        _ => return Err(format!("--since {raw:?}: the unit must be d, h or m")),
    };
    Ok(now - age)
}

/// Runs one sync.
pub async fn run(args: SyncArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let since = match parse_since(&args.since, now) {
        Ok(since) => since,
        Err(message) => {
            eprintln!("rewards sync: {message}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let config = SyncConfig::load()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (source, items) = match args.partner {
        Partner::Aurora => {
            let partner = config
                .aurora
                .clone()
                .context("HAVEN_AURORA_URL is not set")?;
            let client = HttpAurora::new(partner).context("HAVEN_AURORA_URL")?;
            (
                "aurora",
                client
                    .recent(since)
                    .await
                    .context("listing Aurora bookings")?,
            )
        }
        Partner::Tribe => {
            let partner = config.tribe.clone().context("HAVEN_TRIBE_URL is not set")?;
            let client = HttpTribe::new(partner).context("HAVEN_TRIBE_URL")?;
            (
                "tribe",
                client
                    .recent(since)
                    .await
                    .context("listing Tribe attendances")?,
            )
        }
    };
    let intake = intake(&config).await?;
    let report = feed(&intake, &items).await;
    for failure in &report.failures {
        eprintln!("rewards sync: {failure}");
    }
    writeln!(
        out,
        "{}",
        json!({
            "source": source,
            "since": since.to_rfc3339(),
            "items": items.len(),
            "new_events": report.new_events,
            "rewarded": report.rewarded,
            "already_rewarded": report.already_rewarded,
            "duplicates": report.duplicates,
            "failed": report.failures.len(),
        })
    )?;
    Ok(ExitCode::from(if report.failures.is_empty() {
        EXIT_OK
    } else {
        EXIT_INVALID
    }))
}

async fn intake(config: &SyncConfig) -> anyhow::Result<Intake> {
    let db = haven_db::connect(config.common.database_url.expose_secret(), 4)
        .await
        .context("connecting to DATABASE_URL")?;
    let redis = deadpool_redis::Config::from_url(config.common.redis_url.expose_secret())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .context("REDIS_URL")?;
    let engine = haven_fraud::Engine::new(
        Arc::new(haven_fraud::Rules::from_toml(haven_fraud::DEFAULT_RULES)?),
        Arc::new(haven_fraud::RedisWindowStore::new(redis)),
    )
    .with_key_prefix(format!("{}fraud:", config.redis_prefix));
    let rules = match &config.rewards_rules {
        Some(path) => haven_rewards::Rules::from_path(path)
            .with_context(|| format!("HAVEN_REWARDS_RULES={}", path.display()))?,
        None => haven_rewards::Rules::shipped(),
    };
    Ok(Intake::new(
        haven_db::PgRewards::new(db),
        Arc::new(engine),
        Arc::new(rules),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_or_an_age() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("24h", now).unwrap().to_rfc3339(),
            "2026-12-06T02:00:00+00:00"
        );
        assert_eq!(parse_since("7d", now).unwrap(), now - Duration::days(7));
        assert_eq!(
            parse_since("2026-12-01T00:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert!(parse_since("soon", now).is_err());
        assert!(parse_since("5y", now).is_err());
    }
}

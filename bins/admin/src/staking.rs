//! `haven-admin staking accrue --week YYYY-Www`: records the staking rewards of one ISO week
//! for every stake active in it — each once per (stake, week), whatever the number of runs —
//! for the worker to mint. The worker schedules it weekly; this runs it by hand.
//!
//! Prints one JSON line `{"week", "stakes", "paid", "already_paid", "nothing_due",
//! "total_hnv", "rules_version"}`; exits 2 for a week that is not over yet or not a week.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use haven_rewards::IsoWeek;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::{EXIT_OK, EXIT_USAGE};

/// `staking` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StakingCommand {
    /// Record one week's staking rewards (10 % a year, actual/365, truncated).
    Accrue(AccrueArgs),
}

/// `staking accrue` options.
#[derive(Debug, Args)]
pub struct AccrueArgs {
    /// The ISO week, `2026-W49` (default: the last week that is over).
    #[arg(long)]
    pub week: Option<String>,
}

/// Runs a `staking` subcommand.
pub async fn run(cmd: StakingCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match cmd {
        StakingCommand::Accrue(args) => accrue(args, out).await,
    }
}

async fn accrue(args: AccrueArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let week = match args.week.as_deref() {
        Some(text) => match text.parse::<IsoWeek>() {
            Ok(week) => week,
            Err(e) => {
                writeln!(out, "{}", json!({"error": e.to_string()}))?;
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        },
        None => IsoWeek::containing(now).previous(),
    };
    let config = crate::config::SyncConfig::load()?;
    let rules = match &config.rewards_rules {
        Some(path) => haven_rewards::Rules::from_path(path)
            .with_context(|| format!("HAVEN_REWARDS_RULES={}", path.display()))?,
        None => haven_rewards::Rules::shipped(),
    };
    let db = haven_db::connect(config.common.database_url.expose_secret(), 2)
        .await
        .context("connecting to DATABASE_URL")?;
    let report = haven_db::PgRewards::new(db)
        .accrue_staking(rules.staking(), rules.version(), week, now)
        .await;
    match report {
        Ok(report) => {
            writeln!(
                out,
                "{}",
                json!({
                    "week": report.week,
                    "stakes": report.stakes,
                    "paid": report.paid,
                    "already_paid": report.already_paid,
                    "nothing_due": report.nothing_due,
                    "total_hnv": report.total.to_string(),
                    "rules_version": rules.version(),
                })
            )?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(haven_db::Error::Invalid { reason }) => {
            writeln!(out, "{}", json!({"error": reason}))?;
            Ok(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => Err(e).context("recording the staking rewards"),
    }
}

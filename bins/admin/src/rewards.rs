//! `haven-admin rewards quote`: price a partner event's payload exactly as the rewards core
//! prices it for the API, without a database.
//!
//! A valid payload prints the decision as one JSON line (`Decision::quote_json`) and exits
//! 0; an invalid one prints the body of the API's 422 (`INVALID_PAYLOAD`, the field in
//! `details.field`) as one JSON line and exits 1; an unknown event or an unusable rules
//! file exits 2.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use haven_core::{ErrorBody, Problem, error_chain};
use haven_rewards::{EventName, Rules};

use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// `rewards` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RewardsCommand {
    /// Price a payload: the decision as one JSON line (exit 0), or the 422 error body (exit 1).
    Quote(QuoteArgs),
    /// Ask a partner for its recent events and take in what webhooks missed (rewards once).
    Sync(crate::sync::SyncArgs),
}

/// `rewards quote` options.
#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// The event, `<source>/<event>`: aurora/booking-created, aurora/booking-completed,
    /// aurora/booking-cancelled, aurora/review-submitted, tribe/event-attendance,
    /// tribe/contribution, tribe/staking-started, tribe/coaching-milestone,
    /// tribe/referral-success.
    #[arg(long)]
    pub event: String,
    /// The file holding the exact payload bytes (`-` for standard input).
    #[arg(long)]
    pub payload_file: PathBuf,
    /// The rules file to price with (default: `HAVEN_REWARDS_RULES`, else the shipped rules).
    #[arg(long)]
    pub rules: Option<PathBuf>,
}

/// Runs a `rewards` subcommand.
pub async fn run(
    cmd: RewardsCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match cmd {
        RewardsCommand::Quote(args) => quote(args, input, out),
        RewardsCommand::Sync(args) => crate::sync::run(args, out).await,
    }
}

fn quote(
    args: QuoteArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let Ok(event) = args.event.parse::<EventName>() else {
        let known: Vec<String> = EventName::ALL.iter().map(|e| e.path()).collect();
        return usage(&format!(
            "unknown event `{}`; one of {}",
            args.event,
            known.join(", ")
        ));
    };
    let rules = match args.rules.or_else(crate::config::rewards_rules) {
        Some(path) => match Rules::from_path(&path) {
            Ok(rules) => rules,
            Err(e) => return usage(&error_chain(&e)),
        },
        None => Rules::shipped(),
    };
    let payload = crate::read_payload(&args.payload_file, input)?;
    match haven_rewards::quote(&rules, event, &payload) {
        Ok(decision) => {
            writeln!(out, "{}", decision.quote_json())?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(err) => {
            let problem =
                Problem::new(err.code(), err.to_string()).with_detail("field", err.field.clone());
            let body = ErrorBody::from_problem(&problem, None);
            writeln!(out, "{}", serde_json::to_string(&body)?)?;
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

fn usage(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("rewards quote: {message}");
    Ok(ExitCode::from(EXIT_USAGE))
}

//! `haven-admin jobs list | dead | retry <id>`: the worker's job runs, straight from
//! `job_runs`. Listings print a table, or one JSON line per run with `--json`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use haven_db::{JobRun, JobRunFilter, JobRunState, PgJobRuns};
use secrecy::ExposeSecret;

use crate::{EXIT_INVALID, EXIT_OK};

/// `jobs` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Recent runs of the worker's jobs, newest first.
    List(ListArgs),
    /// Dead runs (every attempt failed), newest first.
    Dead(OutputArgs),
    /// Sends a dead run back to the queue: the next worker to look runs it again.
    Retry {
        /// The run's id (from `jobs dead`).
        id: i64,
    },
}

/// `jobs list` options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this job's runs.
    #[arg(long)]
    pub job: Option<String>,
    /// Only runs in this state: running, succeeded, dead, queued.
    #[arg(long)]
    pub state: Option<String>,
    /// At most this many runs.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// One JSON line per run instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Output options.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// One JSON line per run instead of a table.
    #[arg(long)]
    pub json: bool,
    /// At most this many runs.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

/// Runs a `jobs` command.
pub async fn run(cmd: JobsCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let config = crate::config::AdminConfig::load()?;
    let pool = haven_db::connect(config.common.database_url.expose_secret(), 2)
        .await
        .context("connecting to DATABASE_URL")?;
    let runs = PgJobRuns::new(pool);
    match cmd {
        JobsCommand::List(args) => {
            let state = match args.state.as_deref().map(|s| (s, JobRunState::parse(s))) {
                None => None,
                Some((_, Some(state))) => Some(state),
                Some((text, None)) => {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"error": format!("unknown state {text:?}: running, succeeded, dead or queued")})
                    )?;
                    return Ok(ExitCode::from(crate::EXIT_USAGE));
                }
            };
            let filter = JobRunFilter {
                job: args.job,
                state,
                limit: Some(args.limit),
            };
            print(&runs.list(&filter).await?, args.json, out)?;
            Ok(ExitCode::from(EXIT_OK))
        }
        JobsCommand::Dead(args) => {
            let filter = JobRunFilter {
                job: None,
                state: Some(JobRunState::Dead),
                limit: Some(args.limit),
            };
            print(&runs.list(&filter).await?, args.json, out)?;
            Ok(ExitCode::from(EXIT_OK))
        }
        JobsCommand::Retry { id } => match runs.retry(id).await {
            Ok(run) => {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"retried": run.id, "job": run.job, "state": run.state})
                )?;
                Ok(ExitCode::from(EXIT_OK))
            }
            Err(haven_db::Error::Invalid { reason }) => {
                writeln!(out, "{}", serde_json::json!({"error": reason}))?;
                Ok(ExitCode::from(EXIT_INVALID))
            }
            Err(e) => Err(e.into()),
        },
    }
}

fn print(runs: &[JobRun], json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    if json {
        for run in runs {
            writeln!(out, "{}", serde_json::to_string(run)?)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:>8}  {:<18}  {:<25}  {:<9}  {:>8}  LAST ERROR",
        "ID", "JOB", "OCCURRENCE", "STATE", "ATTEMPTS"
    )?;
    for run in runs {
        let error: String = run
            .last_error
            .as_deref()
            .unwrap_or("-")
            .chars()
            .take(60)
            .collect();
        writeln!(
            out,
            "{:>8}  {:<18}  {:<25}  {:<9}  {:>8}  {error}",
            run.id,
            run.job,
            run.occurrence
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            run.state.as_str(),
            run.attempts,
        )?;
    }
    if runs.is_empty() {
        writeln!(out, "(no runs)")?;
    }
    Ok(())
}

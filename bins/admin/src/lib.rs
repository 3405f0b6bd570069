//! The haven operator CLI.
//!
//! Every command writes machine-readable output to the given writer (one JSON line per
//! result where it makes sense) and returns the process exit code, so tests drive it in
//! process. Commands that need no database (address validation, signing helpers) do not
//! load the database configuration.

pub mod alerts;
pub mod audit_logs;
pub mod breakers;
pub mod chain;
pub mod config;
pub mod config_check;
pub mod custody;
pub mod jobs;
pub mod nonces;
pub mod output;
pub mod rewards;
pub mod staking;
pub mod sync;
pub mod users;
pub mod wallets;
pub mod webhook_endpoints;
pub mod webhooks;

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for "checked, and the answer is no" (invalid address, broken chain).
pub const EXIT_INVALID: u8 = 1;
/// Exit code for usage errors (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for failures to do the work (database down, …).
pub const EXIT_FAILURE: u8 = 3;

/// haven operator commands.
#[derive(Debug, Parser)]
#[command(name = "haven-admin", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations to DATABASE_URL (or show their status).
    Migrate(MigrateArgs),
    /// Verify the audit log's hash chain or print its head.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Address tools.
    #[command(subcommand)]
    Address(AddressCommand),
    /// HAVEN token deployment.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// Custody key management: master-key generation, status, rewrap.
    #[command(subcommand)]
    Custody(custody::CustodyCommand),
    /// Sign or verify a webhook signature header (no database needed); manage outbound
    /// endpoints (`endpoints …`) and their dead letters (`dead …`).
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Users: create (the first admin), list, set-role, disable; every change audited.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Rewards: price a partner event's payload with the rules (no database needed), or sync
    /// a partner's recent events into the ledger.
    #[command(subcommand)]
    Rewards(rewards::RewardsCommand),
    /// Staking: record a week's staking rewards for the worker to mint.
    #[command(subcommand)]
    Staking(staking::StakingCommand),
    /// The worker's job runs: list, dead letters, retry.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// EVM nonce accounts: show one, reset one to the chain's pending nonce.
    #[command(subcommand)]
    Nonces(nonces::NoncesCommand),
    /// The running api's circuit breakers: list, reset, force open, disable.
    #[command(subcommand)]
    Breakers(breakers::BreakersCommand),
    /// Custody wallets (the same commands as `custody wallet`): create, list, show,
    /// rotate, revoke.
    #[command(subcommand)]
    Wallets(custody::WalletCommand),
    /// Check the configuration of every binary in this environment.
    #[command(subcommand)]
    Config(config_check::ConfigCommand),
    /// Fraud and chain alerts: list (with filters and text search), show, transition.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
}

/// `migrate` options.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only list applied migrations.
    #[arg(long)]
    pub status: bool,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole chain; exit 1 naming the first broken row.
    Verify {
        /// `<seq>:<hash>` printed earlier by `audit head` and kept outside the database:
        /// also fail when that record, or one before it, was rewritten (with the chain
        /// recomputed after it) or the chain no longer reaches it. Repeatable.
        #[arg(long = "anchor", value_name = "SEQ:HASH")]
        anchors: Vec<haven_core::audit::Anchor>,
        /// Output format.
        #[command(flatten)]
        format: output::Format,
    },
    /// Print the head as `<seq>:<hash>`, an anchor to keep outside the database.
    Head {
        /// Output format.
        #[command(flatten)]
        format: output::Format,
    },
    /// The custody wallets' records (wallet.*), newest first, as a table or --json lines.
    WalletLogs(audit_logs::WalletLogsArgs),
}

/// `address` subcommands.
#[derive(Debug, Subcommand)]
pub enum AddressCommand {
    /// Validate one address (exit 0 valid, 1 invalid, 2 usage), or `--stdin` lines of `chain<TAB>input`.
    Validate(ValidateArgs),
}

/// `address validate` options.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Chain name or alias: evm|eth|base|…, solana|sol, near, ton, bitcoin|btc, cosmos[:hrp], tron|trx.
    #[arg(long, required_unless_present = "stdin")]
    pub chain: Option<String>,
    /// The address (taken exactly; nothing is trimmed).
    #[arg(required_unless_present = "stdin", conflicts_with = "stdin")]
    pub input: Option<String>,
    /// Read `chain<TAB>input` lines from standard input, one JSON line out per line.
    #[arg(long, conflicts_with = "chain")]
    pub stdin: bool,
}

/// Installs rustls' `ring` provider as the process's TLS crypto provider unless one is
/// installed already. The libraries never choose it; [`run`] calls this first.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // a concurrent install that won the race is just as good
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Runs one command; returns the exit code.
pub async fn run(
    cli: Cli,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    install_crypto_provider();
    match cli.command {
        Command::Address(AddressCommand::Validate(args)) => validate_addresses(args, input, out),
        Command::Chain(cmd) => chain::run(cmd, out).await,
        Command::Migrate(args) => {
            let config = config::AdminConfig::load()?;
            haven_service::telemetry::init(config.common.log_format);
            migrate(&config, args, out).await
        }
        Command::Audit(cmd) => {
            let config = config::AdminConfig::load()?;
            audit(&config, cmd, out).await
        }
        Command::Custody(cmd) => custody::run(cmd, input, out).await,
        Command::Webhooks(cmd) => webhooks::run(cmd, input, out).await,
        Command::Users(cmd) => users::run(cmd, input, out).await,
        Command::Rewards(cmd) => rewards::run(cmd, input, out).await,
        Command::Staking(cmd) => staking::run(cmd, out).await,
        Command::Jobs(cmd) => jobs::run(cmd, out).await,
        Command::Nonces(cmd) => nonces::run(cmd, input, out).await,
        Command::Breakers(cmd) => breakers::run(cmd, input, out).await,
        Command::Config(cmd) => config_check::run(cmd, out),
        Command::Alerts(cmd) => alerts::run(cmd, input, out).await,
        Command::Wallets(cmd) => {
            custody::run(custody::CustodyCommand::Wallet(cmd), input, out).await
        }
    }
}

/// The exact bytes of a payload file, or of standard input for `-`.
pub(crate) fn read_payload(path: &Path, input: &mut dyn BufRead) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("reading the payload file {}", path.display()))
}

async fn migrate(
    config: &config::AdminConfig,
    args: MigrateArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let url = config.common.database_url.expose_secret();
    if args.status {
        let applied = haven_db::applied_migrations(url)
            .await
            .context("reading migrations from DATABASE_URL")?;
        writeln!(out, "{}", serde_json::json!({"applied": applied}))?;
    } else {
        let applied = haven_db::run_migrations(url)
            .await
            .context("applying migrations to DATABASE_URL")?;
        writeln!(out, "{}", serde_json::json!({"applied_now": applied}))?;
    }
    Ok(ExitCode::from(EXIT_OK))
}

async fn audit(
    config: &config::AdminConfig,
    cmd: AuditCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let log = async || -> anyhow::Result<haven_db::PgAuditLog> {
        let pool = haven_db::connect(config.common.database_url.expose_secret(), 2)
            .await
            .context("connecting to DATABASE_URL")?;
        Ok(haven_db::PgAuditLog::new(pool))
    };
    match cmd {
        AuditCommand::WalletLogs(args) => audit_logs::wallet_logs(config, args, out).await,
        AuditCommand::Verify { anchors, format } => {
            let verified = log().await?.verify_anchored(&anchors).await?;
            let (value, text, code) = match verified {
                Ok(report) => (
                    serde_json::json!({"valid": true, "records": report.count, "head": hex::encode(report.head)}),
                    format!(
                        "audit chain valid: {} records; anchor {}:{}",
                        report.count,
                        report.count,
                        hex::encode(report.head)
                    ),
                    EXIT_OK,
                ),
                Err(broken) => (
                    serde_json::json!({"valid": false, "first_broken_seq": broken.seq(), "reason": broken.to_string()}),
                    format!("audit chain BROKEN at record {}: {broken}", broken.seq()),
                    EXIT_INVALID,
                ),
            };
            if format.json {
                writeln!(out, "{value}")?;
            } else {
                writeln!(out, "{text}")?;
            }
            Ok(ExitCode::from(code))
        }
        AuditCommand::Head { format } => {
            let head = log().await?.head().await?;
            let (seq, hash) = head.unwrap_or((0, haven_core::audit::GENESIS_HASH));
            if format.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"seq": seq, "hash": hex::encode(hash)})
                )?;
            } else {
                writeln!(out, "{seq}:{}", hex::encode(hash))?;
            }
            Ok(ExitCode::from(EXIT_OK))
        }
    }
}

fn validate_addresses(
    args: ValidateArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if args.stdin {
        let mut line = String::new();
        loop {
            line.clear();
            if input.read_line(&mut line)? == 0 {
                break;
            }
            let record = line.strip_suffix('\n').unwrap_or(&line);
            let record = record.strip_suffix('\r').unwrap_or(record);
            if record.is_empty() {
                continue;
            }
            let value = match record.split_once('\t') {
                Some((chain, address)) => match haven_address::report(chain, address) {
                    Ok(report) => serde_json::to_value(report)?,
                    Err(e) => {
                        serde_json::json!({"valid": false, "chain": chain, "error": "UNSUPPORTED_CHAIN", "message": e.to_string()})
                    }
                },
                None => {
                    serde_json::json!({"valid": false, "error": "MALFORMED_LINE", "message": "expected chain<TAB>input"})
                }
            };
            writeln!(out, "{value}")?;
        }
        return Ok(ExitCode::from(EXIT_OK));
    }
    let (Some(chain), Some(address)) = (args.chain, args.input) else {
        eprintln!("address validate: give --chain and an input, or --stdin");
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    match haven_address::report(&chain, &address) {
        Ok(report) => {
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
            Ok(ExitCode::from(if report.is_valid() {
                EXIT_OK
            } else {
                EXIT_INVALID
            }))
        }
        Err(e) => {
            eprintln!("address validate: {e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

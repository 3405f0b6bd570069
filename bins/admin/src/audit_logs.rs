//! `haven-admin audit wallet-logs`: the custody wallets' audit records (`wallet.*`), newest
//! first, filtered like `GET /api/v1/admin/audit/wallet-logs`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use haven_core::audit::Severity;
use haven_db::{AuditFilter, PgAuditLog};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::config::AdminConfig;
use crate::output::{Format, or_dash, table};
use crate::{EXIT_OK, EXIT_USAGE};

/// `audit wallet-logs` options.
#[derive(Debug, Args)]
pub struct WalletLogsArgs {
    /// Only the records of this wallet id.
    #[arg(long)]
    pub wallet: Option<String>,
    /// Only this action (wallet.create, wallet.sign_transaction, wallet.rotate, …).
    #[arg(long)]
    pub action: Option<String>,
    /// Only records of at least this severity: INFO, LOW, MEDIUM, HIGH, CRITICAL.
    #[arg(long)]
    pub severity: Option<String>,
    /// Only records at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// Only records before this time (RFC 3339).
    #[arg(long)]
    pub to: Option<DateTime<Utc>>,
    /// Only records below this sequence number (the last one printed, for the next page).
    #[arg(long)]
    pub before: Option<i64>,
    /// At most this many records.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub limit: i64,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

/// Prints the matching records.
pub async fn wallet_logs(
    config: &AdminConfig,
    args: WalletLogsArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let min_severity = match args.severity.as_deref() {
        None => None,
        Some(raw) => match Severity::parse(&raw.to_ascii_uppercase()) {
            Some(severity) => Some(severity),
            None => {
                eprintln!("audit wallet-logs: unknown severity {raw:?}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
        },
    };
    if let Some(action) = &args.action
        && !action.starts_with("wallet.")
    {
        eprintln!("audit wallet-logs: {action:?} is not a wallet action (wallet.…)");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let pool = haven_db::connect(config.common.database_url.expose_secret(), 2)
        .await
        .context("connecting to DATABASE_URL")?;
    let filter = AuditFilter {
        action_prefix: Some("wallet.".into()),
        action: args.action,
        target: args.wallet,
        min_severity,
        from: args.from,
        to: args.to,
    };
    let records = PgAuditLog::new(pool)
        .search(&filter, args.before, args.limit)
        .await?;
    if args.format.json {
        for r in &records {
            writeln!(
                out,
                "{}",
                json!({
                    "seq": r.seq,
                    "created_at": r.created_at,
                    "actor": r.event.actor,
                    "action": r.event.action,
                    "target": r.event.target,
                    "severity": r.event.severity.as_str(),
                    "request_id": r.event.request_id,
                    "ip": r.event.ip,
                    "details": r.event.details,
                })
            )?;
        }
        return Ok(ExitCode::from(EXIT_OK));
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.seq.to_string(),
                r.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                r.event.severity.as_str().to_owned(),
                r.event.action.clone(),
                or_dash(r.event.target.as_deref()),
                r.event.actor.clone(),
            ]
        })
        .collect();
    table(
        out,
        &["SEQ", "TIME (UTC)", "SEVERITY", "ACTION", "WALLET", "ACTOR"],
        &rows,
    )?;
    Ok(ExitCode::from(EXIT_OK))
}

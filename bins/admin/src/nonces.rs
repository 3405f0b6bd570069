//! `haven-admin nonces …`: an EVM nonce account as the store holds it, and its reset to the
//! chain's pending nonce (read from `ETH_RPC_URL`). Like `POST
//! /api/v1/admin/nonces/{chain}/{address}/reset`, a reset is refused while unexpired leases
//! exist unless `--force` (audited HIGH; a refusal is recorded as `refused`), and the reset
//! and its audit row (actor `haven-admin:$USER`) commit in one transaction.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use anyhow::Context;
use clap::{Args, Subcommand};
use haven_core::audit::{AuditEvent, Severity};
use haven_nonce::{NonceKey, NonceStatus, NonceStore};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::config::AdminConfig;
use crate::output::{Format, actor, confirm, fields, or_dash, table};
use crate::{EXIT_FAILURE, EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// `nonces` subcommands.
#[derive(Debug, Subcommand)]
pub enum NoncesCommand {
    /// Show an account: next nonce, chain floor, free nonces, leases, commits.
    Show(AccountArgs),
    /// Reset an account to the chain's pending nonce (asks first unless --yes).
    Reset(ResetArgs),
}

/// Which account.
#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The EVM chain id.
    #[arg(long)]
    pub chain: u64,
    /// The account address (0x and 40 hex digits).
    pub address: String,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

/// `nonces reset` options.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The account.
    #[command(flatten)]
    pub account: AccountArgs,
    /// Drop unexpired leases too (their signers' commits will fail). Audited HIGH.
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

/// Runs a `nonces` subcommand.
pub async fn run(
    cmd: NoncesCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let account = match &cmd {
        NoncesCommand::Show(a) => a,
        NoncesCommand::Reset(r) => &r.account,
    };
    let key = match NonceKey::parse(account.chain, &account.address) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("nonces: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let config = AdminConfig::load()?;
    let pool = haven_db::connect(config.common.database_url.expose_secret(), 2)
        .await
        .context("connecting to DATABASE_URL")?;
    let store = haven_db::PgNonceStore::new(pool.clone());
    let log = haven_db::PgAuditLog::new(pool);
    match cmd {
        NoncesCommand::Show(args) => {
            let status = store.status(&key).await?;
            print_status(out, &status, args.format)?;
            Ok(ExitCode::from(EXIT_OK))
        }
        NoncesCommand::Reset(args) => reset(&config, &store, &log, &key, args, input, out).await,
    }
}

fn status_json(s: &NonceStatus) -> serde_json::Value {
    json!({
        "chain_id": s.key.chain_id(),
        "address": s.key.address_hex(),
        "next": s.next,
        "chain_floor": s.chain_floor,
        "last_sync": s.last_sync,
        "free_count": s.free_count,
        "free": s.free,
        "leases_outstanding": s.leases.iter().filter(|l| !l.expired).count(),
        "leases": s.leases.iter().map(|l| json!({
            "nonce": l.nonce,
            "lease_id": l.lease_id.to_string(),
            "expires_at": l.expires_at,
            "expired": l.expired,
        })).collect::<Vec<_>>(),
        "committed_count": s.committed_count,
        "committed": s.committed,
    })
}

fn print_status(out: &mut dyn Write, s: &NonceStatus, format: Format) -> anyhow::Result<()> {
    if format.json {
        writeln!(out, "{}", status_json(s))?;
        return Ok(());
    }
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    fields(
        out,
        &[
            ("account", s.key.to_string()),
            ("next", s.next.to_string()),
            ("chain floor", or_dash(s.chain_floor)),
            ("last sync", or_dash(s.last_sync.map(|t| t.to_rfc3339()))),
            ("free", format!("{} [{}]", s.free_count, list(&s.free))),
            (
                "committed",
                format!("{} [{}]", s.committed_count, list(&s.committed)),
            ),
        ],
    )?;
    let rows: Vec<Vec<String>> = s
        .leases
        .iter()
        .map(|l| {
            vec![
                l.nonce.to_string(),
                l.lease_id.to_string(),
                l.expires_at.to_rfc3339(),
                if l.expired { "expired" } else { "held" }.to_owned(),
            ]
        })
        .collect();
    writeln!(out)?;
    table(out, &["LEASE NONCE", "LEASE ID", "EXPIRES", "STATE"], &rows)?;
    Ok(())
}

/// The pending nonce of `key` from `ETH_RPC_URL`, which must serve the key's chain.
async fn chain_pending(rpc_url: &str, key: &NonceKey) -> anyhow::Result<Result<u64, String>> {
    let provider = ProviderBuilder::new().connect_http(rpc_url.parse().context("ETH_RPC_URL")?);
    let timeout = Duration::from_secs(10);
    let chain_id = tokio::time::timeout(timeout, provider.get_chain_id())
        .await
        .context("ETH_RPC_URL did not answer in time")?
        .context("reading the chain id from ETH_RPC_URL")?;
    if chain_id != key.chain_id() {
        return Ok(Err(format!(
            "ETH_RPC_URL serves chain {chain_id}, not {}",
            key.chain_id()
        )));
    }
    let pending = provider
        .get_transaction_count(Address::from(key.address()))
        .pending();
    Ok(Ok(tokio::time::timeout(timeout, pending)
        .await
        .context("ETH_RPC_URL did not answer in time")?
        .context("reading the pending nonce from ETH_RPC_URL")?))
}

async fn reset(
    config: &AdminConfig,
    store: &haven_db::PgNonceStore,
    log: &haven_db::PgAuditLog,
    key: &NonceKey,
    args: ResetArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let pending = match chain_pending(&config.common.eth_rpc_url, key).await? {
        Ok(pending) => pending,
        Err(message) => {
            eprintln!("nonces reset: {message}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let before = store.status(key).await?;
    let held = before.leases.iter().filter(|l| !l.expired).count();
    let what = format!(
        "Reset nonce account {key}: next {} -> {pending} (the chain's pending nonce){}.",
        before.next,
        if args.force && held > 0 {
            format!(", dropping {held} unexpired lease(s)")
        } else {
            String::new()
        }
    );
    if !confirm(args.yes, &what, input)? {
        eprintln!("nonces reset: not confirmed; nothing changed");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let severity = if args.force {
        Severity::High
    } else {
        Severity::Medium
    };
    let audit = AuditEvent::new(actor(), "nonce.reset", severity).target(format!("nonce:{key}"));
    let applied = audit
        .clone()
        .details(json!({"force": args.force, "chain_pending": pending, "outcome": "applied"}));
    match store.reset_audited(key, pending, args.force, applied).await {
        Ok(outcome) => {
            let result = json!({
                "account": key.to_string(),
                "previous_next": outcome.previous_next,
                "next": outcome.next,
                "dropped_leases": outcome.dropped_leases,
                "forced": args.force,
            });
            if args.account.format.json {
                writeln!(out, "{result}")?;
            } else {
                writeln!(
                    out,
                    "reset {key}: next {} -> {}, {} lease(s) dropped",
                    outcome.previous_next, outcome.next, outcome.dropped_leases
                )?;
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(haven_nonce::Error::LeasesOutstanding { count, .. }) => {
            // a refusal changes nothing but is recorded, as the api records it
            let refused = audit.details(json!({
                "force": false,
                "chain_pending": pending,
                "outcome": "refused",
                "error": "CONFLICT",
                "leases_outstanding": count,
            }));
            haven_core::audit::AuditSink::append(log, refused).await?;
            eprintln!(
                "nonces reset: refused: {count} unexpired lease(s) on {key}; a signer may be \
                 about to broadcast. Wait for them to end, or pass --force"
            );
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Err(e) => {
            eprintln!("nonces reset: {e}");
            Ok(ExitCode::from(EXIT_FAILURE))
        }
    }
}

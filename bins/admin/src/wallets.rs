//! `haven-admin custody wallet show | rotate | revoke`: one custody wallet's public data, a
//! new key for it, its revocation. Every call goes through the audited custody path
//! (`wallet.get`, `wallet.rotate`, `wallet.revoke`, actor `haven-admin:$USER`); rotation
//! seals a new key and so needs `HAVEN_MASTER_KEYS`, the others do not.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::Args;
use haven_custody::{NoKeyProvider, Wallet, WalletId};

use crate::config::AdminConfig;
use crate::custody::{caller, custody, provider};
use crate::output::{Format, confirm, fields, or_dash, table};
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// `custody wallet show` options.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The wallet id.
    pub id: String,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

/// `custody wallet rotate | revoke` options.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The wallet id.
    pub id: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

fn parse_id(command: &str, raw: String) -> Result<WalletId, ExitCode> {
    WalletId::new(raw).map_err(|e| {
        eprintln!("custody wallet {command}: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

fn print(out: &mut dyn Write, wallet: &Wallet, format: Format) -> anyhow::Result<()> {
    if format.json {
        let mut value = serde_json::to_value(wallet)?;
        value["address"] = serde_json::Value::String(wallet.address().to_owned());
        writeln!(out, "{value}")?;
        return Ok(());
    }
    let r = &wallet.record;
    fields(
        out,
        &[
            ("wallet", r.id.to_string()),
            ("chain", r.chain.as_str().to_owned()),
            ("status", r.status.as_str().to_owned()),
            ("address", wallet.address().to_owned()),
            ("key version", r.current_version.to_string()),
            ("updated", r.updated_at.to_rfc3339()),
        ],
    )?;
    let rows: Vec<Vec<String>> = wallet
        .keys
        .iter()
        .map(|k| {
            vec![
                k.version.to_string(),
                k.status.as_str().to_owned(),
                k.address.clone(),
                k.kek_version.to_string(),
                or_dash(k.retired_at.map(|t| t.to_rfc3339())),
            ]
        })
        .collect();
    writeln!(out)?;
    table(out, &["KEY", "STATUS", "ADDRESS", "KEK", "RETIRED"], &rows)?;
    Ok(())
}

/// Prints one wallet.
pub async fn show(
    config: &AdminConfig,
    args: ShowArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let id = match parse_id("show", args.id) {
        Ok(id) => id,
        Err(code) => return Ok(code),
    };
    let custody = custody(config, NoKeyProvider, 100).await?;
    match custody.get_wallet(&id, &caller()).await {
        Ok(wallet) => {
            print(out, &wallet, args.format)?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(haven_custody::Error::WalletNotFound { .. }) => {
            eprintln!("custody wallet show: no wallet {id}");
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Err(e) => Err(e.into()),
    }
}

/// Gives a wallet a new key, after confirmation.
pub async fn rotate(
    config: &AdminConfig,
    args: ChangeArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let id = match parse_id("rotate", args.id) {
        Ok(id) => id,
        Err(code) => return Ok(code),
    };
    let custody = custody(config, provider(config)?, 100).await?;
    let what =
        format!("Rotate wallet {id}: a new key and address; the current key never signs again.");
    if !confirm(args.yes, &what, input)? {
        eprintln!("custody wallet rotate: not confirmed; nothing changed");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    match custody.rotate_wallet(&id, &caller()).await {
        Ok(wallet) => {
            print(out, &wallet, args.format)?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(
            e @ (haven_custody::Error::WalletNotFound { .. }
            | haven_custody::Error::NotActive { .. }),
        ) => {
            eprintln!("custody wallet rotate: {e}");
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Err(e) => Err(e.into()),
    }
}

/// Revokes a wallet for good, after confirmation.
pub async fn revoke(
    config: &AdminConfig,
    args: ChangeArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let id = match parse_id("revoke", args.id) {
        Ok(id) => id,
        Err(code) => return Ok(code),
    };
    let custody = custody(config, NoKeyProvider, 100).await?;
    let what = format!("Revoke wallet {id} for good: it will never sign again.");
    if !confirm(args.yes, &what, input)? {
        eprintln!("custody wallet revoke: not confirmed; nothing changed");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    match custody.revoke_wallet(&id, &caller()).await {
        Ok(wallet) => {
            print(out, &wallet, args.format)?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(e @ haven_custody::Error::WalletNotFound { .. }) => {
            eprintln!("custody wallet revoke: {e}");
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Err(e) => Err(e.into()),
    }
}

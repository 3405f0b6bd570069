//! `haven-admin custody …`: master-key generation, key-encryption status and the rewrap run.
//!
//! The KEK rotation procedure (docs/OPERATIONS.md) is: `custody keygen` → append the new
//! entry to `HAVEN_MASTER_KEYS` everywhere → `custody rewrap` → `custody status` shows no
//! key below the newest version → raise `HAVEN_MIN_DECRYPTION_VERSION`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use haven_custody::{
    Caller, Chain, Custody, CustodyConfig, Error as CustodyError, KeyProvider, LocalKeyProvider,
    PageRequest, RewrapProgress, WalletFilter, WalletId, WalletStore,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use secrecy::ExposeSecret;

use crate::config::AdminConfig;
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// `custody` subcommands.
#[derive(Debug, Subcommand)]
pub enum CustodyCommand {
    /// Print a fresh random master key as `v<N>:<base64>` for `HAVEN_MASTER_KEYS`.
    ///
    /// Without `--version` the version is one above the newest in `HAVEN_MASTER_KEYS`
    /// (1 when unset). Needs no database.
    Keygen(KeygenArgs),
    /// Show the configured master-key versions and how many data keys are wrapped below the newest.
    Status,
    /// Re-wrap every data key under the newest master key (resumable; safe to rerun).
    Rewrap(RewrapArgs),
    /// Create or list custody wallets (public data only; private keys never leave custody).
    #[command(subcommand)]
    Wallet(WalletCommand),
}

/// `custody wallet` subcommands.
#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Generate a key pair under a new wallet id and print the wallet's public data.
    Create(CreateArgs),
    /// Print every wallet's public data, one JSON line each.
    List,
    /// Show one wallet: status, address, key versions (a table, or --json).
    Show(crate::wallets::ShowArgs),
    /// Give a wallet a new key and address; the old key never signs again (asks first
    /// unless --yes; needs HAVEN_MASTER_KEYS).
    Rotate(crate::wallets::ChangeArgs),
    /// Revoke a wallet for good: it never signs again (asks first unless --yes).
    Revoke(crate::wallets::ChangeArgs),
}

/// `custody wallet create` options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The wallet id (1–64 of `[A-Za-z0-9._:-]`).
    #[arg(long)]
    pub id: String,
    /// `evm` (secp256k1) or `solana` (ed25519).
    #[arg(long)]
    pub chain: String,
    /// When the id exists already, print that wallet (exit 0) instead of failing (exit 1).
    #[arg(long)]
    pub if_absent: bool,
    /// Print only the wallet's current address (for scripts).
    #[arg(long)]
    pub address_only: bool,
}

/// `custody keygen` options.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The version number of the new key (≥ 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub version: Option<u32>,
}

/// `custody rewrap` options.
#[derive(Debug, Args)]
pub struct RewrapArgs {
    /// Refuse to run unless the newest configured master key has this version.
    #[arg(long)]
    pub kek_version: Option<u32>,
    /// Read this many keys per database round trip.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch_size: u64,
    /// Print progress as plain lines instead of a progress bar (the default when stderr is not a terminal).
    #[arg(long)]
    pub no_progress_bar: bool,
}

/// Runs a `custody` subcommand.
pub async fn run(
    cmd: CustodyCommand,
    input: &mut dyn std::io::BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let config = AdminConfig::load()?;
    match cmd {
        CustodyCommand::Wallet(WalletCommand::Show(args)) => {
            crate::wallets::show(&config, args, out).await
        }
        CustodyCommand::Wallet(WalletCommand::Rotate(args)) => {
            crate::wallets::rotate(&config, args, input, out).await
        }
        CustodyCommand::Wallet(WalletCommand::Revoke(args)) => {
            crate::wallets::revoke(&config, args, input, out).await
        }
        CustodyCommand::Keygen(args) => keygen(&config, args, out),
        CustodyCommand::Status => status(&config, out).await,
        CustodyCommand::Rewrap(args) => rewrap(&config, args, out).await,
        CustodyCommand::Wallet(cmd) => wallet(&config, cmd, out).await,
    }
}

pub(crate) fn provider(config: &AdminConfig) -> anyhow::Result<LocalKeyProvider> {
    let spec = config.master_keys.as_ref().context(
        "HAVEN_MASTER_KEYS is not set: give the master keys as v1:<base64>,v2:<base64> \
         (generate one with `haven-admin custody keygen`)",
    )?;
    let provider =
        LocalKeyProvider::parse(spec.expose_secret()).context("HAVEN_MASTER_KEYS is invalid")?;
    match config.min_decryption_version {
        Some(min) => provider
            .with_min_decryption_version(min)
            .context("HAVEN_MIN_DECRYPTION_VERSION is invalid"),
        None => Ok(provider),
    }
}

fn keygen(config: &AdminConfig, args: KeygenArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let version = match (args.version, &config.master_keys) {
        (Some(v), _) => v,
        (None, None) => 1,
        (None, Some(_)) => {
            let newest = provider(config)?.versions().last().copied().unwrap_or(0);
            newest
                .checked_add(1)
                .context("no version above the newest")?
        }
    };
    if config.master_keys.is_some() && provider(config)?.versions().contains(&version) {
        eprintln!("custody keygen: version {version} is already in HAVEN_MASTER_KEYS");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let entry = LocalKeyProvider::generate_entry(version)?;
    writeln!(out, "{}", entry.as_str())?;
    eprintln!(
        "custody keygen: append this entry to HAVEN_MASTER_KEYS in the secret store of every \
         binary, restart them, then run `haven-admin custody rewrap`. It is shown once."
    );
    Ok(ExitCode::from(EXIT_OK))
}

async fn store(config: &AdminConfig) -> anyhow::Result<haven_db::PgWalletStore> {
    let pool = haven_db::connect(config.common.database_url.expose_secret(), 2)
        .await
        .context("connecting to DATABASE_URL")?;
    Ok(haven_db::PgWalletStore::new(pool))
}

async fn status(config: &AdminConfig, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let provider = provider(config)?;
    let current = provider.current_version().await?;
    let below = store(config).await?.count_keys_to_rewrap(current).await?;
    writeln!(
        out,
        "{}",
        serde_json::json!({
            "kek_versions": provider.versions(),
            "current": current,
            "min_decryption_version": provider.min_decryption_version(),
            "keys_below_current": below,
        })
    )?;
    Ok(ExitCode::from(EXIT_OK))
}

pub(crate) fn caller() -> Caller {
    Caller::new(format!(
        "haven-admin:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    ))
}

pub(crate) async fn custody(
    config: &AdminConfig,
    provider: impl KeyProvider + 'static,
    batch: usize,
) -> anyhow::Result<Custody> {
    let pool = haven_db::connect(config.common.database_url.expose_secret(), 2)
        .await
        .context("connecting to DATABASE_URL")?;
    Ok(Custody::new(
        Arc::new(haven_db::PgWalletStore::new(pool.clone())),
        Arc::new(provider),
        Arc::new(haven_db::PgAuditLog::new(pool)),
        CustodyConfig {
            allow_export: false,
            rewrap_batch_size: batch,
        },
    ))
}

async fn wallet(
    config: &AdminConfig,
    cmd: WalletCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let custody = custody(config, provider(config)?, 100).await?;
    match cmd {
        WalletCommand::Create(args) => {
            let Some(chain) = Chain::parse(&args.chain) else {
                eprintln!("custody wallet create: --chain must be evm or solana");
                return Ok(ExitCode::from(EXIT_USAGE));
            };
            let id = match WalletId::new(args.id) {
                Ok(id) => id,
                Err(e) => {
                    eprintln!("custody wallet create: {e}");
                    return Ok(ExitCode::from(EXIT_USAGE));
                }
            };
            let created = custody
                .create_wallet(id.clone(), chain, serde_json::json!({}), &caller())
                .await;
            let (wallet, created) = match created {
                Ok(wallet) => (wallet, true),
                Err(CustodyError::WalletExists { .. }) if args.if_absent => {
                    (custody.get_wallet(&id, &caller()).await?, false)
                }
                Err(CustodyError::WalletExists { .. }) => {
                    eprintln!(
                        "custody wallet create: wallet {id} exists (use --if-absent to reuse it)"
                    );
                    return Ok(ExitCode::from(EXIT_INVALID));
                }
                Err(e) => return Err(e.into()),
            };
            if wallet.chain() != chain {
                eprintln!(
                    "custody wallet create: wallet {id} exists for {:?}, not {:?}",
                    wallet.chain(),
                    chain
                );
                return Ok(ExitCode::from(EXIT_INVALID));
            }
            if args.address_only {
                writeln!(out, "{}", wallet.address())?;
                return Ok(ExitCode::from(EXIT_OK));
            }
            let mut value = serde_json::to_value(&wallet)?;
            value["created"] = serde_json::Value::Bool(created);
            value["address"] = serde_json::Value::String(wallet.address().to_owned());
            writeln!(out, "{value}")?;
        }
        WalletCommand::Show(_) | WalletCommand::Rotate(_) | WalletCommand::Revoke(_) => {
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        WalletCommand::List => {
            let mut page = PageRequest::first(500);
            loop {
                let got = custody
                    .list_wallets(&WalletFilter::default(), &page, &caller())
                    .await?;
                for wallet in &got.wallets {
                    writeln!(out, "{}", serde_json::to_string(wallet)?)?;
                }
                match got.next {
                    Some(next) => page.after = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

async fn rewrap(
    config: &AdminConfig,
    args: RewrapArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let provider = provider(config)?;
    let target = provider.current_version().await?;
    if let Some(requested) = args.kek_version
        && requested != target
    {
        eprintln!(
            "custody rewrap: --kek-version {requested} is not the newest configured master key \
             (v{target}); add it to HAVEN_MASTER_KEYS first"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let custody = custody(
        config,
        provider,
        usize::try_from(args.batch_size).unwrap_or(100),
    )
    .await?;
    let caller = caller();
    let mut reporter = Reporter::new(!args.no_progress_bar && std::io::stderr().is_terminal());
    let result = custody
        .rewrap_all(target, &caller, &mut |p| reporter.update(p))
        .await;
    reporter.finish();
    let done = result.context("rewrap stopped; rerun it to continue where it stopped")?;
    writeln!(out, "{}", serde_json::to_string(&done)?)?;
    Ok(ExitCode::from(EXIT_OK))
}

/// Shows rewrap progress: a bar on a terminal, else a line every 5 s and at the end.
struct Reporter {
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
    last: Option<RewrapProgress>,
}

impl Reporter {
    fn new(bar: bool) -> Self {
        let bar = bar.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "rewrap to v{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} keys ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Self {
            bar,
            last_line: None,
            last: None,
        }
    }

    fn update(&mut self, p: &RewrapProgress) {
        self.last = Some(*p);
        if let Some(bar) = &self.bar {
            if bar.length() != Some(p.total) {
                bar.set_length(p.total);
                bar.set_message(p.target_kek_version.to_string());
            }
            bar.set_position(p.done());
            return;
        }
        let due = self
            .last_line
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(5));
        if due {
            self.line(p);
        }
    }

    fn line(&mut self, p: &RewrapProgress) {
        eprintln!(
            "rewrap to v{}: {}/{} keys ({} rewrapped, {} skipped)",
            p.target_kek_version,
            p.done(),
            p.total,
            p.rewrapped,
            p.skipped
        );
        self.last_line = Some(Instant::now());
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        } else if let Some(p) = self.last {
            self.line(&p);
        }
    }
}

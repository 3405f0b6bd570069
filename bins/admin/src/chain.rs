//! `haven-admin chain …`: deploying the HAVEN token.
//!
//! The work is `haven_chain::deploy`; this module only reads the deployer key from the
//! configuration, connects to `ETH_RPC_URL` and reports the result.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use clap::{Args, Subcommand};
use haven_chain::HavenToken;
use secrecy::ExposeSecret;

use crate::EXIT_OK;
use crate::config::DeployConfig;

/// The variable `--out` files hold, as the api and worker read it.
pub const TOKEN_ADDRESS_VAR: &str = "HAVEN_TOKEN_ADDRESS";

/// `chain` subcommands.
#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Deploy the HAVEN token to ETH_RPC_URL from HAVEN_DEPLOYER_KEY and grant MINTER_ROLE and
    /// CUSTODIAN_ROLE to `--minter`; prints `{"token":…,"minter":…,"chain_id":…}`.
    Deploy(DeployArgs),
}

/// `chain deploy` options.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The address that gets MINTER_ROLE and CUSTODIAN_ROLE (the custody wallet the api and
    /// worker sign with).
    #[arg(long, value_parser = parse_address)]
    pub minter: Address,
    /// Write `HAVEN_TOKEN_ADDRESS=0x…` to this file. When the file already names a HAVEN token
    /// on this chain on which the minter holds MINTER_ROLE and CUSTODIAN_ROLE, that token is
    /// reused and nothing is deployed.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn parse_address(raw: &str) -> Result<Address, String> {
    if !raw.starts_with("0x") || raw.len() != 42 {
        return Err("expected a 0x-prefixed 20-byte hex address".to_owned());
    }
    raw.parse::<Address>()
        .map_err(|e| format!("not a hex address: {e}"))
}

/// Runs one `chain` subcommand.
pub async fn run(cmd: ChainCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match cmd {
        ChainCommand::Deploy(args) => {
            let config = DeployConfig::load()?;
            deploy(&config, args, out).await
        }
    }
}

async fn deploy(
    config: &DeployConfig,
    args: DeployArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    // reqwest is built without a default TLS provider; alloy's HTTP client needs one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let signer: PrivateKeySigner = config
        .deployer_key
        .expose_secret()
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("HAVEN_DEPLOYER_KEY is not a hex secp256k1 private key"))?;
    let admin = alloy::signers::Signer::address(&signer);
    let url = config
        .common
        .eth_rpc_url
        .parse()
        .context("ETH_RPC_URL is not a URL")?;
    let provider = ProviderBuilder::new()
        .wallet(signer)
        .connect_http(url)
        .erased();
    let chain_id = provider
        .get_chain_id()
        .await
        .with_context(|| format!("reaching ETH_RPC_URL {}", config.common.eth_rpc_url))?;

    let existing = match &args.out {
        Some(path) => reusable_token(&provider, path, args.minter).await?,
        None => None,
    };
    let (token, deployed) = match existing {
        Some(token) => (token, false),
        None => {
            let token = haven_chain::deploy(&provider, admin, args.minter)
                .await
                .context("deploying the HAVEN token")?;
            (token, true)
        }
    };
    if deployed && let Some(path) = &args.out {
        write_out_file(path, token)?;
    }
    writeln!(
        out,
        "{}",
        serde_json::json!({
            "token": token.to_checksum(None),
            "minter": args.minter.to_checksum(None),
            "admin": admin.to_checksum(None),
            "chain_id": chain_id,
            "deployed": deployed,
        })
    )?;
    Ok(ExitCode::from(EXIT_OK))
}

/// The token named by an earlier `--out` file, if it is a HAVEN token on this chain with
/// `minter` holding MINTER_ROLE and CUSTODIAN_ROLE (a restarted dev node has none of it, a
/// token from before CUSTODIAN_ROLE lacks the role: deploy again).
async fn reusable_token(
    provider: &DynProvider,
    path: &Path,
    minter: Address,
) -> anyhow::Result<Option<Address>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let Some(token) = text.lines().find_map(|line| {
        line.trim()
            .strip_prefix(TOKEN_ADDRESS_VAR)
            .and_then(|rest| rest.strip_prefix('='))
            .and_then(|value| parse_address(value.trim()).ok())
    }) else {
        return Ok(None);
    };
    let code = provider
        .get_code_at(token)
        .await
        .context("reading the recorded token's code")?;
    if code.is_empty() {
        return Ok(None);
    }
    let handle = HavenToken::new(token, provider);
    let Ok(symbol) = handle.symbol().call().await else {
        return Ok(None);
    };
    if symbol != haven_chain::token::SYMBOL {
        return Ok(None);
    }
    let minter_role = handle
        .MINTER_ROLE()
        .call()
        .await
        .context("reading MINTER_ROLE")?;
    // A token deployed before CUSTODIAN_ROLE existed has no such function.
    let Ok(custodian_role) = handle.CUSTODIAN_ROLE().call().await else {
        return Ok(None);
    };
    for role in [minter_role, custodian_role] {
        let has_role = handle
            .hasRole(role, minter)
            .call()
            .await
            .context("reading the minter's roles")?;
        if !has_role {
            return Ok(None);
        }
    }
    Ok(Some(token))
}

/// Writes `HAVEN_TOKEN_ADDRESS=0x…` through a temporary file, so a reader never sees half.
fn write_out_file(path: &Path, token: Address) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        format!("{TOKEN_ADDRESS_VAR}={}\n", token.to_checksum(None)),
    )
    .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

//! `haven-guardian`: a guardian's command line over the `haven-guardian` client.
//!
//! The device key lives in a file only its owner can read (`keygen` writes it with mode
//! 0600); the invitation code is read from standard input, never from the command line; the
//! guardian's tokens are kept in a state file (0600) and refreshed before each command.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ed25519_dalek::SigningKey;
use haven_guardian::{Guardian, Tokens, connect};
use haven_vault::DecisionKind;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

/// A guardian's command line: device key, joining, requests, decisions, sessions.
#[derive(Debug, Parser)]
#[command(name = "haven-guardian", version, about)]
struct Cli {
    /// The api's base URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// The device key file (hex of the 32-byte ed25519 seed, mode 0600).
    #[arg(long, global = true, default_value = "guardian.key")]
    key_file: PathBuf,
    /// Where the guardian's id and tokens are kept (mode 0600).
    #[arg(long, global = true, default_value = "guardian.json")]
    state_file: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates a device key (refuses to overwrite one) and prints its public key.
    Keygen,
    /// Joins a vault; the invitation code is read from standard input.
    Join {
        /// The vault.
        #[arg(long)]
        vault: Uuid,
        /// A label for the session list.
        #[arg(long, default_value = "haven-guardian")]
        device: String,
    },
    /// Prints the vault's open requests, one JSON object per line.
    Requests,
    /// Approves a request (signed with the device key after checking its hash).
    Approve {
        /// The request.
        request: Uuid,
    },
    /// Rejects a request.
    Reject {
        /// The request.
        request: Uuid,
    },
    /// Prints the guardian's sessions.
    Sessions,
    /// Revokes one of the guardian's sessions.
    Revoke {
        /// The session.
        session: Uuid,
    },
}

#[derive(Serialize, Deserialize)]
struct State {
    guardian_id: Uuid,
    vault_id: Uuid,
    access_token: String,
    refresh_token: String,
    session_id: Uuid,
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the device key {}", path.display()))?,
    );
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut())
        .with_context(|| format!("{} is not 64 hex digits", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

fn load(path: &Path) -> anyhow::Result<State> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}: join first", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn save(path: &Path, guardian: &Guardian) -> anyhow::Result<()> {
    let state = State {
        guardian_id: guardian.guardian_id,
        vault_id: guardian.vault_id,
        access_token: guardian.tokens.access_token.clone(),
        refresh_token: guardian.tokens.refresh_token.clone(),
        session_id: guardian.tokens.session_id,
    };
    write_private(path, serde_json::to_string_pretty(&state)?.as_bytes())
}

/// The guardian of the state file, with freshly rotated tokens (saved at once).
async fn guardian(cli: &Cli) -> anyhow::Result<Guardian> {
    let state = load(&cli.state_file)?;
    let mut guardian = Guardian {
        guardian_id: state.guardian_id,
        vault_id: state.vault_id,
        tokens: Tokens {
            access_token: state.access_token,
            refresh_token: state.refresh_token,
            expires_in: 0,
            session_id: state.session_id,
        },
    };
    guardian.refresh(&cli.api).await?;
    save(&cli.state_file, &guardian)?;
    Ok(guardian)
}

async fn decide(cli: &Cli, request: Uuid, kind: DecisionKind) -> anyhow::Result<()> {
    let device = read_key(&cli.key_file)?;
    let guardian = guardian(cli).await?;
    let token = guardian.tokens.access_token.clone();
    let mut socket = connect(&cli.api, &token).await?;
    let requests = socket.list_requests(&token).await?;
    let Some(found) = requests.iter().find(|r| r.id.0 == request) else {
        bail!("request {request} is not open in this guardian's vault");
    };
    let answer = socket.decide(&token, &device, kind, found).await?;
    println!("{}", serde_json::to_string(&answer)?);
    socket.close().await?;
    if let haven_vault::protocol::ServerMessage::Error { code, message } = answer {
        bail!("refused: {code}: {message}");
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Keygen => {
            if cli.key_file.exists() {
                bail!(
                    "{} exists; refusing to overwrite a device key",
                    cli.key_file.display()
                );
            }
            let mut seed = Zeroizing::new([0u8; 32]);
            rand::fill(seed.as_mut());
            let key = SigningKey::from_bytes(&seed);
            write_private(&cli.key_file, hex::encode(seed.as_ref()).as_bytes())?;
            println!("{}", hex::encode(key.verifying_key().as_bytes()));
        }
        Command::Join { vault, device } => {
            let key = read_key(&cli.key_file)?;
            let mut code = Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut code)?;
            let joined = Guardian::join(&cli.api, *vault, code.trim(), &key, device).await?;
            save(&cli.state_file, &joined)?;
            println!(
                "{}",
                serde_json::json!({"guardian_id": joined.guardian_id, "vault_id": joined.vault_id})
            );
        }
        Command::Requests => {
            let guardian = guardian(&cli).await?;
            let token = guardian.tokens.access_token.clone();
            let mut socket = connect(&cli.api, &token).await?;
            for request in socket.list_requests(&token).await? {
                println!("{}", serde_json::to_string(&request)?);
            }
            socket.close().await?;
        }
        Command::Approve { request } => decide(&cli, *request, DecisionKind::Approve).await?,
        Command::Reject { request } => decide(&cli, *request, DecisionKind::Reject).await?,
        Command::Sessions => {
            let guardian = guardian(&cli).await?;
            for session in guardian.sessions(&cli.api).await? {
                println!("{session}");
            }
        }
        Command::Revoke { session } => {
            let guardian = guardian(&cli).await?;
            guardian.revoke_session(&cli.api, *session).await?;
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // reqwest's TLS uses the process's provider; this binary chooses ring
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("haven-guardian: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

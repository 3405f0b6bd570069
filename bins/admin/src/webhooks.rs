//! `haven-admin webhooks sign|verify`: compute or check a webhook signature header from the
//! command line, exactly as the API verifies inbound webhooks (the same library code);
//! `webhooks endpoints …` and `webhooks dead …` manage outbound endpoints and their dead
//! letters ([`crate::webhook_endpoints`]).
//!
//! Neither `sign` nor `verify` touches the database. The secret is read from `HAVEN_WEBHOOK_SECRET`, or
//! with `--secret-stdin` from the first line of standard input — never from the command
//! line, where `ps` and the shell history would show it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use haven_webhooks::{Scheme, Secret, SignedParts, Tolerance, sign_header, verify};

use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// `webhooks` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum WebhooksCommand {
    /// Print the signature header value for a payload.
    Sign(SignArgs),
    /// Check a signature header value; exit 0 valid, 1 invalid, 2 usage.
    Verify(VerifyArgs),
    /// Outbound webhook endpoints: list, show, create, update, rotate-secret, enable,
    /// disable, delete; every change audited.
    #[command(subcommand)]
    Endpoints(crate::webhook_endpoints::EndpointsCommand),
    /// Dead-lettered outbound messages: list, replay.
    #[command(subcommand)]
    Dead(crate::webhook_endpoints::DeadCommand),
}

/// Options shared by `sign` and `verify`.
#[derive(Debug, Args)]
pub struct Common {
    /// The signing scheme: standard, stripe, aurora or tribe.
    #[arg(long)]
    pub scheme: Scheme,
    /// Read the secret from the first line of standard input instead of
    /// `HAVEN_WEBHOOK_SECRET` (`whsec_<base64>` for standard, the secret string for the
    /// others). The payload then cannot come from standard input too.
    #[arg(long)]
    pub secret_stdin: bool,
    /// The message id (`webhook-id`; required by the standard scheme).
    #[arg(long)]
    pub id: Option<String>,
    /// The file holding the exact payload bytes (`-` for standard input).
    #[arg(long)]
    pub payload_file: PathBuf,
}

/// `webhooks sign` options.
#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    common: Common,
    /// The timestamp to sign, in Unix seconds.
    #[arg(long)]
    pub timestamp: i64,
}

/// `webhooks verify` options.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    common: Common,
    /// The timestamp header value as received (for stripe it may be left out: it is in the signature).
    #[arg(long)]
    pub timestamp: Option<String>,
    /// The signature header value as received.
    #[arg(long)]
    pub signature: String,
    /// The verifier's clock in Unix seconds (default: now); the timestamp must lie within 300 s before and 60 s after it.
    #[arg(long)]
    pub now: Option<i64>,
}

/// Runs a `webhooks` subcommand.
pub async fn run(
    cmd: WebhooksCommand,
    input: &mut dyn std::io::BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match cmd {
        WebhooksCommand::Sign(args) => sign(args, input, out),
        WebhooksCommand::Verify(args) => check(args, input, out),
        WebhooksCommand::Endpoints(cmd) => {
            crate::webhook_endpoints::run_endpoints(cmd, input, out).await
        }
        WebhooksCommand::Dead(cmd) => crate::webhook_endpoints::run_dead(cmd, input, out).await,
    }
}

fn secret(common: &Common, input: &mut dyn std::io::BufRead) -> Result<Secret, String> {
    let text = if common.secret_stdin {
        if common.payload_file == Path::new("-") {
            return Err(
                "--secret-stdin and --payload-file - cannot both read standard input".into(),
            );
        }
        let mut line = String::new();
        input
            .read_line(&mut line)
            .map_err(|e| format!("--secret-stdin: {e}"))?;
        secrecy::SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        crate::config::webhook_secret().ok_or_else(|| {
            format!(
                "no secret: set {} or pass --secret-stdin",
                crate::config::WEBHOOK_SECRET_VAR
            )
        })?
    };
    use secrecy::ExposeSecret;
    Secret::for_scheme(common.scheme, text.expose_secret()).map_err(|e| format!("the secret: {e}"))
}

fn sign(
    args: SignArgs,
    input: &mut dyn std::io::BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let secret = match secret(&args.common, input) {
        Ok(secret) => secret,
        Err(message) => return usage("sign", &message),
    };
    if args.common.scheme == Scheme::Standard && args.common.id.is_none() {
        return usage("sign", "--id is required by the standard scheme");
    }
    let body = crate::read_payload(&args.common.payload_file, input)?;
    match sign_header(
        args.common.scheme,
        &secret,
        args.common.id.as_deref(),
        args.timestamp,
        &body,
    ) {
        Ok(header) => {
            writeln!(out, "{header}")?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(e) => usage("sign", &e.to_string()),
    }
}

fn check(
    args: VerifyArgs,
    input: &mut dyn std::io::BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let secret = match secret(&args.common, input) {
        Ok(secret) => secret,
        Err(message) => return usage("verify", &message),
    };
    let body = crate::read_payload(&args.common.payload_file, input)?;
    let now = args.now.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let parts = SignedParts {
        id: args.common.id.as_deref(),
        timestamp: args.timestamp.as_deref(),
        signature: &args.signature,
    };
    match verify(
        args.common.scheme,
        &[secret],
        parts,
        &body,
        now,
        Tolerance::default(),
    ) {
        Ok(_) => {
            writeln!(out, "{}", serde_json::json!({"valid": true}))?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(e) => {
            writeln!(
                out,
                "{}",
                serde_json::json!({"valid": false, "error": e.to_string(), "code": e.code().as_str()})
            )?;
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

fn usage(command: &str, message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("webhooks {command}: {message}");
    Ok(ExitCode::from(EXIT_USAGE))
}

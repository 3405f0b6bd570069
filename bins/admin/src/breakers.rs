//! `haven-admin breakers …`: the circuit breakers of the running api. A breaker lives in the
//! api process, so these commands ask the api (`HAVEN_API_URL`) with an API key holding the
//! `system:operate` scope (`HAVEN_ADMIN_API_KEY`); the api audits every change under the
//! key's id.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::config::ApiClientConfig;
use crate::output::{Format, confirm, or_dash, table};
use crate::{EXIT_FAILURE, EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// `breakers` subcommands.
#[derive(Debug, Subcommand)]
pub enum BreakersCommand {
    /// List the api's breakers and their states.
    List(Format),
    /// Reset a breaker to CLOSED (asks first unless --yes).
    Reset(BreakerArgs),
    /// Force a breaker open: every call refused until a reset (asks first unless --yes).
    ForceOpen(BreakerArgs),
    /// Disable a breaker: every call passes, nothing recorded (asks first unless --yes).
    Disable(BreakerArgs),
}

/// Which breaker.
#[derive(Debug, Args)]
pub struct BreakerArgs {
    /// The breaker's name.
    pub name: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

const BASE: &str = "api/v1/admin/health/circuit-breakers";

/// Runs a `breakers` subcommand.
pub async fn run(
    cmd: BreakersCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let config = ApiClientConfig::load()?;
    let Some(key) = config.api_key.as_ref() else {
        eprintln!(
            "breakers: set HAVEN_ADMIN_API_KEY to an API key with the system:operate scope \
             (an admin creates one with POST /api/v1/api-keys)"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()?;
    let (method, path, args, verb) = match cmd {
        BreakersCommand::List(format) => {
            let body = send(&client, &config, key, reqwest::Method::GET, BASE).await?;
            return match body {
                Ok(body) => print_list(out, &body, format),
                Err(code) => Ok(code),
            };
        }
        BreakersCommand::Reset(a) => (reqwest::Method::POST, "reset", a, "Reset"),
        BreakersCommand::ForceOpen(a) => (reqwest::Method::POST, "force-open", a, "Force open"),
        BreakersCommand::Disable(a) => (reqwest::Method::POST, "disable", a, "Disable"),
    };
    let what = format!(
        "{verb} circuit breaker {:?} of the api at {}.",
        args.name, config.api_url
    );
    if !confirm(args.yes, &what, input)? {
        eprintln!("breakers: not confirmed; nothing changed");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let name = url::form_urlencoded::byte_serialize(args.name.as_bytes()).collect::<String>();
    let route = format!("{BASE}/{name}/{path}");
    match send(&client, &config, key, method, &route).await? {
        Ok(body) => {
            if args.format.json {
                writeln!(out, "{body}")?;
            } else {
                writeln!(
                    out,
                    "{}: {} -> {}",
                    args.name,
                    body["previous_state"].as_str().unwrap_or("?"),
                    body["breaker"]["state"].as_str().unwrap_or("?")
                )?;
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(code) => Ok(code),
    }
}

/// Sends one request; the JSON body of a 2xx, or the exit code after printing the api's
/// error (a 4xx is the caller's: exit 1; anything else exit 3).
async fn send(
    client: &reqwest::Client,
    config: &ApiClientConfig,
    key: &secrecy::SecretString,
    method: reqwest::Method,
    path: &str,
) -> anyhow::Result<Result<Value, ExitCode>> {
    let url = config.api_url.join(path).context("HAVEN_API_URL")?;
    let res = client
        .request(method, url)
        .header("x-api-key", key.expose_secret())
        .send()
        .await
        .with_context(|| format!("asking the api at {}", config.api_url))?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(Ok(body));
    }
    eprintln!(
        "breakers: the api answered {status}: {} {}",
        body["error"].as_str().unwrap_or("-"),
        body["message"].as_str().unwrap_or("")
    );
    let code = if status.is_client_error() {
        EXIT_INVALID
    } else {
        EXIT_FAILURE
    };
    Ok(Err(ExitCode::from(code)))
}

fn print_list(out: &mut dyn Write, body: &Value, format: Format) -> anyhow::Result<ExitCode> {
    if format.json {
        writeln!(out, "{body}")?;
        return Ok(ExitCode::from(EXIT_OK));
    }
    let empty = Vec::new();
    let rows: Vec<Vec<String>> = body["breakers"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|b| {
            vec![
                b["name"].as_str().unwrap_or("?").to_owned(),
                b["state"].as_str().unwrap_or("?").to_owned(),
                b["calls"].to_string(),
                b["failures"].to_string(),
                or_dash(b["failure_rate"].as_f64().map(|r| format!("{r:.1}%"))),
                if b["degraded"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "NAME",
            "STATE",
            "CALLS",
            "FAILURES",
            "FAILURE RATE",
            "DEGRADED",
        ],
        &rows,
    )?;
    Ok(ExitCode::from(EXIT_OK))
}

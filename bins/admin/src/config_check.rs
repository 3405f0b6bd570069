//! `haven-admin config check`: the effective configuration of each binary (api, worker,
//! admin) from this environment and `HAVEN_CONFIG`, secrets masked, and every invalid
//! setting by name.
//!
//! Each binary's own loader decides (the same code that runs at its start-up), in a child
//! process of this binary (`config effective <binary>`, hidden): a loader stops at the first
//! invalid setting, so the check runs it again without that variable until it loads or
//! names nothing new — every invalid setting is found without this process changing its own
//! environment. A required setting that is missing is named, and stops the search for that
//! binary: the settings its loader checks later are checked once it is set.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use haven_service::config::ConfigError;
use serde_json::{Value, json};

use crate::{EXIT_FAILURE, EXIT_INVALID, EXIT_OK};

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print each binary's effective configuration (secrets masked); exit 1 naming every
    /// invalid setting.
    Check {
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One binary's configuration as one JSON line (used by `check`).
    #[command(hide = true)]
    Effective {
        /// Which binary.
        binary: Binary,
    },
}

/// The binaries whose configuration is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Binary {
    /// haven-api.
    Api,
    /// haven-worker.
    Worker,
    /// haven-admin (the settings its commands read).
    Admin,
}

impl Binary {
    const ALL: [Binary; 3] = [Binary::Api, Binary::Worker, Binary::Admin];

    fn name(self) -> &'static str {
        match self {
            Binary::Api => "haven-api",
            Binary::Worker => "haven-worker",
            Binary::Admin => "haven-admin",
        }
    }

    fn variables(self) -> Vec<String> {
        match self {
            Binary::Api => haven_api::config::variables(),
            Binary::Worker => haven_worker::config::variables(),
            Binary::Admin => crate::config::variables(),
        }
    }

    /// The binary's configuration as its `Debug` text (secrets are `SecretString`s there).
    fn load(self) -> Result<String, ConfigError> {
        Ok(match self {
            Binary::Api => format!("{:#?}", haven_api::config::ApiConfig::load()?),
            Binary::Worker => format!("{:#?}", haven_worker::config::WorkerConfig::load()?),
            Binary::Admin => format!(
                "{:#?}\n{:#?}\n{:#?}",
                crate::config::AdminConfig::load()?,
                crate::config::SyncConfig::load()?,
                crate::config::ApiClientConfig::load()?
            ),
        })
    }
}

/// Runs a `config` subcommand.
pub fn run(cmd: ConfigCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Effective { binary } => {
            let line = match binary.load() {
                Ok(text) => json!({"ok": mask(&text, binary)}),
                Err(e) => {
                    let mut settings = invalid_settings(&e);
                    for setting in &mut settings {
                        if let Some(reason) = setting["reason"].as_str() {
                            setting["reason"] = Value::String(mask(reason, binary));
                        }
                    }
                    json!({"invalid": settings})
                }
            };
            writeln!(out, "{line}")?;
            Ok(ExitCode::from(EXIT_OK))
        }
        ConfigCommand::Check { json } => check(json, out),
    }
}

/// The variables an error names, each with its reason.
fn invalid_settings(error: &ConfigError) -> Vec<Value> {
    match error {
        ConfigError::Invalid { var, reason } => vec![json!({"var": var, "reason": reason})],
        ConfigError::Parse(message) => {
            let vars: Vec<String> = message
                .split('`')
                .skip(1)
                .step_by(2)
                .map(variable_of_key)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if vars.is_empty() {
                vec![json!({"var": Value::Null, "reason": message})]
            } else {
                vars.into_iter()
                    .map(|var| json!({"var": var, "reason": message}))
                    .collect()
            }
        }
        other => vec![json!({"var": Value::Null, "reason": other.to_string()})],
    }
}

/// `api_addr` → `HAVEN_API_ADDR`; the standard names keep theirs.
fn variable_of_key(key: &str) -> String {
    match key {
        "database_url" | "redis_url" | "eth_rpc_url" => key.to_uppercase(),
        _ => format!("HAVEN_{}", key.replace('.', "__").to_uppercase()),
    }
}

/// Whether a variable holds a secret (or a URL that may carry one).
fn is_secret(var: &str) -> bool {
    [
        "SECRET",
        "KEY",
        "PASSWORD",
        "PEPPER",
        "DATABASE_URL",
        "REDIS_URL",
        "SOURCES",
    ]
    .iter()
    .any(|part| var.contains(part))
        && var != "HAVEN_JWT_KID"
}

/// `text` with the value of every secret variable of `binary` set in the environment
/// replaced: a second guard behind the `SecretString`s of the configuration types.
fn mask(text: &str, binary: Binary) -> String {
    let mut masked = text.to_owned();
    for var in binary.variables().iter().filter(|v| is_secret(v)) {
        if let Ok(value) = std::env::var(var)
            && value.len() >= 4
        {
            masked = masked.replace(&value, "[REDACTED]");
        }
    }
    masked
}

/// The outcome of checking one binary.
struct Checked {
    binary: Binary,
    effective: Option<String>,
    invalid: Vec<Value>,
}

/// Asks a child process for `binary`'s configuration, again without each variable it
/// names, until it loads or names nothing new.
fn check_one(binary: Binary) -> anyhow::Result<Checked> {
    let exe = std::env::current_exe()?;
    let mut removed: Vec<String> = Vec::new();
    let mut invalid: Vec<Value> = Vec::new();
    for _ in 0..binary.variables().len() + 1 {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["config", "effective"])
            .arg(format!("{binary:?}").to_lowercase())
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        for var in &removed {
            cmd.env_remove(var);
        }
        let output = cmd.output()?;
        let line: Value = serde_json::from_slice(&output.stdout)?;
        let Some(found) = line["invalid"].as_array() else {
            let effective = line["ok"].as_str().map(str::to_owned);
            let effective = if invalid.is_empty() { effective } else { None };
            return Ok(Checked {
                binary,
                effective,
                invalid,
            });
        };
        let mut new = false;
        for setting in found {
            if !invalid.contains(setting) {
                invalid.push(setting.clone());
            }
            if let Some(var) = setting["var"].as_str()
                && std::env::var_os(var).is_some()
                && !removed.iter().any(|r| r == var)
            {
                removed.push(var.to_owned());
                new = true;
            }
        }
        if !new {
            break;
        }
    }
    Ok(Checked {
        binary,
        effective: None,
        invalid,
    })
}

fn check(as_json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut all = Vec::new();
    for binary in Binary::ALL {
        match check_one(binary) {
            Ok(checked) => all.push(checked),
            Err(e) => {
                eprintln!("config check: could not check {}: {e:#}", binary.name());
                return Ok(ExitCode::from(EXIT_FAILURE));
            }
        }
    }
    let valid = all.iter().all(|c| c.invalid.is_empty());
    if as_json {
        let report: serde_json::Map<String, Value> = all
            .iter()
            .map(|c| {
                let body = json!({
                    "valid": c.invalid.is_empty(),
                    "effective": c.effective,
                    "invalid": c.invalid,
                });
                (c.binary.name().to_owned(), body)
            })
            .collect();
        writeln!(out, "{}", json!({"valid": valid, "binaries": report}))?;
    } else {
        for c in &all {
            if c.invalid.is_empty() {
                writeln!(out, "{}: valid", c.binary.name())?;
                for line in c.effective.as_deref().unwrap_or_default().lines() {
                    writeln!(out, "    {line}")?;
                }
            } else {
                writeln!(out, "{}: INVALID", c.binary.name())?;
                for setting in &c.invalid {
                    writeln!(
                        out,
                        "    {}: {}",
                        setting["var"].as_str().unwrap_or("(unknown setting)"),
                        setting["reason"].as_str().unwrap_or_default()
                    )?;
                }
            }
        }
    }
    Ok(ExitCode::from(if valid { EXIT_OK } else { EXIT_INVALID }))
}

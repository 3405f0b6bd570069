//! `haven-admin users …`: create the first administrator, list users, change a role, disable
//! an account. Every change is one transaction with its `audit_log` row (actor
//! `haven-admin:$USER`); a role change or disabling revokes the user's sessions and access
//! tokens at once, and the last active admin can be neither demoted nor disabled.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Subcommand};
use haven_core::audit::{AuditEvent, Severity};
use haven_db::{Disable, NewUser, Role, RoleChange, User, UserRepo};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use crate::config::AdminConfig;
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// Accepted password lengths, as on `POST /api/v1/users`.
const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 12..=1024;
/// Length of a generated password (base62: about 143 bits).
const GENERATED_CHARS: usize = 24;

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user (the first admin of a new deployment, say). Prints the user as JSON;
    /// without --password-stdin a random password is generated and printed once.
    Create(CreateArgs),
    /// List users as JSON lines (never password hashes).
    List,
    /// Change a user's role; revokes their sessions and access tokens.
    SetRole(SetRoleArgs),
    /// Disable a user; revokes their sessions, access tokens and API keys.
    Disable(UserArg),
}

/// `users create` options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The login e-mail.
    #[arg(long)]
    pub email: String,
    /// admin, operator or viewer.
    #[arg(long)]
    pub role: String,
    /// Read the password from the first line of standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Which user a command is about.
#[derive(Debug, Args)]
pub struct UserArg {
    /// The user's e-mail.
    #[arg(long, required_unless_present = "id", conflicts_with = "id")]
    pub email: Option<String>,
    /// The user's id.
    #[arg(long)]
    pub id: Option<Uuid>,
}

/// `users set-role` options.
#[derive(Debug, Args)]
pub struct SetRoleArgs {
    /// The user.
    #[command(flatten)]
    pub user: UserArg,
    /// admin, operator or viewer.
    #[arg(long)]
    pub role: String,
}

/// Runs a `users` subcommand.
pub async fn run(
    cmd: UsersCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let config = AdminConfig::load()?;
    let pool = haven_db::connect(config.common.database_url.expose_secret(), 2)
        .await
        .context("connecting to DATABASE_URL")?;
    let repo = UserRepo::new(pool);
    match cmd {
        UsersCommand::Create(args) => create(&repo, args, input, out).await,
        UsersCommand::List => list(&repo, out).await,
        UsersCommand::SetRole(args) => set_role(&repo, args, out).await,
        UsersCommand::Disable(user) => disable(&repo, user, out).await,
    }
}

fn actor() -> String {
    format!(
        "haven-admin:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn usage(out: &mut dyn Write, message: String) -> anyhow::Result<ExitCode> {
    writeln!(out, "{}", json!({"error": message}))?;
    Ok(ExitCode::from(EXIT_USAGE))
}

fn refused(out: &mut dyn Write, error: &str, message: String) -> anyhow::Result<ExitCode> {
    writeln!(out, "{}", json!({"error": error, "message": message}))?;
    Ok(ExitCode::from(EXIT_INVALID))
}

fn parse_role(raw: &str) -> Result<Role, String> {
    Role::parse(raw).ok_or_else(|| format!("unknown role {raw:?}: use admin, operator or viewer"))
}

fn user_json(user: &User) -> serde_json::Value {
    json!({
        "id": user.id,
        "email": user.email,
        "role": user.role.as_str(),
        "disabled": user.disabled_at.is_some(),
        "created_at": user.created_at,
    })
}

fn generate_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let rng = ring::rand::SystemRandom::new();
    let mut password = String::with_capacity(GENERATED_CHARS);
    while password.len() < GENERATED_CHARS {
        let byte: [u8; 1] = ring::rand::generate(&rng)
            .map_err(|_| anyhow::anyhow!("the system random generator failed"))?
            .expose();
        // 248 = 4 × 62: rejecting larger bytes keeps every character equally likely.
        if byte[0] < 248 {
            password.push(char::from(ALPHABET[usize::from(byte[0] % 62)]));
        }
    }
    Ok(password)
}

async fn create(
    repo: &UserRepo,
    args: CreateArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let role = match parse_role(&args.role) {
        Ok(role) => role,
        Err(message) => return usage(out, message),
    };
    let email = args.email.trim().to_owned();
    if !validator::ValidateEmail::validate_email(&email) {
        return usage(out, format!("{email:?} is not an e-mail address"));
    }
    let (password, generated) = if args.password_stdin {
        let mut line = String::new();
        input
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (generate_password()?, true)
    };
    if !PASSWORD_CHARS.contains(&password.chars().count()) {
        return usage(out, "the password must be 12 to 1024 characters".into());
    }
    let password = SecretString::from(password);
    let hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            haven_auth::Passwords::owasp().and_then(|p| p.hash(&password))
        })
        .await?
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
    };
    let audit = AuditEvent::new(actor(), "user.create", Severity::Medium);
    let created = repo
        .create_audited(
            NewUser {
                email: email.clone(),
                password_hash: Some(hash.as_str().to_owned()),
                role,
            },
            audit,
        )
        .await;
    let user = match created {
        Ok(user) => user,
        Err(haven_db::Error::Conflict { .. }) => {
            return refused(
                out,
                "EMAIL_TAKEN",
                format!("a user with e-mail {email} exists"),
            );
        }
        Err(e) => return Err(e).context("creating the user"),
    };
    let mut shown = user_json(&user);
    if generated {
        shown["password"] = json!(password.expose_secret());
        eprintln!("haven-admin: the generated password is shown once; store it now");
    }
    writeln!(out, "{shown}")?;
    Ok(ExitCode::from(EXIT_OK))
}

async fn list(repo: &UserRepo, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut after = None;
    loop {
        let page = repo.list(after, 500).await.context("listing users")?;
        for user in &page {
            writeln!(out, "{}", user_json(user))?;
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id),
            _ => break,
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// The user `arg` names, or the exit code already reported.
async fn find(
    repo: &UserRepo,
    arg: &UserArg,
    out: &mut dyn Write,
) -> anyhow::Result<Result<User, ExitCode>> {
    let found = match (&arg.id, &arg.email) {
        (Some(id), _) => repo.get(*id).await?,
        (None, Some(email)) => repo.find_by_email(email.trim()).await?,
        (None, None) => return Ok(Err(usage(out, "give --email or --id".into())?)),
    };
    match found {
        Some(user) => Ok(Ok(user)),
        None => Ok(Err(refused(out, "USER_NOT_FOUND", "no such user".into())?)),
    }
}

async fn set_role(
    repo: &UserRepo,
    args: SetRoleArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let role = match parse_role(&args.role) {
        Ok(role) => role,
        Err(message) => return usage(out, message),
    };
    let user = match find(repo, &args.user, out).await? {
        Ok(user) => user,
        Err(code) => return Ok(code),
    };
    let audit = AuditEvent::new(actor(), "user.role_change", Severity::High);
    match repo
        .change_role_audited(user.id, role, audit, Utc::now())
        .await
        .context("changing the role")?
    {
        RoleChange::Changed {
            user,
            from,
            revoked_keys,
        } => {
            let mut shown = user_json(&user);
            shown["previous_role"] = json!(from.as_str());
            shown["revoked_api_keys"] = json!(revoked_keys.len());
            writeln!(out, "{shown}")?;
            Ok(ExitCode::from(EXIT_OK))
        }
        RoleChange::Unchanged(user) => {
            writeln!(out, "{}", user_json(&user))?;
            Ok(ExitCode::from(EXIT_OK))
        }
        RoleChange::NotFound => refused(out, "USER_NOT_FOUND", "no such user".into()),
        RoleChange::LastAdmin => refused(
            out,
            "LAST_ADMIN",
            format!(
                "{} is the last active admin; promote another user first",
                user.email
            ),
        ),
    }
}

async fn disable(repo: &UserRepo, arg: UserArg, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let user = match find(repo, &arg, out).await? {
        Ok(user) => user,
        Err(code) => return Ok(code),
    };
    let audit = AuditEvent::new(actor(), "user.disable", Severity::High);
    match repo
        .disable_audited(user.id, audit, Utc::now())
        .await
        .context("disabling the user")?
    {
        Disable::Disabled { user, revoked_keys } => {
            let mut shown = user_json(&user);
            shown["revoked_api_keys"] = json!(revoked_keys.len());
            writeln!(out, "{shown}")?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Disable::AlreadyDisabled(user) => {
            writeln!(out, "{}", user_json(&user))?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Disable::NotFound => refused(out, "USER_NOT_FOUND", "no such user".into()),
        Disable::LastAdmin => refused(
            out,
            "LAST_ADMIN",
            format!(
                "{} is the last active admin; promote another user first",
                user.email
            ),
        ),
    }
}

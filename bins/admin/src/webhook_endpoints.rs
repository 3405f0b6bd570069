//! `haven-admin webhooks endpoints list|show|create|update|rotate-secret|enable|disable|delete`
//! and `haven-admin webhooks dead list|replay`: outbound webhook endpoints and their dead
//! letters, straight on Postgres through the same library calls as the api's admin routes.
//!
//! Every change commits with its `audit_log` row (actor `haven-admin:$USER`, the same actions
//! as the api: `webhook.endpoint.*`, `webhook.dead_letter.replay`). Destructive commands
//! (rotate-secret, disable, delete, replay) ask first unless `--yes`. A new signing secret is
//! printed once, to standard output, and never logged. `delete` is refused while messages are
//! undelivered (pending attempts or dead letters) unless `--force`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_db::{
    DeadLetter, EndpointChange, EndpointDeletion, EndpointDetails, PgWebhookOutbox, check_overlap,
};
use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use crate::config::AdminConfig;
use crate::output::{Format, actor, confirm, fields, or_dash, table};
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// `webhooks endpoints` subcommands.
#[derive(Debug, Subcommand)]
pub enum EndpointsCommand {
    /// Endpoints in creation order, with their backlog.
    List(ListArgs),
    /// One endpoint: backlog and the validity of its signing secrets (never the secrets).
    Show(IdArgs),
    /// Create an endpoint; prints its signing secret once.
    Create(CreateArgs),
    /// Change an endpoint's URL or description.
    Update(UpdateArgs),
    /// A new signing secret (printed once); the current ones keep signing until
    /// --old-valid-until (asks first unless --yes).
    RotateSecret(RotateArgs),
    /// Enable an endpoint: deliveries resume, the failure streak starts over.
    Enable(IdArgs),
    /// Disable an endpoint: nothing is sent, pending messages wait (asks first unless --yes).
    Disable(ConfirmedIdArgs),
    /// Delete an endpoint with its messages (asks first unless --yes); refused while
    /// messages are undelivered unless --force.
    Delete(DeleteArgs),
}

/// `webhooks dead` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeadCommand {
    /// Dead letters not replayed, oldest first.
    List(DeadListArgs),
    /// Queue one more attempt of a dead letter, due now (asks first unless --yes).
    Replay(ReplayArgs),
}

/// `endpoints list` options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only endpoints created after this one (the last id of the previous page).
    #[arg(long)]
    pub after: Option<Uuid>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

/// One endpoint.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The endpoint id.
    pub id: Uuid,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

/// One endpoint, for a command that asks first.
#[derive(Debug, Args)]
pub struct ConfirmedIdArgs {
    /// The endpoint.
    #[command(flatten)]
    pub endpoint: IdArgs,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

/// `endpoints create` options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Where messages go: public https (plain http and internal addresses only where
    /// HAVEN_WEBHOOK_ALLOW_HTTP / HAVEN_WEBHOOK_ALLOW allow them).
    #[arg(long)]
    pub url: String,
    /// Free text for operators.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

/// `endpoints update` options.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The endpoint.
    #[command(flatten)]
    pub endpoint: IdArgs,
    /// A new URL (checked as on creation).
    #[arg(long)]
    pub url: Option<String>,
    /// A new description.
    #[arg(long)]
    pub description: Option<String>,
}

/// `endpoints rotate-secret` options.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The endpoint.
    #[command(flatten)]
    pub endpoint: ConfirmedIdArgs,
    /// RFC 3339: until when the current secrets keep signing; in the future, at most 7
    /// days ahead.
    #[arg(long)]
    pub old_valid_until: DateTime<Utc>,
}

/// `endpoints delete` options.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The endpoint.
    #[command(flatten)]
    pub endpoint: ConfirmedIdArgs,
    /// Delete although messages are undelivered (they are dropped). Audited.
    #[arg(long)]
    pub force: bool,
}

/// `dead list` options.
#[derive(Debug, Args)]
pub struct DeadListArgs {
    /// Only this endpoint's dead letters.
    #[arg(long)]
    pub endpoint: Option<Uuid>,
    /// The cursor printed by the previous page.
    #[arg(long)]
    pub after: Option<i64>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

/// `dead replay` options.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The message id (`msg_…`).
    pub message_id: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

async fn connect() -> anyhow::Result<(AdminConfig, haven_db::PgPool)> {
    let config = AdminConfig::load()?;
    let pool = haven_db::connect(config.common.database_url.expose_secret(), 2)
        .await
        .context("connecting to DATABASE_URL")?;
    Ok((config, pool))
}

fn audit(action: &str, severity: Severity) -> AuditEvent {
    AuditEvent::new(actor(), action, severity).details(json!({"outcome": "applied"}))
}

fn fail(command: &str, message: &str, code: u8) -> anyhow::Result<ExitCode> {
    eprintln!("webhooks {command}: {message}");
    Ok(ExitCode::from(code))
}

fn endpoint_json(d: &EndpointDetails) -> serde_json::Value {
    let e = &d.endpoint;
    json!({
        "id": e.id,
        "url": e.url,
        "description": e.description,
        "enabled": e.enabled,
        "disabled_at": e.disabled_at,
        "failing_since": e.failing_since,
        "created_at": e.created_at,
        "pending_deliveries": d.pending_deliveries,
        "dead_letters": d.dead_letters,
        "secrets": d.secrets.iter().map(|s| json!({
            "id": s.id,
            "created_at": s.created_at,
            "expires_at": s.expires_at,
        })).collect::<Vec<_>>(),
    })
}

fn print_endpoint(out: &mut dyn Write, d: &EndpointDetails, format: Format) -> anyhow::Result<()> {
    if format.json {
        writeln!(out, "{}", endpoint_json(d))?;
        return Ok(());
    }
    let e = &d.endpoint;
    fields(
        out,
        &[
            ("id", e.id.to_string()),
            ("url", e.url.clone()),
            ("description", e.description.clone()),
            ("enabled", e.enabled.to_string()),
            (
                "disabled at",
                or_dash(e.disabled_at.map(|t| t.to_rfc3339())),
            ),
            (
                "failing since",
                or_dash(e.failing_since.map(|t| t.to_rfc3339())),
            ),
            ("pending", d.pending_deliveries.to_string()),
            ("dead letters", d.dead_letters.to_string()),
        ],
    )?;
    let rows: Vec<Vec<String>> = d
        .secrets
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.created_at.to_rfc3339(),
                or_dash(s.expires_at.map(|t| t.to_rfc3339())),
            ]
        })
        .collect();
    writeln!(out)?;
    table(out, &["SECRET ID", "SIGNS FROM", "SIGNS UNTIL"], &rows)?;
    Ok(())
}

/// Runs a `webhooks endpoints` subcommand.
pub async fn run_endpoints(
    cmd: EndpointsCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (config, pool) = connect().await?;
    let outbox = PgWebhookOutbox::new(pool.clone());
    match cmd {
        EndpointsCommand::List(args) => {
            let page = outbox.list_endpoints(args.after, args.limit.max(1)).await?;
            if args.format.json {
                for d in &page {
                    writeln!(out, "{}", endpoint_json(d))?;
                }
                return Ok(ExitCode::from(EXIT_OK));
            }
            let rows: Vec<Vec<String>> = page
                .iter()
                .map(|d| {
                    vec![
                        d.endpoint.id.to_string(),
                        if d.endpoint.enabled { "yes" } else { "no" }.to_owned(),
                        d.pending_deliveries.to_string(),
                        d.dead_letters.to_string(),
                        d.endpoint.url.clone(),
                    ]
                })
                .collect();
            table(out, &["ID", "ENABLED", "PENDING", "DEAD", "URL"], &rows)?;
            Ok(ExitCode::from(EXIT_OK))
        }
        EndpointsCommand::Show(args) => match outbox.endpoint_details(args.id).await? {
            Some(d) => {
                print_endpoint(out, &d, args.format)?;
                Ok(ExitCode::from(EXIT_OK))
            }
            None => fail(
                "endpoints show",
                &format!("no endpoint {}", args.id),
                EXIT_INVALID,
            ),
        },
        EndpointsCommand::Create(args) => create(&config, &outbox, args, out).await,
        EndpointsCommand::Update(args) => {
            let change = EndpointChange {
                url: args.url,
                description: args.description,
                enabled: None,
            };
            update(&config, &outbox, args.endpoint, change, out).await
        }
        EndpointsCommand::RotateSecret(args) => rotate(&outbox, args, input, out).await,
        EndpointsCommand::Enable(args) => {
            let change = EndpointChange {
                enabled: Some(true),
                ..EndpointChange::default()
            };
            update(&config, &outbox, args, change, out).await
        }
        EndpointsCommand::Disable(args) => {
            let what = format!(
                "Disable webhook endpoint {}: nothing is sent to it until it is enabled.",
                args.endpoint.id
            );
            if !confirm(args.yes, &what, input)? {
                return fail(
                    "endpoints disable",
                    "not confirmed; nothing changed",
                    EXIT_INVALID,
                );
            }
            let change = EndpointChange {
                enabled: Some(false),
                ..EndpointChange::default()
            };
            update(&config, &outbox, args.endpoint, change, out).await
        }
        EndpointsCommand::Delete(args) => {
            let log = haven_db::PgAuditLog::new(pool);
            delete(&outbox, &log, args, input, out).await
        }
    }
}

async fn create(
    config: &AdminConfig,
    outbox: &PgWebhookOutbox,
    args: CreateArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if let Err(e) = config.webhook_destinations.check_url(&args.url) {
        return fail("endpoints create", &format!("--url: {e}"), EXIT_USAGE);
    }
    let audit = audit("webhook.endpoint.create", Severity::Medium);
    let created = outbox
        .create_endpoint_audited(&args.url, &args.description, audit)
        .await?;
    let id = created.endpoint.id;
    if args.format.json {
        writeln!(
            out,
            "{}",
            json!({"id": id, "url": created.endpoint.url, "secret": created.secret})
        )?;
    } else {
        writeln!(out, "created endpoint {id} ({})", created.endpoint.url)?;
        writeln!(
            out,
            "signing secret (shown only now; give it to the receiver): {}",
            created.secret
        )?;
    }
    Ok(ExitCode::from(EXIT_OK))
}

async fn update(
    config: &AdminConfig,
    outbox: &PgWebhookOutbox,
    args: IdArgs,
    change: EndpointChange,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if change == EndpointChange::default() {
        return fail(
            "endpoints update",
            "name --url or --description",
            EXIT_USAGE,
        );
    }
    if let Some(url) = &change.url
        && let Err(e) = config.webhook_destinations.check_url(url)
    {
        return fail("endpoints update", &format!("--url: {e}"), EXIT_USAGE);
    }
    let audit = audit("webhook.endpoint.update", Severity::Medium);
    if outbox
        .update_endpoint_audited(args.id, change, audit)
        .await?
        .is_none()
    {
        return fail(
            "endpoints",
            &format!("no endpoint {}", args.id),
            EXIT_INVALID,
        );
    }
    match outbox.endpoint_details(args.id).await? {
        Some(d) => print_endpoint(out, &d, args.format)?,
        None => {
            return fail(
                "endpoints",
                &format!("no endpoint {}", args.id),
                EXIT_INVALID,
            );
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

async fn rotate(
    outbox: &PgWebhookOutbox,
    args: RotateArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let until = args.old_valid_until;
    if let Err(refusal) = check_overlap(until, Utc::now()) {
        return fail(
            "endpoints rotate-secret",
            &format!("--old-valid-until: {refusal}"),
            EXIT_USAGE,
        );
    }
    let id = args.endpoint.endpoint.id;
    let what = format!(
        "Rotate the signing secret of webhook endpoint {id}: the current secret(s) stop \
         signing at {}; the receiver must accept the new one by then.",
        until.to_rfc3339()
    );
    if !confirm(args.endpoint.yes, &what, input)? {
        return fail(
            "endpoints rotate-secret",
            "not confirmed; nothing changed",
            EXIT_INVALID,
        );
    }
    let audit = audit("webhook.endpoint.rotate_secret", Severity::High);
    let Some(rotated) = outbox.rotate_secret_audited(id, until, audit).await? else {
        return fail(
            "endpoints rotate-secret",
            &format!("no endpoint {id}"),
            EXIT_INVALID,
        );
    };
    if args.endpoint.endpoint.format.json {
        writeln!(
            out,
            "{}",
            json!({
                "endpoint_id": id,
                "secret": rotated.secret,
                "old_secret_valid_until": rotated.old_valid_until,
                "retired_secrets": rotated.retired,
            })
        )?;
    } else {
        writeln!(
            out,
            "rotated endpoint {id}: {} old secret(s) sign until {}",
            rotated.retired,
            rotated.old_valid_until.to_rfc3339()
        )?;
        writeln!(
            out,
            "new signing secret (shown only now): {}",
            rotated.secret
        )?;
    }
    Ok(ExitCode::from(EXIT_OK))
}

async fn delete(
    outbox: &PgWebhookOutbox,
    log: &haven_db::PgAuditLog,
    args: DeleteArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let id = args.endpoint.endpoint.id;
    let what = format!(
        "Delete webhook endpoint {id} with its secrets, messages and attempts{}.",
        if args.force {
            ", dropping undelivered messages"
        } else {
            ""
        }
    );
    if !confirm(args.endpoint.yes, &what, input)? {
        return fail(
            "endpoints delete",
            "not confirmed; nothing changed",
            EXIT_INVALID,
        );
    }
    let audit = audit("webhook.endpoint.delete", Severity::High);
    match outbox
        .delete_endpoint_audited(id, args.force, audit.clone())
        .await?
    {
        EndpointDeletion::NotFound => fail(
            "endpoints delete",
            &format!("no endpoint {id}"),
            EXIT_INVALID,
        ),
        EndpointDeletion::Undelivered { pending, dead } => {
            // a refusal changes nothing but is recorded, as the api records it
            let refused = audit
                .target(format!("webhook_endpoint:{id}"))
                .details(json!({
                    "outcome": "refused",
                    "error": "CONFLICT",
                    "forced": false,
                    "pending": pending,
                    "dead": dead,
                }));
            log.append(refused).await?;
            fail(
                "endpoints delete",
                &format!(
                    "refused: {pending} pending attempt(s) and {dead} dead letter(s); disable \
                     the endpoint to keep them, or pass --force to drop them"
                ),
                EXIT_INVALID,
            )
        }
        EndpointDeletion::Deleted {
            messages,
            pending,
            dead,
            ..
        } => {
            let result = json!({
                "id": id,
                "messages_deleted": messages,
                "pending_dropped": pending,
                "dead_dropped": dead,
                "forced": args.force,
            });
            if args.endpoint.endpoint.format.json {
                writeln!(out, "{result}")?;
            } else {
                writeln!(
                    out,
                    "deleted endpoint {id}: {messages} message(s), {pending} pending and {dead} \
                     dead dropped"
                )?;
            }
            Ok(ExitCode::from(EXIT_OK))
        }
    }
}

fn dead_json(d: &DeadLetter) -> serde_json::Value {
    json!({
        "message_id": d.message_id,
        "endpoint_id": d.endpoint_id,
        "event_type": d.event_type,
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "dead_since": d.dead_since,
    })
}

/// Runs a `webhooks dead` subcommand.
pub async fn run_dead(
    cmd: DeadCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (_, pool) = connect().await?;
    let outbox = PgWebhookOutbox::new(pool);
    match cmd {
        DeadCommand::List(args) => {
            let page = outbox
                .dead_letter_page(args.endpoint, args.after, args.limit.max(1))
                .await?;
            if args.format.json {
                for d in &page.letters {
                    writeln!(out, "{}", dead_json(d))?;
                }
                return Ok(ExitCode::from(EXIT_OK));
            }
            let rows: Vec<Vec<String>> = page
                .letters
                .iter()
                .map(|d| {
                    vec![
                        d.message_id.clone(),
                        d.endpoint_id.to_string(),
                        d.event_type.clone(),
                        d.attempts.to_string(),
                        or_dash(d.last_status),
                        or_dash(d.dead_since.map(|t| t.to_rfc3339())),
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "MESSAGE",
                    "ENDPOINT",
                    "EVENT",
                    "ATTEMPTS",
                    "LAST STATUS",
                    "DEAD SINCE",
                ],
                &rows,
            )?;
            if let Some(next) = page.next {
                writeln!(out, "more: --after {next}")?;
            }
            Ok(ExitCode::from(EXIT_OK))
        }
        DeadCommand::Replay(args) => {
            let what = format!(
                "Replay dead letter {}: one more attempt is sent now.",
                args.message_id
            );
            if !confirm(args.yes, &what, input)? {
                return fail(
                    "dead replay",
                    "not confirmed; nothing changed",
                    EXIT_INVALID,
                );
            }
            let audit = audit("webhook.dead_letter.replay", Severity::Medium);
            if !outbox.replay_dead_audited(&args.message_id, audit).await? {
                return fail(
                    "dead replay",
                    &format!(
                        "no dead letter {:?} (unknown, pending, delivered or replayed)",
                        args.message_id
                    ),
                    EXIT_INVALID,
                );
            }
            if args.format.json {
                writeln!(
                    out,
                    "{}",
                    json!({"message_id": args.message_id, "queued": true})
                )?;
            } else {
                writeln!(out, "replayed {}: one more attempt queued", args.message_id)?;
            }
            Ok(ExitCode::from(EXIT_OK))
        }
    }
}

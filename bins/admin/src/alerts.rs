//! `haven-admin alerts list | show | transition`: the fraud and chain alerts
//! (`transaction_monitoring`) straight from Postgres, filtered like
//! `GET /api/v1/admin/alerts`, and their review steps.
//!
//! A transition goes through `haven_fraud::ReviewService` over `PgAlertStore`, so the state
//! change and its `fraud.alert.<state>` audit row (actor `haven-admin:$USER`) commit
//! together; a step the state does not allow is refused and recorded as `refused`. Like the
//! api, resolving or dismissing an alert settles the rewards and withdrawals it held.
//! Text (description, subject, metadata, notes) is redacted on the way out, as the api does.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use haven_core::audit::{AuditEvent, AuditSink, Severity as AuditSeverity};
use haven_core::redact;
use haven_db::{PgAlertStore, PgAuditLog, PgPool};
use haven_fraud::{
    AlertFilter, AlertRecord, AlertStore, MAX_SEARCH_CHARS, ReviewService, ReviewState, Reviewer,
    ReviewerRole, Severity,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::config::AdminConfig;
use crate::output::{Format, actor, confirm, fields, or_dash, table};
use crate::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// `alerts` subcommands.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Alerts, newest first, filtered like `GET /api/v1/admin/alerts`.
    List(ListArgs),
    /// One alert with its review state and notes.
    Show(ShowArgs),
    /// Move an alert one review step (asks first unless --yes); audited.
    Transition(TransitionArgs),
}

/// `alerts list` options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only alerts of this event type (velocity, amount_tier, transaction_stuck, …).
    #[arg(long)]
    pub event_type: Option<String>,
    /// Only alerts of this severity: low, medium, high or critical.
    #[arg(long)]
    pub severity: Option<String>,
    /// Only alerts in this state: open, acknowledged, resolved or false_positive.
    #[arg(long)]
    pub state: Option<String>,
    /// Only alerts about this member (the user id the alert concerns).
    #[arg(long)]
    pub member: Option<String>,
    /// Only alerts raised at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Only alerts raised before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// Case-insensitive, literal text in the description, subject, rule id or metadata
    /// values (at most 200 characters).
    #[arg(long)]
    pub search: Option<String>,
    /// Only alerts raised before this time: the CREATED of the last alert printed, for the
    /// next page.
    #[arg(long)]
    pub before: Option<DateTime<Utc>>,
    /// At most this many alerts.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

/// `alerts show` options.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The alert id.
    pub id: Uuid,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

/// `alerts transition` options.
#[derive(Debug, Args)]
pub struct TransitionArgs {
    /// The alert id.
    pub id: Uuid,
    /// The state to move to: acknowledged (from open), resolved or false_positive (from
    /// acknowledged).
    #[arg(long, value_parser = ["acknowledged", "resolved", "false_positive"])]
    pub to: String,
    /// A note added with the step.
    #[arg(long)]
    pub note: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Output format.
    #[command(flatten)]
    pub format: Format,
}

/// Runs an `alerts` subcommand.
pub async fn run(
    cmd: AlertsCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match cmd {
        AlertsCommand::List(args) => {
            let filter = match filter_of(&args) {
                Ok(filter) => filter,
                Err(message) => {
                    eprintln!("alerts list: {message}");
                    return Ok(ExitCode::from(EXIT_USAGE));
                }
            };
            let records = PgAlertStore::new(connect().await?).list(&filter).await?;
            print_list(out, &records, args.format)?;
            Ok(ExitCode::from(EXIT_OK))
        }
        AlertsCommand::Show(args) => {
            match PgAlertStore::new(connect().await?).get(args.id).await? {
                Some(record) => {
                    print_one(out, &record, args.format)?;
                    Ok(ExitCode::from(EXIT_OK))
                }
                None => {
                    eprintln!("alerts show: no alert {}", args.id);
                    Ok(ExitCode::from(EXIT_INVALID))
                }
            }
        }
        AlertsCommand::Transition(args) => transition(connect().await?, args, input, out).await,
    }
}

async fn connect() -> anyhow::Result<PgPool> {
    let config = AdminConfig::load()?;
    haven_db::connect(config.common.database_url.expose_secret(), 2)
        .await
        .context("connecting to DATABASE_URL")
}

/// The store filter of `alerts list`, or why the options are invalid.
fn filter_of(args: &ListArgs) -> Result<AlertFilter, String> {
    let severity = args
        .severity
        .as_deref()
        .map(|raw| {
            Severity::parse(raw)
                .ok_or_else(|| format!("unknown severity {raw:?}: low, medium, high or critical"))
        })
        .transpose()?;
    let state = args
        .state
        .as_deref()
        .map(|raw| {
            ReviewState::parse(raw).ok_or_else(|| {
                format!("unknown state {raw:?}: open, acknowledged, resolved or false_positive")
            })
        })
        .transpose()?;
    if let (Some(since), Some(until)) = (args.since, args.until)
        && since > until
    {
        return Err("--until must not be before --since".into());
    }
    if let Some(text) = &args.search
        && text.chars().count() > MAX_SEARCH_CHARS
    {
        return Err(format!(
            "--search must be at most {MAX_SEARCH_CHARS} characters"
        ));
    }
    Ok(AlertFilter {
        user: args.member.clone(),
        event_type: args.event_type.clone(),
        severity,
        reviewed: None,
        state,
        since: args.since,
        before: match (args.until, args.before) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        text: args.search.clone().filter(|t| !t.is_empty()),
        limit: args.limit as usize,
    })
}

fn redact_json(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact(s)),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One alert as JSON: the fields of the api's `AlertView`.
fn record_json(r: &AlertRecord) -> Value {
    let a = &r.alert;
    json!({
        "id": a.id,
        "rule_id": a.rule_id,
        "event_type": a.event_type,
        "severity": a.severity.as_str(),
        "subject": redact(&a.subject),
        "user": a.user,
        "description": redact(&a.description),
        "metadata": redact_json(&a.metadata),
        "event_id": a.event_id,
        "event_ts": a.event_ts,
        "created_at": a.created_at,
        "state": r.state.as_str(),
        "reviewed_by": r.reviewed_by,
        "reviewed_at": r.reviewed_at,
        "notes": r.notes.iter().map(|n| json!({
            "author": n.author,
            "text": redact(&n.text),
            "at": n.at,
        })).collect::<Vec<_>>(),
    })
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn print_list(out: &mut dyn Write, records: &[AlertRecord], format: Format) -> anyhow::Result<()> {
    if format.json {
        for r in records {
            writeln!(out, "{}", record_json(r))?;
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let description: String = redact(&r.alert.description).chars().take(60).collect();
            vec![
                r.alert.id.to_string(),
                when(r.alert.created_at),
                r.alert.severity.as_str().to_owned(),
                r.state.as_str().to_owned(),
                r.alert.event_type.clone(),
                or_dash(r.alert.user.as_deref()),
                description,
            ]
        })
        .collect();
    table(
        out,
        &[
            "ID",
            "CREATED (UTC)",
            "SEVERITY",
            "STATE",
            "EVENT TYPE",
            "MEMBER",
            "DESCRIPTION",
        ],
        &rows,
    )?;
    if records.is_empty() {
        writeln!(out, "(no alerts)")?;
    }
    Ok(())
}

fn print_one(out: &mut dyn Write, r: &AlertRecord, format: Format) -> anyhow::Result<()> {
    if format.json {
        writeln!(out, "{}", record_json(r))?;
        return Ok(());
    }
    let a = &r.alert;
    fields(
        out,
        &[
            ("alert", a.id.to_string()),
            ("rule", a.rule_id.clone()),
            ("event type", a.event_type.clone()),
            ("severity", a.severity.as_str().to_owned()),
            ("state", r.state.as_str().to_owned()),
            ("member", or_dash(a.user.as_deref())),
            ("subject", redact(&a.subject)),
            ("description", redact(&a.description)),
            ("metadata", redact_json(&a.metadata).to_string()),
            ("event", format!("{} at {}", a.event_id, when(a.event_ts))),
            ("created", when(a.created_at)),
            ("reviewed by", or_dash(r.reviewed_by.as_deref())),
            ("reviewed at", or_dash(r.reviewed_at.map(when))),
        ],
    )?;
    if !r.notes.is_empty() {
        let rows: Vec<Vec<String>> = r
            .notes
            .iter()
            .map(|n| vec![when(n.at), n.author.clone(), redact(&n.text)])
            .collect();
        writeln!(out)?;
        table(out, &["NOTE AT", "AUTHOR", "TEXT"], &rows)?;
    }
    Ok(())
}

/// Moves an alert one step after confirmation; a refused step is audited as `refused`.
async fn transition(
    pool: PgPool,
    args: TransitionArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let Some(to) = ReviewState::parse(&args.to) else {
        eprintln!("alerts transition: unknown state {:?}", args.to);
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let id = args.id;
    let store = PgAlertStore::new(pool.clone());
    let Some(current) = store.get(id).await? else {
        eprintln!("alerts transition: no alert {id}");
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let what = format!(
        "Move alert {id} ({}, {}) from {} to {to}.",
        current.alert.rule_id,
        current.alert.severity.as_str(),
        current.state
    );
    if !confirm(args.yes, &what, input)? {
        eprintln!("alerts transition: not confirmed; nothing changed");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let log = PgAuditLog::new(pool.clone());
    let review = ReviewService::new(Arc::new(store), Arc::new(log.clone()));
    let reviewer = Reviewer::new(actor(), ReviewerRole::Admin);
    let record = match review
        .transition(&reviewer, id, to, args.note.as_deref())
        .await
    {
        Ok(record) => record,
        Err(e @ haven_fraud::Error::InvalidTransition { from, .. }) => {
            let refused = AuditEvent::new(
                actor(),
                format!("fraud.alert.{}", to.as_str()),
                AuditSeverity::Low,
            )
            .target(id.to_string())
            .details(json!({
                "from": from.as_str(),
                "to": to.as_str(),
                "outcome": "refused",
                "error": "CONFLICT",
            }));
            log.append(refused).await?;
            eprintln!(
                "alerts transition: refused: {e} (allowed: open → acknowledged, \
                 acknowledged → resolved | false_positive)"
            );
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        Err(e @ haven_fraud::Error::InvalidNote { .. }) => {
            eprintln!("alerts transition: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(e @ haven_fraud::Error::NotFound { .. }) => {
            eprintln!("alerts transition: {e}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        Err(e) => return Err(e.into()),
    };
    let (rewards, withdrawals) = settle(&pool, id, to).await?;
    if args.format.json {
        let mut value = record_json(&record);
        value["settled_rewards"] = json!(rewards);
        value["settled_withdrawals"] = json!(withdrawals);
        writeln!(out, "{value}")?;
    } else {
        print_one(out, &record, Format::default())?;
        if to.is_final() {
            writeln!(
                out,
                "\nsettled {rewards} held reward(s) and {withdrawals} held withdrawal(s)"
            )?;
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// Like the api: a reviewed alert settles what it held. A false positive releases the held
/// rewards and withdrawals, a resolved (confirmed) one cancels them. Their counts.
async fn settle(pool: &PgPool, id: Uuid, to: ReviewState) -> anyhow::Result<(usize, usize)> {
    if !to.is_final() {
        return Ok((0, 0));
    }
    let approve = to == ReviewState::FalsePositive;
    let audit = AuditEvent::new(actor(), "reward.settled", AuditSeverity::Medium);
    let rewards = haven_db::PgRewards::new(pool.clone())
        .settle_held(id, approve, audit)
        .await?;
    let audit = AuditEvent::new(actor(), "withdrawal.settled", AuditSeverity::Medium);
    let withdrawals = haven_db::PgTreasury::new(pool.clone())
        .settle_held_withdrawals(id, approve, audit)
        .await?;
    Ok((rewards.len(), withdrawals.len()))
}

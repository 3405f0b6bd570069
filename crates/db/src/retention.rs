//! Retention: rows past their keeping time are deleted in batches, so no statement holds
//! locks for long. The audit log is never touched: its hash chain is the record.
//!
//! | table | deleted when |
//! |---|---|
//! | `transaction_monitoring` (alerts) | delivered and created more than `alerts` ago |
//! | `error_logs` | created more than `error_logs` ago |
//! | `webhook_messages` (with their attempts) | delivered, and created more than `webhooks` ago |
//! | `idempotency_keys` | completed and expired |
//! | `webhook_replay` | expired |
//! | `job_runs` | succeeded more than `job_runs` ago (dead runs stay until retried) |

use std::time::Duration;

use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::RunQueryDsl;

use crate::pool::get;
use crate::{PgPool, Result};

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delivered fraud and chain alerts (default 90 days).
    pub alerts: Duration,
    /// The error log (default 90 days).
    pub error_logs: Duration,
    /// Delivered outbound webhook messages (default 30 days).
    pub webhooks: Duration,
    /// Succeeded job runs (default 30 days).
    pub job_runs: Duration,
    /// Rows deleted per statement (default 1000).
    pub batch: i64,
}

const DAY: u64 = 24 * 60 * 60;

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            alerts: Duration::from_secs(90 * DAY),
            error_logs: Duration::from_secs(90 * DAY),
            webhooks: Duration::from_secs(30 * DAY),
            job_runs: Duration::from_secs(30 * DAY),
            batch: 1000,
        }
    }
}

/// How many rows one pass deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    /// Alerts.
    pub alerts: u64,
    /// Error log rows.
    pub error_logs: u64,
    /// Outbound webhook messages (their attempt rows go with them).
    pub webhook_messages: u64,
    /// Expired idempotency keys.
    pub idempotency_keys: u64,
    /// Expired replay keys.
    pub webhook_replay: u64,
    /// Succeeded job runs.
    pub job_runs: u64,
}

/// One statement per table, each selecting at most `$2` rows older than `$1`.
const STATEMENTS: [(&str, &str); 6] = [
    (
        "alerts",
        "DELETE FROM transaction_monitoring WHERE id IN (SELECT id FROM transaction_monitoring \
         WHERE delivered_at IS NOT NULL AND created_at < $1 LIMIT $2)",
    ),
    (
        "error_logs",
        "DELETE FROM error_logs WHERE id IN (SELECT id FROM error_logs WHERE created_at < $1 \
         LIMIT $2)",
    ),
    (
        "webhook_messages",
        "DELETE FROM webhook_messages WHERE id IN (SELECT m.id FROM webhook_messages m \
         WHERE m.created_at < $1 AND EXISTS (SELECT 1 FROM webhook_deliveries d \
         WHERE d.message_id = m.id AND d.status = 'delivered') LIMIT $2)",
    ),
    (
        "idempotency_keys",
        "DELETE FROM idempotency_keys WHERE (scope, key) IN (SELECT scope, key \
         FROM idempotency_keys WHERE state = 'completed' AND expires_at < $1 LIMIT $2)",
    ),
    (
        "webhook_replay",
        "DELETE FROM webhook_replay WHERE (source, id) IN (SELECT source, id FROM webhook_replay \
         WHERE expires_at < $1 LIMIT $2)",
    ),
    (
        "job_runs",
        "DELETE FROM job_runs WHERE id IN (SELECT id FROM job_runs WHERE state = 'succeeded' \
         AND finished_at < $1 LIMIT $2)",
    ),
];

/// Deletes every row past its retention at `now`, in batches of `policy.batch`.
pub async fn apply_retention(
    pool: &PgPool,
    policy: &RetentionPolicy,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<RetentionReport> {
    let cutoff = |keep: Duration| {
        now - chrono::Duration::from_std(keep).unwrap_or_else(|_| chrono::Duration::days(36_500))
    };
    let mut report = RetentionReport::default();
    let mut conn = get(pool).await?;
    for (table, statement) in STATEMENTS {
        let (before, counter) = match table {
            "alerts" => (cutoff(policy.alerts), &mut report.alerts),
            "error_logs" => (cutoff(policy.error_logs), &mut report.error_logs),
            "webhook_messages" => (cutoff(policy.webhooks), &mut report.webhook_messages),
            "idempotency_keys" => (now, &mut report.idempotency_keys),
            "webhook_replay" => (now, &mut report.webhook_replay),
            _ => (cutoff(policy.job_runs), &mut report.job_runs),
        };
        loop {
            let deleted = diesel::sql_query(statement)
                .bind::<Timestamptz, _>(before)
                .bind::<BigInt, _>(policy.batch.max(1))
                .execute(&mut conn)
                .await?;
            *counter += deleted as u64;
            if (deleted as i64) < policy.batch.max(1) {
                break;
            }
        }
    }
    Ok(report)
}

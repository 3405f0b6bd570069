//! The Postgres [`AlertStore`] of haven-fraud: `transaction_monitoring`, review transitions
//! audited in the same transaction, and the alert delivery outbox the worker drains.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Double, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::{AuditError, AuditEvent, AuditSink};
use haven_fraud::{
    Alert, AlertFilter, AlertRecord, AlertStore, ChangeOutcome, Note, ReviewState, Severity,
    StateChange, StoreError,
};
use serde_json::Value;
use uuid::Uuid;

use crate::audit::PgAuditLog;
use crate::pool::get;
use crate::schema::transaction_monitoring as tm;
use crate::{Error, PgPool, Result};

const TABLE: &str = "transaction_monitoring";

/// The columns of an [`AlertRecord`], for raw statements that return rows.
const RECORD_COLUMNS: &str = "id, rule_id, event_type, severity, subject, user_id, description, \
     metadata, event_id, event_ts, created_at, state, reviewed_by, reviewed_at, notes";

/// An [`AlertStore`] on the `transaction_monitoring` table, and the alert delivery outbox.
///
/// **Invariants:** `insert` writes the alert and its pending delivery in one row, so an alert
/// is never stored without being queued for delivery; `change_state` is one
/// `UPDATE … WHERE id = $1 AND state = $from RETURNING …`, so of racing reviewers exactly one
/// wins; [`change_state_audited`](AlertStore::change_state_audited) runs that `UPDATE` and
/// the `audit_log` append in one transaction, so a transition and its audit row exist
/// together or not at all; notes are appended in SQL (`notes || …`), never rewritten.
/// Timestamps are kept to the microsecond.
#[derive(Debug, Clone)]
pub struct PgAlertStore {
    pool: PgPool,
}

/// An alert claimed for delivery by [`PgAlertStore::claim_deliveries`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// The alert to deliver.
    pub alert: Alert,
    /// Which attempt this is (1 for the first); also the fencing token of the claim.
    pub attempt: u32,
    /// Sinks that accepted the alert in an earlier attempt: skip them.
    pub delivered_sinks: Vec<String>,
}

/// What one delivery attempt achieved, for [`PgAlertStore::finish_delivery`].
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// Every sink accepted the alert; it is never delivered again.
    Delivered {
        /// All sinks that accepted it, earlier attempts included.
        sinks: Vec<String>,
    },
    /// At least one sink failed.
    Failed {
        /// The sinks that accepted it so far.
        sinks: Vec<String>,
        /// Why (already redacted).
        error: String,
        /// When to try again; `None` gives up (the attempt budget is spent).
        retry_at: Option<DateTime<Utc>>,
    },
}

/// The delivery columns of one alert, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = tm, check_for_backend(diesel::pg::Pg))]
pub struct DeliveryState {
    /// When every sink had accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Attempts started so far.
    pub delivery_attempts: i32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_delivery_error: Option<String>,
    /// Sinks that accepted it.
    pub delivered_sinks: Vec<String>,
}

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = tm, check_for_backend(diesel::pg::Pg))]
struct AlertRow {
    id: Uuid,
    rule_id: String,
    event_type: String,
    severity: String,
    subject: String,
    user_id: Option<String>,
    description: String,
    metadata: Value,
    event_id: String,
    event_ts: DateTime<Utc>,
    created_at: DateTime<Utc>,
    state: String,
    reviewed_by: Option<String>,
    reviewed_at: Option<DateTime<Utc>>,
    notes: Value,
}

#[derive(QueryableByName)]
#[diesel(table_name = tm, check_for_backend(diesel::pg::Pg))]
struct ClaimRow {
    #[diesel(embed)]
    record: AlertRow,
    delivery_attempts: i32,
    delivered_sinks: Vec<String>,
}

/// The text search of [`AlertFilter::text`]: the pattern bound between head and tail is
/// matched with `ILIKE … ESCAPE '\'` against the description, the subject, the rule id and
/// every scalar value of the metadata (`#>> '{}'`: strings unquoted, numbers and booleans as
/// text).
const TEXT_SEARCH_HEAD: &str = "COALESCE((SELECT bool_or(h.t ILIKE s.p ESCAPE '\\') \
     FROM (SELECT ";
const TEXT_SEARCH_TAIL: &str = "::text) AS s(p), LATERAL ( \
         SELECT transaction_monitoring.description \
         UNION ALL SELECT transaction_monitoring.subject \
         UNION ALL SELECT transaction_monitoring.rule_id \
         UNION ALL SELECT v.j #>> '{}' \
           FROM jsonb_path_query(transaction_monitoring.metadata, 'strict $.**') AS v(j) \
           WHERE jsonb_typeof(v.j) IN ('string', 'number', 'boolean') \
     ) AS h(t)), false)";

/// `%text%` for `ILIKE … ESCAPE '\'`, with `%`, `_` and `\` in `text` escaped so that the
/// user's text is only ever matched literally.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

fn corrupt(id: Uuid, column: &str) -> Error {
    Error::Corrupt {
        table: TABLE,
        reason: format!("row {id} has an invalid {column}"),
    }
}

impl AlertRow {
    fn into_alert(self) -> Result<(Alert, RecordRest)> {
        let id = self.id;
        let severity = Severity::parse(&self.severity).ok_or_else(|| corrupt(id, "severity"))?;
        let state = ReviewState::parse(&self.state).ok_or_else(|| corrupt(id, "state"))?;
        let notes: Vec<Note> =
            serde_json::from_value(self.notes).map_err(|_| corrupt(id, "notes"))?;
        let alert = Alert {
            id,
            rule_id: self.rule_id,
            event_type: self.event_type,
            severity,
            subject: self.subject,
            user: self.user_id,
            description: self.description,
            metadata: self.metadata,
            event_id: self.event_id,
            event_ts: self.event_ts,
            created_at: self.created_at,
        };
        let rest = RecordRest {
            state,
            reviewed_by: self.reviewed_by,
            reviewed_at: self.reviewed_at,
            notes,
        };
        Ok((alert, rest))
    }

    fn into_record(self) -> Result<AlertRecord> {
        let (alert, rest) = self.into_alert()?;
        Ok(AlertRecord {
            alert,
            state: rest.state,
            reviewed_by: rest.reviewed_by,
            reviewed_at: rest.reviewed_at,
            notes: rest.notes,
        })
    }
}

struct RecordRest {
    state: ReviewState,
    reviewed_by: Option<String>,
    reviewed_at: Option<DateTime<Utc>>,
    notes: Vec<Note>,
}

fn store_error(e: Error) -> StoreError {
    match e {
        Error::Corrupt { table, reason } => StoreError::Corrupt {
            key: format!("{table}: {reason}"),
        },
        other => StoreError::Unavailable(Box::new(other)),
    }
}

fn note_json(note: &Note) -> Result<Value> {
    serde_json::to_value(note).map_err(|e| Error::Corrupt {
        table: TABLE,
        reason: format!("note does not serialize: {e}"),
    })
}

/// Where a transition with its audit row failed: in the state change or in the audit append.
#[derive(Debug)]
enum AuditedError {
    Store(Error),
    Audit(Error),
}

impl From<diesel::result::Error> for AuditedError {
    fn from(e: diesel::result::Error) -> Self {
        AuditedError::Store(Error::Query(e))
    }
}

impl PgAlertStore {
    /// The store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Inserts `alert` (open, due for delivery now) inside the caller's open transaction, so
    /// that an alert raised by a business change commits or rolls back with it. `false` if an
    /// alert with this id exists already.
    pub async fn insert_in(conn: &mut AsyncPgConnection, alert: &Alert) -> Result<bool> {
        let inserted = diesel::insert_into(tm::table)
            .values((
                tm::id.eq(alert.id),
                tm::rule_id.eq(&alert.rule_id),
                tm::event_type.eq(&alert.event_type),
                tm::severity.eq(alert.severity.as_str()),
                tm::subject.eq(&alert.subject),
                tm::user_id.eq(&alert.user),
                tm::description.eq(&alert.description),
                tm::metadata.eq(&alert.metadata),
                tm::event_id.eq(&alert.event_id),
                tm::event_ts.eq(alert.event_ts),
                tm::created_at.eq(alert.created_at),
                tm::state.eq(ReviewState::Open.as_str()),
            ))
            .on_conflict(tm::id)
            .do_nothing()
            .execute(conn)
            .await?;
        Ok(inserted == 1)
    }

    /// The compare-and-set of a review transition, on the caller's connection.
    async fn change_state_in(
        conn: &mut AsyncPgConnection,
        change: &StateChange,
    ) -> Result<ChangeOutcome> {
        let note = change.note.as_ref().map(note_json).transpose()?;
        let updated: Option<AlertRow> = diesel::sql_query(format!(
            "UPDATE transaction_monitoring \
             SET state = $3, reviewed_by = $4, reviewed_at = $5, \
                 notes = CASE WHEN $6::jsonb IS NULL THEN notes \
                              ELSE notes || jsonb_build_array($6::jsonb) END \
             WHERE id = $1 AND state = $2 \
             RETURNING {RECORD_COLUMNS}"
        ))
        .bind::<SqlUuid, _>(change.alert_id)
        .bind::<Text, _>(change.from.as_str())
        .bind::<Text, _>(change.to.as_str())
        .bind::<Text, _>(&change.reviewer)
        .bind::<Timestamptz, _>(change.at)
        .bind::<Nullable<Jsonb>, _>(note)
        .get_result(conn)
        .await
        .optional()?;
        if let Some(row) = updated {
            return Ok(ChangeOutcome::Applied(Box::new(row.into_record()?)));
        }
        let state: Option<String> = tm::table
            .find(change.alert_id)
            .select(tm::state)
            .first(conn)
            .await
            .optional()?;
        match state {
            None => Ok(ChangeOutcome::NotFound),
            Some(raw) => ReviewState::parse(&raw)
                .map(ChangeOutcome::StateIs)
                .ok_or_else(|| corrupt(change.alert_id, "state")),
        }
    }

    /// Claims up to `limit` alerts whose delivery is due (`FOR UPDATE SKIP LOCKED`, so
    /// concurrent workers claim disjoint sets) and leases them for `lease`: the attempt count
    /// goes up by one and the next attempt moves `lease` into the future, so a worker that
    /// dies mid-delivery leaves the alert to be retried after the lease. Alerts that used
    /// `max_attempts` attempts are not claimed again.
    pub async fn claim_deliveries(
        &self,
        limit: usize,
        max_attempts: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedDelivery>> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<ClaimRow> = diesel::sql_query(format!(
            "UPDATE transaction_monitoring t \
             SET delivery_attempts = t.delivery_attempts + 1, \
                 next_attempt_at = now() + make_interval(secs => $3) \
             FROM (SELECT id FROM transaction_monitoring \
                   WHERE delivered_at IS NULL AND next_attempt_at <= now() \
                     AND delivery_attempts < $2 \
                   ORDER BY next_attempt_at, id \
                   LIMIT $1 \
                   FOR UPDATE SKIP LOCKED) due \
             WHERE t.id = due.id \
             RETURNING {}, t.delivery_attempts, t.delivered_sinks",
            RECORD_COLUMNS
                .split(", ")
                .map(|c| format!("t.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind::<Integer, _>(i32::try_from(limit).unwrap_or(i32::MAX))
        .bind::<Integer, _>(i32::try_from(max_attempts).unwrap_or(i32::MAX))
        .bind::<Double, _>(lease.as_secs_f64())
        .load(&mut conn)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.record.id;
            let (alert, _) = row.record.into_alert()?;
            claimed.push(ClaimedDelivery {
                alert,
                attempt: u32::try_from(row.delivery_attempts)
                    .map_err(|_| corrupt(id, "delivery_attempts"))?,
                delivered_sinks: row.delivered_sinks,
            });
        }
        Ok(claimed)
    }

    /// Records the outcome of the delivery attempt `claim`. `false` (and nothing written)
    /// when the claim was lost: the alert was delivered meanwhile, or its lease expired and
    /// another worker claimed it again.
    pub async fn finish_delivery(
        &self,
        claim: &ClaimedDelivery,
        outcome: &DeliveryOutcome,
    ) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        let attempt =
            i32::try_from(claim.attempt).map_err(|_| corrupt(claim.alert.id, "attempt"))?;
        let target = tm::table
            .filter(tm::id.eq(claim.alert.id))
            .filter(tm::delivery_attempts.eq(attempt))
            .filter(tm::delivered_at.is_null());
        let updated = match outcome {
            DeliveryOutcome::Delivered { sinks } => {
                diesel::update(target)
                    .set((
                        tm::delivered_at.eq(Some(Utc::now())),
                        tm::delivered_sinks.eq(sinks),
                        tm::last_delivery_error.eq(None::<String>),
                    ))
                    .execute(&mut conn)
                    .await?
            }
            DeliveryOutcome::Failed {
                sinks,
                error,
                retry_at,
            } => {
                // Giving up leaves the row due but out of attempts: it is never claimed again
                // and stays visible as undelivered.
                let next = retry_at.unwrap_or_else(Utc::now);
                diesel::update(target)
                    .set((
                        tm::delivered_sinks.eq(sinks),
                        tm::last_delivery_error.eq(Some(error.as_str())),
                        tm::next_attempt_at.eq(next),
                    ))
                    .execute(&mut conn)
                    .await?
            }
        };
        Ok(updated == 1)
    }

    /// The delivery columns of alert `id`.
    pub async fn delivery_state(&self, id: Uuid) -> Result<Option<DeliveryState>> {
        let mut conn = get(&self.pool).await?;
        Ok(tm::table
            .find(id)
            .select(DeliveryState::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }
}

#[async_trait]
impl AlertStore for PgAlertStore {
    async fn insert(&self, alert: &Alert) -> std::result::Result<bool, StoreError> {
        let mut conn = get(&self.pool).await.map_err(store_error)?;
        Self::insert_in(&mut conn, alert).await.map_err(store_error)
    }

    async fn get(&self, id: Uuid) -> std::result::Result<Option<AlertRecord>, StoreError> {
        let mut conn = get(&self.pool).await.map_err(store_error)?;
        let row: Option<AlertRow> = tm::table
            .find(id)
            .select(AlertRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(|e| store_error(e.into()))?;
        row.map(AlertRow::into_record)
            .transpose()
            .map_err(store_error)
    }

    async fn list(
        &self,
        filter: &AlertFilter,
    ) -> std::result::Result<Vec<AlertRecord>, StoreError> {
        let mut conn = get(&self.pool).await.map_err(store_error)?;
        let mut query = tm::table.select(AlertRow::as_select()).into_boxed();
        if let Some(user) = &filter.user {
            query = query.filter(tm::user_id.eq(user.clone()));
        }
        if let Some(event_type) = &filter.event_type {
            query = query.filter(tm::event_type.eq(event_type.clone()));
        }
        if let Some(severity) = filter.severity {
            query = query.filter(tm::severity.eq(severity.as_str()));
        }
        if let Some(reviewed) = filter.reviewed {
            query = query.filter(tm::reviewed.eq(reviewed));
        }
        if let Some(state) = filter.state {
            query = query.filter(tm::state.eq(state.as_str()));
        }
        if let Some(since) = filter.since {
            query = query.filter(tm::created_at.ge(since));
        }
        if let Some(before) = filter.before {
            query = query.filter(tm::created_at.lt(before));
        }
        if let Some(text) = &filter.text {
            query = query.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>(TEXT_SEARCH_HEAD)
                    .bind::<Text, _>(like_pattern(text))
                    .sql(TEXT_SEARCH_TAIL),
            );
        }
        let rows: Vec<AlertRow> = query
            .order((tm::created_at.desc(), tm::id.desc()))
            .limit(i64::try_from(filter.limit).unwrap_or(i64::MAX))
            .load(&mut conn)
            .await
            .map_err(|e| store_error(e.into()))?;
        rows.into_iter()
            .map(|r| r.into_record().map_err(store_error))
            .collect()
    }

    async fn change_state(
        &self,
        change: &StateChange,
    ) -> std::result::Result<ChangeOutcome, StoreError> {
        let mut conn = get(&self.pool).await.map_err(store_error)?;
        Self::change_state_in(&mut conn, change)
            .await
            .map_err(store_error)
    }

    async fn add_note(
        &self,
        id: Uuid,
        note: &Note,
    ) -> std::result::Result<Option<AlertRecord>, StoreError> {
        let mut conn = get(&self.pool).await.map_err(store_error)?;
        let note = note_json(note).map_err(store_error)?;
        let row: Option<AlertRow> = diesel::sql_query(format!(
            "UPDATE transaction_monitoring SET notes = notes || jsonb_build_array($2::jsonb) \
             WHERE id = $1 RETURNING {RECORD_COLUMNS}"
        ))
        .bind::<SqlUuid, _>(id)
        .bind::<Jsonb, _>(note)
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(|e| store_error(e.into()))?;
        row.map(AlertRow::into_record)
            .transpose()
            .map_err(store_error)
    }

    /// The compare-and-set and the `audit_log` append in one transaction; the event goes to
    /// this database's audit log, not to `sink`.
    async fn change_state_audited(
        &self,
        change: &StateChange,
        audit: AuditEvent,
        _sink: &dyn AuditSink,
    ) -> haven_fraud::Result<ChangeOutcome> {
        let mut conn = get(&self.pool)
            .await
            .map_err(|e| haven_fraud::Error::Store(store_error(e)))?;
        let result = conn
            .transaction::<_, AuditedError, _>(async |c| {
                let outcome = Self::change_state_in(c, change)
                    .await
                    .map_err(AuditedError::Store)?;
                if matches!(outcome, ChangeOutcome::Applied(_)) {
                    PgAuditLog::append_in(c, audit)
                        .await
                        .map_err(AuditedError::Audit)?;
                }
                Ok(outcome)
            })
            .await;
        result.map_err(|e| match e {
            AuditedError::Store(e) => haven_fraud::Error::Store(store_error(e)),
            AuditedError::Audit(e) => {
                haven_fraud::Error::Audit(AuditError::Unavailable(Box::new(e)))
            }
        })
    }
}

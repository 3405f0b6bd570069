//! Stored alerts and their review workflow: open → acknowledged → resolved | false_positive.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use haven_core::audit::{AuditEvent, AuditSink, Severity as AuditSeverity};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::alert::{Alert, Severity};
use crate::error::{Error, Result};
use crate::window::StoreError;

/// The longest note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 4000;

/// The longest text search ([`AlertFilter::text`]) callers should accept, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// Where an alert is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// Raised, nobody has looked yet.
    Open,
    /// Someone is looking.
    Acknowledged,
    /// Looked into and dealt with.
    Resolved,
    /// Looked into: nothing was wrong.
    FalsePositive,
}

impl ReviewState {
    /// The stored name, e.g. `false_positive`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReviewState::Open => "open",
            ReviewState::Acknowledged => "acknowledged",
            ReviewState::Resolved => "resolved",
            ReviewState::FalsePositive => "false_positive",
        }
    }

    /// Parses a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            ReviewState::Open,
            ReviewState::Acknowledged,
            ReviewState::Resolved,
            ReviewState::FalsePositive,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// Whether `self → to` is a legal step: open → acknowledged, acknowledged → resolved,
    /// acknowledged → false_positive. Nothing else, and nothing leaves a final state.
    pub const fn can_become(self, to: ReviewState) -> bool {
        matches!(
            (self, to),
            (ReviewState::Open, ReviewState::Acknowledged)
                | (
                    ReviewState::Acknowledged,
                    ReviewState::Resolved | ReviewState::FalsePositive
                )
        )
    }

    /// Whether the review is over (the seed's `reviewed` flag).
    pub const fn is_final(self) -> bool {
        matches!(self, ReviewState::Resolved | ReviewState::FalsePositive)
    }

    const fn verb(self) -> &'static str {
        match self {
            ReviewState::Open => "reopen",
            ReviewState::Acknowledged => "acknowledge",
            ReviewState::Resolved => "resolve",
            ReviewState::FalsePositive => "mark_false_positive",
        }
    }
}

impl fmt::Display for ReviewState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a principal may do with alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewerRole {
    /// Reads alerts; cannot change them.
    Viewer,
    /// Reviews alerts.
    Analyst,
    /// Reviews alerts (and, elsewhere, manages rules).
    Admin,
}

/// The authenticated principal acting on alerts; recorded as reviewer automatically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    /// Principal id (user id).
    pub id: String,
    /// Their role.
    pub role: ReviewerRole,
}

impl Reviewer {
    /// A principal with a role.
    pub fn new(id: impl Into<String>, role: ReviewerRole) -> Self {
        Self {
            id: id.into(),
            role,
        }
    }

    fn may_review(&self) -> bool {
        matches!(self.role, ReviewerRole::Analyst | ReviewerRole::Admin)
    }
}

/// A note on an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Who wrote it.
    pub author: String,
    /// What it says.
    pub text: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// An alert with its review status, as stored (the `transaction_monitoring` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// The alert.
    pub alert: Alert,
    /// Review state.
    pub state: ReviewState,
    /// Who made the last review transition.
    pub reviewed_by: Option<String>,
    /// When.
    pub reviewed_at: Option<DateTime<Utc>>,
    /// Notes, oldest first.
    pub notes: Vec<Note>,
}

impl AlertRecord {
    /// A freshly raised, open alert.
    pub fn open(alert: Alert) -> Self {
        Self {
            alert,
            state: ReviewState::Open,
            reviewed_by: None,
            reviewed_at: None,
            notes: Vec::new(),
        }
    }

    /// The seed's `reviewed` flag: the review is over.
    pub fn reviewed(&self) -> bool {
        self.state.is_final()
    }
}

/// A state change asked of an [`AlertStore`]: applied only if the alert is still in `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The alert.
    pub alert_id: Uuid,
    /// The state the caller saw.
    pub from: ReviewState,
    /// The new state.
    pub to: ReviewState,
    /// Who changes it.
    pub reviewer: String,
    /// When.
    pub at: DateTime<Utc>,
    /// A note added in the same write.
    pub note: Option<Note>,
}

/// The result of [`AlertStore::change_state`].
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOutcome {
    /// Applied; the record after the change.
    Applied(Box<AlertRecord>),
    /// Not applied: the alert is in this state, not in `from`.
    StateIs(ReviewState),
    /// No such alert.
    NotFound,
}

/// Which alerts to list; every set field must match. Newest first.
///
/// `since` (inclusive) and `before` (exclusive) bound `created_at`. `text` is a
/// case-insensitive substring searched, literally (no pattern characters), in the
/// description, the subject, the rule id and the scalar values (strings, numbers, booleans)
/// anywhere in the metadata; callers cap it at [`MAX_SEARCH_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertFilter {
    /// Alerts of this user.
    pub user: Option<String>,
    /// Alerts of this event type.
    pub event_type: Option<String>,
    /// Alerts of this severity.
    pub severity: Option<Severity>,
    /// Only unreviewed (`Some(false)`) or reviewed (`Some(true)`) alerts.
    pub reviewed: Option<bool>,
    /// Alerts in this state.
    pub state: Option<ReviewState>,
    /// Alerts created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Alerts created strictly before this time (an upper bound, and the paging cursor).
    pub before: Option<DateTime<Utc>>,
    /// Alerts whose description, subject, rule id or a metadata value contains this text,
    /// ignoring case.
    pub text: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl Default for AlertFilter {
    fn default() -> Self {
        Self {
            user: None,
            event_type: None,
            severity: None,
            reviewed: None,
            state: None,
            since: None,
            before: None,
            text: None,
            limit: 100,
        }
    }
}

impl AlertFilter {
    /// Whether `record` matches (for in-memory stores).
    pub fn matches(&self, record: &AlertRecord) -> bool {
        let a = &record.alert;
        self.user
            .as_ref()
            .is_none_or(|u| a.user.as_ref() == Some(u))
            && self.event_type.as_ref().is_none_or(|t| &a.event_type == t)
            && self.severity.is_none_or(|s| a.severity == s)
            && self.reviewed.is_none_or(|r| record.reviewed() == r)
            && self.state.is_none_or(|s| record.state == s)
            && self.since.is_none_or(|s| a.created_at >= s)
            && self.before.is_none_or(|b| a.created_at < b)
            && self.text.as_deref().is_none_or(|t| text_matches(a, t))
    }
}

/// Whether `needle` occurs, ignoring case, in the alert's searchable text.
fn text_matches(alert: &Alert, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    let has = |hay: &str| hay.to_lowercase().contains(&needle);
    has(&alert.description)
        || has(&alert.subject)
        || has(&alert.rule_id)
        || metadata_matches(&alert.metadata, &has)
}

/// Whether a scalar value anywhere in `value` satisfies `has` (numbers as JSON writes them).
fn metadata_matches(value: &serde_json::Value, has: &dyn Fn(&str) -> bool) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => false,
        Value::Bool(b) => has(if *b { "true" } else { "false" }),
        Value::Number(n) => has(&n.to_string()),
        Value::String(s) => has(s),
        Value::Array(items) => items.iter().any(|v| metadata_matches(v, has)),
        Value::Object(map) => map.values().any(|v| metadata_matches(v, has)),
    }
}

/// Storage of alerts and their review state.
///
/// **Invariants:** `insert` is idempotent on the alert id; `change_state` is a
/// compare-and-set on the state (`UPDATE … WHERE id = $1 AND state = $from` in SQL), so of
/// two reviewers racing on the same alert exactly one succeeds; notes are only appended.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Stores a new open alert; `false` if one with the same id exists already.
    async fn insert(&self, alert: &Alert) -> Result<bool, StoreError>;
    /// The alert with this id.
    async fn get(&self, id: Uuid) -> Result<Option<AlertRecord>, StoreError>;
    /// Alerts matching `filter`, newest first.
    async fn list(&self, filter: &AlertFilter) -> Result<Vec<AlertRecord>, StoreError>;
    /// Applies `change` if the alert is still in `change.from`.
    async fn change_state(&self, change: &StateChange) -> Result<ChangeOutcome, StoreError>;
    /// Appends a note; `None` if there is no such alert.
    async fn add_note(&self, id: Uuid, note: &Note) -> Result<Option<AlertRecord>, StoreError>;

    /// Applies `change` like [`change_state`](Self::change_state) and, when it was applied,
    /// records `audit`.
    ///
    /// The default applies the change, then appends `audit` to `sink`. A backend that keeps
    /// an audit log in the same database overrides it to write the transition and its audit
    /// record in one transaction, to its own log rather than `sink` (the Postgres store:
    /// a transition and its audit row exist together or not at all).
    async fn change_state_audited(
        &self,
        change: &StateChange,
        audit: AuditEvent,
        sink: &dyn AuditSink,
    ) -> Result<ChangeOutcome> {
        let outcome = self.change_state(change).await?;
        if matches!(outcome, ChangeOutcome::Applied(_)) {
            sink.append(audit).await.map_err(Error::Audit)?;
        }
        Ok(outcome)
    }
}

/// The in-memory [`AlertStore`].
#[derive(Debug, Default)]
pub struct MemoryAlertStore {
    records: RwLock<HashMap<Uuid, AlertRecord>>,
}

impl MemoryAlertStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("alert store lock poisoned".into())
}

#[async_trait]
impl AlertStore for MemoryAlertStore {
    async fn insert(&self, alert: &Alert) -> Result<bool, StoreError> {
        let mut records = self.records.write().map_err(poisoned)?;
        if records.contains_key(&alert.id) {
            return Ok(false);
        }
        records.insert(alert.id, AlertRecord::open(alert.clone()));
        Ok(true)
    }

    async fn get(&self, id: Uuid) -> Result<Option<AlertRecord>, StoreError> {
        Ok(self.records.read().map_err(poisoned)?.get(&id).cloned())
    }

    async fn list(&self, filter: &AlertFilter) -> Result<Vec<AlertRecord>, StoreError> {
        let records = self.records.read().map_err(poisoned)?;
        let mut out: Vec<AlertRecord> = records
            .values()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse((r.alert.created_at, r.alert.id)));
        out.truncate(filter.limit);
        Ok(out)
    }

    async fn change_state(&self, change: &StateChange) -> Result<ChangeOutcome, StoreError> {
        let mut records = self.records.write().map_err(poisoned)?;
        let Some(record) = records.get_mut(&change.alert_id) else {
            return Ok(ChangeOutcome::NotFound);
        };
        if record.state != change.from {
            return Ok(ChangeOutcome::StateIs(record.state));
        }
        record.state = change.to;
        record.reviewed_by = Some(change.reviewer.clone());
        record.reviewed_at = Some(change.at);
        if let Some(note) = &change.note {
            record.notes.push(note.clone());
        }
        Ok(ChangeOutcome::Applied(Box::new(record.clone())))
    }

    async fn add_note(&self, id: Uuid, note: &Note) -> Result<Option<AlertRecord>, StoreError> {
        let mut records = self.records.write().map_err(poisoned)?;
        Ok(records.get_mut(&id).map(|r| {
            r.notes.push(note.clone());
            r.clone()
        }))
    }
}

/// The review workflow: permissions, legal transitions, automatic reviewer and timestamps,
/// and one audit event per change.
///
/// **Invariant:** a change is audited only after the store applied it; a refused change
/// (viewer, illegal transition, lost race) writes nothing to the store or the audit log.
/// Transitions go through [`AlertStore::change_state_audited`], so a backend that keeps the
/// audit log in the same database (Postgres) commits a transition and its audit row together.
#[derive(Clone)]
pub struct ReviewService {
    store: Arc<dyn AlertStore>,
    audit: Arc<dyn AuditSink>,
}

impl fmt::Debug for ReviewService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReviewService").finish_non_exhaustive()
    }
}

impl ReviewService {
    /// A workflow over `store`, auditing to `audit`.
    pub fn new(store: Arc<dyn AlertStore>, audit: Arc<dyn AuditSink>) -> Self {
        Self { store, audit }
    }

    /// The underlying store (for listing and raising alerts).
    pub fn store(&self) -> &Arc<dyn AlertStore> {
        &self.store
    }

    /// open → acknowledged.
    pub async fn acknowledge(
        &self,
        who: &Reviewer,
        id: Uuid,
        note: Option<&str>,
    ) -> Result<AlertRecord> {
        self.transition(who, id, ReviewState::Acknowledged, note)
            .await
    }

    /// acknowledged → resolved.
    pub async fn resolve(
        &self,
        who: &Reviewer,
        id: Uuid,
        note: Option<&str>,
    ) -> Result<AlertRecord> {
        self.transition(who, id, ReviewState::Resolved, note).await
    }

    /// acknowledged → false_positive.
    pub async fn mark_false_positive(
        &self,
        who: &Reviewer,
        id: Uuid,
        note: Option<&str>,
    ) -> Result<AlertRecord> {
        self.transition(who, id, ReviewState::FalsePositive, note)
            .await
    }

    /// Moves alert `id` to `to` on behalf of `who`, with an optional note.
    pub async fn transition(
        &self,
        who: &Reviewer,
        id: Uuid,
        to: ReviewState,
        note: Option<&str>,
    ) -> Result<AlertRecord> {
        if !who.may_review() {
            return Err(Error::Forbidden {
                reviewer: who.id.clone(),
                action: to.verb(),
            });
        }
        let at = Utc::now();
        let note = note.map(|text| make_note(who, text, at)).transpose()?;
        let current = self.store.get(id).await?.ok_or(Error::NotFound { id })?;
        if !current.state.can_become(to) {
            return Err(Error::InvalidTransition {
                from: current.state,
                to,
            });
        }
        let change = StateChange {
            alert_id: id,
            from: current.state,
            to,
            reviewer: who.id.clone(),
            at,
            note,
        };
        let event = AuditEvent::new(
            &who.id,
            format!("fraud.alert.{}", to.as_str()),
            AuditSeverity::Medium,
        )
        .target(id.to_string())
        .details(json!({
            "from": change.from.as_str(),
            "to": to.as_str(),
            "rule_id": current.alert.rule_id,
            "alert_severity": current.alert.severity.as_str(),
            "with_note": change.note.is_some(),
        }));
        let record = match self
            .store
            .change_state_audited(&change, event, self.audit.as_ref())
            .await?
        {
            ChangeOutcome::Applied(record) => *record,
            ChangeOutcome::StateIs(from) => return Err(Error::InvalidTransition { from, to }),
            ChangeOutcome::NotFound => return Err(Error::NotFound { id }),
        };
        Ok(record)
    }

    /// Appends a note without changing the state.
    pub async fn add_note(&self, who: &Reviewer, id: Uuid, text: &str) -> Result<AlertRecord> {
        if !who.may_review() {
            return Err(Error::Forbidden {
                reviewer: who.id.clone(),
                action: "annotate",
            });
        }
        let note = make_note(who, text, Utc::now())?;
        let record = self
            .store
            .add_note(id, &note)
            .await?
            .ok_or(Error::NotFound { id })?;
        let event = AuditEvent::new(&who.id, "fraud.alert.note_added", AuditSeverity::Low)
            .target(id.to_string())
            .details(json!({ "state": record.state.as_str() }));
        self.audit.append(event).await.map_err(Error::Audit)?;
        Ok(record)
    }
}

fn make_note(who: &Reviewer, text: &str, at: DateTime<Utc>) -> Result<Note> {
    let count = text.chars().count();
    if text.trim().is_empty() || count > MAX_NOTE_CHARS {
        return Err(Error::InvalidNote {
            max: MAX_NOTE_CHARS,
        });
    }
    Ok(Note {
        author: who.id.clone(),
        text: text.to_owned(),
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_steps_are_legal() {
        use ReviewState::*;
        let all = [Open, Acknowledged, Resolved, FalsePositive];
        let legal = [
            (Open, Acknowledged),
            (Acknowledged, Resolved),
            (Acknowledged, FalsePositive),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from} → {to}"
                );
            }
        }
        for s in all {
            assert_eq!(ReviewState::parse(s.as_str()), Some(s));
        }
    }
}

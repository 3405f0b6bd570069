//! The tamper-evident audit log shared by every binary.
//!
//! Each record's hash is `SHA-256(prev_hash ‖ canonical row)`, where the canonical row is a
//! JSON object with keys in byte order, written by [`AuditRecord::canonical_bytes`]. Storage
//! lives elsewhere (Postgres in `haven-db`, [`MemoryAuditLog`] here); every store must
//! serialize appends so that the records form one chain without forks.

use std::fmt::Write as _;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How serious an audited action is. Key access is `High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Routine reads and writes.
    Info,
    /// Noteworthy but harmless.
    Low,
    /// Changes to configuration, roles or state an operator should know about.
    Medium,
    /// Access to secrets, failed security checks.
    High,
    /// Signs of compromise.
    Critical,
}

impl Severity {
    /// Every severity, least serious first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The wire name, e.g. `HIGH`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// Parses a wire name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Something that happened and must be recorded: who did what to which object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The principal (user id, API key prefix, `system`, …).
    pub actor: String,
    /// What was done, dotted lower case, e.g. `wallet.export_private_key`.
    pub action: String,
    /// The object acted on, e.g. a wallet id.
    pub target: Option<String>,
    /// How serious it is.
    pub severity: Severity,
    /// The request id, when the action came through HTTP.
    pub request_id: Option<String>,
    /// The client address, when known.
    pub ip: Option<String>,
    /// Structured context; must not contain secrets.
    pub details: Value,
}

impl AuditEvent {
    /// An event with no target, request, ip or details.
    pub fn new(actor: impl Into<String>, action: impl Into<String>, severity: Severity) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            target: None,
            severity,
            request_id: None,
            ip: None,
            details: Value::Object(Default::default()),
        }
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the request id.
    pub fn request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Sets the client address.
    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }

    /// Sets the details.
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The hash before the first record.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// A stored audit event with its position and hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// The event.
    pub event: AuditEvent,
    /// When it was appended, truncated to microseconds (what Postgres keeps).
    pub created_at: DateTime<Utc>,
    /// The previous record's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: [u8; 32],
    /// `SHA-256(prev_hash ‖ canonical_bytes)`.
    pub hash: [u8; 32],
}

impl AuditRecord {
    /// Builds the record that follows `prev_hash`, computing its hash.
    pub fn chain(
        seq: i64,
        event: AuditEvent,
        created_at: DateTime<Utc>,
        prev_hash: [u8; 32],
    ) -> Self {
        let created_at = created_at.trunc_subsecs(6);
        let mut record = Self {
            seq,
            event,
            created_at,
            prev_hash,
            hash: [0; 32],
        };
        record.hash = record.expected_hash();
        record
    }

    /// The hash this record should carry given its contents and `prev_hash`.
    pub fn expected_hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash);
        hasher.update(self.canonical_bytes());
        hasher.finalize().into()
    }

    /// The canonical serialization that is hashed: a JSON object with keys sorted bytewise,
    /// no insignificant whitespace, and `created_at` in RFC 3339 with microseconds.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let e = &self.event;
        let row = serde_json::json!({
            "seq": self.seq,
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "severity": e.severity.as_str(),
            "request_id": e.request_id,
            "ip": e.ip,
            "details": e.details,
            "created_at": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        });
        let mut out = String::new();
        write_canonical(&row, &mut out);
        out.into_bytes()
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            let _ = write!(out, "{value}");
        }
    }
}

/// Where the first break in a chain is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainBreak {
    /// The record's contents do not match its hash (it was edited).
    #[error("audit record {seq} was modified: its hash does not match its contents")]
    Modified {
        /// Position of the record.
        seq: i64,
    },
    /// The record does not point at the previous record's hash (one was removed or inserted).
    #[error("audit record {seq} does not follow the previous record")]
    Unlinked {
        /// Position of the record.
        seq: i64,
    },
    /// A sequence number is missing.
    #[error("audit record {expected} is missing (found {found})")]
    Gap {
        /// The sequence number expected.
        expected: i64,
        /// The one found instead.
        found: i64,
    },
    /// The record at an anchor's position no longer has the anchored hash: that record or
    /// one before it was changed, and the chain after it recomputed.
    #[error("audit record {seq} does not match the anchor: it or a record before it was rewritten")]
    AnchorMismatch {
        /// The anchor's position.
        seq: i64,
    },
    /// The chain ends before an anchor's position: its tail was cut.
    #[error("the audit log ends at record {last}, before the anchor at {anchor}: its tail was cut")]
    Truncated {
        /// The anchor's position.
        anchor: i64,
        /// The last record present.
        last: i64,
    },
}

impl ChainBreak {
    /// The first sequence number the break concerns.
    pub fn seq(&self) -> i64 {
        match self {
            ChainBreak::Modified { seq }
            | ChainBreak::Unlinked { seq }
            | ChainBreak::AnchorMismatch { seq } => *seq,
            ChainBreak::Gap { expected, .. } => *expected,
            ChainBreak::Truncated { last, .. } => last + 1,
        }
    }
}

/// A `(seq, hash)` pair of the chain recorded outside the database (`haven-admin audit
/// head`), so that a later verification can tell whether records up to it were rewritten
/// (with the chain recomputed after them) or the tail was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The anchored record's position.
    pub seq: i64,
    /// Its hash.
    pub hash: [u8; 32],
}

impl std::str::FromStr for Anchor {
    type Err = String;

    /// Parses `<seq>:<64 hex digits>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = s
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not <seq>:<hash>"))?;
        let seq: i64 = seq
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{seq:?} is not a sequence number (1 or more)"))?;
        let bytes = hex::decode(hash).map_err(|_| format!("{hash:?} is not hex"))?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the hash must be 32 bytes (64 hex digits)".to_owned())?;
        Ok(Self { seq, hash })
    }
}

/// Verifies records in order (starting at seq 1) and returns the head hash, or the first break.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<[u8; 32], ChainBreak> {
    let mut verifier = ChainVerifier::new();
    for record in records {
        verifier.push(record)?;
    }
    Ok(verifier.head())
}

/// Incremental chain verification, for walking a large table page by page.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    head: [u8; 32],
    anchors: Vec<Anchor>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier expecting seq 1 after [`GENESIS_HASH`].
    pub fn new() -> Self {
        Self {
            expected_seq: 1,
            head: GENESIS_HASH,
            anchors: Vec::new(),
        }
    }

    /// Also checks that the record at `anchor.seq` has `anchor.hash`, and (at
    /// [`ChainVerifier::finish`]) that the chain reaches it.
    #[must_use]
    pub fn with_anchor(mut self, anchor: Anchor) -> Self {
        self.anchors.push(anchor);
        self
    }

    /// After the last record: refuses a chain that ends before one of its anchors.
    pub fn finish(&self) -> Result<(), ChainBreak> {
        let last = self.count();
        match self.anchors.iter().find(|a| a.seq > last) {
            Some(anchor) => Err(ChainBreak::Truncated {
                anchor: anchor.seq,
                last,
            }),
            None => Ok(()),
        }
    }

    /// Checks the next record.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        if record.seq != self.expected_seq {
            return Err(ChainBreak::Gap {
                expected: self.expected_seq,
                found: record.seq,
            });
        }
        if record.expected_hash() != record.hash {
            return Err(ChainBreak::Modified { seq: record.seq });
        }
        if record.prev_hash != self.head {
            return Err(ChainBreak::Unlinked { seq: record.seq });
        }
        if self
            .anchors
            .iter()
            .any(|a| a.seq == record.seq && a.hash != record.hash)
        {
            return Err(ChainBreak::AnchorMismatch { seq: record.seq });
        }
        self.head = record.hash;
        self.expected_seq += 1;
        Ok(())
    }

    /// The hash of the last verified record.
    pub fn head(&self) -> [u8; 32] {
        self.head
    }

    /// How many records were verified.
    pub fn count(&self) -> i64 {
        self.expected_seq - 1
    }
}

/// A failure to append to the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The store could not be reached or refused the write.
    #[error("audit store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// An append-only, hash-chained audit log.
///
/// **Invariant:** appends are serialized: concurrent `append` calls yield consecutive `seq`
/// values and each record's `prev_hash` is the hash of the record before it.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Appends `event` and returns the stored record.
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError>;
}

/// An in-memory audit log for tests and library users.
#[derive(Debug, Default)]
pub struct MemoryAuditLog {
    records: Mutex<Vec<AuditRecord>>,
}

impl MemoryAuditLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record, in order.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl AuditSink for MemoryAuditLog {
    async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        let mut records = self
            .records
            .lock()
            .map_err(|_| AuditError::Unavailable("audit log lock poisoned".into()))?;
        let (seq, prev) = records
            .last()
            .map_or((1, GENESIS_HASH), |r| (r.seq + 1, r.hash));
        let record = AuditRecord::chain(seq, event, Utc::now(), prev);
        records.push(record.clone());
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn event(i: usize) -> AuditEvent {
        AuditEvent::new("alice", "wallet.sign", Severity::Info)
            .target(format!("w{i}"))
            .details(serde_json::json!({"b": 1, "a": [true, null, "x"], "n": {"z": 1.5, "y": -2}}))
    }

    #[tokio::test]
    async fn parallel_appends_form_one_chain() {
        let log = Arc::new(MemoryAuditLog::new());
        let mut tasks = Vec::new();
        for i in 0..100 {
            let log = log.clone();
            tasks.push(tokio::spawn(
                async move { log.append(event(i)).await.unwrap() },
            ));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let records = log.records();
        assert_eq!(records.len(), 100);
        assert_eq!(verify_chain(&records).unwrap(), records[99].hash);
    }

    #[test]
    fn edits_removals_and_gaps_are_named() {
        let mut records = Vec::new();
        let mut prev = GENESIS_HASH;
        for i in 0..5 {
            let r = AuditRecord::chain(i as i64 + 1, event(i), Utc::now(), prev);
            prev = r.hash;
            records.push(r);
        }
        let mut edited = records.clone();
        edited[2].event.actor = "mallory".into();
        assert_eq!(verify_chain(&edited), Err(ChainBreak::Modified { seq: 3 }));

        let mut rehashed = records.clone();
        rehashed[2].event.actor = "mallory".into();
        rehashed[2].hash = rehashed[2].expected_hash();
        assert_eq!(
            verify_chain(&rehashed),
            Err(ChainBreak::Unlinked { seq: 4 })
        );

        let mut removed = records.clone();
        removed.remove(1);
        assert_eq!(
            verify_chain(&removed),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );
    }

    fn chain_of(events: impl IntoIterator<Item = AuditEvent>) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH;
        events
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let r = AuditRecord::chain(i as i64 + 1, e, Utc::now(), prev);
                prev = r.hash;
                r
            })
            .collect()
    }

    fn verify_anchored(records: &[AuditRecord], anchor: Anchor) -> Result<(), ChainBreak> {
        let mut verifier = ChainVerifier::new().with_anchor(anchor);
        for r in records {
            verifier.push(r)?;
        }
        verifier.finish()
    }

    /// A chain rewritten from some record on (every hash recomputed) verifies on its own;
    /// an anchor taken before the rewrite catches it, and catches a cut tail.
    #[test]
    fn anchors_catch_recomputed_chains_and_cut_tails() {
        let records = chain_of((0..6).map(event));
        let anchor: Anchor = format!("4:{}", hex::encode(records[3].hash))
            .parse()
            .unwrap();
        assert_eq!(verify_anchored(&records, anchor), Ok(()));

        let mut events: Vec<AuditEvent> = records.iter().map(|r| r.event.clone()).collect();
        events[1].actor = "mallory".into();
        let rewritten = chain_of(events);
        assert!(verify_chain(&rewritten).is_ok(), "consistent on its own");
        assert_eq!(
            verify_anchored(&rewritten, anchor),
            Err(ChainBreak::AnchorMismatch { seq: 4 })
        );

        assert_eq!(
            verify_anchored(&records[..3], anchor),
            Err(ChainBreak::Truncated { anchor: 4, last: 3 })
        );
        // Rows after the anchor may be added freely.
        assert_eq!(verify_anchored(&records, anchor), Ok(()));
        for bad in ["4", "0:00", "x:00", "4:zz", "4:abcd"] {
            assert!(bad.parse::<Anchor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn canonical_form_sorts_keys_and_ignores_insertion_order() {
        let ts = Utc::now();
        let mut a = event(0);
        a.details = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        let mut b = event(0);
        b.details = serde_json::from_str(r#"{"a":2,"b":1}"#).unwrap();
        let ra = AuditRecord::chain(1, a, ts, GENESIS_HASH);
        let rb = AuditRecord::chain(1, b, ts, GENESIS_HASH);
        assert_eq!(ra.hash, rb.hash);
        let text = String::from_utf8(ra.canonical_bytes()).unwrap();
        assert!(
            text.starts_with(r#"{"action":"wallet.sign","actor":"alice","created_at":""#),
            "{text}"
        );
    }
}

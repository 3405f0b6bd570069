use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::{
    AuditError, AuditEvent, AuditRecord, AuditSink, ChainBreak, ChainVerifier, GENESIS_HASH,
    Severity,
};

use crate::pool::get;
use crate::schema::audit_log;
use crate::{Error, PgPool, Result};

/// Transaction-scoped advisory lock that serializes appends ("havenAUD").
const APPEND_LOCK: i64 = 0x6861_7665_6e41_5544;

/// The hash-chained `audit_log` table.
///
/// **Invariant:** appends take a transaction-scoped advisory lock, so concurrent appends from
/// any number of processes form one chain (`seq` without gaps, each `prev_hash` the hash of the
/// previous row). A trigger refuses `UPDATE`, `DELETE` and `TRUNCATE`.
#[derive(Debug, Clone)]
pub struct PgAuditLog {
    pool: PgPool,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log)]
struct AuditRow {
    seq: i64,
    actor: String,
    action: String,
    target: Option<String>,
    severity: String,
    request_id: Option<String>,
    ip: Option<String>,
    details: serde_json::Value,
    created_at: DateTime<Utc>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn hash32(raw: &[u8], seq: i64) -> Result<[u8; 32]> {
    raw.try_into().map_err(|_| Error::Corrupt {
        table: "audit_log",
        reason: format!("row {seq} has a hash of {} bytes", raw.len()),
    })
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = Error;
    fn try_from(row: AuditRow) -> Result<Self> {
        let severity = Severity::parse(&row.severity).ok_or_else(|| Error::Corrupt {
            table: "audit_log",
            reason: format!("row {} has severity {:?}", row.seq, row.severity),
        })?;
        Ok(AuditRecord {
            seq: row.seq,
            prev_hash: hash32(&row.prev_hash, row.seq)?,
            hash: hash32(&row.hash, row.seq)?,
            created_at: row.created_at,
            event: AuditEvent {
                actor: row.actor,
                action: row.action,
                target: row.target,
                severity,
                request_id: row.request_id,
                ip: row.ip,
                details: row.details,
            },
        })
    }
}

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records verified.
    pub count: i64,
    /// Hash of the last record ([`GENESIS_HASH`] when empty).
    pub head: [u8; 32],
}

/// Which records [`PgAuditLog::search`] returns; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only actions starting with this prefix (`"wallet."`).
    pub action_prefix: Option<String>,
    /// Only this exact action.
    pub action: Option<String>,
    /// Only this exact target.
    pub target: Option<String>,
    /// Only records of at least this severity.
    pub min_severity: Option<Severity>,
    /// Only records created at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only records created before this time.
    pub to: Option<DateTime<Utc>>,
}

impl PgAuditLog {
    /// The log on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Appends inside the caller's open transaction, so that the audit row commits or rolls
    /// back with the change it records.
    pub async fn append_in(conn: &mut AsyncPgConnection, event: AuditEvent) -> Result<AuditRecord> {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(APPEND_LOCK)
            .execute(conn)
            .await?;
        let last: Option<(i64, Vec<u8>)> = audit_log::table
            .order(audit_log::seq.desc())
            .select((audit_log::seq, audit_log::hash))
            .first(conn)
            .await
            .optional()?;
        let (seq, prev) = match last {
            Some((seq, hash)) => (seq + 1, hash32(&hash, seq)?),
            None => (1, GENESIS_HASH),
        };
        let record = AuditRecord::chain(seq, event, Utc::now(), prev);
        let e = &record.event;
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::seq.eq(record.seq),
                audit_log::actor.eq(&e.actor),
                audit_log::action.eq(&e.action),
                audit_log::target.eq(&e.target),
                audit_log::severity.eq(e.severity.as_str()),
                audit_log::request_id.eq(&e.request_id),
                audit_log::ip.eq(&e.ip),
                audit_log::details.eq(&e.details),
                audit_log::created_at.eq(record.created_at),
                audit_log::prev_hash.eq(record.prev_hash.as_slice()),
                audit_log::hash.eq(record.hash.as_slice()),
            ))
            .execute(conn)
            .await?;
        Ok(record)
    }

    /// The last record's sequence number and hash, if any.
    pub async fn head(&self) -> Result<Option<(i64, [u8; 32])>> {
        let mut conn = get(&self.pool).await?;
        let last: Option<(i64, Vec<u8>)> = audit_log::table
            .order(audit_log::seq.desc())
            .select((audit_log::seq, audit_log::hash))
            .first(&mut conn)
            .await
            .optional()?;
        last.map(|(seq, hash)| Ok((seq, hash32(&hash, seq)?)))
            .transpose()
    }

    /// Up to `limit` records after `after_seq`, in order.
    pub async fn page(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<AuditRow> = audit_log::table
            .filter(audit_log::seq.gt(after_seq))
            .order(audit_log::seq.asc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(&mut conn)
            .await?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    /// Up to `limit` records matching `filter`, newest first, with a sequence number below
    /// `before` when given (pass the last record's `seq` for the next page).
    pub async fn search(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>> {
        let mut conn = get(&self.pool).await?;
        let mut query = audit_log::table.into_boxed();
        if let Some(prefix) = &filter.action_prefix {
            let escaped = prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            query = query.filter(audit_log::action.like(format!("{escaped}%")));
        }
        if let Some(action) = &filter.action {
            query = query.filter(audit_log::action.eq(action.clone()));
        }
        if let Some(target) = &filter.target {
            query = query.filter(audit_log::target.eq(target.clone()));
        }
        if let Some(min) = filter.min_severity {
            let names: Vec<&str> = Severity::ALL
                .iter()
                .filter(|s| **s >= min)
                .map(|s| s.as_str())
                .collect();
            query = query.filter(audit_log::severity.eq_any(names));
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_log::created_at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(audit_log::created_at.lt(to));
        }
        if let Some(before) = before {
            query = query.filter(audit_log::seq.lt(before));
        }
        let rows: Vec<AuditRow> = query
            .order(audit_log::seq.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(&mut conn)
            .await?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    /// Walks the whole chain page by page. `Ok(Err(break))` names the first broken row.
    pub async fn verify(&self) -> Result<std::result::Result<ChainReport, ChainBreak>> {
        self.verify_anchored(&[]).await
    }

    /// [`PgAuditLog::verify`], also checking that the record at each anchor's `seq` still
    /// has the anchored hash and that the chain reaches it.
    pub async fn verify_anchored(
        &self,
        anchors: &[haven_core::audit::Anchor],
    ) -> Result<std::result::Result<ChainReport, ChainBreak>> {
        let mut verifier = anchors
            .iter()
            .fold(ChainVerifier::new(), |v, a| v.with_anchor(*a));
        let mut after = 0;
        loop {
            let page = self.page(after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in &page {
                if let Err(broken) = verifier.push(record) {
                    return Ok(Err(broken));
                }
            }
        }
        if let Err(broken) = verifier.finish() {
            return Ok(Err(broken));
        }
        Ok(Ok(ChainReport {
            count: verifier.count(),
            head: verifier.head(),
        }))
    }
}

#[async_trait]
impl AuditSink for PgAuditLog {
    async fn append(&self, event: AuditEvent) -> std::result::Result<AuditRecord, AuditError> {
        let unavailable = |e: Error| AuditError::Unavailable(Box::new(e));
        let mut conn = get(&self.pool).await.map_err(unavailable)?;
        conn.transaction::<_, Error, _>(async |conn| Self::append_in(conn, event).await)
            .await
            .map_err(unavailable)
    }
}

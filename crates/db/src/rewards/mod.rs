//! The rewards program in Postgres: members and their partner identities, the events they
//! earn from, the reward ledger and the outbox of work the worker owes it.
//!
//! **Invariants:**
//! - one ledger row per business key (`rewards.business_key` is unique), and its mint's
//!   `tx_id` is derived from that key, so however often an event arrives (webhook redelivery,
//!   sync, replay) a reward is recorded and minted at most once;
//! - an accepted event, its reward, its fraud alerts, the worker's job and the outbound
//!   webhook messages it causes commit in one transaction ([`PgRewards::ingest`]), or none of
//!   them does;
//! - every state change is a compare-and-set on the row's state, and writes its webhook
//!   messages (and audit row, when an operator caused it) in the same transaction.

mod grant;
mod intake;
mod jobs;
mod ledger;
mod members;
mod sync;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use haven_rewards::{Hnv, RewardKind, RewardState};
use uuid::Uuid;

pub use grant::{AccrualReport, Grant, Granted, accrual_key};
pub use intake::{Accepted, Intake, IntakeError};
pub use jobs::{MemberLock, RewardAction, RewardJob};
pub use ledger::{InboxEntry, Ingest, IngestOutcome, LedgerTotals, RewardUpdate};
pub use members::{Identity, Member, MemberTotals, PayoutAddress};
pub use sync::{SyncReport, feed};

use crate::{Error, PgPool, Result};

/// The rewards program's tables (cheap to clone).
#[derive(Debug, Clone)]
pub struct PgRewards {
    pub(crate) pool: PgPool,
}

impl PgRewards {
    /// The store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// One row of the reward ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardRecord {
    /// Its id.
    pub id: Uuid,
    /// The business key it is unique on (`aurora:booking:b-1`).
    pub business_key: String,
    /// `aurora`, `tribe`, `operator`, …
    pub source: String,
    /// What earned it.
    pub kind: RewardKind,
    /// The partner's id of what earned it (booking, event, contribution, …).
    pub external_id: String,
    /// Who receives it.
    pub member_id: Uuid,
    /// How much.
    pub amount: Hnv,
    /// The version of the rules that priced it.
    pub rules_version: String,
    /// Why (from the pricing).
    pub reason: String,
    /// Where it is in its life.
    pub state: RewardState,
    /// The mint's transaction id.
    pub tx_id: String,
    /// The partner event that created it.
    pub event_id: Option<i64>,
    /// The fraud alert that holds (or held) it.
    pub alert_id: Option<Uuid>,
    /// The reversal burn's transaction id.
    pub reversal_tx_id: Option<String>,
    /// What the reversal burns (or burned).
    pub reversed_amount: Option<Hnv>,
    /// What the reversal could not burn (the member had spent it).
    pub shortfall: Option<Hnv>,
    /// The last failure, for operators.
    pub error: Option<String>,
    /// Raised by every change.
    pub version: i64,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When its mint was confirmed.
    pub confirmed_at: Option<DateTime<Utc>>,
}

impl RewardRecord {
    /// The message body of the outbound `reward.*` webhooks.
    pub fn webhook_payload(&self, event_type: &str) -> serde_json::Value {
        serde_json::json!({
            "type": event_type,
            "reward": {
                "id": self.id,
                "member_id": self.member_id,
                "source": self.source,
                "kind": self.kind.as_str(),
                "external_id": self.external_id,
                "amount_hnv": self.amount.to_string(),
                "amount_base_units": self.amount.base_units().to_string(),
                "state": self.state.as_str(),
                "tx_id": self.tx_id,
                "rules_version": self.rules_version,
                "reversed_hnv": self.reversed_amount.map(|a| a.to_string()),
                "shortfall_hnv": self.shortfall.map(|a| a.to_string()),
            },
        })
    }
}

/// The columns every query of a reward selects, amounts as text.
pub(crate) const REWARD_COLUMNS: &str = "id, business_key, source, kind, external_id, member_id, \
    amount::text AS amount, rules_version, reason, state, tx_id, event_id, alert_id, \
    reversal_tx_id, reversed_amount::text AS reversed_amount, shortfall::text AS shortfall, \
    error, version, created_at, updated_at, confirmed_at";

#[derive(QueryableByName)]
pub(crate) struct RewardRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    business_key: String,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    external_id: String,
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = Text)]
    amount: String,
    #[diesel(sql_type = Text)]
    rules_version: String,
    #[diesel(sql_type = Text)]
    reason: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Text)]
    tx_id: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    event_id: Option<i64>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    alert_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    reversal_tx_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    reversed_amount: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    shortfall: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    confirmed_at: Option<DateTime<Utc>>,
}

/// A NUMERIC amount read as text.
pub(crate) fn hnv_of(table: &'static str, text: &str) -> Result<Hnv> {
    text.parse::<u128>()
        .map(Hnv::from_base_units)
        .map_err(|_| Error::Corrupt {
            table,
            reason: format!("amount {text:?} is not a whole number of base units"),
        })
}

impl TryFrom<RewardRow> for RewardRecord {
    type Error = Error;

    fn try_from(r: RewardRow) -> Result<Self> {
        let corrupt = |reason: String| Error::Corrupt {
            table: "rewards",
            reason,
        };
        Ok(Self {
            kind: r
                .kind
                .parse()
                .map_err(|_| corrupt(format!("kind {:?}", r.kind)))?,
            state: r
                .state
                .parse()
                .map_err(|_| corrupt(format!("state {:?}", r.state)))?,
            amount: hnv_of("rewards", &r.amount)?,
            reversed_amount: r
                .reversed_amount
                .as_deref()
                .map(|a| hnv_of("rewards", a))
                .transpose()?,
            shortfall: r
                .shortfall
                .as_deref()
                .map(|a| hnv_of("rewards", a))
                .transpose()?,
            id: r.id,
            business_key: r.business_key,
            source: r.source,
            external_id: r.external_id,
            member_id: r.member_id,
            rules_version: r.rules_version,
            reason: r.reason,
            tx_id: r.tx_id,
            event_id: r.event_id,
            alert_id: r.alert_id,
            reversal_tx_id: r.reversal_tx_id,
            error: r.error,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            confirmed_at: r.confirmed_at,
        })
    }
}

pub(crate) fn records(rows: Vec<RewardRow>) -> Result<Vec<RewardRecord>> {
    rows.into_iter().map(RewardRecord::try_from).collect()
}

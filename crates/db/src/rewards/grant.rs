//! Rewards that no partner event creates: an operator's mint (`POST /api/v1/token/mint`) and
//! the weekly staking accrual. They take the same ledger path as partner rewards — one row
//! per business key, minted by the worker under the key's deterministic `tx_id` — so a
//! retried request or a second accrual run for one week pays nothing more.

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::AuditEvent;
use haven_fraud::Alert;
use haven_rewards::{BusinessKey, Hnv, IsoWeek, RewardKind, RewardState, StakingRules};
use uuid::Uuid;

use super::ledger::{enqueue_subscribed, schedule_in, state_event};
use super::{PgRewards, REWARD_COLUMNS, RewardRecord, RewardRow, hnv_of};
use crate::pool::get;
use crate::{Error, PgAlertStore, PgAuditLog, Result};

/// One reward to record outside a partner event ([`PgRewards::grant`]).
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    /// Its once-only key.
    pub key: BusinessKey,
    /// Who receives it.
    pub member_id: Uuid,
    /// How much (more than zero).
    pub amount: Hnv,
    /// Why, for the member and the operators.
    pub reason: String,
    /// The rules version that priced it (`manual` for an operator's mint).
    pub rules_version: String,
    /// Fraud alerts it raised, stored with it; a HIGH one holds it when `hold`.
    pub alerts: &'a [Alert],
    /// Whether a HIGH alert holds it.
    pub hold: bool,
    /// The audit row of who asked, written in the same transaction.
    pub audit: Option<AuditEvent>,
}

/// What [`PgRewards::grant`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granted {
    /// Recorded now.
    New(RewardRecord),
    /// The key was recorded before: this is that reward (compare before treating it as the
    /// same request).
    Existing(RewardRecord),
}

impl Granted {
    /// The reward, new or existing.
    pub fn reward(&self) -> &RewardRecord {
        match self {
            Granted::New(r) | Granted::Existing(r) => r,
        }
    }
}

/// What one staking accrual run did ([`PgRewards::accrue_staking`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccrualReport {
    /// The week, `2026-W49`.
    pub week: String,
    /// Stakes active at some time in the week.
    pub stakes: usize,
    /// Rewards recorded by this run.
    pub paid: usize,
    /// Stakes whose accrual for the week was recorded before.
    pub already_paid: usize,
    /// Stakes that earned nothing (no whole day active, or less than a base unit).
    pub nothing_due: usize,
    /// What this run recorded.
    pub total: Hnv,
}

/// The business key of a stake's accrual for `week`: `<source>:staking:<stake id>/<week>`.
pub fn accrual_key(source: &str, stake_id: &str, week: IsoWeek) -> BusinessKey {
    BusinessKey::new(
        source,
        RewardKind::Staking,
        format!("{stake_id}/{week}"),
        None::<String>,
    )
}

impl PgRewards {
    /// Records `grant` once per business key, with its alerts, mint job, `reward.*` webhook
    /// and audit row in one transaction.
    pub async fn grant(&self, grant: Grant<'_>) -> Result<Granted> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |conn| grant_in(conn, grant).await)
            .await
    }

    /// Records the staking rewards of `week` for every stake active in it, each once per
    /// (stake, week) whatever the number of runs. Refuses a week that is not over (`now`
    /// before its end): its days are not earned yet.
    pub async fn accrue_staking(
        &self,
        rules: &StakingRules,
        rules_version: &str,
        week: IsoWeek,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<AccrualReport> {
        if now < week.end() {
            return Err(Error::Invalid {
                reason: format!("week {week} is not over until {}", week.end().to_rfc3339()),
            });
        }
        #[derive(QueryableByName)]
        struct StakeRow {
            #[diesel(sql_type = Text)]
            source: String,
            #[diesel(sql_type = Text)]
            stake_id: String,
            #[diesel(sql_type = SqlUuid)]
            member_id: Uuid,
            #[diesel(sql_type = Text)]
            amount: String,
            #[diesel(sql_type = Timestamptz)]
            started_at: chrono::DateTime<chrono::Utc>,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            ends_at: Option<chrono::DateTime<chrono::Utc>>,
        }
        let stakes: Vec<StakeRow> = {
            let mut conn = get(&self.pool).await?;
            diesel::sql_query(
                "SELECT source, stake_id, member_id, amount::text AS amount, started_at, ends_at \
                 FROM stakes WHERE started_at < $2 AND (ends_at IS NULL OR ends_at > $1) \
                 ORDER BY started_at, id",
            )
            .bind::<Timestamptz, _>(week.start())
            .bind::<Timestamptz, _>(week.end())
            .load(&mut conn)
            .await?
        };
        let mut report = AccrualReport {
            week: week.to_string(),
            stakes: stakes.len(),
            ..AccrualReport::default()
        };
        for stake in stakes {
            let amount = hnv_of("stakes", &stake.amount)?;
            let days = haven_rewards::active_days(week, stake.started_at, stake.ends_at);
            let earned = haven_rewards::staking_interest(rules, amount, days).ok_or_else(|| {
                Error::Invalid {
                    reason: format!("stake {} is too large to accrue", stake.stake_id),
                }
            })?;
            if earned.is_zero() {
                report.nothing_due += 1;
                continue;
            }
            let grant = Grant {
                key: accrual_key(&stake.source, &stake.stake_id, week),
                member_id: stake.member_id,
                amount: earned,
                reason: format!(
                    "{earned} HNV: {} % a year on {amount} HNV staked for {days} of the 7 days \
                     of {week} (actual/365, truncated to whole base units)",
                    percent(rules.apy())
                ),
                rules_version: rules_version.to_owned(),
                alerts: &[],
                hold: false,
                audit: None,
            };
            match self.grant(grant).await? {
                Granted::New(reward) => {
                    report.paid += 1;
                    report.total = report.total.checked_add(reward.amount).unwrap_or(Hnv::MAX);
                }
                Granted::Existing(_) => report.already_paid += 1,
            }
        }
        Ok(report)
    }
}

/// `0.10` → `10`.
fn percent(rate: haven_rewards::Decimal) -> String {
    rate.checked_mul(haven_rewards::Decimal::from_int(100))
        .map_or_else(|| rate.to_string(), |p| p.to_string())
}

async fn grant_in(conn: &mut AsyncPgConnection, grant: Grant<'_>) -> Result<Granted> {
    if grant.amount.is_zero() {
        return Err(Error::Invalid {
            reason: "a reward must be more than zero".into(),
        });
    }
    let alert_id = grant
        .alerts
        .iter()
        .find(|a| a.severity >= haven_fraud::Severity::High)
        .map(|a| a.id);
    let state = if grant.hold && alert_id.is_some() {
        RewardState::Held
    } else {
        RewardState::Pending
    };
    let key = &grant.key;
    let inserted: Option<RewardRow> = diesel::sql_query(format!(
        "INSERT INTO rewards (id, business_key, source, kind, external_id, member_id, amount, \
           rules_version, reason, state, tx_id, alert_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8, $9, $10, $11, $12) \
         ON CONFLICT (business_key) DO NOTHING RETURNING {REWARD_COLUMNS}"
    ))
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<Text, _>(key.as_string())
    .bind::<Text, _>(&key.source)
    .bind::<Text, _>(key.kind.as_str())
    .bind::<Text, _>(&key.external_id)
    .bind::<SqlUuid, _>(grant.member_id)
    .bind::<Text, _>(grant.amount.base_units().to_string())
    .bind::<Text, _>(&grant.rules_version)
    .bind::<Text, _>(&grant.reason)
    .bind::<Text, _>(state.as_str())
    .bind::<Text, _>(key.tx_id())
    .bind::<Nullable<SqlUuid>, _>(alert_id)
    .get_result(conn)
    .await
    .optional()?;
    let Some(row) = inserted else {
        let existing: RewardRow = diesel::sql_query(format!(
            "SELECT {REWARD_COLUMNS} FROM rewards WHERE business_key = $1"
        ))
        .bind::<Text, _>(key.as_string())
        .get_result(conn)
        .await?;
        return Ok(Granted::Existing(RewardRecord::try_from(existing)?));
    };
    let reward = RewardRecord::try_from(row)?;
    for alert in grant.alerts {
        PgAlertStore::insert_in(conn, alert).await?;
    }
    if reward.state == RewardState::Pending {
        schedule_in(conn, reward.id, "mint").await?;
    }
    if let Some(event_type) = state_event(reward.state) {
        enqueue_subscribed(conn, event_type, &reward.webhook_payload(event_type)).await?;
    }
    if let Some(audit) = grant.audit {
        let audit = audit.target(format!("reward:{}", reward.id));
        PgAuditLog::append_in(conn, audit).await?;
    }
    Ok(Granted::New(reward))
}

//! The worker's side of the ledger: claiming due jobs with a lease.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{PgRewards, REWARD_COLUMNS, RewardRecord, RewardRow};
use crate::pool::get;
use crate::{Error, Result};

/// A member's reversal lock ([`PgRewards::lock_member`]).
pub struct MemberLock {
    conn: diesel_async::AsyncPgConnection,
}

impl std::fmt::Debug for MemberLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberLock").finish_non_exhaustive()
    }
}

impl MemberLock {
    /// Releases the lock and closes its connection.
    pub async fn release(mut self) -> Result<()> {
        diesel::sql_query("SELECT pg_advisory_unlock_all()")
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }
}

/// What a job does to its reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardAction {
    /// Mint it to the member's custodial wallet.
    Mint,
    /// Reverse it (a cancelled booking): burn what the member still holds of it.
    Reverse,
}

impl RewardAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RewardAction::Mint => "mint",
            RewardAction::Reverse => "reverse",
        }
    }
}

/// A claimed job: the lease is the claimer's until it ends.
#[derive(Debug, Clone)]
pub struct RewardJob {
    /// The job's id.
    pub id: i64,
    /// Mint or reverse.
    pub action: RewardAction,
    /// Claims so far, this one included.
    pub attempts: i32,
    /// The reward as it was when claimed.
    pub reward: RewardRecord,
    /// The member's custodial wallet (id, address), if it has one yet.
    pub wallet: Option<(String, [u8; 20])>,
}

#[derive(QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    reward_id: Uuid,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

#[derive(QueryableByName)]
struct WalletRow {
    #[diesel(sql_type = Nullable<Text>)]
    wallet_id: Option<String>,
    #[diesel(sql_type = Nullable<Bytea>)]
    wallet_address: Option<Vec<u8>>,
}

impl PgRewards {
    /// Claims up to `limit` due jobs for `lease` (`FOR UPDATE SKIP LOCKED`: concurrent
    /// workers never claim the same job while its lease runs). Mint jobs come before
    /// reversals of the same moment.
    pub async fn claim_jobs(&self, limit: i64, lease: Duration) -> Result<Vec<RewardJob>> {
        let mut conn = get(&self.pool).await?;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let claimed: Vec<ClaimRow> = diesel::sql_query(
            "UPDATE reward_jobs j SET locked_until = now() + $2 * interval '1 millisecond', \
               attempts = j.attempts + 1 \
             WHERE j.id IN (SELECT id FROM reward_jobs \
               WHERE done_at IS NULL AND due_at <= now() \
                 AND (locked_until IS NULL OR locked_until <= now()) \
               ORDER BY due_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING j.id, j.reward_id, j.action, j.attempts",
        )
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(lease_ms)
        .load(&mut conn)
        .await?;
        let mut jobs = Vec::with_capacity(claimed.len());
        for claim in claimed {
            let row: RewardRow = diesel::sql_query(format!(
                "SELECT {REWARD_COLUMNS} FROM rewards WHERE id = $1"
            ))
            .bind::<SqlUuid, _>(claim.reward_id)
            .get_result(&mut conn)
            .await?;
            let reward = RewardRecord::try_from(row)?;
            let wallet: WalletRow =
                diesel::sql_query("SELECT wallet_id, wallet_address FROM members WHERE id = $1")
                    .bind::<SqlUuid, _>(reward.member_id)
                    .get_result(&mut conn)
                    .await?;
            let wallet = match (wallet.wallet_id, wallet.wallet_address) {
                (Some(id), Some(address)) => Some((
                    id,
                    address.try_into().map_err(|_| Error::Corrupt {
                        table: "members",
                        reason: "wallet_address is not 20 bytes".into(),
                    })?,
                )),
                _ => None,
            };
            let action = match claim.action.as_str() {
                "mint" => RewardAction::Mint,
                "reverse" => RewardAction::Reverse,
                other => {
                    return Err(Error::Corrupt {
                        table: "reward_jobs",
                        reason: format!("action {other:?}"),
                    });
                }
            };
            jobs.push(RewardJob {
                id: claim.id,
                action,
                attempts: claim.attempts,
                reward,
                wallet,
            });
        }
        Ok(jobs)
    }

    /// The job is done (it is never claimed again unless rescheduled).
    pub async fn finish_job(&self, job: i64) -> Result<()> {
        let mut conn = get(&self.pool).await?;
        diesel::sql_query(
            "UPDATE reward_jobs SET done_at = now(), locked_until = NULL, last_error = NULL \
             WHERE id = $1",
        )
        .bind::<BigInt, _>(job)
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// The job is due again after `delay`, keeping `error` for operators (a job waiting for
    /// a confirmation passes `None`).
    pub async fn defer_job(&self, job: i64, delay: Duration, error: Option<&str>) -> Result<()> {
        let mut conn = get(&self.pool).await?;
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        diesel::sql_query(
            "UPDATE reward_jobs SET due_at = now() + $2 * interval '1 millisecond', \
               locked_until = NULL, last_error = $3 WHERE id = $1",
        )
        .bind::<BigInt, _>(job)
        .bind::<BigInt, _>(delay_ms)
        .bind::<Nullable<Text>, _>(error)
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// Takes the member's reversal lock (a session advisory lock on a connection of its own,
    /// closed when the lock is released or dropped, so a crash never leaves it held).
    pub async fn lock_member(&self, member: Uuid) -> Result<MemberLock> {
        let mut conn = deadpool::managed::Object::take(get(&self.pool).await?);
        diesel::sql_query("SELECT pg_advisory_lock(hashtextextended($1, 7))")
            .bind::<Text, _>(member.to_string())
            .execute(&mut conn)
            .await?;
        Ok(MemberLock { conn })
    }

    /// Whether a reversal burn of one of the member's rewards is recorded but not settled.
    pub async fn reversal_in_flight(&self, member: Uuid) -> Result<bool> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            busy: bool,
        }
        let mut conn = get(&self.pool).await?;
        let row: Row = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM rewards WHERE member_id = $1 AND state = 'confirmed'                AND reversal_tx_id IS NOT NULL AND COALESCE(reversed_amount, 0) > 0) AS busy",
        )
        .bind::<SqlUuid, _>(member)
        .get_result(&mut conn)
        .await?;
        Ok(row.busy)
    }

    /// Jobs not done yet, due or waiting (for a confirmation, a retry).
    pub async fn open_jobs(&self) -> Result<i64> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            open: i64,
        }
        let mut conn = get(&self.pool).await?;
        let row: Row =
            diesel::sql_query("SELECT count(*) AS open FROM reward_jobs WHERE done_at IS NULL")
                .get_result(&mut conn)
                .await?;
        Ok(row.open)
    }

    /// Due jobs and the age of the oldest (the outbox backlog for `/admin/status`).
    pub async fn job_backlog(&self) -> Result<(i64, Option<f64>)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            due: i64,
            #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
            oldest_secs: Option<f64>,
        }
        let mut conn = get(&self.pool).await?;
        let row: Row = diesel::sql_query(
            "SELECT count(*) AS due, \
               EXTRACT(EPOCH FROM now() - min(due_at))::float8 AS oldest_secs \
             FROM reward_jobs WHERE done_at IS NULL AND due_at <= now()",
        )
        .get_result(&mut conn)
        .await?;
        Ok((row.due, row.oldest_secs))
    }
}

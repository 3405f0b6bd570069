//! The scheduled housekeeping jobs: retention (daily) and staking accrual (weekly).

use std::sync::Arc;

use anyhow::Context;
use futures::future::BoxFuture;
use haven_db::PgPool;
use haven_rewards::IsoWeek;

use crate::Job;

/// Deletes rows past their retention (`haven_db::apply_retention`); the audit log is never
/// touched.
#[derive(Debug)]
pub struct RetentionJob {
    pool: PgPool,
    policy: haven_db::RetentionPolicy,
}

impl RetentionJob {
    /// Over `pool` with `policy`.
    pub fn new(pool: PgPool, policy: haven_db::RetentionPolicy) -> Self {
        Self { pool, policy }
    }
}

impl Job for RetentionJob {
    fn name(&self) -> &'static str {
        "retention"
    }

    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let report = haven_db::apply_retention(&self.pool, &self.policy, chrono::Utc::now())
                .await
                .context("retention")?;
            tracing::info!(
                alerts = report.alerts,
                error_logs = report.error_logs,
                webhook_messages = report.webhook_messages,
                idempotency_keys = report.idempotency_keys,
                webhook_replay = report.webhook_replay,
                job_runs = report.job_runs,
                "retention pass"
            );
            Ok(())
        })
    }
}

/// Records the staking rewards of the week that just ended, once (a second run of the same
/// week pays nothing: each stake's accrual has its own key).
#[derive(Debug)]
pub struct StakingJob {
    rewards: haven_db::PgRewards,
    rules: Arc<haven_rewards::Rules>,
}

impl StakingJob {
    /// Over `rewards` with `rules`.
    pub fn new(rewards: haven_db::PgRewards, rules: Arc<haven_rewards::Rules>) -> Self {
        Self { rewards, rules }
    }
}

impl Job for StakingJob {
    fn name(&self) -> &'static str {
        "staking_accrual"
    }

    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let now = chrono::Utc::now();
            let week = IsoWeek::containing(now).previous();
            let report = self
                .rewards
                .accrue_staking(self.rules.staking(), self.rules.version(), week, now)
                .await
                .with_context(|| format!("staking accrual of {week}"))?;
            tracing::info!(
                week = %report.week,
                stakes = report.stakes,
                paid = report.paid,
                already_paid = report.already_paid,
                total_hnv = %report.total,
                "staking accrual"
            );
            Ok(())
        })
    }
}

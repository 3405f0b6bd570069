//! The scheduled housekeeping jobs: retention (daily), staking accrual (weekly) and the
//! expiry of vault requests (every [`VAULT_EXPIRY_EVERY`]).

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

/// How often overdue vault requests are closed.
pub const VAULT_EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Closes vault requests past their expiry (`open` → `expired`, audited
/// `vault.request.expired`), at most 500 per pass.
pub struct VaultExpiryJob {
    vaults: haven_vault::VaultService,
    treasury: haven_db::PgTreasury,
}

impl std::fmt::Debug for VaultExpiryJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultExpiryJob").finish_non_exhaustive()
    }
}

impl VaultExpiryJob {
    /// Over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            vaults: haven_vault::VaultService::new(
                Arc::new(haven_db::PgVaultStore::new(pool.clone())),
                Arc::new(haven_db::PgAuditLog::new(pool.clone())),
                haven_vault::VaultConfig::default(),
            ),
            treasury: haven_db::PgTreasury::new(pool),
        }
    }
}

impl Job for VaultExpiryJob {
    fn name(&self) -> &'static str {
        "vault_expiry"
    }

    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let caller = haven_vault::Caller::new("haven-worker");
            let expired = self
                .vaults
                .expire_due(500, &caller)
                .await
                .context("vault request expiry")?;
            if !expired.is_empty() {
                tracing::info!(expired = expired.len(), "vault requests expired");
            }
            // a withdrawal its guardians did not release in time never moves
            for id in expired {
                let request = self
                    .vaults
                    .request(id)
                    .await
                    .context("an expired request")?;
                self.treasury
                    .apply_vault_outcome(id, request.vault_id, &request.operation, false)
                    .await
                    .map_err(|e| anyhow::anyhow!("applying the expiry of {id}: {e}"))?;
            }
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

//! The rewards job: drives the reward ledger's outbox (`reward_jobs`) to the chain.
//!
//! Each step claims due jobs (`FOR UPDATE SKIP LOCKED` with a lease, so replicas never do
//! the same job at once) and moves each reward one step, every step idempotent:
//!
//! - **mint**: `pending` → the member's custodial wallet is created if it has none →
//!   [`TokenOps::mint`] under the reward's deterministic `tx_id` (exactly once whatever the
//!   retries, crashes and replicas) → `submitted` → once the chain monitor has confirmed the
//!   transaction, `confirmed` (webhook `reward.confirmed`); a reverted mint is
//!   `failed_needs_review`.
//! - **reverse** (a cancelled booking whose reward was minted): waits for the mint to be
//!   final, then, under a per-member lock and one reversal of a member at a time (so the
//!   balance read is not stale), burns what the member still holds of it
//!   (`min(amount, balance)`) with [`TokenOps::burn_from`] under a deterministic reversal
//!   id — the member's wallet never sends a transaction or needs ETH — records the
//!   shortfall with a HIGH alert when the member had spent part, and moves the reward to
//!   `reversed` once the burn is confirmed.
//!
//! Held rewards whose fraud alert was reviewed are settled here too, should the api's
//! settlement at review time have failed.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use anyhow::Context;
use futures::future::BoxFuture;
use futures::{StreamExt as _, stream};
use haven_chain::{TxRecord, TxStatus};
use haven_custody::{Caller, Chain as WalletChain, WalletId};
use haven_db::rewards::{PgRewards, RewardAction, RewardJob, RewardUpdate};
use haven_rewards::{Hnv, RewardState};

use crate::Job;
use crate::jobs::chain_monitor::Chain;

/// Who custody's audit log records as creating member wallets.
const CALLER: &str = "haven-worker:rewards";
/// How soon a job waiting for a confirmation looks again.
const POLL: Duration = Duration::from_secs(1);
/// How soon a job looks at a transaction it just sent (a fast chain has mined it already).
const SOON: Duration = Duration::from_millis(200);

/// Settings of the rewards job.
#[derive(Debug, Clone, Copy)]
pub struct RewardsSettings {
    /// How often a step runs (`HAVEN_REWARDS_POLL_MS`).
    pub interval: Duration,
    /// Jobs claimed per step.
    pub batch: i64,
    /// Jobs of a step worked on at the same time (each is a different reward; a member's
    /// reversals still run one at a time under the member's lock).
    pub concurrency: usize,
    /// How long a claimed job is ours (`HAVEN_REWARDS_LEASE_SECS`): after a crash, its jobs
    /// wait this long before another step claims them.
    pub lease: Duration,
}

impl Default for RewardsSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(500),
            batch: 64,
            concurrency: 64,
            lease: Duration::from_secs(120),
        }
    }
}

/// Drives the reward ledger to the chain (see the module docs).
#[derive(Debug)]
pub struct RewardsJob {
    chain: Arc<Chain>,
    rewards: PgRewards,
    settings: RewardsSettings,
    stats: Option<Arc<haven_service::cache::SharedCache>>,
}

/// What one job's step concluded.
enum Next {
    /// Nothing more to do.
    Done,
    /// Look again after this long (waiting for the chain, or after a failure).
    Later(Duration, Option<String>),
}

fn wei(amount: Hnv) -> U256 {
    U256::from(amount.base_units())
}

fn hnv(amount: U256) -> Hnv {
    Hnv::from_base_units(u128::try_from(amount).unwrap_or(u128::MAX))
}

/// The reversal burn's id: the mint's id with its own prefix (`rw-…` → `rv-…`).
pub fn reversal_tx_id(mint_tx_id: &str) -> String {
    format!("rv-{}", mint_tx_id.trim_start_matches("rw-"))
}

impl RewardsJob {
    /// A job over the shared chain pipeline and the ledger on `rewards`.
    pub fn new(chain: Arc<Chain>, rewards: PgRewards, settings: RewardsSettings) -> Self {
        Self {
            chain,
            rewards,
            settings,
            stats: None,
        }
    }

    /// Invalidates `stats` (the network statistics) after each confirmed mint or burn.
    pub fn with_stats(mut self, stats: Arc<haven_service::cache::SharedCache>) -> Self {
        self.stats = Some(stats);
        self
    }

    async fn supply_changed(&self) {
        if let Some(stats) = &self.stats {
            stats.invalidate().await;
        }
    }

    async fn run(&self) -> anyhow::Result<()> {
        for (alert, approved) in self.rewards.unsettled_holds().await? {
            let audit = haven_core::audit::AuditEvent::new(
                CALLER,
                "reward.settled",
                haven_core::audit::Severity::Medium,
            );
            self.rewards.settle_held(alert, approved, audit).await?;
        }
        let jobs = self
            .rewards
            .claim_jobs(self.settings.batch, self.settings.lease)
            .await
            .context("claiming reward jobs")?;
        let (claimed, started) = (jobs.len(), std::time::Instant::now());
        let results: Vec<anyhow::Result<()>> = stream::iter(jobs)
            .map(|job| self.work(job))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect::<anyhow::Result<()>>()?;
        if claimed > 0 {
            tracing::debug!(
                jobs = claimed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "reward jobs stepped"
            );
        }
        Ok(())
    }

    /// Moves one job a step and records what comes next.
    async fn work(&self, job: RewardJob) -> anyhow::Result<()> {
        let id = job.id;
        let reward = job.reward.id;
        let next = match job.action {
            RewardAction::Mint => self.mint(job).await,
            RewardAction::Reverse => self.reverse(job).await,
        };
        match next {
            Ok(Next::Done) => self.rewards.finish_job(id).await?,
            Ok(Next::Later(delay, note)) => {
                self.rewards.defer_job(id, delay, note.as_deref()).await?
            }
            Err(e) => {
                let message = haven_core::redact(&format!("{e:#}"));
                tracing::warn!(%reward, error = %message, "reward job failed; retrying");
                self.rewards
                    .defer_job(id, Duration::from_secs(5), Some(&message))
                    .await?;
            }
        }
        Ok(())
    }

    /// The member's custodial wallet address, created (and recorded) on first need.
    async fn wallet(&self, job: &RewardJob) -> anyhow::Result<Address> {
        if let Some((_, address)) = &job.wallet {
            return Ok(Address::from(*address));
        }
        let member = job.reward.member_id;
        let id = WalletId::new(format!("member-{}", member.simple()))?;
        let custody = self.chain.custody().await?;
        let caller = Caller::new(CALLER);
        let wallet = match custody
            .create_wallet(
                id.clone(),
                WalletChain::Evm,
                serde_json::json!({"member_id": member}),
                &caller,
            )
            .await
        {
            Ok(wallet) => wallet,
            // Created by an earlier attempt that stopped before recording it.
            Err(haven_custody::Error::WalletExists { .. }) => {
                custody.get_wallet(&id, &caller).await?
            }
            Err(e) => return Err(e).context("creating the member's custodial wallet"),
        };
        let address = Address::from_str(wallet.address())
            .with_context(|| format!("custody wallet {id} has no EVM address"))?;
        self.rewards
            .set_member_wallet(member, id.as_str(), address.into_array())
            .await?;
        Ok(address)
    }

    async fn mint(&self, job: RewardJob) -> anyhow::Result<Next> {
        let reward = &job.reward;
        match reward.state {
            RewardState::Pending => {
                let to = self.wallet(&job).await?;
                // Claim the reward before touching the chain: a cancellation that moved it
                // meanwhile wins, and nothing is minted.
                let claimed = self
                    .rewards
                    .update_reward(
                        reward.id,
                        RewardState::Pending,
                        RewardUpdate {
                            state: Some(RewardState::Submitted),
                            error: Some(String::new()),
                            ..RewardUpdate::default()
                        },
                    )
                    .await?;
                if claimed.is_none() {
                    return Ok(Next::Done);
                }
                let ops = self.chain.ops().await?;
                // Recorded `queued` even when the node is unreachable (the monitor sends it
                // then); after any other failure the `submitted` branch submits it again.
                match ops.mint(&reward.tx_id, to, wei(reward.amount)).await {
                    Ok(_) | Err(haven_chain::Error::CircuitOpen { .. }) => {}
                    Err(e) => return Err(e).context("submitting the mint"),
                }
                Ok(Next::Later(SOON, None))
            }
            RewardState::Submitted => {
                let ops = self.chain.ops().await?;
                // Checked now rather than at the chain monitor's next cycle.
                let Some(record) = ops.refresh(&reward.tx_id).await? else {
                    // Marked submitted but never recorded (a crash in between): submit now.
                    let to = self.wallet(&job).await?;
                    ops.mint(&reward.tx_id, to, wei(reward.amount)).await?;
                    return Ok(Next::Later(POLL, None));
                };
                self.settle_mint(reward, &record).await
            }
            // Held rewards are minted once approved (the approval reschedules the job);
            // everything else is past minting.
            _ => Ok(Next::Done),
        }
    }

    async fn settle_mint(
        &self,
        reward: &haven_db::RewardRecord,
        record: &TxRecord,
    ) -> anyhow::Result<Next> {
        let update = match record.status {
            TxStatus::Confirmed => RewardUpdate {
                state: Some(RewardState::Confirmed),
                webhook: Some("reward.confirmed"),
                ..RewardUpdate::default()
            },
            TxStatus::Failed => RewardUpdate {
                state: Some(RewardState::FailedNeedsReview),
                error: record.error.clone().or(Some("the mint reverted".into())),
                ..RewardUpdate::default()
            },
            _ => return Ok(Next::Later(POLL, None)),
        };
        self.rewards
            .update_reward(reward.id, RewardState::Submitted, update)
            .await?;
        self.supply_changed().await;
        Ok(Next::Done)
    }

    async fn reverse(&self, job: RewardJob) -> anyhow::Result<Next> {
        let reward = &job.reward;
        match reward.state {
            // The mint must be final before it can be undone.
            RewardState::Submitted => Ok(Next::Later(POLL, None)),
            RewardState::Confirmed => match &reward.reversal_tx_id {
                None => self.plan_reversal(&job).await,
                Some(reversal) => self.follow_reversal(&job, reversal).await,
            },
            // Pending and held ones were cancelled with the booking; the rest is final or
            // waits for an operator.
            _ => Ok(Next::Done),
        }
    }

    /// Decides what to burn under the member's lock and records it before burning.
    async fn plan_reversal(&self, job: &RewardJob) -> anyhow::Result<Next> {
        let reward = &job.reward;
        let holder = self.wallet(job).await?;
        let ops = self.chain.ops().await?;
        let lock = self.rewards.lock_member(reward.member_id).await?;
        // One reversal of a member at a time: the balance then counts every earlier burn.
        if self.rewards.reversal_in_flight(reward.member_id).await? {
            lock.release().await?;
            return Ok(Next::Later(POLL, None));
        }
        let balance = hnv(ops.balance_of(holder).await?);
        let burn = balance.min(reward.amount);
        let shortfall = reward.amount.saturating_sub(burn);
        let reversal = reversal_tx_id(&reward.tx_id);
        let alert = (!shortfall.is_zero()).then(|| shortfall_alert(reward, burn, shortfall));
        let planned = self
            .rewards
            .update_reward(
                reward.id,
                RewardState::Confirmed,
                RewardUpdate {
                    reversal_tx_id: Some(reversal.clone()),
                    reversed_amount: Some(burn),
                    shortfall: Some(shortfall),
                    alert,
                    ..RewardUpdate::default()
                },
            )
            .await?;
        lock.release().await?;
        let Some(planned) = planned else {
            return Ok(Next::Later(POLL, None));
        };
        if burn.is_zero() {
            self.rewards
                .update_reward(
                    planned.id,
                    RewardState::Confirmed,
                    RewardUpdate {
                        state: Some(RewardState::Reversed),
                        webhook: Some("reward.reversed"),
                        ..RewardUpdate::default()
                    },
                )
                .await?;
            return Ok(Next::Done);
        }
        ops.burn_from(&reversal, holder, wei(burn)).await?;
        Ok(Next::Later(POLL, None))
    }

    async fn follow_reversal(&self, job: &RewardJob, reversal: &str) -> anyhow::Result<Next> {
        let reward = &job.reward;
        let ops = self.chain.ops().await?;
        let burn = reward.reversed_amount.unwrap_or(Hnv::ZERO);
        let record = match ops.refresh(reversal).await? {
            Some(record) => record,
            None if burn.is_zero() => return Ok(Next::Done),
            None => {
                // Planned but never submitted (a crash in between): submit it now.
                let holder = self.wallet(job).await?;
                ops.burn_from(reversal, holder, wei(burn)).await?;
                return Ok(Next::Later(POLL, None));
            }
        };
        let update = match record.status {
            TxStatus::Confirmed => RewardUpdate {
                state: Some(RewardState::Reversed),
                webhook: Some("reward.reversed"),
                ..RewardUpdate::default()
            },
            TxStatus::Failed => RewardUpdate {
                state: Some(RewardState::FailedNeedsReview),
                error: Some(format!(
                    "the reversal burn reverted: {}",
                    record.error.clone().unwrap_or_default()
                )),
                ..RewardUpdate::default()
            },
            _ => return Ok(Next::Later(POLL, None)),
        };
        self.rewards
            .update_reward(reward.id, RewardState::Confirmed, update)
            .await?;
        self.supply_changed().await;
        Ok(Next::Done)
    }
}

/// The HIGH alert of a reversal that could not burn all of the reward.
fn shortfall_alert(
    reward: &haven_db::RewardRecord,
    burn: Hnv,
    shortfall: Hnv,
) -> haven_fraud::Alert {
    let now = chrono::Utc::now();
    haven_fraud::Alert {
        id: uuid::Uuid::now_v7(),
        rule_id: "reward_reversal_shortfall".into(),
        event_type: "reward_reversal_shortfall".into(),
        severity: haven_fraud::Severity::High,
        subject: reward.member_id.to_string(),
        user: Some(reward.member_id.to_string()),
        description: format!(
            "reversing reward {} ({} HNV): the member holds only {burn} HNV of it; {shortfall} HNV could not be burned",
            reward.business_key, reward.amount
        ),
        metadata: serde_json::json!({
            "reward_id": reward.id,
            "business_key": reward.business_key,
            "amount_hnv": reward.amount.to_string(),
            "burned_hnv": burn.to_string(),
            "shortfall_hnv": shortfall.to_string(),
        }),
        event_id: format!("reversal:{}", reward.id),
        event_ts: now,
        created_at: now,
    }
}

impl Job for RewardsJob {
    fn name(&self) -> &'static str {
        "rewards"
    }

    fn interval(&self) -> Option<Duration> {
        Some(self.settings.interval)
    }

    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(self.run())
    }
}

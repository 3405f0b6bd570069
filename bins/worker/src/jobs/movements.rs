//! The token movements job: drives the chain movements of redemptions and withdrawals
//! (`token_movements`) through [`haven_chain::TokenOps`], each exactly once under its
//! deterministic `tx_id`.
//!
//! - **escrow** (a redemption): the member's tokens to the operator wallet with
//!   `transfer_from` (the custodian role; the member's wallet never pays gas);
//! - **return** (a rejected redemption): once its escrow is confirmed, the operator wallet
//!   sends the tokens back (`transfer`); an escrow that never happened cancels it;
//! - **burn** (a paid redemption): the operator wallet burns the escrowed tokens;
//! - **withdraw**: the member's tokens to their registered external address
//!   (`transfer_from`).
//!
//! Each movement is claimed (`pending` → `submitted`) before anything is sent, so a
//! rejection that cancelled it first wins. A confirmed mint-or-burn-changing movement
//! invalidates the network statistics cache.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use anyhow::Context;
use futures::future::BoxFuture;
use futures::{StreamExt as _, stream};
use haven_chain::{TxRecord, TxStatus};
use haven_db::PgTreasury;
use haven_db::treasury::{Movement, MovementAction, MovementState};
use haven_service::cache::SharedCache;

use crate::Job;
use crate::jobs::chain_monitor::Chain;

/// How long a claimed movement is ours.
const LEASE: Duration = Duration::from_secs(120);
/// How soon a movement waiting for the chain (or its escrow) looks again.
const POLL: Duration = Duration::from_secs(1);
/// How soon a movement looks at a transaction it just sent.
const SOON: Duration = Duration::from_millis(200);

/// Drives redemptions' and withdrawals' chain movements (see the module docs).
#[derive(Debug)]
pub struct MovementsJob {
    chain: Arc<Chain>,
    treasury: PgTreasury,
    stats: Option<Arc<SharedCache>>,
    interval: Duration,
}

/// What one step of a movement concluded.
enum Next {
    Done,
    Later(Duration),
}

impl MovementsJob {
    /// A job over the shared chain pipeline and the treasury tables, stepping every
    /// `interval`; `stats` is invalidated when a movement changes the supply or a balance.
    pub fn new(
        chain: Arc<Chain>,
        treasury: PgTreasury,
        stats: Option<Arc<SharedCache>>,
        interval: Duration,
    ) -> Self {
        Self {
            chain,
            treasury,
            stats,
            interval,
        }
    }

    async fn run(&self) -> anyhow::Result<()> {
        let movements = self
            .treasury
            .claim_movements(64, LEASE)
            .await
            .context("claiming token movements")?;
        let results: Vec<anyhow::Result<()>> = stream::iter(movements)
            .map(|m| self.work(m))
            .buffer_unordered(16)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn work(&self, movement: Movement) -> anyhow::Result<()> {
        match self.step(&movement).await {
            Ok(Next::Done) => Ok(()),
            Ok(Next::Later(delay)) => {
                self.treasury.defer_movement(&movement, delay, None).await?;
                Ok(())
            }
            Err(e) => {
                let message = haven_core::redact(&format!("{e:#}"));
                tracing::warn!(
                    movement = movement.id,
                    action = movement.action.as_str(),
                    error = %message,
                    "token movement failed; retrying"
                );
                self.treasury
                    .defer_movement(&movement, Duration::from_secs(5), Some(&message))
                    .await?;
                Ok(())
            }
        }
    }

    async fn step(&self, movement: &Movement) -> anyhow::Result<Next> {
        match movement.state {
            MovementState::Pending => self.send(movement).await,
            MovementState::Submitted => self.follow(movement).await,
            _ => Ok(Next::Done),
        }
    }

    /// Claims the movement, then sends it.
    async fn send(&self, movement: &Movement) -> anyhow::Result<Next> {
        if movement.action == MovementAction::Return {
            match self
                .treasury
                .movement_state(movement.subject_id, MovementAction::Escrow)
                .await?
            {
                Some(MovementState::Confirmed) => {}
                Some(MovementState::Pending | MovementState::Submitted) => {
                    return Ok(Next::Later(POLL));
                }
                // Nothing was escrowed: nothing to return.
                _ => {
                    self.treasury.cancel_movement(movement).await?;
                    return Ok(Next::Done);
                }
            }
        }
        if needs_member_wallet(movement.action) && movement.member_wallet.is_none() {
            self.treasury
                .finish_movement(movement, Some("the member has no custodial wallet"))
                .await?;
            return Ok(Next::Done);
        }
        if !self.treasury.movement_submitted(movement).await? {
            return Ok(Next::Done);
        }
        self.submit(movement).await?;
        Ok(Next::Later(SOON))
    }

    /// Submits the movement's transaction (again: `TokenOps` records it once per id).
    async fn submit(&self, movement: &Movement) -> anyhow::Result<TxRecord> {
        let ops = self.chain.ops().await?;
        let amount = U256::from(movement.amount.base_units());
        let member = movement.member_wallet.map(Address::from);
        let record = match movement.action {
            MovementAction::Escrow => {
                let holder = member.context("the member has no custodial wallet")?;
                ops.transfer_from(&movement.tx_id, holder, ops.from_address(), amount)
                    .await
            }
            MovementAction::Withdraw => {
                let holder = member.context("the member has no custodial wallet")?;
                let to = movement
                    .recipient
                    .as_deref()
                    .context("a withdrawal without its address")?;
                let to = Address::from_str(to).context("the withdrawal's address")?;
                ops.transfer_from(&movement.tx_id, holder, to, amount).await
            }
            MovementAction::Return => {
                let to = member.context("the member has no custodial wallet")?;
                ops.transfer(&movement.tx_id, to, amount).await
            }
            MovementAction::Burn => ops.burn(&movement.tx_id, amount).await,
        };
        match record {
            Ok(record) => Ok(record),
            // Recorded `queued`: the chain monitor sends it when the node is back.
            Err(haven_chain::Error::CircuitOpen { .. }) => ops
                .get(&movement.tx_id)
                .await?
                .context("the movement was not recorded"),
            Err(e) => Err(e).context("submitting the movement"),
        }
    }

    /// Waits for the movement's transaction to be final.
    async fn follow(&self, movement: &Movement) -> anyhow::Result<Next> {
        let ops = self.chain.ops().await?;
        let record = match ops.refresh(&movement.tx_id).await? {
            Some(record) => record,
            // Claimed but never recorded (a crash in between): submit now.
            None => self.submit(movement).await?,
        };
        match record.status {
            TxStatus::Confirmed => {
                self.treasury.finish_movement(movement, None).await?;
                if let Some(stats) = &self.stats {
                    stats.invalidate().await;
                }
                Ok(Next::Done)
            }
            TxStatus::Failed => {
                let error = record
                    .error
                    .clone()
                    .unwrap_or_else(|| "the transaction reverted".into());
                self.treasury
                    .finish_movement(movement, Some(&error))
                    .await?;
                if let Some(stats) = &self.stats {
                    stats.invalidate().await;
                }
                Ok(Next::Done)
            }
            _ => Ok(Next::Later(POLL)),
        }
    }
}

fn needs_member_wallet(action: MovementAction) -> bool {
    matches!(
        action,
        MovementAction::Escrow | MovementAction::Withdraw | MovementAction::Return
    )
}

impl Job for MovementsJob {
    fn name(&self) -> &'static str {
        "token_movements"
    }

    fn interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(self.run())
    }
}

//! The worker's side of the token API: the chain movements of redemptions and withdrawals,
//! claimed with a lease like reward jobs.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_rewards::Hnv;
use uuid::Uuid;

use super::redemptions::{RedemptionStatus, reject_in};
use super::{PgTreasury, TreasuryError};
use crate::pool::get;
use crate::rewards::hnv_of;

/// What a movement does on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MovementAction {
    /// A redemption's tokens: member → operator wallet (`transferFrom` by the custodian).
    Escrow,
    /// A rejected redemption's escrow: operator wallet → member.
    Return,
    /// A paid redemption's escrow is destroyed (the operator burns its own tokens).
    Burn,
    /// A withdrawal: member → external address (`transferFrom` by the custodian).
    Withdraw,
}

impl MovementAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementAction::Escrow => "escrow",
            MovementAction::Return => "return",
            MovementAction::Burn => "burn",
            MovementAction::Withdraw => "withdraw",
        }
    }

    /// The prefix of its chain transaction id.
    pub fn tx_prefix(self) -> &'static str {
        match self {
            MovementAction::Escrow => "re",
            MovementAction::Return => "rr",
            MovementAction::Burn => "rb",
            MovementAction::Withdraw => "wd",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "escrow" => MovementAction::Escrow,
            "return" => MovementAction::Return,
            "burn" => MovementAction::Burn,
            "withdraw" => MovementAction::Withdraw,
            _ => return None,
        })
    }
}

/// Where a movement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementState {
    /// Not sent.
    Pending,
    /// Sent (recorded in `transactions`).
    Submitted,
    /// Confirmed on chain.
    Confirmed,
    /// Reverted.
    Failed,
    /// Cancelled before it was sent.
    Cancelled,
}

impl MovementState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementState::Pending => "pending",
            MovementState::Submitted => "submitted",
            MovementState::Confirmed => "confirmed",
            MovementState::Failed => "failed",
            MovementState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => MovementState::Pending,
            "submitted" => MovementState::Submitted,
            "confirmed" => MovementState::Confirmed,
            "failed" => MovementState::Failed,
            "cancelled" => MovementState::Cancelled,
            _ => return None,
        })
    }
}

/// A claimed movement.
#[derive(Debug, Clone)]
pub struct Movement {
    /// Its id.
    pub id: i64,
    /// `redemption` or `withdrawal`.
    pub subject: String,
    /// The redemption's or withdrawal's id.
    pub subject_id: Uuid,
    /// What it does.
    pub action: MovementAction,
    /// Where it is.
    pub state: MovementState,
    /// Whose tokens.
    pub member_id: Uuid,
    /// The member's custodial wallet address.
    pub member_wallet: Option<[u8; 20]>,
    /// How many tokens.
    pub amount: Hnv,
    /// The external address of a withdrawal.
    pub recipient: Option<String>,
    /// Its chain transaction id.
    pub tx_id: String,
    /// Claims so far, this one included.
    pub attempts: i32,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    subject: String,
    #[diesel(sql_type = SqlUuid)]
    subject_id: Uuid,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = Nullable<Bytea>)]
    wallet_address: Option<Vec<u8>>,
    #[diesel(sql_type = Text)]
    amount: String,
    #[diesel(sql_type = Nullable<Text>)]
    recipient: Option<String>,
    #[diesel(sql_type = Text)]
    tx_id: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

impl TryFrom<Row> for Movement {
    type Error = crate::Error;

    fn try_from(r: Row) -> crate::Result<Self> {
        let corrupt = |reason: String| crate::Error::Corrupt {
            table: "token_movements",
            reason,
        };
        Ok(Self {
            action: MovementAction::parse(&r.action)
                .ok_or_else(|| corrupt(format!("action {:?}", r.action)))?,
            state: MovementState::parse(&r.state)
                .ok_or_else(|| corrupt(format!("state {:?}", r.state)))?,
            member_wallet: r
                .wallet_address
                .map(|a| a.try_into())
                .transpose()
                .map_err(|_| corrupt("wallet_address is not 20 bytes".into()))?,
            amount: hnv_of("token_movements", &r.amount)?,
            id: r.id,
            subject: r.subject,
            subject_id: r.subject_id,
            member_id: r.member_id,
            recipient: r.recipient,
            tx_id: r.tx_id,
            attempts: r.attempts,
        })
    }
}

/// The state of a subject's movement, in the caller's transaction.
pub(crate) async fn movement_state_in(
    conn: &mut AsyncPgConnection,
    subject: Uuid,
    action: MovementAction,
) -> crate::Result<Option<String>> {
    #[derive(QueryableByName)]
    struct State {
        #[diesel(sql_type = Text)]
        state: String,
    }
    let row: Option<State> = diesel::sql_query(
        "SELECT state FROM token_movements WHERE subject_id = $1 AND action = $2",
    )
    .bind::<SqlUuid, _>(subject)
    .bind::<Text, _>(action.as_str())
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| r.state))
}

impl PgTreasury {
    /// Claims up to `limit` due movements for `lease` (`FOR UPDATE SKIP LOCKED`).
    pub async fn claim_movements(
        &self,
        limit: i64,
        lease: Duration,
    ) -> crate::Result<Vec<Movement>> {
        let mut conn = get(&self.pool).await?;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let rows: Vec<Row> = diesel::sql_query(
            "WITH claimed AS ( \
               UPDATE token_movements t SET locked_until = now() + $2 * interval '1 millisecond', \
                 attempts = t.attempts + 1 \
               WHERE t.id IN (SELECT id FROM token_movements \
                 WHERE state IN ('pending', 'submitted') AND due_at <= now() \
                   AND (locked_until IS NULL OR locked_until <= now()) \
                 ORDER BY due_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
               RETURNING t.*) \
             SELECT c.id, c.subject, c.subject_id, c.action, c.state, c.member_id, \
               m.wallet_address, c.amount::text AS amount, c.recipient, c.tx_id, c.attempts \
             FROM claimed c JOIN members m ON m.id = c.member_id ORDER BY c.due_at, c.id",
        )
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(lease_ms)
        .load(&mut conn)
        .await?;
        rows.into_iter().map(Movement::try_from).collect()
    }

    /// `pending` → `submitted` before anything is sent (a withdrawal follows); `false` when
    /// it was cancelled meanwhile.
    pub async fn movement_submitted(&self, movement: &Movement) -> crate::Result<bool> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, crate::Error, _>(async |conn| {
            let updated = diesel::sql_query(
                "UPDATE token_movements SET state = 'submitted', updated_at = now() \
                 WHERE id = $1 AND state = 'pending'",
            )
            .bind::<BigInt, _>(movement.id)
            .execute(conn)
            .await?;
            if updated == 1 && movement.action == MovementAction::Withdraw {
                diesel::sql_query(
                    "UPDATE withdrawals SET status = 'submitted', version = version + 1, \
                       updated_at = now() WHERE id = $1 AND status = 'pending'",
                )
                .bind::<SqlUuid, _>(movement.subject_id)
                .execute(conn)
                .await?;
            }
            Ok(updated == 1)
        })
        .await
    }

    /// The movement is over: `confirmed`, or `failed` with `error` (a failed escrow rejects
    /// its redemption, a failed withdrawal fails). Idempotent.
    pub async fn finish_movement(
        &self,
        movement: &Movement,
        error: Option<&str>,
    ) -> Result<(), TreasuryError> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, TreasuryError, _>(async |conn| {
            let to = if error.is_some() {
                "failed"
            } else {
                "confirmed"
            };
            let updated = diesel::sql_query(
                "UPDATE token_movements SET state = $2, error = $3, locked_until = NULL, \
                   updated_at = now() WHERE id = $1 AND state IN ('pending', 'submitted')",
            )
            .bind::<BigInt, _>(movement.id)
            .bind::<Text, _>(to)
            .bind::<Nullable<Text>, _>(error)
            .execute(conn)
            .await?;
            if updated == 0 {
                return Ok(());
            }
            match (movement.action, error) {
                (MovementAction::Withdraw, _) => {
                    diesel::sql_query(
                        "UPDATE withdrawals SET status = $2, error = $3, version = version + 1, \
                           updated_at = now() WHERE id = $1 AND status IN ('pending', 'submitted')",
                    )
                    .bind::<SqlUuid, _>(movement.subject_id)
                    .bind::<Text, _>(to)
                    .bind::<Nullable<Text>, _>(error)
                    .execute(conn)
                    .await?;
                }
                (MovementAction::Escrow, Some(error)) => {
                    let redemption =
                        super::redemptions::load_for_update(conn, movement.subject_id).await?;
                    if let Some(r) = redemption.filter(|r| {
                        matches!(
                            r.status,
                            RedemptionStatus::Requested | RedemptionStatus::Approved
                        )
                    }) {
                        reject_in(
                            conn,
                            &r,
                            "haven-worker",
                            &format!("the escrow failed: {error}"),
                        )
                        .await?;
                    }
                }
                _ => {}
            }
            Ok(())
        })
        .await
    }

    /// `cancelled`: a return whose escrow never happened.
    pub async fn cancel_movement(&self, movement: &Movement) -> crate::Result<()> {
        let mut conn = get(&self.pool).await?;
        diesel::sql_query(
            "UPDATE token_movements SET state = 'cancelled', locked_until = NULL, \
               updated_at = now() WHERE id = $1 AND state = 'pending'",
        )
        .bind::<BigInt, _>(movement.id)
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// Looks at the movement again after `delay`, noting `error`.
    pub async fn defer_movement(
        &self,
        movement: &Movement,
        delay: Duration,
        error: Option<&str>,
    ) -> crate::Result<()> {
        let mut conn = get(&self.pool).await?;
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        diesel::sql_query(
            "UPDATE token_movements SET due_at = now() + $2 * interval '1 millisecond', \
               locked_until = NULL, error = COALESCE($3, error), updated_at = now() \
             WHERE id = $1",
        )
        .bind::<BigInt, _>(movement.id)
        .bind::<BigInt, _>(delay_ms)
        .bind::<Nullable<Text>, _>(error)
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// The state of a subject's movement (a return waits for its escrow).
    pub async fn movement_state(
        &self,
        subject: Uuid,
        action: MovementAction,
    ) -> crate::Result<Option<MovementState>> {
        let mut conn = get(&self.pool).await?;
        Ok(movement_state_in(&mut conn, subject, action)
            .await?
            .as_deref()
            .and_then(MovementState::parse))
    }
}

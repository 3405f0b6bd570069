//! The token API's ledger: redemptions for fiat, withdrawals to external addresses, the chain
//! movements they need, and the network's totals.
//!
//! Invariants:
//! - A request is recorded once per (member, idempotency key); its chain movements are
//!   recorded in the same transaction, each once per (subject, action) under a
//!   deterministic `tx_id` (`re-` escrow, `rr-` return, `rb-` burn, `wd-` withdrawal and
//!   32 hex digits of the SHA-256 of the subject id and action), so `TokenOps` moves tokens at
//!   most once whatever the retries.
//! - Tokens leave a member only up to what they can spend: the on-chain balance read by the
//!   caller, minus outflows not yet confirmed (and those confirmed since the balance was
//!   read), minus active stakes. The member's row is locked while this is decided, so two
//!   requests never spend the same tokens.
//! - A movement is claimed (`pending` → `submitted`) before anything is sent: a rejection
//!   that cancels it first wins, and nothing moves.

mod movements;
mod redemptions;
mod stats;
mod vault;
mod withdrawals;

use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use haven_rewards::Hnv;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use movements::{Movement, MovementAction, MovementState};
pub use redemptions::{NewRedemption, Redemption, RedemptionStatus};
pub use stats::NetworkTotals;
pub use withdrawals::{NewWithdrawal, Withdrawal, WithdrawalStatus};

use crate::rewards::hnv_of;
use crate::{Error, PgPool, Result};

/// The token API's tables (cheap to clone).
#[derive(Debug, Clone)]
pub struct PgTreasury {
    pool: PgPool,
}

impl PgTreasury {
    /// The store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// What a create call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created<T> {
    /// Recorded now.
    New(T),
    /// The idempotency key was used before by this member: the earlier request.
    Existing(T),
}

impl<T> Created<T> {
    /// The request, new or earlier.
    pub fn get(&self) -> &T {
        match self {
            Created::New(t) | Created::Existing(t) => t,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreasuryError {
    /// The member cannot spend that much.
    #[error("the member can spend {available} HNV, less than {requested} HNV")]
    InsufficientBalance {
        /// What they can spend now.
        available: Hnv,
        /// What was asked.
        requested: Hnv,
    },
    /// The member does not exist.
    #[error("no member {0}")]
    UnknownMember(Uuid),
    /// The member has no custodial wallet yet (nothing was ever minted to them).
    #[error("member {0} has no wallet yet")]
    NoWallet(Uuid),
    /// The destination is not one of the member's registered payout addresses.
    #[error("{address} is not a registered payout address of the member on {chain}")]
    UnregisteredAddress {
        /// The chain.
        chain: String,
        /// The normalized address.
        address: String,
    },
    /// The request does not exist.
    #[error("no such request")]
    NotFound,
    /// The step is not allowed from the request's state.
    #[error("{0}")]
    InvalidTransition(String),
    /// The person who asked may not approve.
    #[error("{0}")]
    Forbidden(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] Error),
}

impl From<diesel::result::Error> for TreasuryError {
    fn from(e: diesel::result::Error) -> Self {
        TreasuryError::Db(Error::from(e))
    }
}

impl TreasuryError {
    /// The wire code this refusal is answered with.
    pub fn code(&self) -> haven_core::ErrorCode {
        use haven_core::ErrorCode;
        match self {
            TreasuryError::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            TreasuryError::UnknownMember(_) | TreasuryError::NotFound => ErrorCode::NotFound,
            TreasuryError::NoWallet(_) => ErrorCode::InsufficientBalance,
            TreasuryError::UnregisteredAddress { .. } => ErrorCode::InvalidAddress,
            TreasuryError::InvalidTransition(_) => ErrorCode::InvalidTransition,
            TreasuryError::Forbidden(_) => ErrorCode::Forbidden,
            TreasuryError::Db(e) => e.code(),
        }
    }
}

/// The deterministic chain id of a subject's movement: `<prefix>-` and 32 hex digits.
pub fn movement_tx_id(subject: Uuid, action: MovementAction) -> String {
    let digest = Sha256::digest(format!("{subject}:{}", action.as_str()).as_bytes());
    format!("{}-{}", action.tx_prefix(), hex::encode(&digest[..16]))
}

/// How much of the member's on-chain `balance` (read at `balance_at`) they can move now.
/// Locks the member's row until the caller's transaction ends.
pub(crate) async fn available_in(
    conn: &mut AsyncPgConnection,
    member: Uuid,
    balance: Hnv,
    balance_at: chrono::DateTime<chrono::Utc>,
) -> std::result::Result<Hnv, TreasuryError> {
    #[derive(QueryableByName)]
    struct Held {
        #[diesel(sql_type = Text)]
        outflows: String,
        #[diesel(sql_type = Text)]
        staked: String,
    }
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = SqlUuid)]
        #[allow(dead_code)]
        id: Uuid,
    }
    let locked: Option<Locked> =
        diesel::sql_query("SELECT id FROM members WHERE id = $1 FOR UPDATE")
            .bind::<SqlUuid, _>(member)
            .get_result(conn)
            .await
            .optional()?;
    if locked.is_none() {
        return Err(TreasuryError::UnknownMember(member));
    }
    // Outflows the balance may not show yet: not confirmed, or confirmed after (or close
    // to) the moment the balance was read — counting one twice only errs on the safe side.
    let held: Held = diesel::sql_query(
        "SELECT \
           (SELECT COALESCE(sum(amount), 0)::text FROM token_movements \
             WHERE member_id = $1 AND action IN ('escrow', 'withdraw') \
               AND (state IN ('pending', 'submitted') \
                    OR (state = 'confirmed' AND updated_at >= $2 - interval '30 seconds'))) \
             AS outflows, \
           (SELECT COALESCE(sum(amount), 0)::text FROM stakes \
             WHERE member_id = $1 AND started_at <= now() \
               AND (ends_at IS NULL OR ends_at > now())) AS staked",
    )
    .bind::<SqlUuid, _>(member)
    .bind::<Timestamptz, _>(balance_at)
    .get_result(conn)
    .await?;
    let outflows = hnv_of("token_movements", &held.outflows)?;
    let staked = hnv_of("stakes", &held.staked)?;
    Ok(balance.saturating_sub(outflows).saturating_sub(staked))
}

/// Records a movement in the caller's transaction.
pub(crate) async fn record_movement(
    conn: &mut AsyncPgConnection,
    subject: (&str, Uuid),
    action: MovementAction,
    member: Uuid,
    amount: Hnv,
    recipient: Option<&str>,
) -> Result<()> {
    diesel::sql_query(
        "INSERT INTO token_movements (subject, subject_id, action, member_id, amount, recipient, tx_id) \
         VALUES ($1, $2, $3, $4, $5::numeric, $6, $7) ON CONFLICT (subject_id, action) DO NOTHING",
    )
    .bind::<Text, _>(subject.0)
    .bind::<SqlUuid, _>(subject.1)
    .bind::<Text, _>(action.as_str())
    .bind::<SqlUuid, _>(member)
    .bind::<Text, _>(amount.base_units().to_string())
    .bind::<diesel::sql_types::Nullable<Text>, _>(recipient)
    .bind::<Text, _>(movement_tx_id(subject.1, action))
    .execute(conn)
    .await?;
    Ok(())
}

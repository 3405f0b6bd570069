//! Withdrawals: a member's tokens to one of their registered payout addresses, once per
//! idempotency key, held for review when the fraud rules raise a HIGH alert.
//!
//! `pending → submitted → confirmed | failed`, `held → pending (approved) | rejected`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::AuditEvent;
use haven_fraud::Alert;
use haven_rewards::Hnv;
use uuid::Uuid;

use super::movements::MovementAction;
use super::{Created, PgTreasury, TreasuryError, available_in, record_movement};
use crate::pool::get;
use crate::rewards::hnv_of;
use crate::{PgAlertStore, PgAuditLog};

/// Where a withdrawal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    /// Waiting for the worker.
    Pending,
    /// A HIGH fraud alert holds it until an operator reviews the alert.
    Held,
    /// Sent.
    Submitted,
    /// Confirmed on chain.
    Confirmed,
    /// Rejected in review: nothing moved.
    Rejected,
    /// The transfer reverted: nothing moved.
    Failed,
}

impl WithdrawalStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            WithdrawalStatus::Pending => "pending",
            WithdrawalStatus::Held => "held",
            WithdrawalStatus::Submitted => "submitted",
            WithdrawalStatus::Confirmed => "confirmed",
            WithdrawalStatus::Rejected => "rejected",
            WithdrawalStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => WithdrawalStatus::Pending,
            "held" => WithdrawalStatus::Held,
            "submitted" => WithdrawalStatus::Submitted,
            "confirmed" => WithdrawalStatus::Confirmed,
            "rejected" => WithdrawalStatus::Rejected,
            "failed" => WithdrawalStatus::Failed,
            _ => return None,
        })
    }
}

/// A withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Withdrawal {
    /// Its id.
    pub id: Uuid,
    /// Whose tokens.
    pub member_id: Uuid,
    /// The chain family of the address (`evm`).
    pub chain: String,
    /// The normalized destination.
    pub address: String,
    /// How many tokens.
    pub amount: Hnv,
    /// Where it is.
    pub status: WithdrawalStatus,
    /// The fraud alert holding (or that held) it.
    pub alert_id: Option<Uuid>,
    /// Who asked.
    pub requested_by: String,
    /// The chain transaction id.
    pub tx_id: String,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The guardian vault request deciding it, when a vault covers it.
    pub vault_request_id: Option<Uuid>,
}

/// What a new withdrawal records.
#[derive(Debug, Clone)]
pub struct NewWithdrawal<'a> {
    /// Whose tokens.
    pub member_id: Uuid,
    /// The chain family.
    pub chain: String,
    /// The normalized destination (must be a registered payout address).
    pub address: String,
    /// How many tokens.
    pub amount: Hnv,
    /// Who asks.
    pub requested_by: String,
    /// The request's idempotency key.
    pub idempotency_key: String,
    /// The fraud alerts it raised; a HIGH one holds it.
    pub alerts: &'a [Alert],
    /// The member's on-chain balance and when it was read.
    pub balance: (Hnv, DateTime<Utc>),
    /// Whether a guardian vault covers it: then it is held (no transfer) until the vault's
    /// request is attached and released.
    pub guarded: bool,
    /// `withdrawal.request` audit row.
    pub audit: AuditEvent,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = Text)]
    chain: String,
    #[diesel(sql_type = Text)]
    address: String,
    #[diesel(sql_type = Text)]
    amount: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    alert_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    requested_by: String,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    vault_request_id: Option<Uuid>,
}

const COLUMNS: &str = "id, member_id, chain, address, amount::text AS amount, status, alert_id, \
    requested_by, error, created_at, updated_at, vault_request_id";

impl TryFrom<Row> for Withdrawal {
    type Error = crate::Error;

    fn try_from(r: Row) -> crate::Result<Self> {
        Ok(Self {
            status: WithdrawalStatus::parse(&r.status).ok_or_else(|| crate::Error::Corrupt {
                table: "withdrawals",
                reason: format!("status {:?}", r.status),
            })?,
            amount: hnv_of("withdrawals", &r.amount)?,
            tx_id: super::movement_tx_id(r.id, MovementAction::Withdraw),
            id: r.id,
            member_id: r.member_id,
            chain: r.chain,
            address: r.address,
            alert_id: r.alert_id,
            requested_by: r.requested_by,
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            vault_request_id: r.vault_request_id,
        })
    }
}

/// Finishes settling a held `withdrawal` in the caller's transaction: released, its transfer
/// is recorded for the worker; either way one audit row (`withdrawal.approved` or
/// `withdrawal.rejected`, whatever `audit`'s action) names what settled it (`cause`).
async fn settled_in(
    conn: &mut AsyncPgConnection,
    withdrawal: &Withdrawal,
    approve: bool,
    mut audit: AuditEvent,
    cause: serde_json::Value,
) -> Result<(), TreasuryError> {
    if approve {
        record_movement(
            conn,
            ("withdrawal", withdrawal.id),
            MovementAction::Withdraw,
            withdrawal.member_id,
            withdrawal.amount,
            Some(&withdrawal.address),
        )
        .await?;
    }
    audit.action = if approve {
        "withdrawal.approved"
    } else {
        "withdrawal.rejected"
    }
    .to_owned();
    let mut details = serde_json::json!({
        "amount_hnv": withdrawal.amount.to_string(), "address": withdrawal.address,
    });
    if let (Some(all), serde_json::Value::Object(extra)) = (details.as_object_mut(), cause) {
        all.extend(extra);
    }
    let audit = audit
        .target(format!("withdrawal:{}", withdrawal.id))
        .details(details);
    PgAuditLog::append_in(conn, audit).await?;
    Ok(())
}

async fn load(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Withdrawal>, TreasuryError> {
    let row: Option<Row> =
        diesel::sql_query(format!("SELECT {COLUMNS} FROM withdrawals WHERE id = $1"))
            .bind::<SqlUuid, _>(id)
            .get_result(conn)
            .await
            .optional()?;
    Ok(row.map(Withdrawal::try_from).transpose()?)
}

impl PgTreasury {
    /// Records a withdrawal once per (member, idempotency key) — a retry gets the earlier
    /// one — with its alerts and, unless a HIGH alert holds it, its transfer.
    pub async fn request_withdrawal(
        &self,
        new: NewWithdrawal<'_>,
    ) -> Result<Created<Withdrawal>, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, TreasuryError, _>(async |conn| {
            let available = available_in(conn, new.member_id, new.balance.0, new.balance.1).await?;
            let existing: Option<Row> = diesel::sql_query(format!(
                "SELECT {COLUMNS} FROM withdrawals WHERE member_id = $1 AND idempotency_key = $2"
            ))
            .bind::<SqlUuid, _>(new.member_id)
            .bind::<Text, _>(&new.idempotency_key)
            .get_result(conn)
            .await
            .optional()?;
            if let Some(row) = existing {
                return Ok(Created::Existing(Withdrawal::try_from(row)?));
            }
            #[derive(QueryableByName)]
            struct Found {
                #[diesel(sql_type = Text)]
                #[allow(dead_code)]
                address: String,
            }
            let registered: Option<Found> = diesel::sql_query(
                "SELECT address FROM member_payout_addresses \
                 WHERE member_id = $1 AND chain = $2 AND address = $3",
            )
            .bind::<SqlUuid, _>(new.member_id)
            .bind::<Text, _>(&new.chain)
            .bind::<Text, _>(&new.address)
            .get_result(conn)
            .await
            .optional()?;
            if registered.is_none() {
                return Err(TreasuryError::UnregisteredAddress {
                    chain: new.chain.clone(),
                    address: new.address.clone(),
                });
            }
            if new.amount > available {
                return Err(TreasuryError::InsufficientBalance {
                    available,
                    requested: new.amount,
                });
            }
            let hold = new
                .alerts
                .iter()
                .find(|a| a.severity >= haven_fraud::Severity::High)
                .map(|a| a.id);
            let status = if hold.is_some() || new.guarded {
                WithdrawalStatus::Held
            } else {
                WithdrawalStatus::Pending
            };
            let id = Uuid::now_v7();
            diesel::sql_query(
                "INSERT INTO withdrawals (id, member_id, chain, address, amount, status, alert_id, \
                   requested_by, idempotency_key) \
                 VALUES ($1, $2, $3, $4, $5::numeric, $6, $7, $8, $9)",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(new.member_id)
            .bind::<Text, _>(&new.chain)
            .bind::<Text, _>(&new.address)
            .bind::<Text, _>(new.amount.base_units().to_string())
            .bind::<Text, _>(status.as_str())
            .bind::<Nullable<SqlUuid>, _>(hold)
            .bind::<Text, _>(&new.requested_by)
            .bind::<Text, _>(&new.idempotency_key)
            .execute(conn)
            .await?;
            for alert in new.alerts {
                PgAlertStore::insert_in(conn, alert).await?;
            }
            if status == WithdrawalStatus::Pending {
                record_movement(
                    conn,
                    ("withdrawal", id),
                    MovementAction::Withdraw,
                    new.member_id,
                    new.amount,
                    Some(&new.address),
                )
                .await?;
            }
            let audit = new
                .audit
                .clone()
                .target(format!("withdrawal:{id}"))
                .details(serde_json::json!({
                    "member_id": new.member_id, "amount_hnv": new.amount.to_string(),
                    "chain": new.chain, "address": new.address, "status": status.as_str(),
                    "alert_id": hold, "guarded": new.guarded,
                }));
            PgAuditLog::append_in(conn, audit).await?;
            let created = load(conn, id).await?.ok_or(TreasuryError::NotFound)?;
            Ok(Created::New(created))
        })
        .await
    }

    /// One withdrawal.
    pub async fn withdrawal(&self, id: Uuid) -> Result<Option<Withdrawal>, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        load(&mut conn, id).await
    }

    /// Settles the withdrawals held by `alert`: approved ones are released to the worker,
    /// rejected ones never move; each with its audit row (`audit` with the withdrawal as
    /// target). Idempotent: withdrawals no longer held are left alone.
    pub async fn settle_held_withdrawals(
        &self,
        alert: Uuid,
        approve: bool,
        audit: AuditEvent,
    ) -> Result<Vec<Withdrawal>, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, TreasuryError, _>(async |conn| {
            let to = if approve { "pending" } else { "rejected" };
            // A withdrawal a vault covers moves only on its guardians' release; a rejected
            // alert still stops it.
            let guarded = if approve {
                " AND vault_request_id IS NULL"
            } else {
                ""
            };
            let rows: Vec<Row> = diesel::sql_query(format!(
                "UPDATE withdrawals SET status = $2, version = version + 1, updated_at = now() \
                 WHERE alert_id = $1 AND status = 'held'{guarded} RETURNING {COLUMNS}"
            ))
            .bind::<SqlUuid, _>(alert)
            .bind::<Text, _>(to)
            .load(conn)
            .await?;
            let mut settled = Vec::with_capacity(rows.len());
            for row in rows {
                let withdrawal = Withdrawal::try_from(row)?;
                let cause = serde_json::json!({"alert_id": alert});
                settled_in(conn, &withdrawal, approve, audit.clone(), cause).await?;
                settled.push(withdrawal);
            }
            Ok(settled)
        })
        .await
    }

    /// Records that `vault_request` decides this held withdrawal, unless one already does;
    /// the request that decides it.
    pub async fn attach_withdrawal_vault_request(
        &self,
        id: Uuid,
        vault_request: Uuid,
    ) -> Result<Uuid, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        #[derive(QueryableByName)]
        struct Deciding {
            #[diesel(sql_type = Nullable<SqlUuid>)]
            vault_request_id: Option<Uuid>,
        }
        let row: Deciding = diesel::sql_query(
            "UPDATE withdrawals SET vault_request_id = COALESCE(vault_request_id, $2), \
               updated_at = now() WHERE id = $1 RETURNING vault_request_id",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(vault_request)
        .get_result(&mut conn)
        .await
        .optional()?
        .ok_or(TreasuryError::NotFound)?;
        row.vault_request_id.ok_or(TreasuryError::NotFound)
    }

    /// Settles the held withdrawal `vault_request` decides: released → `pending` with its
    /// transfer recorded (the worker sends it), else `rejected` (it never moves); with the
    /// audit row. Compare-and-set from `held`: returns whether this call settled it.
    pub async fn settle_vault_withdrawal(
        &self,
        id: Uuid,
        vault_request: Uuid,
        approve: bool,
        audit: AuditEvent,
    ) -> Result<bool, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, TreasuryError, _>(async |conn| {
            let to = if approve { "pending" } else { "rejected" };
            let row: Option<Row> = diesel::sql_query(format!(
                "UPDATE withdrawals SET status = $3, version = version + 1, updated_at = now() \
                 WHERE id = $1 AND vault_request_id = $2 AND status = 'held' RETURNING {COLUMNS}"
            ))
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(vault_request)
            .bind::<Text, _>(to)
            .get_result(conn)
            .await
            .optional()?;
            let Some(row) = row else {
                return Ok(false);
            };
            let withdrawal = Withdrawal::try_from(row)?;
            let cause = serde_json::json!({"vault_request_id": vault_request});
            settled_in(conn, &withdrawal, approve, audit, cause).await?;
            Ok(true)
        })
        .await
    }
}

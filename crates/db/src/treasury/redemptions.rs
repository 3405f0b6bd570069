//! Redemptions for fiat: `requested → approved → paid | rejected`.
//!
//! The tokens go to escrow at once (a `transferFrom` of the member's tokens to the operator
//! wallet, exactly once); rejection returns them (a transfer back, exactly once, after the
//! escrow is final); payment burns the escrow. An operator approves, never the requester;
//! above the configured amount two distinct operators must.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::AuditEvent;
use haven_rewards::Hnv;
use uuid::Uuid;

use super::movements::{MovementAction, movement_state_in};
use super::{Created, PgTreasury, TreasuryError, available_in, record_movement};
use crate::PgAuditLog;
use crate::pool::get;
use crate::rewards::hnv_of;

/// Where a redemption is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedemptionStatus {
    /// Waiting for approval (the escrow is being made).
    Requested,
    /// Approved: the fiat may be paid.
    Approved,
    /// Paid: the escrowed tokens are burned.
    Paid,
    /// Rejected: the escrowed tokens go back to the member.
    Rejected,
}

impl RedemptionStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RedemptionStatus::Requested => "requested",
            RedemptionStatus::Approved => "approved",
            RedemptionStatus::Paid => "paid",
            RedemptionStatus::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "requested" => RedemptionStatus::Requested,
            "approved" => RedemptionStatus::Approved,
            "paid" => RedemptionStatus::Paid,
            "rejected" => RedemptionStatus::Rejected,
            _ => return None,
        })
    }
}

/// A redemption request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Redemption {
    /// Its id.
    pub id: Uuid,
    /// Who redeems.
    pub member_id: Uuid,
    /// How many tokens.
    pub amount: Hnv,
    /// The fiat currency (`CAD`, …).
    pub fiat_currency: String,
    /// Fiat per HNV of the stored quote (exact decimal text).
    pub rate: String,
    /// What the member is paid (exact decimal text, rounding stated in docs/REWARDS.md).
    pub fiat_amount: String,
    /// Where the rate came from (`primary`, `secondary`, `cache`).
    pub rate_source: String,
    /// When the rate was observed.
    pub rate_at: DateTime<Utc>,
    /// The member's payout reference (bank account alias, …).
    pub payout_reference: String,
    /// Where it is.
    pub status: RedemptionStatus,
    /// Who asked (`user:<id>`, `api_key:<id>`).
    pub requested_by: String,
    /// Who approved, in order.
    pub approvals: Vec<String>,
    /// How many approvals it needs.
    pub required_approvals: i32,
    /// Who rejected or marked it paid.
    pub decided_by: Option<String>,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// The escrow movement's state (`pending`, `submitted`, `confirmed`, `failed`,
    /// `cancelled`).
    pub escrow: String,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The guardian vault request deciding it, when a vault covers it.
    pub vault_request_id: Option<Uuid>,
}

/// What a new redemption records.
#[derive(Debug, Clone)]
pub struct NewRedemption {
    /// Who redeems.
    pub member_id: Uuid,
    /// How many tokens.
    pub amount: Hnv,
    /// The fiat currency.
    pub fiat_currency: String,
    /// Fiat per HNV.
    pub rate: String,
    /// The fiat amount.
    pub fiat_amount: String,
    /// Where the rate came from.
    pub rate_source: String,
    /// When the rate was observed.
    pub rate_at: DateTime<Utc>,
    /// The payout reference.
    pub payout_reference: String,
    /// Who asks.
    pub requested_by: String,
    /// The request's idempotency key.
    pub idempotency_key: String,
    /// 1, or 2 above the configured amount.
    pub required_approvals: i32,
    /// The member's on-chain balance and when it was read.
    pub balance: (Hnv, DateTime<Utc>),
    /// `redemption.request` audit row.
    pub audit: AuditEvent,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    member_id: Uuid,
    #[diesel(sql_type = Text)]
    amount: String,
    #[diesel(sql_type = Text)]
    fiat_currency: String,
    #[diesel(sql_type = Text)]
    rate: String,
    #[diesel(sql_type = Text)]
    fiat_amount: String,
    #[diesel(sql_type = Text)]
    rate_source: String,
    #[diesel(sql_type = Timestamptz)]
    rate_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    payout_reference: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    requested_by: String,
    #[diesel(sql_type = Array<Text>)]
    approvals: Vec<String>,
    #[diesel(sql_type = Integer)]
    required_approvals: i32,
    #[diesel(sql_type = Nullable<Text>)]
    decided_by: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Text)]
    escrow: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    vault_request_id: Option<Uuid>,
}

const COLUMNS: &str = "r.id, r.member_id, r.amount::text AS amount, r.fiat_currency, r.rate, \
    r.fiat_amount, r.rate_source, r.rate_at, r.payout_reference, r.status, r.requested_by, \
    r.approvals, r.required_approvals, r.decided_by, r.reason, \
    COALESCE((SELECT m.state FROM token_movements m WHERE m.subject_id = r.id \
      AND m.action = 'escrow'), 'none') AS escrow, r.created_at, r.updated_at, \
    r.vault_request_id";

impl TryFrom<Row> for Redemption {
    type Error = crate::Error;

    fn try_from(r: Row) -> crate::Result<Self> {
        Ok(Self {
            status: RedemptionStatus::parse(&r.status).ok_or_else(|| crate::Error::Corrupt {
                table: "redemption_requests",
                reason: format!("status {:?}", r.status),
            })?,
            amount: hnv_of("redemption_requests", &r.amount)?,
            id: r.id,
            member_id: r.member_id,
            fiat_currency: r.fiat_currency,
            rate: r.rate,
            fiat_amount: r.fiat_amount,
            rate_source: r.rate_source,
            rate_at: r.rate_at,
            payout_reference: r.payout_reference,
            requested_by: r.requested_by,
            approvals: r.approvals,
            required_approvals: r.required_approvals,
            decided_by: r.decided_by,
            reason: r.reason,
            escrow: r.escrow,
            created_at: r.created_at,
            updated_at: r.updated_at,
            vault_request_id: r.vault_request_id,
        })
    }
}

async fn load(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<Redemption>, TreasuryError> {
    let lock = if lock { " FOR UPDATE OF r" } else { "" };
    let row: Option<Row> = diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM redemption_requests r WHERE r.id = $1{lock}"
    ))
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(Redemption::try_from).transpose()?)
}

impl PgTreasury {
    /// Records a redemption and its escrow once per (member, idempotency key): a retry gets
    /// the earlier request. Refused when the member cannot spend the amount.
    pub async fn request_redemption(
        &self,
        new: NewRedemption,
    ) -> Result<Created<Redemption>, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, TreasuryError, _>(async |conn| {
            let available = available_in(conn, new.member_id, new.balance.0, new.balance.1).await?;
            let existing: Option<Row> = diesel::sql_query(format!(
                "SELECT {COLUMNS} FROM redemption_requests r \
                 WHERE r.member_id = $1 AND r.idempotency_key = $2"
            ))
            .bind::<SqlUuid, _>(new.member_id)
            .bind::<Text, _>(&new.idempotency_key)
            .get_result(conn)
            .await
            .optional()?;
            if let Some(row) = existing {
                return Ok(Created::Existing(Redemption::try_from(row)?));
            }
            if new.amount > available {
                return Err(TreasuryError::InsufficientBalance {
                    available,
                    requested: new.amount,
                });
            }
            let id = Uuid::now_v7();
            diesel::sql_query(
                "INSERT INTO redemption_requests (id, member_id, amount, fiat_currency, rate, \
                   fiat_amount, rate_source, rate_at, payout_reference, status, requested_by, \
                   required_approvals, idempotency_key) \
                 VALUES ($1, $2, $3::numeric, $4, $5, $6, $7, $8, $9, 'requested', $10, $11, $12)",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(new.member_id)
            .bind::<Text, _>(new.amount.base_units().to_string())
            .bind::<Text, _>(&new.fiat_currency)
            .bind::<Text, _>(&new.rate)
            .bind::<Text, _>(&new.fiat_amount)
            .bind::<Text, _>(&new.rate_source)
            .bind::<Timestamptz, _>(new.rate_at)
            .bind::<Text, _>(&new.payout_reference)
            .bind::<Text, _>(&new.requested_by)
            .bind::<Integer, _>(new.required_approvals)
            .bind::<Text, _>(&new.idempotency_key)
            .execute(conn)
            .await?;
            record_movement(
                conn,
                ("redemption", id),
                MovementAction::Escrow,
                new.member_id,
                new.amount,
                None,
            )
            .await?;
            let audit = new
                .audit
                .clone()
                .target(format!("redemption:{id}"))
                .details(serde_json::json!({
                    "member_id": new.member_id, "amount_hnv": new.amount.to_string(),
                    "fiat_currency": new.fiat_currency, "fiat_amount": new.fiat_amount,
                    "rate": new.rate, "rate_source": new.rate_source,
                    "required_approvals": new.required_approvals,
                }));
            PgAuditLog::append_in(conn, audit).await?;
            let created = load(conn, id, false)
                .await?
                .ok_or(TreasuryError::NotFound)?;
            Ok(Created::New(created))
        })
        .await
    }

    /// One redemption.
    pub async fn redemption(&self, id: Uuid) -> Result<Option<Redemption>, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        load(&mut conn, id, false).await
    }

    /// Redemptions in `status` (all when `None`), newest first, up to `limit`.
    pub async fn redemptions(
        &self,
        status: Option<RedemptionStatus>,
        limit: i64,
    ) -> Result<Vec<Redemption>, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM redemption_requests r \
             WHERE ($1::text IS NULL OR r.status = $1) ORDER BY r.created_at DESC, r.id DESC LIMIT $2"
        ))
        .bind::<Nullable<Text>, _>(status.map(RedemptionStatus::as_str))
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(Redemption::try_from)
            .collect::<crate::Result<_>>()?)
    }

    /// `approver` approves: refused for the requester and for a second approval by the same
    /// person; the request is `approved` once it has its required approvals.
    pub async fn approve_redemption(
        &self,
        id: Uuid,
        approver: &str,
        audit: AuditEvent,
    ) -> Result<Redemption, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, TreasuryError, _>(async |conn| {
            let current = load(conn, id, true).await?.ok_or(TreasuryError::NotFound)?;
            if current.status != RedemptionStatus::Requested {
                return Err(TreasuryError::InvalidTransition(format!(
                    "a {} redemption cannot be approved",
                    current.status.as_str()
                )));
            }
            if current.requested_by == approver {
                return Err(TreasuryError::Forbidden(
                    "the requester of a redemption may not approve it".into(),
                ));
            }
            if current.approvals.iter().any(|a| a == approver) {
                return Err(TreasuryError::Forbidden(
                    "a second approval must come from another operator".into(),
                ));
            }
            let approvals = current.approvals.len() as i32 + 1;
            let status = if approvals >= current.required_approvals {
                RedemptionStatus::Approved
            } else {
                RedemptionStatus::Requested
            };
            diesel::sql_query(
                "UPDATE redemption_requests SET approvals = array_append(approvals, $2), \
                   status = $3, version = version + 1, updated_at = now() WHERE id = $1",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(approver)
            .bind::<Text, _>(status.as_str())
            .execute(conn)
            .await?;
            let audit = audit
                .target(format!("redemption:{id}"))
                .details(serde_json::json!({
                    "approval": approvals, "required": current.required_approvals,
                    "status": status.as_str(), "amount_hnv": current.amount.to_string(),
                }));
            PgAuditLog::append_in(conn, audit).await?;
            load(conn, id, false).await?.ok_or(TreasuryError::NotFound)
        })
        .await
    }

    /// Records that `vault_request` decides this requested redemption, unless one already
    /// does. Returns the request that decides it (the one given, or the earlier one when a
    /// concurrent approval attached first; the caller's own request then decides nothing).
    pub async fn attach_vault_request(
        &self,
        id: Uuid,
        vault_request: Uuid,
        audit: AuditEvent,
    ) -> Result<Uuid, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, TreasuryError, _>(async |conn| {
            let current = load(conn, id, true).await?.ok_or(TreasuryError::NotFound)?;
            if let Some(existing) = current.vault_request_id {
                return Ok(existing);
            }
            if current.status != RedemptionStatus::Requested {
                return Err(TreasuryError::InvalidTransition(format!(
                    "a {} redemption cannot be submitted to the guardians",
                    current.status.as_str()
                )));
            }
            diesel::sql_query(
                "UPDATE redemption_requests SET vault_request_id = $2, version = version + 1, \
                   updated_at = now() WHERE id = $1",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(vault_request)
            .execute(conn)
            .await?;
            let audit = audit
                .target(format!("redemption:{id}"))
                .details(serde_json::json!({
                    "vault_request_id": vault_request, "amount_hnv": current.amount.to_string(),
                }));
            PgAuditLog::append_in(conn, audit).await?;
            Ok(vault_request)
        })
        .await
    }

    /// Approves the redemption `vault_request` decides, once its guardians released it:
    /// `requested` → `approved` by compare-and-set, so a repeated release or a recovery
    /// after a crash changes nothing. Returns whether this call approved it.
    pub async fn approve_redemption_by_vault(
        &self,
        id: Uuid,
        vault_request: Uuid,
        audit: AuditEvent,
    ) -> Result<bool, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, TreasuryError, _>(async |conn| {
            let approved = diesel::sql_query(
                "UPDATE redemption_requests SET status = 'approved', \
                   approvals = array_append(approvals, $3), version = version + 1, \
                   updated_at = now() \
                 WHERE id = $1 AND vault_request_id = $2 AND status = 'requested'",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(vault_request)
            .bind::<Text, _>(format!("vault:{vault_request}"))
            .execute(conn)
            .await?;
            if approved == 1 {
                let audit = audit
                    .target(format!("redemption:{id}"))
                    .details(serde_json::json!({"vault_request_id": vault_request}));
                PgAuditLog::append_in(conn, audit).await?;
            }
            Ok(approved == 1)
        })
        .await
    }

    /// Rejects a requested or approved redemption: the escrow is cancelled if it was not
    /// sent yet, or returned (once it is final) if it was.
    pub async fn reject_redemption(
        &self,
        id: Uuid,
        by: &str,
        reason: &str,
        audit: AuditEvent,
    ) -> Result<Redemption, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, TreasuryError, _>(async |conn| {
            let current = load(conn, id, true).await?.ok_or(TreasuryError::NotFound)?;
            if !matches!(
                current.status,
                RedemptionStatus::Requested | RedemptionStatus::Approved
            ) {
                return Err(TreasuryError::InvalidTransition(format!(
                    "a {} redemption cannot be rejected",
                    current.status.as_str()
                )));
            }
            reject_in(conn, &current, by, reason).await?;
            let audit = audit
                .target(format!("redemption:{id}"))
                .details(serde_json::json!({
                    "reason": reason, "amount_hnv": current.amount.to_string(),
                    "from": current.status.as_str(),
                }));
            PgAuditLog::append_in(conn, audit).await?;
            load(conn, id, false).await?.ok_or(TreasuryError::NotFound)
        })
        .await
    }

    /// Marks an approved redemption paid once its escrow is confirmed; the escrow is burned.
    pub async fn mark_redemption_paid(
        &self,
        id: Uuid,
        by: &str,
        audit: AuditEvent,
    ) -> Result<Redemption, TreasuryError> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, TreasuryError, _>(async |conn| {
            let current = load(conn, id, true).await?.ok_or(TreasuryError::NotFound)?;
            if current.status != RedemptionStatus::Approved {
                return Err(TreasuryError::InvalidTransition(format!(
                    "a {} redemption cannot be marked paid",
                    current.status.as_str()
                )));
            }
            if current.escrow != "confirmed" {
                return Err(TreasuryError::InvalidTransition(format!(
                    "the escrow is {}, not confirmed yet",
                    current.escrow
                )));
            }
            diesel::sql_query(
                "UPDATE redemption_requests SET status = 'paid', decided_by = $2, \
                   version = version + 1, updated_at = now() WHERE id = $1",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(by)
            .execute(conn)
            .await?;
            record_movement(
                conn,
                ("redemption", id),
                MovementAction::Burn,
                current.member_id,
                current.amount,
                None,
            )
            .await?;
            let audit = audit
                .target(format!("redemption:{id}"))
                .details(serde_json::json!({
                    "amount_hnv": current.amount.to_string(), "fiat_amount": current.fiat_amount,
                    "fiat_currency": current.fiat_currency,
                }));
            PgAuditLog::append_in(conn, audit).await?;
            load(conn, id, false).await?.ok_or(TreasuryError::NotFound)
        })
        .await
    }
}

/// Rejects `current` in the caller's transaction (an operator's rejection, or the escrow
/// failing on chain).
pub(crate) async fn reject_in(
    conn: &mut AsyncPgConnection,
    current: &Redemption,
    by: &str,
    reason: &str,
) -> Result<(), TreasuryError> {
    diesel::sql_query(
        "UPDATE redemption_requests SET status = 'rejected', decided_by = $2, reason = $3, \
           version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind::<SqlUuid, _>(current.id)
    .bind::<Text, _>(by)
    .bind::<Text, _>(reason)
    .execute(conn)
    .await?;
    // Not sent yet: cancelled, nothing ever moves. Sent: returned once final.
    let cancelled = diesel::sql_query(
        "UPDATE token_movements SET state = 'cancelled', updated_at = now() \
         WHERE subject_id = $1 AND action = 'escrow' AND state = 'pending'",
    )
    .bind::<SqlUuid, _>(current.id)
    .execute(conn)
    .await?;
    if cancelled == 0
        && matches!(
            movement_state_in(conn, current.id, MovementAction::Escrow)
                .await?
                .as_deref(),
            Some("submitted" | "confirmed")
        )
    {
        record_movement(
            conn,
            ("redemption", current.id),
            MovementAction::Return,
            current.member_id,
            current.amount,
            None,
        )
        .await?;
    }
    Ok(())
}

/// The redemption, locked for the caller's transaction.
pub(crate) async fn load_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<Redemption>, TreasuryError> {
    load(conn, id, true).await
}

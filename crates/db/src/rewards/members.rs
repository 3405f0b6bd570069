//! Members of the rewards program and how partners know them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::AuditEvent;
use haven_rewards::MemberRef;
use uuid::Uuid;

use super::{PgRewards, hnv_of};
use crate::pool::get;
use crate::{Error, PgAuditLog, Result};

/// A member as stored, with what the ledger says they hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// Its id.
    pub id: Uuid,
    /// `active` or `suspended`.
    pub status: String,
    /// A verified e-mail, when a partner gave one.
    pub email: Option<String>,
    /// The custodial wallet, once one was created.
    pub wallet_id: Option<String>,
    /// Its address (`0x…`, lower case).
    pub wallet_address: Option<String>,
    /// The partner identities linked to the member.
    pub identities: Vec<Identity>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// One partner identity of a member.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// `aurora` or `tribe`.
    pub source: String,
    /// The partner's guest / attendee id.
    pub external_id: String,
    /// `first_event`, `verified_email` or `operator`.
    pub linked_by: String,
}

/// A payout address a member registered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PayoutAddress {
    /// The chain family (`evm`, …).
    pub chain: String,
    /// The normalized address.
    pub address: String,
    /// Free text.
    pub label: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct MemberRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    wallet_id: Option<String>,
    #[diesel(sql_type = Nullable<Bytea>)]
    wallet_address: Option<Vec<u8>>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct IdentityRow {
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Text)]
    external_id: String,
    #[diesel(sql_type = Text)]
    linked_by: String,
}

#[derive(QueryableByName)]
struct PayoutRow {
    #[diesel(sql_type = Text)]
    chain: String,
    #[diesel(sql_type = Text)]
    address: String,
    #[diesel(sql_type = Text)]
    label: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

/// Totals of a member's rewards by what the ledger knows of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct MemberTotals {
    /// Minted and confirmed on chain, minus what reversals burned.
    pub confirmed: haven_rewards::Hnv,
    /// Waiting to be minted (pending, held, submitted).
    pub pending: haven_rewards::Hnv,
}

fn address_text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(|b| format!("0x{}", hex::encode(b)))
}

impl PgRewards {
    /// The member a partner identity belongs to, created on first sight. A verified e-mail
    /// links a new identity to the member that already has it; the first identity to bring
    /// an e-mail sets it. Safe under concurrency: of concurrent first sightings one creates
    /// the member and the others find it.
    pub async fn resolve_member(&self, member: &MemberRef) -> Result<Uuid> {
        let mut conn = get(&self.pool).await?;
        let source = member.source.as_str();
        for _ in 0..3 {
            let found: Option<IdRow> = diesel::sql_query(
                "SELECT member_id AS id FROM member_identities WHERE source = $1 AND external_id = $2",
            )
            .bind::<Text, _>(source)
            .bind::<Text, _>(&member.external_id)
            .get_result(&mut conn)
            .await
            .optional()?;
            if let Some(found) = found {
                if let Some(email) = &member.email {
                    // The first verified e-mail seen for a member sets it, unless another
                    // member already has it.
                    diesel::sql_query(
                        "UPDATE members SET email = $2, updated_at = now() WHERE id = $1 \
                         AND email IS NULL AND NOT EXISTS (SELECT 1 FROM members WHERE email = $2)",
                    )
                    .bind::<SqlUuid, _>(found.id)
                    .bind::<Text, _>(email)
                    .execute(&mut conn)
                    .await
                    .map_err(Error::from_write)
                    .or_else(|e| match e {
                        Error::Conflict { .. } => Ok(0),
                        other => Err(other),
                    })?;
                }
                return Ok(found.id);
            }
            let created = conn
                .transaction::<_, Error, _>(async |conn| link_new_identity(conn, member).await)
                .await;
            match created {
                Ok(id) => return Ok(id),
                // Another request linked it (or took the e-mail) meanwhile: look again.
                Err(Error::Conflict { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(Error::Conflict {
            constraint: "member_identities_pkey".into(),
        })
    }

    /// A member with its identities, or `None`.
    pub async fn member(&self, id: Uuid) -> Result<Option<Member>> {
        let mut conn = get(&self.pool).await?;
        let row: Option<MemberRow> = diesel::sql_query(
            "SELECT id, status, email, wallet_id, wallet_address, created_at FROM members WHERE id = $1",
        )
        .bind::<SqlUuid, _>(id)
        .get_result(&mut conn)
        .await
        .optional()?;
        let Some(row) = row else { return Ok(None) };
        let identities: Vec<IdentityRow> = diesel::sql_query(
            "SELECT source, external_id, linked_by FROM member_identities WHERE member_id = $1 \
             ORDER BY created_at, source",
        )
        .bind::<SqlUuid, _>(id)
        .load(&mut conn)
        .await?;
        Ok(Some(Member {
            id: row.id,
            status: row.status,
            email: row.email,
            wallet_id: row.wallet_id,
            wallet_address: address_text(row.wallet_address),
            identities: identities
                .into_iter()
                .map(|i| Identity {
                    source: i.source,
                    external_id: i.external_id,
                    linked_by: i.linked_by,
                })
                .collect(),
            created_at: row.created_at,
        }))
    }

    /// The member's confirmed and pending totals.
    pub async fn member_totals(&self, id: Uuid) -> Result<MemberTotals> {
        #[derive(QueryableByName)]
        struct Totals {
            #[diesel(sql_type = Text)]
            confirmed: String,
            #[diesel(sql_type = Text)]
            pending: String,
        }
        let mut conn = get(&self.pool).await?;
        let totals: Totals = diesel::sql_query(
            "SELECT \
               COALESCE(SUM(CASE WHEN state IN ('confirmed', 'reversed') \
                 THEN amount - COALESCE(reversed_amount, 0) ELSE 0 END), 0)::text AS confirmed, \
               COALESCE(SUM(CASE WHEN state IN ('pending', 'held', 'submitted') \
                 THEN amount ELSE 0 END), 0)::text AS pending \
             FROM rewards WHERE member_id = $1",
        )
        .bind::<SqlUuid, _>(id)
        .get_result(&mut conn)
        .await?;
        Ok(MemberTotals {
            confirmed: hnv_of("rewards", &totals.confirmed)?,
            pending: hnv_of("rewards", &totals.pending)?,
        })
    }

    /// Records the member's custodial wallet (once: a second call with another wallet is a
    /// conflict, the same one is a no-op).
    pub async fn set_member_wallet(
        &self,
        member: Uuid,
        wallet_id: &str,
        address: [u8; 20],
    ) -> Result<()> {
        let mut conn = get(&self.pool).await?;
        let updated = diesel::sql_query(
            "UPDATE members SET wallet_id = $2, wallet_address = $3, updated_at = now() \
             WHERE id = $1 AND (wallet_id IS NULL OR (wallet_id = $2 AND wallet_address = $3))",
        )
        .bind::<SqlUuid, _>(member)
        .bind::<Text, _>(wallet_id)
        .bind::<Bytea, _>(address.as_slice())
        .execute(&mut conn)
        .await?;
        if updated == 0 {
            return Err(Error::Conflict {
                constraint: "members_wallet".into(),
            });
        }
        Ok(())
    }

    /// Links `source`/`external_id` to `member` (an operator's explicit link), with its
    /// audit row in the same transaction. An identity of another member is a conflict.
    pub async fn link_identity(
        &self,
        member: Uuid,
        source: &str,
        external_id: &str,
        audit: AuditEvent,
    ) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |conn| {
            let owner: Option<IdRow> = diesel::sql_query(
                "SELECT member_id AS id FROM member_identities WHERE source = $1 AND external_id = $2",
            )
            .bind::<Text, _>(source)
            .bind::<Text, _>(external_id)
            .get_result(conn)
            .await
            .optional()?;
            match owner {
                Some(owner) if owner.id == member => return Ok(false),
                Some(_) => {
                    return Err(Error::Conflict {
                        constraint: "member_identities_pkey".into(),
                    });
                }
                None => {}
            }
            diesel::sql_query(
                "INSERT INTO member_identities (source, external_id, member_id, linked_by) \
                 VALUES ($1, $2, $3, 'operator')",
            )
            .bind::<Text, _>(source)
            .bind::<Text, _>(external_id)
            .bind::<SqlUuid, _>(member)
            .execute(conn)
            .await
            .map_err(Error::from_write)?;
            PgAuditLog::append_in(conn, audit).await?;
            Ok(true)
        })
        .await
    }

    /// Registers a payout address (already validated and normalized) with its audit row;
    /// `false` when the member had it already.
    pub async fn add_payout_address(
        &self,
        member: Uuid,
        chain: &str,
        address: &str,
        label: &str,
        audit: AuditEvent,
    ) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        conn.transaction::<_, Error, _>(async |conn| {
            let inserted = diesel::sql_query(
                "INSERT INTO member_payout_addresses (member_id, chain, address, label) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind::<SqlUuid, _>(member)
            .bind::<Text, _>(chain)
            .bind::<Text, _>(address)
            .bind::<Text, _>(label)
            .execute(conn)
            .await?;
            if inserted == 1 {
                PgAuditLog::append_in(conn, audit).await?;
            }
            Ok(inserted == 1)
        })
        .await
    }

    /// The member's payout addresses, oldest first.
    pub async fn payout_addresses(&self, member: Uuid) -> Result<Vec<PayoutAddress>> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<PayoutRow> = diesel::sql_query(
            "SELECT chain, address, label, created_at FROM member_payout_addresses \
             WHERE member_id = $1 ORDER BY created_at, chain, address",
        )
        .bind::<SqlUuid, _>(member)
        .load(&mut conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| PayoutAddress {
                chain: r.chain,
                address: r.address,
                label: r.label,
                created_at: r.created_at,
            })
            .collect())
    }
}

/// Creates the identity (and the member unless a verified e-mail names one) inside a
/// transaction; a unique violation means another request got there first.
async fn link_new_identity(conn: &mut AsyncPgConnection, member: &MemberRef) -> Result<Uuid> {
    let by_email: Option<IdRow> = match &member.email {
        Some(email) => diesel::sql_query("SELECT id FROM members WHERE email = $1")
            .bind::<Text, _>(email)
            .get_result(conn)
            .await
            .optional()?,
        None => None,
    };
    let (id, linked_by) = match by_email {
        Some(existing) => (existing.id, "verified_email"),
        None => {
            let id = Uuid::now_v7();
            diesel::sql_query("INSERT INTO members (id, email) VALUES ($1, $2)")
                .bind::<SqlUuid, _>(id)
                .bind::<Nullable<Text>, _>(member.email.as_deref())
                .execute(conn)
                .await
                .map_err(Error::from_write)?;
            (id, "first_event")
        }
    };
    diesel::sql_query(
        "INSERT INTO member_identities (source, external_id, member_id, linked_by) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind::<Text, _>(member.source.as_str())
    .bind::<Text, _>(&member.external_id)
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(linked_by)
    .execute(conn)
    .await
    .map_err(Error::from_write)?;
    Ok(id)
}

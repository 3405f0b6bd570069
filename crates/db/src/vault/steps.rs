//! The atomic steps of the vault store, each run inside one transaction by its caller.
//!
//! Lock order, the same in every step so that none waits on another in a cycle: a request
//! row before anything else in `record_decision` and `expire_request`; in `remove_guardian`
//! the guardian row (`FOR NO KEY UPDATE`, which does not conflict with the key-share lock a
//! concurrent decision's foreign key takes on it) and then the vault's open requests by id.

use chrono::{DateTime, Utc};
use diesel::OptionalExtension;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use haven_vault::{
    Decision, DecisionKind, Error, Guardian, GuardianId, Policy, Recorded, Removal, RequestId,
    RequestState, VaultId, VaultRequest, settle,
};
use uuid::Uuid;

use super::rows::{
    CountRow, GUARDIAN_COLUMNS, GuardianRow, IdRow, InvitationRow, REQUEST_COLUMNS, RequestRow,
    TxFailure, VAULT_COLUMNS, VaultRow, VoteRow, corrupt, join_time, parse_kind, split_time,
};

type Conn = AsyncPgConnection;
type Step<T> = Result<T, TxFailure>;

/// The partial unique index that keeps two active guardians of a vault from sharing a key.
const ACTIVE_DEVICE_KEY: &str = "vault_guardians_active_device_key";

/// The request, locked for the rest of the transaction.
async fn lock_request(c: &mut Conn, id: RequestId) -> Step<VaultRequest> {
    let row: Option<RequestRow> = diesel::sql_query(format!(
        "SELECT {REQUEST_COLUMNS} FROM vault_requests WHERE id = $1 FOR UPDATE"
    ))
    .bind::<SqlUuid, _>(id.0)
    .get_result(c)
    .await
    .optional()?;
    Ok(row.ok_or(Error::RequestNotFound { id })?.decode()?)
}

/// The guardian as it stands now (read after the caller's locks, so committed removals show).
async fn read_guardian(c: &mut Conn, id: GuardianId, lock: &str) -> Step<Option<Guardian>> {
    let row: Option<GuardianRow> = diesel::sql_query(format!(
        "SELECT {GUARDIAN_COLUMNS} FROM vault_guardians WHERE id = $1 {lock}"
    ))
    .bind::<SqlUuid, _>(id.0)
    .get_result(c)
    .await
    .optional()?;
    Ok(row.map(GuardianRow::decode).transpose()?)
}

/// The guardians whose approvals count on `id`, in the order they decided, and the number
/// of counting rejections: decisions not voided, of guardians not removed.
async fn count(c: &mut Conn, id: RequestId) -> Step<(Vec<GuardianId>, usize)> {
    let votes: Vec<VoteRow> = diesel::sql_query(
        "SELECT d.guardian_id, d.kind FROM vault_decisions d \
         JOIN vault_guardians g ON g.id = d.guardian_id \
         WHERE d.request_id = $1 AND d.voided_at IS NULL AND g.removed_at IS NULL \
         ORDER BY d.id",
    )
    .bind::<SqlUuid, _>(id.0)
    .load(c)
    .await?;
    let mut approvers = Vec::new();
    let mut rejections = 0;
    for vote in votes {
        match parse_kind(&vote.kind) {
            Some(DecisionKind::Approve) => approvers.push(GuardianId(vote.guardian_id)),
            Some(DecisionKind::Reject) => rejections += 1,
            None => {
                let reason = format!("unknown kind {:?}", vote.kind);
                return Err(corrupt("vault_decisions", reason).into());
            }
        }
    }
    Ok((approvers, rejections))
}

/// How many guardians of the vault count.
async fn active_count(c: &mut Conn, vault_id: VaultId) -> Step<usize> {
    let row: CountRow = diesel::sql_query(
        "SELECT count(*) AS n FROM vault_guardians WHERE vault_id = $1 AND removed_at IS NULL",
    )
    .bind::<SqlUuid, _>(vault_id.0)
    .get_result(c)
    .await?;
    Ok(usize::try_from(row.n).unwrap_or(0))
}

/// Recounts the locked open request `id` of `vault_id` under `threshold` and moves it by a
/// compare-and-set from `open` when [`settle`] says so (`released` with `approved`).
async fn recount(
    c: &mut Conn,
    id: RequestId,
    vault_id: VaultId,
    threshold: u32,
) -> Step<(Vec<GuardianId>, usize, Option<RequestState>)> {
    let (approvers, rejections) = count(c, id).await?;
    let active = active_count(c, vault_id).await?;
    let transition = settle(threshold, active, approvers.len(), rejections);
    if let Some(to) = transition {
        let moved = diesel::sql_query(
            "UPDATE vault_requests SET state = $2, released = $3 \
             WHERE id = $1 AND state = 'open'",
        )
        .bind::<SqlUuid, _>(id.0)
        .bind::<Text, _>(to.as_str())
        .bind::<Bool, _>(to == RequestState::Approved)
        .execute(c)
        .await?;
        if moved != 1 {
            // The row is locked by this transaction: it cannot have left `open` meanwhile.
            return Err(corrupt("vault_requests", format!("{id} left open under its lock")).into());
        }
    }
    Ok((approvers, rejections, transition))
}

/// `redeem_invitation`: locks the invitation, checks it and the device key, inserts the
/// guardian and marks the invitation used by it.
pub(super) async fn redeem(
    c: &mut Conn,
    code_hash: &[u8; 32],
    guardian: &Guardian,
    now: DateTime<Utc>,
) -> Step<()> {
    let invitation: Option<InvitationRow> = diesel::sql_query(
        "SELECT vault_id, expires_at, expires_at_sub_us, used_by FROM vault_invitations \
         WHERE code_hash = $1 FOR UPDATE",
    )
    .bind::<Bytea, _>(code_hash.as_slice())
    .get_result(c)
    .await
    .optional()?;
    let invitation = invitation.ok_or(Error::InvitationUnknown)?;
    if invitation.vault_id != guardian.vault_id.0 {
        return Err(Error::InvitationForOtherVault.into());
    }
    if invitation.used_by.is_some() {
        return Err(Error::InvitationUsed.into());
    }
    if now >= join_time(invitation.expires_at, invitation.expires_at_sub_us) {
        return Err(Error::InvitationExpired.into());
    }
    let key = guardian.device_key.as_bytes().as_slice();
    let taken: CountRow = diesel::sql_query(
        "SELECT count(*) AS n FROM vault_guardians \
         WHERE vault_id = $1 AND device_key = $2 AND removed_at IS NULL",
    )
    .bind::<SqlUuid, _>(guardian.vault_id.0)
    .bind::<Bytea, _>(key)
    .get_result(c)
    .await?;
    if taken.n > 0 {
        return Err(Error::DeviceKeyInUse.into());
    }
    insert_guardian(c, guardian).await?;
    let (used_at, used_sub) = split_time(now);
    let used = diesel::sql_query(
        "UPDATE vault_invitations SET used_at = $2, used_at_sub_us = $3, used_by = $4 \
         WHERE code_hash = $1 AND used_by IS NULL",
    )
    .bind::<Bytea, _>(code_hash.as_slice())
    .bind::<Timestamptz, _>(used_at)
    .bind::<SmallInt, _>(used_sub)
    .bind::<SqlUuid, _>(guardian.id.0)
    .execute(c)
    .await?;
    if used != 1 {
        return Err(Error::InvitationUsed.into());
    }
    Ok(())
}

/// Inserts the guardian; a concurrent join with the same device key that committed first
/// trips the partial unique index and reads as [`Error::DeviceKeyInUse`].
async fn insert_guardian(c: &mut Conn, guardian: &Guardian) -> Step<()> {
    let (joined_at, joined_sub) = split_time(guardian.joined_at);
    let removed = guardian.removed_at.map(split_time);
    let inserted = diesel::sql_query(
        "INSERT INTO vault_guardians (id, vault_id, device_key, joined_at, joined_at_sub_us, \
         removed_at, removed_at_sub_us) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind::<SqlUuid, _>(guardian.id.0)
    .bind::<SqlUuid, _>(guardian.vault_id.0)
    .bind::<Bytea, _>(guardian.device_key.as_bytes().as_slice())
    .bind::<Timestamptz, _>(joined_at)
    .bind::<SmallInt, _>(joined_sub)
    .bind::<Nullable<Timestamptz>, _>(removed.map(|(at, _)| at))
    .bind::<SmallInt, _>(removed.map_or(0, |(_, sub)| sub))
    .execute(c)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
            if info.constraint_name() == Some(ACTIVE_DEVICE_KEY) =>
        {
            Err(Error::DeviceKeyInUse.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// `remove_guardian`: marks the guardian removed, voids its decisions on the vault's open
/// requests (locked) and recounts each of them.
pub(super) async fn remove(
    c: &mut Conn,
    vault_id: VaultId,
    guardian_id: GuardianId,
    now: DateTime<Utc>,
) -> Step<Removal> {
    let vault: Option<VaultRow> =
        diesel::sql_query(format!("SELECT {VAULT_COLUMNS} FROM vaults WHERE id = $1"))
            .bind::<SqlUuid, _>(vault_id.0)
            .get_result(c)
            .await
            .optional()?;
    let policy: Policy = vault
        .ok_or(Error::VaultNotFound { id: vault_id })?
        .decode()?
        .policy;
    let guardian = read_guardian(c, guardian_id, "FOR NO KEY UPDATE")
        .await?
        .filter(|g| g.vault_id == vault_id)
        .ok_or(Error::GuardianNotFound { id: guardian_id })?;
    if !guardian.is_active() {
        return Err(Error::GuardianRemoved { id: guardian_id }.into());
    }
    let (removed_at, removed_sub) = split_time(now);
    diesel::sql_query(
        "UPDATE vault_guardians SET removed_at = $2, removed_at_sub_us = $3 WHERE id = $1",
    )
    .bind::<SqlUuid, _>(guardian_id.0)
    .bind::<Timestamptz, _>(removed_at)
    .bind::<SmallInt, _>(removed_sub)
    .execute(c)
    .await?;
    let open: Vec<IdRow> = diesel::sql_query(
        "SELECT id FROM vault_requests WHERE vault_id = $1 AND state = 'open' \
         ORDER BY id FOR UPDATE",
    )
    .bind::<SqlUuid, _>(vault_id.0)
    .load(c)
    .await?;
    let open: Vec<Uuid> = open.into_iter().map(|r| r.id).collect();
    let voided: Vec<IdRow> = diesel::sql_query(
        "UPDATE vault_decisions SET voided_at = $3, voided_at_sub_us = $4 \
         WHERE guardian_id = $1 AND request_id = ANY($2) AND voided_at IS NULL \
         RETURNING request_id AS id",
    )
    .bind::<SqlUuid, _>(guardian_id.0)
    .bind::<Array<SqlUuid>, _>(&open)
    .bind::<Timestamptz, _>(removed_at)
    .bind::<SmallInt, _>(removed_sub)
    .load(c)
    .await?;
    let mut voided: Vec<RequestId> = voided.into_iter().map(|r| RequestId(r.id)).collect();
    voided.sort();
    let mut closed = Vec::new();
    for id in open.into_iter().map(RequestId) {
        if recount(c, id, vault_id, policy.threshold)
            .await?
            .2
            .is_some()
        {
            closed.push(id);
        }
    }
    Ok(Removal {
        guardian: Guardian {
            removed_at: Some(now),
            ..guardian
        },
        voided,
        closed,
    })
}

/// `record_decision`: under the request's lock, checks the guardian, an earlier decision
/// and the request's state, stores the decision and recounts.
pub(super) async fn decide(c: &mut Conn, decision: &Decision, threshold: u32) -> Step<Recorded> {
    let id = decision.request_id;
    let mut request = lock_request(c, id).await?;
    let guardian =
        read_guardian(c, decision.guardian_id, "")
            .await?
            .ok_or(Error::GuardianNotFound {
                id: decision.guardian_id,
            })?;
    if guardian.vault_id != request.vault_id {
        return Err(Error::NotAGuardianOfVault {
            guardian: guardian.id,
            vault: request.vault_id,
        }
        .into());
    }
    if !guardian.is_active() {
        return Err(Error::GuardianRemoved { id: guardian.id }.into());
    }
    if let Some(prior) = prior_decision(c, id, guardian.id).await? {
        return if prior == decision.kind {
            Ok(Recorded::Duplicate { request })
        } else {
            Err(Error::AlreadyDecided { decided: prior }.into())
        };
    }
    if request.state == RequestState::Expired {
        return Err(Error::RequestExpired { id }.into());
    }
    if request.state != RequestState::Open {
        return Err(Error::RequestClosed {
            id,
            state: request.state,
        }
        .into());
    }
    if request.is_expired_at(decision.decided_at) {
        return Err(Error::RequestExpired { id }.into());
    }
    insert_decision(c, decision).await?;
    let (approvers, rejections, transition) = recount(c, id, request.vault_id, threshold).await?;
    if let Some(to) = transition {
        request.state = to;
        request.released = to == RequestState::Approved;
    }
    Ok(Recorded::Stored {
        request,
        approvers,
        rejections,
        transition,
    })
}

/// The guardian's counting decision on the request, if any.
async fn prior_decision(
    c: &mut Conn,
    id: RequestId,
    guardian_id: GuardianId,
) -> Step<Option<DecisionKind>> {
    #[derive(diesel::QueryableByName)]
    struct KindRow {
        #[diesel(sql_type = Text)]
        kind: String,
    }
    let row: Option<KindRow> = diesel::sql_query(
        "SELECT kind FROM vault_decisions \
         WHERE request_id = $1 AND guardian_id = $2 AND voided_at IS NULL",
    )
    .bind::<SqlUuid, _>(id.0)
    .bind::<SqlUuid, _>(guardian_id.0)
    .get_result(c)
    .await
    .optional()?;
    row.map(|r| {
        parse_kind(&r.kind)
            .ok_or_else(|| corrupt("vault_decisions", format!("unknown kind {:?}", r.kind)).into())
    })
    .transpose()
}

async fn insert_decision(c: &mut Conn, d: &Decision) -> Step<()> {
    let (decided_at, decided_sub) = split_time(d.decided_at);
    let voided = d.voided_at.map(split_time);
    diesel::sql_query(
        "INSERT INTO vault_decisions (request_id, guardian_id, kind, signature, decided_at, \
         decided_at_sub_us, voided_at, voided_at_sub_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind::<SqlUuid, _>(d.request_id.0)
    .bind::<SqlUuid, _>(d.guardian_id.0)
    .bind::<Text, _>(d.kind.as_str())
    .bind::<Bytea, _>(d.signature.as_slice())
    .bind::<Timestamptz, _>(decided_at)
    .bind::<SmallInt, _>(decided_sub)
    .bind::<Nullable<Timestamptz>, _>(voided.map(|(at, _)| at))
    .bind::<SmallInt, _>(voided.map_or(0, |(_, sub)| sub))
    .execute(c)
    .await?;
    Ok(())
}

/// `expire_request`: under the request's lock, `open` → `expired` if it is past its expiry.
pub(super) async fn expire(c: &mut Conn, id: RequestId, now: DateTime<Utc>) -> Step<bool> {
    let request = lock_request(c, id).await?;
    if request.state != RequestState::Open || !request.is_expired_at(now) {
        return Ok(false);
    }
    let moved = diesel::sql_query(
        "UPDATE vault_requests SET state = 'expired' WHERE id = $1 AND state = 'open'",
    )
    .bind::<SqlUuid, _>(id.0)
    .execute(c)
    .await?;
    Ok(moved == 1)
}

/// Ids of open requests past their expiry at `now`, oldest expiry first, at most `limit`.
pub(super) async fn due(c: &mut Conn, now: DateTime<Utc>, limit: usize) -> Step<Vec<RequestId>> {
    let (at, sub) = split_time(now);
    let rows: Vec<IdRow> = diesel::sql_query(
        "SELECT id FROM vault_requests \
         WHERE state = 'open' AND expires_at <= $1 AND (expires_at, expires_at_sub_us) <= ($1, $2) \
         ORDER BY expires_at, expires_at_sub_us, id LIMIT $3",
    )
    .bind::<Timestamptz, _>(at)
    .bind::<SmallInt, _>(sub)
    .bind::<BigInt, _>(i64::try_from(limit).unwrap_or(i64::MAX))
    .load(c)
    .await?;
    Ok(rows.into_iter().map(|r| RequestId(r.id)).collect())
}

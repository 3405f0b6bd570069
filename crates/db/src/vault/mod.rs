//! The Postgres [`VaultStore`] of haven-vault: `vaults`, `vault_invitations`,
//! `vault_guardians`, `vault_requests` and `vault_decisions`.

mod rows;
mod steps;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::OptionalExtension;
use diesel::sql_types::{
    Bool, Bytea, Jsonb, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_vault::{
    Decision, Guardian, GuardianId, Invitation, Recorded, Removal, RequestId, RequestState, Result,
    Vault, VaultId, VaultRequest, VaultStore,
};

use self::rows::{
    DECISION_COLUMNS, DecisionRow, GUARDIAN_COLUMNS, GuardianRow, REQUEST_COLUMNS, RequestRow,
    TxFailure, VAULT_COLUMNS, VaultRow, query, split_time, store_error,
};
use crate::PgPool;

/// A [`VaultStore`] on the `vaults`, `vault_invitations`, `vault_guardians`,
/// `vault_requests` and `vault_decisions` tables.
///
/// **Invariants:** every method is one statement or one transaction.
/// `record_decision` and `expire_request` lock the request row (`SELECT … FOR UPDATE`)
/// before they check anything, and move it only by a compare-and-set from `open`
/// (`UPDATE … WHERE id = $1 AND state = 'open'`), so of concurrent approvals exactly one
/// observes the transition to `approved` (with `released`). `redeem_invitation` locks the
/// invitation row, so a code admits one guardian, and the partial unique index
/// `vault_guardians_active_device_key` keeps two active guardians of a vault from sharing a
/// device key even across different codes. `remove_guardian` locks the guardian
/// (`FOR NO KEY UPDATE`: a concurrent decision's foreign key takes a key-share lock on it,
/// which `FOR UPDATE` would deadlock with) and then the vault's open requests by id before
/// it voids and recounts.
///
/// Refusals roll back and return the same [`haven_vault::Error`] variants as
/// [`haven_vault::MemoryVaultStore`]; database failures (pool timeout, lost connection,
/// corrupt row) are [`haven_vault::Error::Store`]. Timestamps read back exactly as written,
/// to the nanosecond; amounts stay decimal strings of base units inside the stored JSON.
#[derive(Debug, Clone)]
pub struct PgVaultStore {
    pool: PgPool,
}

impl PgVaultStore {
    /// The store on `pool` (migrations applied).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn conn(&self) -> Result<Object<AsyncPgConnection>> {
        self.pool.get().await.map_err(store_error)
    }

    /// Stores the vault's FROST group key and its members (public data), replacing an
    /// earlier one.
    pub async fn save_threshold_key(&self, key: &haven_vault::threshold::VaultKey) -> Result<()> {
        let text = serde_json::to_string(key).map_err(|e| {
            haven_vault::Error::Store(haven_vault::StoreError::Unavailable(Box::new(e)))
        })?;
        let mut conn = self.conn().await?;
        diesel::sql_query(
            "INSERT INTO vault_threshold_keys (vault_id, key, verifying_key) VALUES ($1, $2, $3) \
             ON CONFLICT (vault_id) DO UPDATE SET key = EXCLUDED.key, \
               verifying_key = EXCLUDED.verifying_key, created_at = now()",
        )
        .bind::<SqlUuid, _>(key.vault.0)
        .bind::<Text, _>(text)
        .bind::<Bytea, _>(key.group.verifying_key().to_vec())
        .execute(&mut conn)
        .await
        .map_err(query)?;
        Ok(())
    }

    /// How many requests (of every vault) are open.
    pub async fn open_requests(&self) -> Result<i64> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.conn().await?;
        let row: Count =
            diesel::sql_query("SELECT count(*) AS n FROM vault_requests WHERE state = 'open'")
                .get_result(&mut conn)
                .await
                .map_err(query)?;
        Ok(row.n)
    }

    /// The vault's FROST group key and members, if a key generation completed.
    pub async fn threshold_key(
        &self,
        vault: VaultId,
    ) -> Result<Option<haven_vault::threshold::VaultKey>> {
        #[derive(diesel::QueryableByName)]
        struct KeyRow {
            #[diesel(sql_type = Text)]
            key: String,
        }
        let mut conn = self.conn().await?;
        let row: Option<KeyRow> =
            diesel::sql_query("SELECT key FROM vault_threshold_keys WHERE vault_id = $1")
                .bind::<SqlUuid, _>(vault.0)
                .get_result(&mut conn)
                .await
                .optional()
                .map_err(query)?;
        row.map(|r| {
            serde_json::from_str(&r.key).map_err(|e| {
                haven_vault::Error::Store(haven_vault::StoreError::Unavailable(Box::new(e)))
            })
        })
        .transpose()
    }
}

#[async_trait]
impl VaultStore for PgVaultStore {
    async fn insert_vault(&self, vault: &Vault) -> Result<()> {
        let policy = serde_json::to_value(&vault.policy).map_err(|e| {
            store_error(crate::Error::Invalid {
                reason: format!("policy does not serialise: {e}"),
            })
        })?;
        let (created_at, created_sub) = split_time(vault.created_at);
        let mut conn = self.conn().await?;
        diesel::sql_query(
            "INSERT INTO vaults (id, name, policy, created_at, created_at_sub_us) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind::<SqlUuid, _>(vault.id.0)
        .bind::<Text, _>(&vault.name)
        .bind::<Jsonb, _>(&policy)
        .bind::<Timestamptz, _>(created_at)
        .bind::<SmallInt, _>(created_sub)
        .execute(&mut conn)
        .await
        .map_err(query)?;
        Ok(())
    }

    async fn vault(&self, id: VaultId) -> Result<Option<Vault>> {
        let mut conn = self.conn().await?;
        let row: Option<VaultRow> =
            diesel::sql_query(format!("SELECT {VAULT_COLUMNS} FROM vaults WHERE id = $1"))
                .bind::<SqlUuid, _>(id.0)
                .get_result(&mut conn)
                .await
                .optional()
                .map_err(query)?;
        row.map(VaultRow::decode).transpose()
    }

    async fn vaults(&self) -> Result<Vec<Vault>> {
        let mut conn = self.conn().await?;
        let rows: Vec<VaultRow> = diesel::sql_query(format!(
            "SELECT {VAULT_COLUMNS} FROM vaults ORDER BY created_at, id"
        ))
        .load(&mut conn)
        .await
        .map_err(query)?;
        rows.into_iter().map(VaultRow::decode).collect()
    }

    async fn insert_invitation(&self, invitation: &Invitation) -> Result<()> {
        let (created_at, created_sub) = split_time(invitation.created_at);
        let (expires_at, expires_sub) = split_time(invitation.expires_at);
        let used = invitation.used.map(|(at, by)| (split_time(at), by));
        let mut conn = self.conn().await?;
        diesel::sql_query(
            "INSERT INTO vault_invitations (id, vault_id, code_hash, created_by, created_at, \
             created_at_sub_us, expires_at, expires_at_sub_us, used_at, used_at_sub_us, used_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind::<SqlUuid, _>(invitation.id.0)
        .bind::<SqlUuid, _>(invitation.vault_id.0)
        .bind::<Bytea, _>(invitation.code_hash.as_slice())
        .bind::<Text, _>(&invitation.created_by)
        .bind::<Timestamptz, _>(created_at)
        .bind::<SmallInt, _>(created_sub)
        .bind::<Timestamptz, _>(expires_at)
        .bind::<SmallInt, _>(expires_sub)
        .bind::<Nullable<Timestamptz>, _>(used.map(|((at, _), _)| at))
        .bind::<SmallInt, _>(used.map_or(0, |((_, sub), _)| sub))
        .bind::<Nullable<SqlUuid>, _>(used.map(|(_, by)| by.0))
        .execute(&mut conn)
        .await
        .map_err(query)?;
        Ok(())
    }

    async fn redeem_invitation(
        &self,
        code_hash: &[u8; 32],
        guardian: &Guardian,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxFailure, _>(async |c| {
            steps::redeem(c, code_hash, guardian, now).await
        })
        .await
        .map_err(|f| f.0)
    }

    async fn guardian(&self, id: GuardianId) -> Result<Option<Guardian>> {
        let mut conn = self.conn().await?;
        let row: Option<GuardianRow> = diesel::sql_query(format!(
            "SELECT {GUARDIAN_COLUMNS} FROM vault_guardians WHERE id = $1"
        ))
        .bind::<SqlUuid, _>(id.0)
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(query)?;
        row.map(GuardianRow::decode).transpose()
    }

    async fn guardians(&self, vault_id: VaultId) -> Result<Vec<Guardian>> {
        let mut conn = self.conn().await?;
        let rows: Vec<GuardianRow> = diesel::sql_query(format!(
            "SELECT {GUARDIAN_COLUMNS} FROM vault_guardians WHERE vault_id = $1 \
             ORDER BY joined_at, joined_at_sub_us, id"
        ))
        .bind::<SqlUuid, _>(vault_id.0)
        .load(&mut conn)
        .await
        .map_err(query)?;
        rows.into_iter().map(GuardianRow::decode).collect()
    }

    async fn remove_guardian(
        &self,
        vault_id: VaultId,
        guardian_id: GuardianId,
        now: DateTime<Utc>,
    ) -> Result<Removal> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxFailure, _>(async |c| {
            steps::remove(c, vault_id, guardian_id, now).await
        })
        .await
        .map_err(|f| f.0)
    }

    async fn insert_request(&self, request: &VaultRequest) -> Result<()> {
        let operation = serde_json::to_string(&request.operation).map_err(|e| {
            store_error(crate::Error::Invalid {
                reason: format!("operation does not serialise: {e}"),
            })
        })?;
        let (created_at, created_sub) = split_time(request.created_at);
        let (expires_at, expires_sub) = split_time(request.expires_at);
        let mut conn = self.conn().await?;
        diesel::sql_query(
            "INSERT INTO vault_requests (id, vault_id, operation, canonical, hash, requester, \
             created_at, created_at_sub_us, expires_at, expires_at_sub_us, state, released) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind::<SqlUuid, _>(request.id.0)
        .bind::<SqlUuid, _>(request.vault_id.0)
        .bind::<Text, _>(&operation)
        .bind::<Text, _>(&request.canonical)
        .bind::<Bytea, _>(request.hash.as_slice())
        .bind::<Text, _>(&request.requester)
        .bind::<Timestamptz, _>(created_at)
        .bind::<SmallInt, _>(created_sub)
        .bind::<Timestamptz, _>(expires_at)
        .bind::<SmallInt, _>(expires_sub)
        .bind::<Text, _>(request.state.as_str())
        .bind::<Bool, _>(request.released)
        .execute(&mut conn)
        .await
        .map_err(query)?;
        Ok(())
    }

    async fn request(&self, id: RequestId) -> Result<Option<VaultRequest>> {
        let mut conn = self.conn().await?;
        let row: Option<RequestRow> = diesel::sql_query(format!(
            "SELECT {REQUEST_COLUMNS} FROM vault_requests WHERE id = $1"
        ))
        .bind::<SqlUuid, _>(id.0)
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(query)?;
        row.map(RequestRow::decode).transpose()
    }

    async fn decisions(&self, id: RequestId) -> Result<Vec<Decision>> {
        let mut conn = self.conn().await?;
        let rows: Vec<DecisionRow> = diesel::sql_query(format!(
            "SELECT {DECISION_COLUMNS} FROM vault_decisions WHERE request_id = $1 ORDER BY id"
        ))
        .bind::<SqlUuid, _>(id.0)
        .load(&mut conn)
        .await
        .map_err(query)?;
        rows.into_iter().map(DecisionRow::decode).collect()
    }

    async fn record_decision(&self, decision: &Decision, threshold: u32) -> Result<Recorded> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxFailure, _>(async |c| steps::decide(c, decision, threshold).await)
            .await
            .map_err(|f| f.0)
    }

    async fn requests(
        &self,
        vault_id: VaultId,
        state: Option<RequestState>,
    ) -> Result<Vec<VaultRequest>> {
        let mut conn = self.conn().await?;
        let rows: Vec<RequestRow> = diesel::sql_query(format!(
            "SELECT {REQUEST_COLUMNS} FROM vault_requests \
             WHERE vault_id = $1 AND ($2::text IS NULL OR state = $2) \
             ORDER BY created_at DESC, created_at_sub_us DESC, id DESC"
        ))
        .bind::<SqlUuid, _>(vault_id.0)
        .bind::<Nullable<Text>, _>(state.map(RequestState::as_str))
        .load(&mut conn)
        .await
        .map_err(query)?;
        rows.into_iter().map(RequestRow::decode).collect()
    }

    async fn due_for_expiry(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RequestId>> {
        let mut conn = self.conn().await?;
        steps::due(&mut conn, now, limit).await.map_err(|f| f.0)
    }

    async fn expire_request(&self, id: RequestId, now: DateTime<Utc>) -> Result<bool> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, TxFailure, _>(async |c| steps::expire(c, id, now).await)
            .await
            .map_err(|f| f.0)
    }
}

#[cfg(test)]
mod tests {
    use super::rows::{parse_kind, parse_state};
    use haven_vault::{DecisionKind, RequestState};

    #[test]
    fn stored_names_parse_back() {
        for state in [
            RequestState::Open,
            RequestState::Approved,
            RequestState::Rejected,
            RequestState::Expired,
        ] {
            assert_eq!(parse_state(state.as_str()), Some(state));
        }
        for kind in [DecisionKind::Approve, DecisionKind::Reject] {
            assert_eq!(parse_kind(kind.as_str()), Some(kind));
        }
        assert_eq!(parse_state("released"), None);
        assert_eq!(parse_kind("abstain"), None);
    }
}

//! The rows of the vault tables, their decoding into haven-vault's types, and the errors of
//! the Postgres vault store.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::result::Error as DieselError;
use diesel::sql_types::{
    Bool, Bytea, Jsonb, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid,
};
use ed25519_dalek::VerifyingKey;
use haven_vault::{
    Decision, DecisionKind, Error, Guardian, GuardianId, RequestId, RequestState, StoreError,
    Vault, VaultId, VaultRequest,
};
use uuid::Uuid;

pub(super) use crate::custody::{join_time, split_time};

/// The columns of [`VaultRow`].
pub(super) const VAULT_COLUMNS: &str = "id, name, policy, created_at, created_at_sub_us";

/// The columns of [`GuardianRow`].
pub(super) const GUARDIAN_COLUMNS: &str =
    "id, vault_id, device_key, joined_at, joined_at_sub_us, removed_at, removed_at_sub_us";

/// The columns of [`RequestRow`].
pub(super) const REQUEST_COLUMNS: &str = "id, vault_id, operation, canonical, hash, requester, \
     created_at, created_at_sub_us, expires_at, expires_at_sub_us, state, released";

/// The columns of [`DecisionRow`].
pub(super) const DECISION_COLUMNS: &str = "request_id, guardian_id, kind, signature, \
     decided_at, decided_at_sub_us, voided_at, voided_at_sub_us";

/// A failure of the store, as the trait reports it.
pub(super) fn store_error(e: crate::Error) -> Error {
    Error::Store(StoreError::Unavailable(Box::new(e)))
}

/// A failed query or transaction.
pub(super) fn query(e: DieselError) -> Error {
    store_error(crate::Error::Query(e))
}

/// A stored value that cannot be decoded.
pub(super) fn corrupt(table: &'static str, reason: impl Into<String>) -> Error {
    store_error(crate::Error::Corrupt {
        table,
        reason: reason.into(),
    })
}

/// The error type of the transactions here: diesel rolls back on any `Err` and needs
/// `From<diesel::result::Error>`; refusals roll back too, so they change nothing.
pub(super) struct TxFailure(pub(super) Error);

impl From<DieselError> for TxFailure {
    fn from(e: DieselError) -> Self {
        TxFailure(query(e))
    }
}

impl From<Error> for TxFailure {
    fn from(e: Error) -> Self {
        TxFailure(e)
    }
}

/// The stored name of a request state.
pub(super) fn parse_state(raw: &str) -> Option<RequestState> {
    [
        RequestState::Open,
        RequestState::Approved,
        RequestState::Rejected,
        RequestState::Expired,
    ]
    .into_iter()
    .find(|s| s.as_str() == raw)
}

/// The stored name of a decision kind.
pub(super) fn parse_kind(raw: &str) -> Option<DecisionKind> {
    [DecisionKind::Approve, DecisionKind::Reject]
        .into_iter()
        .find(|k| k.as_str() == raw)
}

fn fixed<const N: usize>(
    table: &'static str,
    column: &str,
    raw: Vec<u8>,
) -> Result<[u8; N], Error> {
    <[u8; N]>::try_from(raw)
        .map_err(|raw| corrupt(table, format!("{column} has {} bytes, not {N}", raw.len())))
}

/// A row of `vaults`.
#[derive(QueryableByName)]
pub(super) struct VaultRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Jsonb)]
    policy: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = SmallInt)]
    created_at_sub_us: i16,
}

impl VaultRow {
    /// The vault it stores.
    pub(super) fn decode(self) -> Result<Vault, Error> {
        let policy = serde_json::from_value(self.policy)
            .map_err(|e| corrupt("vaults", format!("policy of {}: {e}", self.id)))?;
        Ok(Vault {
            id: VaultId(self.id),
            name: self.name,
            policy,
            created_at: join_time(self.created_at, self.created_at_sub_us),
        })
    }
}

/// A row of `vault_guardians`.
#[derive(QueryableByName)]
pub(super) struct GuardianRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    vault_id: Uuid,
    #[diesel(sql_type = Bytea)]
    device_key: Vec<u8>,
    #[diesel(sql_type = Timestamptz)]
    joined_at: DateTime<Utc>,
    #[diesel(sql_type = SmallInt)]
    joined_at_sub_us: i16,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    removed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = SmallInt)]
    removed_at_sub_us: i16,
}

impl GuardianRow {
    /// The guardian it stores.
    pub(super) fn decode(self) -> Result<Guardian, Error> {
        const T: &str = "vault_guardians";
        let bytes = fixed::<32>(T, "device_key", self.device_key)?;
        let device_key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| corrupt(T, format!("device_key of {} is not a key", self.id)))?;
        Ok(Guardian {
            id: GuardianId(self.id),
            vault_id: VaultId(self.vault_id),
            device_key,
            joined_at: join_time(self.joined_at, self.joined_at_sub_us),
            removed_at: self
                .removed_at
                .map(|at| join_time(at, self.removed_at_sub_us)),
        })
    }
}

/// A row of `vault_requests`.
#[derive(QueryableByName)]
pub(super) struct RequestRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    vault_id: Uuid,
    #[diesel(sql_type = Text)]
    operation: String,
    #[diesel(sql_type = Text)]
    canonical: String,
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
    #[diesel(sql_type = Text)]
    requester: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = SmallInt)]
    created_at_sub_us: i16,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = SmallInt)]
    expires_at_sub_us: i16,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Bool)]
    released: bool,
}

impl RequestRow {
    /// The request it stores.
    pub(super) fn decode(self) -> Result<VaultRequest, Error> {
        const T: &str = "vault_requests";
        let operation = serde_json::from_str(&self.operation)
            .map_err(|e| corrupt(T, format!("operation of {}: {e}", self.id)))?;
        let state = parse_state(&self.state)
            .ok_or_else(|| corrupt(T, format!("unknown state {:?}", self.state)))?;
        Ok(VaultRequest {
            id: RequestId(self.id),
            vault_id: VaultId(self.vault_id),
            operation,
            canonical: self.canonical,
            hash: fixed::<32>(T, "hash", self.hash)?,
            requester: self.requester,
            created_at: join_time(self.created_at, self.created_at_sub_us),
            expires_at: join_time(self.expires_at, self.expires_at_sub_us),
            state,
            released: self.released,
        })
    }
}

/// A row of `vault_decisions`.
#[derive(QueryableByName)]
pub(super) struct DecisionRow {
    #[diesel(sql_type = SqlUuid)]
    request_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    guardian_id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Bytea)]
    signature: Vec<u8>,
    #[diesel(sql_type = Timestamptz)]
    decided_at: DateTime<Utc>,
    #[diesel(sql_type = SmallInt)]
    decided_at_sub_us: i16,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    voided_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = SmallInt)]
    voided_at_sub_us: i16,
}

impl DecisionRow {
    /// The decision it stores.
    pub(super) fn decode(self) -> Result<Decision, Error> {
        const T: &str = "vault_decisions";
        let kind = parse_kind(&self.kind)
            .ok_or_else(|| corrupt(T, format!("unknown kind {:?}", self.kind)))?;
        Ok(Decision {
            request_id: RequestId(self.request_id),
            guardian_id: GuardianId(self.guardian_id),
            kind,
            signature: fixed::<64>(T, "signature", self.signature)?,
            decided_at: join_time(self.decided_at, self.decided_at_sub_us),
            voided_at: self
                .voided_at
                .map(|at| join_time(at, self.voided_at_sub_us)),
        })
    }
}

/// What `redeem_invitation` reads of the invitation it locks.
#[derive(QueryableByName)]
pub(super) struct InvitationRow {
    #[diesel(sql_type = SqlUuid)]
    pub(super) vault_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    pub(super) expires_at: DateTime<Utc>,
    #[diesel(sql_type = SmallInt)]
    pub(super) expires_at_sub_us: i16,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub(super) used_by: Option<Uuid>,
}

/// One id.
#[derive(QueryableByName)]
pub(super) struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    pub(super) id: Uuid,
}

/// One counting decision: who, and which way.
#[derive(QueryableByName)]
pub(super) struct VoteRow {
    #[diesel(sql_type = SqlUuid)]
    pub(super) guardian_id: Uuid,
    #[diesel(sql_type = Text)]
    pub(super) kind: String,
}

/// One count.
#[derive(QueryableByName)]
pub(super) struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(super) n: i64,
}

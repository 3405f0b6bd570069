//! Vaults, guardians, invitations, requests and decisions as the store keeps them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::policy::{Operation, Policy};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id (UUID v7).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A vault's id.
    VaultId
);
id_type!(
    /// A guardian's id (one membership of one device in one vault).
    GuardianId
);
id_type!(
    /// An invitation's id (not its code).
    InvitationId
);
id_type!(
    /// A request's id.
    RequestId
);

/// Who asks, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The principal (admin user id, guardian id, `system`, …).
    pub actor: String,
    /// The request id, when the call came through HTTP.
    pub request_id: Option<String>,
    /// The client address, when known.
    pub ip: Option<String>,
}

impl Caller {
    /// A caller with only an actor.
    pub fn new(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            request_id: None,
            ip: None,
        }
    }

    /// Sets the request id.
    #[must_use]
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Sets the client address.
    #[must_use]
    pub fn with_ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }
}

/// A group of guardians and the policy they enforce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vault {
    /// Its id.
    pub id: VaultId,
    /// A human name, 1 to 100 characters.
    pub name: String,
    /// What it protects and how many approvals that takes.
    pub policy: Policy,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A device that joined a vault: its approvals are signatures by `device_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardian {
    /// Its id.
    pub id: GuardianId,
    /// The vault it belongs to.
    pub vault_id: VaultId,
    /// The ed25519 key of the guardian's device; the private half never leaves it.
    pub device_key: VerifyingKey,
    /// When it joined.
    pub joined_at: DateTime<Utc>,
    /// When it was removed; a removed guardian's decisions on open requests are void.
    pub removed_at: Option<DateTime<Utc>>,
}

impl Guardian {
    /// Whether the guardian still counts.
    pub fn is_active(&self) -> bool {
        self.removed_at.is_none()
    }
}

/// A single-use invitation code: 256 random bits, shown once to the admin, stored only as
/// its SHA-256. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct InvitationCode(Zeroizing<String>);

impl InvitationCode {
    const PREFIX: &'static str = "hvg_";

    /// A fresh random code.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        let text = format!("{}{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(bytes.as_ref()));
        Self(Zeroizing::new(text))
    }

    /// A code as typed by the guardian (not checked here: unknown codes fail at join).
    pub fn from_text(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into().trim().to_owned()))
    }

    /// The code itself, to hand to the guardian once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps: SHA-256 of the code's text.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for InvitationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InvitationCode(<redacted>)")
    }
}

/// An invitation as stored: the code's hash, never the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Its id.
    pub id: InvitationId,
    /// The vault the code admits to, and no other.
    pub vault_id: VaultId,
    /// SHA-256 of the code.
    pub code_hash: [u8; 32],
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was used, and by which guardian; a code is used at most once.
    pub used: Option<(DateTime<Utc>, GuardianId)>,
}

/// What [`crate::VaultService::invite`] returns: the stored invitation and the code, which
/// exists nowhere else.
#[derive(Debug)]
pub struct CreatedInvitation {
    /// The stored part.
    pub invitation: Invitation,
    /// The code to hand over once.
    pub code: InvitationCode,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Collecting decisions.
    Open,
    /// M approvals arrived; the operation was released.
    Approved,
    /// So many guardians rejected it that M approvals can no longer be reached.
    Rejected,
    /// It expired before reaching either.
    Expired,
}

impl RequestState {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestState::Open => "open",
            RequestState::Approved => "approved",
            RequestState::Rejected => "rejected",
            RequestState::Expired => "expired",
        }
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation waiting for the vault's guardians.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultRequest {
    /// Its id.
    pub id: RequestId,
    /// The vault whose guardians decide.
    pub vault_id: VaultId,
    /// The operation.
    pub operation: Operation,
    /// The canonical JSON of the operation, exactly the bytes that were hashed.
    pub canonical: String,
    /// SHA-256 of `canonical`.
    pub hash: [u8; 32],
    /// Who asked for it.
    pub requester: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it expires if still open.
    pub expires_at: DateTime<Utc>,
    /// Where it stands.
    pub state: RequestState,
    /// Whether the operation was handed out for execution (exactly once, with `approved`).
    pub released: bool,
}

impl VaultRequest {
    /// The hash as lower-case hex.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// Whether it is past its expiry at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// For the operation.
    Approve,
    /// Against it.
    Reject,
}

impl DecisionKind {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Approve => "approve",
            DecisionKind::Reject => "reject",
        }
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One guardian's signed decision on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The request.
    pub request_id: RequestId,
    /// The guardian.
    pub guardian_id: GuardianId,
    /// Approve or reject.
    pub kind: DecisionKind,
    /// The ed25519 signature over [`crate::decision_message`].
    pub signature: [u8; 64],
    /// When it was recorded.
    pub decided_at: DateTime<Utc>,
    /// When it stopped counting (its guardian was removed while the request was open).
    pub voided_at: Option<DateTime<Utc>>,
}

/// The one-time permission to execute an approved operation. Only the decision that moved
/// the request to `approved` receives it; no later call does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The request.
    pub request_id: RequestId,
    /// Its vault.
    pub vault_id: VaultId,
    /// The approved operation.
    pub operation: Operation,
    /// The hash the guardians signed.
    pub hash: [u8; 32],
    /// The guardians whose approvals counted.
    pub approvers: Vec<GuardianId>,
    /// When it was released.
    pub released_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_long_and_never_debugged() {
        let a = InvitationCode::generate();
        let b = InvitationCode::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 4 + 43);
        assert_ne!(a.hash(), b.hash());
        assert_eq!(
            InvitationCode::from_text(format!(" {} ", a.expose())).hash(),
            a.hash()
        );
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}

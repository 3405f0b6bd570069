//! Guardian vaults for haven: operations that must never rest on one person (large
//! redemptions and withdrawals, minter-role changes, master-key rotation) wait until M of a
//! vault's N guardians approve them with their device keys.
//!
//! - **Vaults** ([`Vault`], [`Policy`]): M of N (N is the number of guardians who joined),
//!   the covered [`OperationKind`]s and the smallest [`Amount`] (exact base units) from which
//!   each needs approval ([`Policy::requires`]).
//! - **Guardians** join with a single-use [`InvitationCode`] (256 random bits, shown once,
//!   stored only as its SHA-256, expiring, bound to one vault) and register an ed25519 device
//!   key. Removing a guardian voids its decisions on open requests, which are recounted.
//! - **Requests** ([`VaultRequest`]) carry the [canonical JSON](canonical) of the
//!   [`Operation`] and its SHA-256. Guardians sign [`decision_message`] (domain-separated per
//!   decision, bound to vault, request and hash); M approvals release the operation exactly
//!   once ([`DecisionOutcome::Released`]), a rejection quorum or expiry closes it.
//! - **Storage** behind [`VaultStore`] (each method one atomic step, state changes by
//!   compare-and-set); [`MemoryVaultStore`] here. Postgres comes later, in `haven-db`.
//! - **Audit**: every operation of [`VaultService`], refusals included, appends one event
//!   (`vault.create`, `vault.invite`, `vault.join`, `vault.guardian.remove`,
//!   `vault.request.create`, `vault.request.approve`, `vault.request.reject`,
//!   `vault.request.released`, `vault.request.expired`) to a
//!   [`haven_core::audit::AuditSink`].
//! - **Threshold keys** ([`threshold`]): FROST (ed25519) key generation without a dealer
//!   and t-of-n signing, without transport. Guardian side: [`threshold::DkgParticipant`]
//!   (round-1 messages signed with the device key, secret shares end-to-end encrypted to
//!   their recipient), [`threshold::KeyShare`], [`threshold::commit`] and
//!   [`threshold::sign`]. Server side, public data only: [`threshold::DkgRound`],
//!   [`threshold::SigningRound`] (aggregates, verifies strictly and names a bad share) and
//!   [`threshold::SigningAttempts`]. Every message serialises to JSON for the relay.
//!
//! - **Protocol** ([`protocol`]): the JSON frames of the guardian WebSocket (a token on
//!   every frame, approvals and rejections, pushes of new and closed requests, error
//!   frames), for the server and the guardian client alike.
//!
//! The crate knows no web, database or job framework.
//!
//! ```
//! use std::sync::Arc;
//! use ed25519_dalek::SigningKey;
//! use haven_core::audit::MemoryAuditLog;
//! use haven_vault::{Amount, Caller, DecisionKind, DecisionOutcome, MemoryVaultStore,
//!     Operation, OperationKind, Policy, VaultConfig, VaultService, sign_decision};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let audit = Arc::new(MemoryAuditLog::new());
//! let vaults = VaultService::new(Arc::new(MemoryVaultStore::new()), audit.clone(),
//!     VaultConfig::default());
//! let admin = Caller::new("admin-1");
//! let policy = Policy::new(2).cover(OperationKind::Redemption, Amount(1_000_000));
//! let vault = vaults.create_vault("treasury", policy, &admin).await?;
//!
//! let mut guardians = Vec::new();
//! for seed in 1..=3u8 {
//!     let device = SigningKey::from_bytes(&[seed; 32]); // on the guardian's device
//!     let invitation = vaults.invite(vault.id, &admin).await?;
//!     let guardian = vaults.join(vault.id, &invitation.code, device.verifying_key(),
//!         &Caller::new(format!("device-{seed}"))).await?;
//!     guardians.push((guardian, device));
//! }
//!
//! let redemption = Operation::new(OperationKind::Redemption).amount(Amount(5_000_000))
//!     .params(serde_json::json!({"member": "m-42", "payout": "iban:DE89…"}));
//! let request = vaults.create_request(vault.id, redemption, &admin).await?;
//!
//! let (g1, key1) = &guardians[0];
//! let sig = sign_decision(key1, DecisionKind::Approve, &request);
//! let first = vaults.approve(request.id, g1.id, &sig, &Caller::new("g1")).await?;
//! assert!(matches!(first, DecisionOutcome::Counted { approvals: 1, .. }));
//!
//! let (g2, key2) = &guardians[1];
//! let sig = sign_decision(key2, DecisionKind::Approve, &request);
//! let second = vaults.approve(request.id, g2.id, &sig, &Caller::new("g2")).await?;
//! assert!(matches!(second, DecisionOutcome::Released(_)));
//! # Ok::<_, haven_vault::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Features
//! - `test-utils`: the `conformance` module, a suite that every [`VaultStore`]
//!   implementation (e.g. the Postgres one to come) must pass, concurrency checks included.

pub mod canonical;
#[cfg(feature = "test-utils")]
pub mod conformance;
mod error;
mod policy;
pub mod protocol;
mod service;
mod signing;
mod store;
pub mod threshold;
mod types;

pub use error::{Error, Result, StoreError};
pub use policy::{
    Amount, AmountError, MAX_THRESHOLD, Operation, OperationKind, Policy, PolicyError,
};
pub use service::{DecisionOutcome, VaultConfig, VaultService};
pub use signing::{
    APPROVE_TAG, REJECT_TAG, decision_message, decision_message_for, sign_decision, verify_decision,
};
pub use store::{MemoryVaultStore, Recorded, Removal, VaultStore, settle};
pub use types::{
    Caller, CreatedInvitation, Decision, DecisionKind, Guardian, GuardianId, Invitation,
    InvitationCode, InvitationId, Release, RequestId, RequestState, Vault, VaultId, VaultRequest,
};

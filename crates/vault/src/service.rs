//! The vault service: every vault, guardian and request operation, each audited.

use std::sync::Arc;

use chrono::{Duration, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::policy::{Amount, Operation, OperationKind, Policy};
use crate::signing::verify_decision;
use crate::store::{Recorded, Removal, VaultStore};
use crate::types::{
    Caller, CreatedInvitation, Decision, DecisionKind, Guardian, GuardianId, Invitation,
    InvitationCode, InvitationId, Release, RequestId, RequestState, Vault, VaultId, VaultRequest,
};

/// Settings validated once by the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// How long an invitation code works.
    pub invitation_ttl: Duration,
    /// How long a request stays open.
    pub request_ttl: Duration,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            invitation_ttl: Duration::hours(24),
            request_ttl: Duration::hours(24),
        }
    }
}

/// What a guardian's approval or rejection did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecisionOutcome {
    /// Counted; the request is still open.
    Counted {
        /// Approvals that count.
        approvals: usize,
        /// Rejections that count.
        rejections: usize,
        /// M.
        threshold: u32,
    },
    /// The guardian had already made this decision: nothing changed.
    AlreadyRecorded {
        /// Where the request stands.
        state: RequestState,
    },
    /// This approval was the M-th: the operation is released, to this caller only.
    Released(Release),
    /// This rejection made M approvals unreachable: the request is closed as rejected.
    Rejected,
}

/// Vaults, guardians and requests over a [`VaultStore`], appending one audit event per
/// operation (refusals included) to an [`AuditSink`].
pub struct VaultService {
    store: Arc<dyn VaultStore>,
    audit: Arc<dyn AuditSink>,
    config: VaultConfig,
}

impl std::fmt::Debug for VaultService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Outcome {
    target: String,
    severity: Severity,
    details: Value,
}

impl Outcome {
    fn new(target: impl ToString, severity: Severity, details: Value) -> Self {
        Self {
            target: target.to_string(),
            severity,
            details,
        }
    }
}

impl VaultService {
    /// Wires the store and the audit log together.
    pub fn new(store: Arc<dyn VaultStore>, audit: Arc<dyn AuditSink>, config: VaultConfig) -> Self {
        Self {
            store,
            audit,
            config,
        }
    }

    /// Appends the operation's audit event (refusals at `High`) and passes the result
    /// through, unless the append fails: then the result is withheld.
    async fn audited<T>(
        &self,
        caller: &Caller,
        action: &'static str,
        outcome: Outcome,
        result: Result<T>,
    ) -> Result<T> {
        let mut details = match outcome.details {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let severity = match &result {
            Ok(_) => {
                details.insert("outcome".into(), "ok".into());
                outcome.severity
            }
            Err(e) => {
                details.insert("outcome".into(), "refused".into());
                details.insert("error".into(), e.kind().into());
                tracing::warn!(action, error = %e, "vault operation refused");
                Severity::High.max(outcome.severity)
            }
        };
        let mut event = AuditEvent::new(caller.actor.clone(), action, severity)
            .target(outcome.target)
            .details(Value::Object(details));
        event.request_id = caller.request_id.clone();
        event.ip = caller.ip.clone();
        match self.audit.append(event).await {
            Ok(_) => result,
            Err(e) => {
                tracing::error!(action, error = %e, "audit append failed; result withheld");
                Err(Error::Audit(e))
            }
        }
    }

    /// Creates a vault with `policy`; guardians join it through invitations.
    pub async fn create_vault(&self, name: &str, policy: Policy, caller: &Caller) -> Result<Vault> {
        let vault = Vault {
            id: VaultId::generate(),
            name: name.trim().to_owned(),
            policy,
            created_at: Utc::now(),
        };
        let result = async {
            if vault.name.is_empty() || vault.name.chars().count() > 100 {
                return Err(Error::InvalidName);
            }
            vault.policy.validate()?;
            self.store.insert_vault(&vault).await?;
            Ok(vault.clone())
        }
        .await;
        let details = json!({"name": vault.name, "policy": vault.policy});
        let outcome = Outcome::new(vault.id, Severity::Medium, details);
        self.audited(caller, "vault.create", outcome, result).await
    }

    /// The vault, or `VaultNotFound`.
    pub async fn vault(&self, id: VaultId) -> Result<Vault> {
        self.store
            .vault(id)
            .await?
            .ok_or(Error::VaultNotFound { id })
    }

    /// Every vault, oldest first.
    pub async fn vaults(&self) -> Result<Vec<Vault>> {
        self.store.vaults().await
    }

    /// The vault that must approve an operation of `kind` and `amount`: the oldest vault
    /// whose policy covers it, or `None` when no vault does.
    pub async fn guarding(&self, kind: OperationKind, amount: Amount) -> Result<Option<Vault>> {
        Ok(self
            .store
            .vaults()
            .await?
            .into_iter()
            .find(|v| v.policy.requires(kind, Some(amount))))
    }

    /// The guardian (removed or not), or `GuardianNotFound`.
    pub async fn guardian(&self, id: GuardianId) -> Result<Guardian> {
        self.store
            .guardian(id)
            .await?
            .ok_or(Error::GuardianNotFound { id })
    }

    /// The vault's guardians, removed ones included.
    pub async fn guardians(&self, id: VaultId) -> Result<Vec<Guardian>> {
        self.store.guardians(id).await
    }

    /// The request, or `RequestNotFound`.
    pub async fn request(&self, id: RequestId) -> Result<VaultRequest> {
        self.store
            .request(id)
            .await?
            .ok_or(Error::RequestNotFound { id })
    }

    /// The vault's requests, newest first; only those in `state` when given.
    pub async fn requests(
        &self,
        vault_id: VaultId,
        state: Option<RequestState>,
    ) -> Result<Vec<VaultRequest>> {
        self.store.requests(vault_id, state).await
    }

    /// Creates a single-use invitation to `vault_id`. The code is in the answer and nowhere
    /// else: the store keeps its SHA-256.
    pub async fn invite(&self, vault_id: VaultId, caller: &Caller) -> Result<CreatedInvitation> {
        let code = InvitationCode::generate();
        let now = Utc::now();
        let invitation = Invitation {
            id: InvitationId::generate(),
            vault_id,
            code_hash: code.hash(),
            created_by: caller.actor.clone(),
            created_at: now,
            expires_at: now + self.config.invitation_ttl,
            used: None,
        };
        let result = async {
            self.vault(vault_id).await?;
            self.store.insert_invitation(&invitation).await?;
            Ok(CreatedInvitation {
                invitation: invitation.clone(),
                code,
            })
        }
        .await;
        let details = json!({
            "invitation_id": invitation.id,
            "expires_at": invitation.expires_at,
        });
        let outcome = Outcome::new(vault_id, Severity::Medium, details);
        self.audited(caller, "vault.invite", outcome, result).await
    }

    /// Joins `vault_id` with an invitation code, registering the device's public key. The
    /// code is consumed in the same atomic step that creates the guardian.
    pub async fn join(
        &self,
        vault_id: VaultId,
        code: &InvitationCode,
        device_key: VerifyingKey,
        caller: &Caller,
    ) -> Result<Guardian> {
        let guardian = Guardian {
            id: GuardianId::generate(),
            vault_id,
            device_key,
            joined_at: Utc::now(),
            removed_at: None,
        };
        let code_hash = code.hash();
        let result = self
            .store
            .redeem_invitation(&code_hash, &guardian, guardian.joined_at)
            .await
            .map(|()| guardian.clone());
        // a prefix of the hash identifies the invitation in the log without revealing the code
        let details = json!({
            "guardian_id": guardian.id,
            "device_key": hex::encode(device_key.as_bytes()),
            "code_hash_prefix": hex::encode(&code_hash[..6]),
        });
        let outcome = Outcome::new(vault_id, Severity::Medium, details);
        self.audited(caller, "vault.join", outcome, result).await
    }

    /// Removes a guardian: its decisions on open requests are voided and those requests
    /// recounted (some may close as rejected).
    pub async fn remove_guardian(
        &self,
        vault_id: VaultId,
        guardian_id: GuardianId,
        caller: &Caller,
    ) -> Result<Removal> {
        let result = self
            .store
            .remove_guardian(vault_id, guardian_id, Utc::now())
            .await;
        let details = match &result {
            Ok(r) => json!({"guardian_id": guardian_id, "voided": r.voided, "closed": r.closed}),
            Err(_) => json!({"guardian_id": guardian_id}),
        };
        let outcome = Outcome::new(vault_id, Severity::High, details);
        self.audited(caller, "vault.guardian.remove", outcome, result)
            .await
    }

    /// Submits an operation the vault's policy covers; it waits for M approvals.
    pub async fn create_request(
        &self,
        vault_id: VaultId,
        operation: Operation,
        caller: &Caller,
    ) -> Result<VaultRequest> {
        let result = self
            .create_request_inner(vault_id, &operation, caller)
            .await;
        let details = match &result {
            Ok(r) => json!({
                "request_id": r.id,
                "kind": operation.kind,
                "amount": operation.amount,
                "hash": r.hash_hex(),
                "expires_at": r.expires_at,
            }),
            Err(_) => json!({"kind": operation.kind, "amount": operation.amount}),
        };
        let outcome = Outcome::new(vault_id, Severity::Medium, details);
        self.audited(caller, "vault.request.create", outcome, result)
            .await
    }

    async fn create_request_inner(
        &self,
        vault_id: VaultId,
        operation: &Operation,
        caller: &Caller,
    ) -> Result<VaultRequest> {
        let vault = self.vault(vault_id).await?;
        if !vault.policy.requires(operation.kind, operation.amount) {
            return Err(Error::NotCovered {
                kind: operation.kind,
            });
        }
        let active = self
            .store
            .guardians(vault_id)
            .await?
            .iter()
            .filter(|g| g.is_active())
            .count();
        if !vault.policy.reachable_with(active) {
            return Err(Error::NotEnoughGuardians {
                threshold: vault.policy.threshold,
                guardians: active,
            });
        }
        let canonical = operation.canonical_json()?;
        let now = Utc::now();
        let request = VaultRequest {
            id: RequestId::generate(),
            vault_id,
            operation: operation.clone(),
            hash: Sha256::digest(canonical.as_bytes()).into(),
            canonical,
            requester: caller.actor.clone(),
            created_at: now,
            expires_at: now + self.config.request_ttl,
            state: RequestState::Open,
            released: false,
        };
        self.store.insert_request(&request).await?;
        Ok(request)
    }

    /// A guardian approves with its device's signature of
    /// [`crate::decision_message`]`(Approve, request)`.
    pub async fn approve(
        &self,
        request_id: RequestId,
        guardian_id: GuardianId,
        signature: &Signature,
        caller: &Caller,
    ) -> Result<DecisionOutcome> {
        self.decide(
            request_id,
            guardian_id,
            DecisionKind::Approve,
            signature,
            caller,
        )
        .await
    }

    /// A guardian rejects with its device's signature of
    /// [`crate::decision_message`]`(Reject, request)`.
    pub async fn reject(
        &self,
        request_id: RequestId,
        guardian_id: GuardianId,
        signature: &Signature,
        caller: &Caller,
    ) -> Result<DecisionOutcome> {
        self.decide(
            request_id,
            guardian_id,
            DecisionKind::Reject,
            signature,
            caller,
        )
        .await
    }

    async fn decide(
        &self,
        request_id: RequestId,
        guardian_id: GuardianId,
        kind: DecisionKind,
        signature: &Signature,
        caller: &Caller,
    ) -> Result<DecisionOutcome> {
        let result = self
            .decide_inner(request_id, guardian_id, kind, signature, caller)
            .await;
        let mut details = json!({"request_id": request_id, "guardian_id": guardian_id});
        if let Ok(outcome) = &result {
            details["result"] = match outcome {
                DecisionOutcome::Counted { .. } => "counted",
                DecisionOutcome::AlreadyRecorded { .. } => "already_recorded",
                DecisionOutcome::Released(_) => "released",
                DecisionOutcome::Rejected => "rejected",
            }
            .into();
        }
        let action = match kind {
            DecisionKind::Approve => "vault.request.approve",
            DecisionKind::Reject => "vault.request.reject",
        };
        let outcome = Outcome::new(request_id, Severity::Medium, details);
        let result = self.audited(caller, action, outcome, result).await?;
        if let DecisionOutcome::Released(release) = &result {
            let details = json!({
                "vault_id": release.vault_id,
                "hash": hex::encode(release.hash),
                "approvers": release.approvers,
            });
            let outcome = Outcome::new(request_id, Severity::High, details);
            return self
                .audited(caller, "vault.request.released", outcome, Ok(result))
                .await;
        }
        Ok(result)
    }

    async fn decide_inner(
        &self,
        request_id: RequestId,
        guardian_id: GuardianId,
        kind: DecisionKind,
        signature: &Signature,
        caller: &Caller,
    ) -> Result<DecisionOutcome> {
        let request = self.request(request_id).await?;
        let guardian = self
            .store
            .guardian(guardian_id)
            .await?
            .ok_or(Error::GuardianNotFound { id: guardian_id })?;
        if guardian.vault_id != request.vault_id {
            return Err(Error::NotAGuardianOfVault {
                guardian: guardian_id,
                vault: request.vault_id,
            });
        }
        if !guardian.is_active() {
            return Err(Error::GuardianRemoved { id: guardian_id });
        }
        if !verify_decision(&guardian.device_key, kind, &request, signature) {
            return Err(Error::BadSignature);
        }
        let now = Utc::now();
        if request.state == RequestState::Open && request.is_expired_at(now) {
            self.expire(request_id, caller).await?;
        }
        let vault = self.vault(request.vault_id).await?;
        let decision = Decision {
            request_id,
            guardian_id,
            kind,
            signature: signature.to_bytes(),
            decided_at: now,
            voided_at: None,
        };
        let recorded = self
            .store
            .record_decision(&decision, vault.policy.threshold)
            .await?;
        Ok(match recorded {
            Recorded::Duplicate { request } => DecisionOutcome::AlreadyRecorded {
                state: request.state,
            },
            Recorded::Stored {
                request,
                approvers,
                rejections,
                transition,
            } => match transition {
                Some(RequestState::Approved) => DecisionOutcome::Released(Release {
                    request_id,
                    vault_id: request.vault_id,
                    operation: request.operation,
                    hash: request.hash,
                    approvers,
                    released_at: now,
                }),
                Some(_) => DecisionOutcome::Rejected,
                None => DecisionOutcome::Counted {
                    approvals: approvers.len(),
                    rejections,
                    threshold: vault.policy.threshold,
                },
            },
        })
    }

    /// Closes the request as expired if it is open and past its expiry; returns whether this
    /// call closed it (and audited `vault.request.expired`).
    pub async fn expire(&self, request_id: RequestId, caller: &Caller) -> Result<bool> {
        let closed = self.store.expire_request(request_id, Utc::now()).await?;
        if closed {
            let outcome = Outcome::new(request_id, Severity::Low, json!({}));
            self.audited(caller, "vault.request.expired", outcome, Ok(()))
                .await?;
        }
        Ok(closed)
    }

    /// Closes up to `limit` open requests that are past their expiry (what a periodic job
    /// calls); returns those this call closed, each audited `vault.request.expired`.
    pub async fn expire_due(&self, limit: usize, caller: &Caller) -> Result<Vec<RequestId>> {
        let mut closed = Vec::new();
        for id in self.store.due_for_expiry(Utc::now(), limit).await? {
            if self.expire(id, caller).await? {
                closed.push(id);
            }
        }
        Ok(closed)
    }
}

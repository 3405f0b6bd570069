//! Storage of vaults, guardians, invitations, requests and decisions.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::types::{
    Decision, DecisionKind, Guardian, GuardianId, Invitation, RequestId, RequestState, Vault,
    VaultId, VaultRequest,
};

/// The state a request moves to once `approvals` and `rejections` from the vault's `active`
/// guardians are counted under threshold M, or `None` while it stays open. Reaching M
/// approvals wins; otherwise it is rejected as soon as the guardians who have not rejected
/// are fewer than M.
pub fn settle(
    threshold: u32,
    active: usize,
    approvals: usize,
    rejections: usize,
) -> Option<RequestState> {
    let m = usize::try_from(threshold).unwrap_or(usize::MAX);
    if approvals >= m {
        Some(RequestState::Approved)
    } else if active.saturating_sub(rejections) < m {
        Some(RequestState::Rejected)
    } else {
        None
    }
}

/// The outcome of [`VaultStore::record_decision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The decision was stored. `transition` is the state the request moved to because of
    /// it (`Some(Approved)` at most once per request, for exactly one caller).
    Stored {
        /// The request after the decision.
        request: VaultRequest,
        /// The guardians whose approvals count now.
        approvers: Vec<GuardianId>,
        /// How many counting rejections there are now.
        rejections: usize,
        /// The state the request moved to, if it moved.
        transition: Option<RequestState>,
    },
    /// The guardian had already made this decision; nothing changed.
    Duplicate {
        /// The request as it stands.
        request: VaultRequest,
    },
}

/// What removing a guardian did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The guardian, now with `removed_at`.
    pub guardian: Guardian,
    /// Open requests on which one of its decisions was voided.
    pub voided: Vec<RequestId>,
    /// Open requests the recount closed (as rejected: M can no longer be reached).
    pub closed: Vec<RequestId>,
}

/// Storage for vaults. Each method is one atomic step: a Postgres implementation runs each
/// in one transaction, locking the rows it checks (`SELECT … FOR UPDATE`).
///
/// **Invariant:** a request leaves `open` exactly once. `record_decision`, `expire_request`
/// and the recount of `remove_guardian` change a request's state only by a compare-and-set
/// from `open`, under the same lock as the decision count, so of any number of concurrent
/// approvals at most one observes the transition to `approved`.
///
/// **Invariant:** an invitation is consumed at most once, and only together with the
/// creation of its guardian.
#[async_trait]
pub trait VaultStore: Send + Sync {
    /// Stores a new vault.
    async fn insert_vault(&self, vault: &Vault) -> Result<()>;

    /// The vault, if it exists.
    async fn vault(&self, id: VaultId) -> Result<Option<Vault>>;

    /// Every vault, oldest first.
    async fn vaults(&self) -> Result<Vec<Vault>>;

    /// Stores a new invitation (its code's hash only).
    async fn insert_invitation(&self, invitation: &Invitation) -> Result<()>;

    /// Atomically: finds the invitation with `code_hash`, checks that it admits to
    /// `guardian.vault_id`, is unused and unexpired at `now`, that no active guardian of the
    /// vault has the same device key, marks it used and inserts `guardian`. Refuses with
    /// `InvitationUnknown`, `InvitationForOtherVault`, `InvitationUsed`,
    /// `InvitationExpired` or `DeviceKeyInUse`, changing nothing.
    async fn redeem_invitation(
        &self,
        code_hash: &[u8; 32],
        guardian: &Guardian,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// The guardian, removed or not.
    async fn guardian(&self, id: GuardianId) -> Result<Option<Guardian>>;

    /// The vault's guardians, removed ones included, by join time.
    async fn guardians(&self, vault_id: VaultId) -> Result<Vec<Guardian>>;

    /// Atomically: marks the guardian removed at `now`, voids its decisions on the vault's
    /// open requests and recounts those, closing the ones that can no longer be approved.
    /// Refuses `GuardianNotFound` (also when it is in another vault) and `GuardianRemoved`.
    async fn remove_guardian(
        &self,
        vault_id: VaultId,
        guardian_id: GuardianId,
        now: DateTime<Utc>,
    ) -> Result<Removal>;

    /// Stores a new open request.
    async fn insert_request(&self, request: &VaultRequest) -> Result<()>;

    /// The request, if it exists.
    async fn request(&self, id: RequestId) -> Result<Option<VaultRequest>>;

    /// The request's decisions, voided ones included.
    async fn decisions(&self, id: RequestId) -> Result<Vec<Decision>>;

    /// Atomically, under the request's lock: if the guardian already made a counting
    /// decision, returns `Duplicate` when it is the same kind and refuses `AlreadyDecided`
    /// otherwise; refuses `RequestClosed` unless the request is open, `RequestExpired` if it
    /// is past its expiry at `decision.decided_at`, and `GuardianRemoved` /
    /// `NotAGuardianOfVault` unless the guardian is an active member of the request's vault.
    /// Then stores the decision, counts the active guardians' decisions, applies [`settle`]
    /// with `threshold` and moves the request (setting `released` on `approved`).
    async fn record_decision(&self, decision: &Decision, threshold: u32) -> Result<Recorded>;

    /// The vault's requests, newest first; only those in `state` when given.
    async fn requests(
        &self,
        vault_id: VaultId,
        state: Option<RequestState>,
    ) -> Result<Vec<VaultRequest>>;

    /// Ids of open requests (of any vault) past their expiry at `now`, oldest expiry first,
    /// at most `limit`.
    async fn due_for_expiry(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RequestId>>;

    /// Compare-and-set `open` → `expired` if the request is past its expiry at `now`.
    /// Returns whether this call made the transition.
    async fn expire_request(&self, id: RequestId, now: DateTime<Utc>) -> Result<bool>;
}

#[derive(Debug, Default)]
struct State {
    vaults: HashMap<VaultId, Vault>,
    invitations: HashMap<[u8; 32], Invitation>,
    guardians: HashMap<GuardianId, Guardian>,
    requests: HashMap<RequestId, VaultRequest>,
    decisions: HashMap<RequestId, Vec<Decision>>,
}

impl State {
    fn active_count(&self, vault_id: VaultId) -> usize {
        self.guardians
            .values()
            .filter(|g| g.vault_id == vault_id && g.is_active())
            .count()
    }

    fn counting(&self, id: RequestId) -> impl Iterator<Item = &Decision> {
        self.decisions
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|d| d.voided_at.is_none())
            .filter(|d| {
                self.guardians
                    .get(&d.guardian_id)
                    .is_some_and(Guardian::is_active)
            })
    }

    /// Recounts `id` and applies the transition, if any.
    fn recount(
        &mut self,
        id: RequestId,
        threshold: u32,
    ) -> (Vec<GuardianId>, usize, Option<RequestState>) {
        let Some(request) = self.requests.get(&id) else {
            return (Vec::new(), 0, None);
        };
        let vault_id = request.vault_id;
        let mut approvers = Vec::new();
        let mut rejections = 0;
        for d in self.counting(id) {
            match d.kind {
                DecisionKind::Approve => approvers.push(d.guardian_id),
                DecisionKind::Reject => rejections += 1,
            }
        }
        let transition = settle(
            threshold,
            self.active_count(vault_id),
            approvers.len(),
            rejections,
        );
        if let (Some(to), Some(request)) = (transition, self.requests.get_mut(&id)) {
            request.state = to;
            request.released = to == RequestState::Approved;
        }
        (approvers, rejections, transition)
    }
}

/// An in-memory [`VaultStore`] for tests and single-process use; one lock makes each
/// method atomic.
#[derive(Debug, Default)]
pub struct MemoryVaultStore {
    state: Mutex<State>,
}

impl MemoryVaultStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl VaultStore for MemoryVaultStore {
    async fn insert_vault(&self, vault: &Vault) -> Result<()> {
        self.state
            .lock()
            .await
            .vaults
            .insert(vault.id, vault.clone());
        Ok(())
    }

    async fn vault(&self, id: VaultId) -> Result<Option<Vault>> {
        Ok(self.state.lock().await.vaults.get(&id).cloned())
    }

    async fn vaults(&self) -> Result<Vec<Vault>> {
        let mut vaults: Vec<Vault> = self.state.lock().await.vaults.values().cloned().collect();
        vaults.sort_by_key(|v| (v.created_at, v.id));
        Ok(vaults)
    }

    async fn insert_invitation(&self, invitation: &Invitation) -> Result<()> {
        let mut state = self.state.lock().await;
        state
            .invitations
            .insert(invitation.code_hash, invitation.clone());
        Ok(())
    }

    async fn redeem_invitation(
        &self,
        code_hash: &[u8; 32],
        guardian: &Guardian,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut state = self.state.lock().await;
        let invitation = state
            .invitations
            .get(code_hash)
            .ok_or(Error::InvitationUnknown)?;
        if invitation.vault_id != guardian.vault_id {
            return Err(Error::InvitationForOtherVault);
        }
        if invitation.used.is_some() {
            return Err(Error::InvitationUsed);
        }
        if now >= invitation.expires_at {
            return Err(Error::InvitationExpired);
        }
        let key_taken = state.guardians.values().any(|g| {
            g.vault_id == guardian.vault_id && g.is_active() && g.device_key == guardian.device_key
        });
        if key_taken {
            return Err(Error::DeviceKeyInUse);
        }
        if let Some(invitation) = state.invitations.get_mut(code_hash) {
            invitation.used = Some((now, guardian.id));
        }
        state.guardians.insert(guardian.id, guardian.clone());
        Ok(())
    }

    async fn guardian(&self, id: GuardianId) -> Result<Option<Guardian>> {
        Ok(self.state.lock().await.guardians.get(&id).cloned())
    }

    async fn guardians(&self, vault_id: VaultId) -> Result<Vec<Guardian>> {
        let state = self.state.lock().await;
        let mut found: Vec<Guardian> = state
            .guardians
            .values()
            .filter(|g| g.vault_id == vault_id)
            .cloned()
            .collect();
        found.sort_by_key(|g| (g.joined_at, g.id));
        Ok(found)
    }

    async fn remove_guardian(
        &self,
        vault_id: VaultId,
        guardian_id: GuardianId,
        now: DateTime<Utc>,
    ) -> Result<Removal> {
        let mut state = self.state.lock().await;
        let threshold = state
            .vaults
            .get(&vault_id)
            .map(|v| v.policy.threshold)
            .ok_or(Error::VaultNotFound { id: vault_id })?;
        let guardian = state
            .guardians
            .get_mut(&guardian_id)
            .filter(|g| g.vault_id == vault_id)
            .ok_or(Error::GuardianNotFound { id: guardian_id })?;
        if !guardian.is_active() {
            return Err(Error::GuardianRemoved { id: guardian_id });
        }
        guardian.removed_at = Some(now);
        let guardian = guardian.clone();
        let mut open: Vec<RequestId> = state
            .requests
            .values()
            .filter(|r| r.vault_id == vault_id && r.state == RequestState::Open)
            .map(|r| r.id)
            .collect();
        open.sort();
        let mut removal = Removal {
            guardian,
            voided: Vec::new(),
            closed: Vec::new(),
        };
        for id in open {
            let decisions = state.decisions.entry(id).or_default();
            for d in decisions.iter_mut() {
                if d.guardian_id == guardian_id && d.voided_at.is_none() {
                    d.voided_at = Some(now);
                    removal.voided.push(id);
                }
            }
            if state.recount(id, threshold).2.is_some() {
                removal.closed.push(id);
            }
        }
        Ok(removal)
    }

    async fn insert_request(&self, request: &VaultRequest) -> Result<()> {
        let mut state = self.state.lock().await;
        state.requests.insert(request.id, request.clone());
        Ok(())
    }

    async fn request(&self, id: RequestId) -> Result<Option<VaultRequest>> {
        Ok(self.state.lock().await.requests.get(&id).cloned())
    }

    async fn decisions(&self, id: RequestId) -> Result<Vec<Decision>> {
        let state = self.state.lock().await;
        Ok(state.decisions.get(&id).cloned().unwrap_or_default())
    }

    async fn record_decision(&self, decision: &Decision, threshold: u32) -> Result<Recorded> {
        let mut state = self.state.lock().await;
        let id = decision.request_id;
        let request = state
            .requests
            .get(&id)
            .cloned()
            .ok_or(Error::RequestNotFound { id })?;
        let guardian =
            state
                .guardians
                .get(&decision.guardian_id)
                .ok_or(Error::GuardianNotFound {
                    id: decision.guardian_id,
                })?;
        if guardian.vault_id != request.vault_id {
            return Err(Error::NotAGuardianOfVault {
                guardian: guardian.id,
                vault: request.vault_id,
            });
        }
        if !guardian.is_active() {
            return Err(Error::GuardianRemoved { id: guardian.id });
        }
        if let Some(prior) = state
            .counting(id)
            .find(|d| d.guardian_id == decision.guardian_id)
        {
            return if prior.kind == decision.kind {
                Ok(Recorded::Duplicate { request })
            } else {
                Err(Error::AlreadyDecided {
                    decided: prior.kind,
                })
            };
        }
        if request.state == RequestState::Expired {
            return Err(Error::RequestExpired { id });
        }
        if request.state != RequestState::Open {
            return Err(Error::RequestClosed {
                id,
                state: request.state,
            });
        }
        if request.is_expired_at(decision.decided_at) {
            return Err(Error::RequestExpired { id });
        }
        state
            .decisions
            .entry(id)
            .or_default()
            .push(decision.clone());
        let (approvers, rejections, transition) = state.recount(id, threshold);
        let request = state
            .requests
            .get(&id)
            .cloned()
            .ok_or(Error::RequestNotFound { id })?;
        Ok(Recorded::Stored {
            request,
            approvers,
            rejections,
            transition,
        })
    }

    async fn requests(
        &self,
        vault_id: VaultId,
        state: Option<RequestState>,
    ) -> Result<Vec<VaultRequest>> {
        let guard = self.state.lock().await;
        let mut found: Vec<VaultRequest> = guard
            .requests
            .values()
            .filter(|r| r.vault_id == vault_id && state.is_none_or(|s| r.state == s))
            .cloned()
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        Ok(found)
    }

    async fn due_for_expiry(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RequestId>> {
        let state = self.state.lock().await;
        let mut due: Vec<&VaultRequest> = state
            .requests
            .values()
            .filter(|r| r.state == RequestState::Open && r.is_expired_at(now))
            .collect();
        due.sort_by_key(|r| (r.expires_at, r.id));
        Ok(due.into_iter().take(limit).map(|r| r.id).collect())
    }

    async fn expire_request(&self, id: RequestId, now: DateTime<Utc>) -> Result<bool> {
        let mut state = self.state.lock().await;
        match state.requests.get_mut(&id) {
            Some(r) if r.state == RequestState::Open && r.is_expired_at(now) => {
                r.state = RequestState::Expired;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(Error::RequestNotFound { id }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_approves_at_m_and_rejects_when_m_is_out_of_reach() {
        assert_eq!(settle(2, 3, 1, 0), None);
        assert_eq!(settle(2, 3, 2, 0), Some(RequestState::Approved));
        assert_eq!(settle(2, 3, 1, 1), None);
        assert_eq!(settle(2, 3, 0, 2), Some(RequestState::Rejected));
        assert_eq!(settle(2, 1, 0, 0), Some(RequestState::Rejected));
        assert_eq!(settle(3, 5, 3, 2), Some(RequestState::Approved));
    }
}

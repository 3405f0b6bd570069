//! The behaviour every [`VaultStore`] must show, as async checks that panic on failure.
//!
//! Run [`run_all`] against a fresh, empty store (e.g. one Postgres database per test):
//!
//! ```ignore
//! haven_vault::conformance::run_all(Arc::new(my_store)).await;
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::Error;
use crate::policy::{Amount, Operation, OperationKind, Policy};
use crate::store::{Recorded, VaultStore};
use crate::types::{
    Decision, DecisionKind, Guardian, GuardianId, Invitation, InvitationCode, InvitationId,
    RequestId, RequestState, Vault, VaultId, VaultRequest,
};

/// Runs every check on `store`.
pub async fn run_all(store: Arc<dyn VaultStore>) {
    vaults_round_trip(store.as_ref()).await;
    invitations_are_single_use_and_bound(store.as_ref()).await;
    one_code_redeemed_concurrently_admits_one_guardian(store.clone()).await;
    decisions_are_idempotent_and_release_once(store.as_ref()).await;
    decisions_are_refused_for_closed_expired_or_foreign(store.as_ref()).await;
    concurrent_approvals_release_once(store.clone(), 50).await;
    removal_voids_and_recounts(store.as_ref()).await;
    expiry_is_a_compare_and_set(store.clone()).await;
}

fn device_key(seed: u64) -> VerifyingKey {
    let mut bytes = [7u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&rand::random::<u64>().to_le_bytes());
    SigningKey::from_bytes(&bytes).verifying_key()
}

/// A stored vault with threshold `m`.
pub async fn vault(store: &dyn VaultStore, m: u32) -> Vault {
    let vault = Vault {
        id: VaultId::generate(),
        name: "conformance".into(),
        policy: Policy::new(m).cover(OperationKind::Withdrawal, Amount(0)),
        created_at: Utc::now(),
    };
    store.insert_vault(&vault).await.unwrap();
    vault
}

/// A stored invitation to `vault_id` that expires at `expires_at`, and its code.
pub async fn invitation(
    store: &dyn VaultStore,
    vault_id: VaultId,
    expires_at: DateTime<Utc>,
) -> InvitationCode {
    let code = InvitationCode::generate();
    let invitation = Invitation {
        id: InvitationId::generate(),
        vault_id,
        code_hash: code.hash(),
        created_by: "conformance".into(),
        created_at: Utc::now(),
        expires_at,
        used: None,
    };
    store.insert_invitation(&invitation).await.unwrap();
    code
}

fn guardian(vault_id: VaultId, key: VerifyingKey) -> Guardian {
    Guardian {
        id: GuardianId::generate(),
        vault_id,
        device_key: key,
        joined_at: Utc::now(),
        removed_at: None,
    }
}

/// `n` guardians joined to `vault_id`.
pub async fn guardians(store: &dyn VaultStore, vault_id: VaultId, n: u64) -> Vec<Guardian> {
    let mut joined = Vec::new();
    for i in 0..n {
        let code = invitation(store, vault_id, Utc::now() + Duration::hours(1)).await;
        let g = guardian(vault_id, device_key(i));
        store
            .redeem_invitation(&code.hash(), &g, Utc::now())
            .await
            .unwrap();
        joined.push(g);
    }
    joined
}

/// A stored open request of `vault_id` expiring at `expires_at`.
pub async fn request(
    store: &dyn VaultStore,
    vault_id: VaultId,
    expires_at: DateTime<Utc>,
) -> VaultRequest {
    let operation = Operation::new(OperationKind::Withdrawal).amount(Amount(42));
    let canonical = operation.canonical_json().unwrap();
    let request = VaultRequest {
        id: RequestId::generate(),
        vault_id,
        hash: crate::canonical::canonical_hash(&operation.to_value()).unwrap(),
        operation,
        canonical,
        requester: "conformance".into(),
        created_at: Utc::now(),
        expires_at,
        state: RequestState::Open,
        released: false,
    };
    store.insert_request(&request).await.unwrap();
    request
}

fn decision(request: &VaultRequest, guardian: &Guardian, kind: DecisionKind) -> Decision {
    Decision {
        request_id: request.id,
        guardian_id: guardian.id,
        kind,
        signature: [1; 64],
        decided_at: Utc::now(),
        voided_at: None,
    }
}

fn later() -> DateTime<Utc> {
    Utc::now() + Duration::hours(1)
}

/// Vaults are stored and read back; unknown ids read as `None`.
pub async fn vaults_round_trip(store: &dyn VaultStore) {
    let v = vault(store, 2).await;
    assert_eq!(store.vault(v.id).await.unwrap().as_ref(), Some(&v));
    assert!(store.vault(VaultId::generate()).await.unwrap().is_none());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let w = vault(store, 1).await;
    let listed: Vec<VaultId> = store.vaults().await.unwrap().iter().map(|v| v.id).collect();
    let (at_v, at_w) = (
        listed.iter().position(|id| *id == v.id),
        listed.iter().position(|id| *id == w.id),
    );
    assert!(
        matches!((at_v, at_w), (Some(a), Some(b)) if a < b),
        "both listed, oldest first: {listed:?}"
    );
}

/// Each refusal of `redeem_invitation` changes nothing; a code admits once.
pub async fn invitations_are_single_use_and_bound(store: &dyn VaultStore) {
    let v = vault(store, 1).await;
    let other = vault(store, 1).await;
    let now = Utc::now();
    let unknown = store
        .redeem_invitation(
            &InvitationCode::generate().hash(),
            &guardian(v.id, device_key(1)),
            now,
        )
        .await;
    assert!(
        matches!(unknown, Err(Error::InvitationUnknown)),
        "{unknown:?}"
    );

    let code = invitation(store, other.id, later()).await;
    let wrong = store
        .redeem_invitation(&code.hash(), &guardian(v.id, device_key(2)), now)
        .await;
    assert!(
        matches!(wrong, Err(Error::InvitationForOtherVault)),
        "{wrong:?}"
    );
    let first = guardian(other.id, device_key(3));
    store
        .redeem_invitation(&code.hash(), &first, now)
        .await
        .unwrap();
    let again = store
        .redeem_invitation(&code.hash(), &guardian(other.id, device_key(4)), now)
        .await;
    assert!(matches!(again, Err(Error::InvitationUsed)), "{again:?}");

    let expired = invitation(store, v.id, now - Duration::seconds(1)).await;
    let late = store
        .redeem_invitation(&expired.hash(), &guardian(v.id, device_key(5)), now)
        .await;
    assert!(matches!(late, Err(Error::InvitationExpired)), "{late:?}");

    let code = invitation(store, other.id, later()).await;
    let twin = guardian(other.id, first.device_key);
    let taken = store.redeem_invitation(&code.hash(), &twin, now).await;
    assert!(matches!(taken, Err(Error::DeviceKeyInUse)), "{taken:?}");

    assert!(store.guardians(v.id).await.unwrap().is_empty());
    assert_eq!(
        store.guardians(other.id).await.unwrap(),
        vec![first.clone()]
    );
    assert_eq!(store.guardian(first.id).await.unwrap(), Some(first));
}

/// Eight concurrent redemptions of one code: exactly one guardian joins.
pub async fn one_code_redeemed_concurrently_admits_one_guardian(store: Arc<dyn VaultStore>) {
    let v = vault(store.as_ref(), 1).await;
    let code = invitation(store.as_ref(), v.id, later()).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let hash = code.hash();
        let g = guardian(v.id, device_key(100 + i));
        tasks.push(tokio::spawn(async move {
            store.redeem_invitation(&hash, &g, Utc::now()).await
        }));
    }
    let mut joined = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => joined += 1,
            Err(Error::InvitationUsed) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(joined, 1);
    assert_eq!(store.guardians(v.id).await.unwrap().len(), 1);
}

/// A repeated decision is a `Duplicate`, the opposite one is refused, and the M-th approval
/// moves the request to `approved` with `released` set, once.
pub async fn decisions_are_idempotent_and_release_once(store: &dyn VaultStore) {
    let v = vault(store, 2).await;
    let g = guardians(store, v.id, 3).await;
    let r = request(store, v.id, later()).await;
    let first = store
        .record_decision(&decision(&r, &g[0], DecisionKind::Approve), 2)
        .await
        .unwrap();
    assert!(
        matches!(&first, Recorded::Stored { transition: None, approvers, .. } if approvers == &vec![g[0].id]),
        "{first:?}"
    );
    let dup = store
        .record_decision(&decision(&r, &g[0], DecisionKind::Approve), 2)
        .await
        .unwrap();
    assert!(matches!(dup, Recorded::Duplicate { .. }), "{dup:?}");
    let flip = store
        .record_decision(&decision(&r, &g[0], DecisionKind::Reject), 2)
        .await;
    assert!(
        matches!(
            flip,
            Err(Error::AlreadyDecided {
                decided: DecisionKind::Approve
            })
        ),
        "{flip:?}"
    );
    let second = store
        .record_decision(&decision(&r, &g[1], DecisionKind::Approve), 2)
        .await
        .unwrap();
    let Recorded::Stored {
        request,
        transition: Some(RequestState::Approved),
        ..
    } = second
    else {
        panic!("the second approval moves the request: {second:?}")
    };
    assert!(request.released);
    assert_eq!(store.request(r.id).await.unwrap(), Some(request));
    let third = store
        .record_decision(&decision(&r, &g[2], DecisionKind::Approve), 2)
        .await;
    assert!(
        matches!(
            third,
            Err(Error::RequestClosed {
                state: RequestState::Approved,
                ..
            })
        ),
        "{third:?}"
    );
    assert_eq!(store.decisions(r.id).await.unwrap().len(), 2);
}

/// Decisions on expired requests, by removed guardians or by another vault's guardians are
/// refused and not stored.
pub async fn decisions_are_refused_for_closed_expired_or_foreign(store: &dyn VaultStore) {
    let v = vault(store, 2).await;
    let g = guardians(store, v.id, 3).await;
    let other = vault(store, 1).await;
    let outsider = guardians(store, other.id, 1).await;

    let past = request(store, v.id, Utc::now() - Duration::seconds(1)).await;
    let late = store
        .record_decision(&decision(&past, &g[0], DecisionKind::Approve), 2)
        .await;
    assert!(
        matches!(late, Err(Error::RequestExpired { .. })),
        "{late:?}"
    );

    let r = request(store, v.id, later()).await;
    let foreign = store
        .record_decision(&decision(&r, &outsider[0], DecisionKind::Approve), 2)
        .await;
    assert!(
        matches!(foreign, Err(Error::NotAGuardianOfVault { .. })),
        "{foreign:?}"
    );
    store
        .remove_guardian(v.id, g[2].id, Utc::now())
        .await
        .unwrap();
    let removed = store
        .record_decision(&decision(&r, &g[2], DecisionKind::Approve), 2)
        .await;
    assert!(
        matches!(removed, Err(Error::GuardianRemoved { .. })),
        "{removed:?}"
    );
    assert!(store.decisions(past.id).await.unwrap().is_empty());
    assert!(store.decisions(r.id).await.unwrap().is_empty());
}

/// `rounds` times, three guardians approve a 2-of-3 request at once: exactly one call sees
/// the transition to `approved`.
pub async fn concurrent_approvals_release_once(store: Arc<dyn VaultStore>, rounds: usize) {
    let v = vault(store.as_ref(), 2).await;
    let g = guardians(store.as_ref(), v.id, 3).await;
    for round in 0..rounds {
        let r = request(store.as_ref(), v.id, later()).await;
        let mut tasks = Vec::new();
        for guardian in &g {
            let store = store.clone();
            let d = decision(&r, guardian, DecisionKind::Approve);
            tasks.push(tokio::spawn(
                async move { store.record_decision(&d, 2).await },
            ));
        }
        let mut released = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(Recorded::Stored {
                    transition: Some(RequestState::Approved),
                    ..
                }) => released += 1,
                Ok(Recorded::Stored {
                    transition: None, ..
                })
                | Err(Error::RequestClosed { .. }) => {}
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(released, 1, "round {round}");
    }
}

/// Removing a guardian voids its decision on open requests only, and closes the requests
/// that can no longer reach M.
pub async fn removal_voids_and_recounts(store: &dyn VaultStore) {
    let v = vault(store, 2).await;
    let g = guardians(store, v.id, 3).await;
    let r = request(store, v.id, later()).await;
    let closed_before = request(store, v.id, later()).await;
    for guardian in &g[..2] {
        store
            .record_decision(
                &decision(&closed_before, guardian, DecisionKind::Approve),
                2,
            )
            .await
            .unwrap();
    }
    store
        .record_decision(&decision(&r, &g[0], DecisionKind::Approve), 2)
        .await
        .unwrap();
    store
        .record_decision(&decision(&r, &g[1], DecisionKind::Reject), 2)
        .await
        .unwrap();
    let removal = store
        .remove_guardian(v.id, g[0].id, Utc::now())
        .await
        .unwrap();
    assert_eq!(removal.voided, vec![r.id]);
    // 2 guardians left, one of whom rejected: 2 approvals are out of reach
    assert_eq!(removal.closed, vec![r.id]);
    assert_eq!(
        store.request(r.id).await.unwrap().unwrap().state,
        RequestState::Rejected
    );
    let kept = store.request(closed_before.id).await.unwrap().unwrap();
    assert_eq!((kept.state, kept.released), (RequestState::Approved, true));
    let decisions = store.decisions(closed_before.id).await.unwrap();
    assert!(decisions.iter().all(|d| d.voided_at.is_none()));
    let again = store.remove_guardian(v.id, g[0].id, Utc::now()).await;
    assert!(
        matches!(again, Err(Error::GuardianRemoved { .. })),
        "{again:?}"
    );
    let elsewhere = store
        .remove_guardian(VaultId::generate(), g[1].id, Utc::now())
        .await;
    assert!(elsewhere.is_err());
}

/// Only one of concurrent expiries closes a request; unexpired and closed requests stay.
pub async fn expiry_is_a_compare_and_set(store: Arc<dyn VaultStore>) {
    let v = vault(store.as_ref(), 1).await;
    guardians(store.as_ref(), v.id, 1).await;
    let live = request(store.as_ref(), v.id, later()).await;
    let dead = request(store.as_ref(), v.id, Utc::now() - Duration::seconds(1)).await;
    assert!(!store.expire_request(live.id, Utc::now()).await.unwrap());
    let due = store.due_for_expiry(Utc::now(), 1000).await.unwrap();
    assert!(due.contains(&dead.id) && !due.contains(&live.id));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.expire_request(dead.id, Utc::now()).await.unwrap()
        }));
    }
    let mut closed = 0;
    for task in tasks {
        closed += usize::from(task.await.unwrap());
    }
    assert_eq!(closed, 1);
    assert!(
        !store
            .due_for_expiry(Utc::now(), 1000)
            .await
            .unwrap()
            .contains(&dead.id)
    );
    let open = store
        .requests(v.id, Some(RequestState::Open))
        .await
        .unwrap();
    assert_eq!(open.iter().map(|r| r.id).collect::<Vec<_>>(), vec![live.id]);
    assert_eq!(store.requests(v.id, None).await.unwrap().len(), 2);
}

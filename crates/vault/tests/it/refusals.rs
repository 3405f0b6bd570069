use chrono::Duration;
use haven_core::ErrorCode;
use haven_vault::{Caller, DecisionKind, Error, InvitationCode, RequestState, VaultConfig};

use crate::support::{Fixture, admin, device};

#[tokio::test]
async fn a_signature_from_another_device_key_is_refused() {
    let f = Fixture::new(2, 3).await;
    let request = f.request(5_000_000).await;
    let g1 = &f.members[0];
    let stranger = haven_vault::sign_decision(&device(), DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(request.id, g1.guardian.id, &stranger, &g1.caller())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature));
    assert_eq!(err.code(), ErrorCode::InvalidSignature);
    // another guardian's key of the same vault is also someone else's device
    let g2_sig = f.members[1].sign(DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(request.id, g1.guardian.id, &g2_sig, &g1.caller())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature));
}

#[tokio::test]
async fn a_signature_is_bound_to_its_decision_and_its_request() {
    let f = Fixture::new(2, 3).await;
    let request = f.request(5_000_000).await;
    let twin = f.request(5_000_000).await;
    assert_eq!(request.hash, twin.hash, "same operation, same hash");
    let g1 = &f.members[0];
    let reject = g1.sign(DecisionKind::Reject, &request);
    let err = f
        .service
        .approve(request.id, g1.guardian.id, &reject, &g1.caller())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature));
    let approve = g1.sign(DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(twin.id, g1.guardian.id, &approve, &g1.caller())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature));
}

#[tokio::test]
async fn a_removed_guardian_is_refused() {
    let f = Fixture::new(2, 3).await;
    let request = f.request(5_000_000).await;
    let g1 = &f.members[0];
    f.service
        .remove_guardian(f.vault.id, g1.guardian.id, &admin())
        .await
        .unwrap();
    let sig = g1.sign(DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(request.id, g1.guardian.id, &sig, &g1.caller())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GuardianRemoved { id } if id == g1.guardian.id));
    assert_eq!(err.code().status(), 403);
    let again = f
        .service
        .remove_guardian(f.vault.id, g1.guardian.id, &admin())
        .await
        .unwrap_err();
    assert!(matches!(again, Error::GuardianRemoved { .. }));
}

#[tokio::test]
async fn another_vaults_guardian_is_refused() {
    let f = Fixture::new(2, 3).await;
    let other = Fixture::new(1, 1).await;
    let request = f.request(5_000_000).await;
    // a guardian of another vault of the same store, signing with its own registered key
    let outsider_vault = f
        .service
        .create_vault("other", crate::support::policy(1), &admin())
        .await
        .unwrap();
    let invitation = f.service.invite(outsider_vault.id, &admin()).await.unwrap();
    let key = device();
    let outsider = f
        .service
        .join(
            outsider_vault.id,
            &invitation.code,
            key.verifying_key(),
            &Caller::new("x"),
        )
        .await
        .unwrap();
    let sig = haven_vault::sign_decision(&key, DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(request.id, outsider.id, &sig, &Caller::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotAGuardianOfVault { guardian, vault } if guardian == outsider.id && vault == f.vault.id)
    );
    // a guardian unknown to this store entirely
    let stranger = &other.members[0];
    let sig = stranger.sign(DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(request.id, stranger.guardian.id, &sig, &stranger.caller())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::GuardianNotFound { .. }));
}

#[tokio::test]
async fn an_approval_after_expiry_is_refused_and_closes_the_request() {
    let config = VaultConfig {
        request_ttl: Duration::zero(),
        ..VaultConfig::default()
    };
    let f = Fixture::with_config(2, 3, config).await;
    let request = f.request(5_000_000).await;
    let g1 = &f.members[0];
    let sig = g1.sign(DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(request.id, g1.guardian.id, &sig, &g1.caller())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RequestExpired { id } if id == request.id));
    assert_eq!(
        f.service.request(request.id).await.unwrap().state,
        RequestState::Expired
    );
    // and stays refused as expired once closed
    let g2 = &f.members[1];
    let sig = g2.sign(DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(request.id, g2.guardian.id, &sig, &g2.caller())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RequestExpired { .. }));
    let expired = f
        .actions()
        .iter()
        .filter(|a| *a == "vault.request.expired")
        .count();
    assert_eq!(expired, 1);
    assert!(!f.service.expire(request.id, &admin()).await.unwrap());
}

#[tokio::test]
async fn an_invitation_code_works_once() {
    let f = Fixture::new(1, 0).await;
    let invitation = f.service.invite(f.vault.id, &admin()).await.unwrap();
    f.service
        .join(
            f.vault.id,
            &invitation.code,
            device().verifying_key(),
            &Caller::new("a"),
        )
        .await
        .unwrap();
    let err = f
        .service
        .join(
            f.vault.id,
            &invitation.code,
            device().verifying_key(),
            &Caller::new("b"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvitationUsed));
    assert_eq!(f.service.guardians(f.vault.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_expired_invitation_code_is_refused() {
    let config = VaultConfig {
        invitation_ttl: Duration::zero(),
        ..VaultConfig::default()
    };
    let f = Fixture::with_config(1, 0, config).await;
    let invitation = f.service.invite(f.vault.id, &admin()).await.unwrap();
    let err = f
        .service
        .join(
            f.vault.id,
            &invitation.code,
            device().verifying_key(),
            &Caller::new("a"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvitationExpired));
}

#[tokio::test]
async fn an_invitation_for_another_vault_is_refused_and_not_consumed() {
    let f = Fixture::new(1, 0).await;
    let other = f
        .service
        .create_vault("other", crate::support::policy(1), &admin())
        .await
        .unwrap();
    let invitation = f.service.invite(other.id, &admin()).await.unwrap();
    let key = device().verifying_key();
    let err = f
        .service
        .join(f.vault.id, &invitation.code, key, &Caller::new("a"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvitationForOtherVault));
    f.service
        .join(other.id, &invitation.code, key, &Caller::new("a"))
        .await
        .unwrap();
}

#[tokio::test]
async fn unknown_codes_and_reused_device_keys_are_refused() {
    let f = Fixture::new(1, 1).await;
    let err = f
        .service
        .join(
            f.vault.id,
            &InvitationCode::generate(),
            device().verifying_key(),
            &Caller::new("a"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvitationUnknown));
    let invitation = f.service.invite(f.vault.id, &admin()).await.unwrap();
    let taken = f.members[0].key.verifying_key();
    let err = f
        .service
        .join(f.vault.id, &invitation.code, taken, &Caller::new("a"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeviceKeyInUse));
}

#[tokio::test]
async fn invalid_vaults_are_refused() {
    let f = Fixture::new(1, 0).await;
    let err = f
        .service
        .create_vault("  ", crate::support::policy(1), &admin())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidName));
    let err = f
        .service
        .create_vault("x", crate::support::policy(0), &admin())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Policy(_)));
    assert_eq!(err.code(), ErrorCode::ValidationError);
}

#[test]
fn a_created_invitation_never_shows_its_code() {
    let code = InvitationCode::generate();
    let shown = format!("{code:?}");
    assert!(!shown.contains(code.expose()), "{shown}");
}

use haven_core::audit::{Severity, verify_chain};
use haven_vault::{Caller, DecisionKind, Error};

use crate::support::{Fixture, admin, device};

#[tokio::test]
async fn every_operation_and_refusal_is_audited() {
    let f = Fixture::new(2, 3).await;
    let request = f.request(5_000_000).await;
    let [g1, g2, _] = &f.members[..] else {
        panic!("three guardians")
    };
    let forged = haven_vault::sign_decision(&device(), DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(request.id, g1.guardian.id, &forged, &g1.caller())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadSignature));
    let sig = g1.sign(DecisionKind::Approve, &request);
    f.service
        .approve(request.id, g1.guardian.id, &sig, &g1.caller())
        .await
        .unwrap();
    let sig = g2.sign(DecisionKind::Approve, &request);
    f.service
        .approve(request.id, g2.guardian.id, &sig, &g2.caller())
        .await
        .unwrap();
    f.service
        .remove_guardian(f.vault.id, g1.guardian.id, &admin())
        .await
        .unwrap();
    let invitation = f.service.invite(f.vault.id, &admin()).await.unwrap();
    f.service
        .join(
            f.vault.id,
            &invitation.code,
            device().verifying_key(),
            &Caller::new("d"),
        )
        .await
        .unwrap();
    let err = f
        .service
        .join(
            f.vault.id,
            &invitation.code,
            device().verifying_key(),
            &Caller::new("d"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvitationUsed));

    let records = f.audit.records();
    verify_chain(&records).unwrap();
    let actions: Vec<&str> = records.iter().map(|r| r.event.action.as_str()).collect();
    let mut expected = vec!["vault.create"];
    for _ in 0..3 {
        expected.extend(["vault.invite", "vault.join"]);
    }
    expected.extend([
        "vault.request.create",
        "vault.request.approve",
        "vault.request.approve",
        "vault.request.approve",
        "vault.request.released",
        "vault.guardian.remove",
        "vault.invite",
        "vault.join",
        "vault.join",
    ]);
    assert_eq!(actions, expected);

    let refused: Vec<_> = records
        .iter()
        .filter(|r| r.event.details["outcome"] == "refused")
        .collect();
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0].event.details["error"], "bad_signature");
    assert_eq!(
        refused[0].event.target.as_deref(),
        Some(request.id.to_string().as_str())
    );
    assert_eq!(refused[1].event.details["error"], "invitation_used");
    assert!(refused.iter().all(|r| r.event.severity == Severity::High));
    assert_eq!(records[0].event.request_id.as_deref(), Some("req-1"));

    // the invitation code appears in no record
    for r in &records {
        let row = serde_json::to_string(&r.event).unwrap();
        assert!(!row.contains(invitation.code.expose()), "{row}");
    }
}

#[tokio::test]
async fn a_created_invitations_debug_never_shows_the_code() {
    let f = Fixture::new(1, 0).await;
    let invitation = f.service.invite(f.vault.id, &admin()).await.unwrap();
    let shown = format!("{invitation:?} {invitation:#?}");
    assert!(!shown.contains(invitation.code.expose()), "{shown}");
    assert!(shown.contains("<redacted>"));
}

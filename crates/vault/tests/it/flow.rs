use haven_vault::{DecisionKind, DecisionOutcome, Error, RequestState};

use crate::support::{Fixture, admin, redemption};

#[tokio::test]
async fn two_of_three_releases_on_the_second_approval_exactly_once() {
    let f = Fixture::new(2, 3).await;
    let request = f.request(5_000_000).await;
    assert_eq!(request.state, RequestState::Open);
    let [g1, g2, g3] = &f.members[..] else {
        panic!("three guardians")
    };

    let sig1 = g1.sign(DecisionKind::Approve, &request);
    let first = f
        .service
        .approve(request.id, g1.guardian.id, &sig1, &g1.caller())
        .await
        .unwrap();
    assert_eq!(
        first,
        DecisionOutcome::Counted {
            approvals: 1,
            rejections: 0,
            threshold: 2
        }
    );
    let stored = f.service.request(request.id).await.unwrap();
    assert_eq!((stored.state, stored.released), (RequestState::Open, false));

    // the same signed approval, replayed, changes nothing and says so
    let replay = f
        .service
        .approve(request.id, g1.guardian.id, &sig1, &g1.caller())
        .await
        .unwrap();
    assert_eq!(
        replay,
        DecisionOutcome::AlreadyRecorded {
            state: RequestState::Open
        }
    );

    let sig2 = g2.sign(DecisionKind::Approve, &request);
    let DecisionOutcome::Released(release) = f
        .service
        .approve(request.id, g2.guardian.id, &sig2, &g2.caller())
        .await
        .unwrap()
    else {
        panic!("the second approval releases")
    };
    assert_eq!(release.request_id, request.id);
    assert_eq!(release.hash, request.hash);
    assert_eq!(release.operation, redemption(5_000_000));
    assert_eq!(release.approvers, vec![g1.guardian.id, g2.guardian.id]);
    let stored = f.service.request(request.id).await.unwrap();
    assert_eq!(
        (stored.state, stored.released),
        (RequestState::Approved, true)
    );

    // neither a replay of the releasing approval nor the third guardian releases again
    let replay = f
        .service
        .approve(request.id, g2.guardian.id, &sig2, &g2.caller())
        .await
        .unwrap();
    assert_eq!(
        replay,
        DecisionOutcome::AlreadyRecorded {
            state: RequestState::Approved
        }
    );
    let sig3 = g3.sign(DecisionKind::Approve, &request);
    let late = f
        .service
        .approve(request.id, g3.guardian.id, &sig3, &g3.caller())
        .await
        .unwrap_err();
    assert!(
        matches!(
            late,
            Error::RequestClosed {
                state: RequestState::Approved,
                ..
            }
        ),
        "{late:?}"
    );
    let released = f
        .actions()
        .iter()
        .filter(|a| *a == "vault.request.released")
        .count();
    assert_eq!(released, 1);
}

#[tokio::test]
async fn two_rejections_of_three_close_a_two_of_three_request() {
    let f = Fixture::new(2, 3).await;
    let request = f.request(5_000_000).await;
    let [g1, g2, g3] = &f.members[..] else {
        panic!("three guardians")
    };
    let sig = g1.sign(DecisionKind::Reject, &request);
    let one = f
        .service
        .reject(request.id, g1.guardian.id, &sig, &g1.caller())
        .await
        .unwrap();
    assert!(matches!(
        one,
        DecisionOutcome::Counted { rejections: 1, .. }
    ));
    // a rejection cannot be turned into an approval
    let flip = g1.sign(DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(request.id, g1.guardian.id, &flip, &g1.caller())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::AlreadyDecided {
            decided: DecisionKind::Reject
        }
    ));
    let sig = g2.sign(DecisionKind::Reject, &request);
    let two = f
        .service
        .reject(request.id, g2.guardian.id, &sig, &g2.caller())
        .await
        .unwrap();
    assert_eq!(two, DecisionOutcome::Rejected);
    assert_eq!(
        f.service.request(request.id).await.unwrap().state,
        RequestState::Rejected
    );
    let sig = g3.sign(DecisionKind::Approve, &request);
    let err = f
        .service
        .approve(request.id, g3.guardian.id, &sig, &g3.caller())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::RequestClosed {
            state: RequestState::Rejected,
            ..
        }
    ));
}

#[tokio::test]
async fn removing_a_guardian_voids_its_approval_and_recounts() {
    let mut f = Fixture::new(2, 3).await;
    let request = f.request(5_000_000).await;
    let g1 = &f.members[0];
    let sig = g1.sign(DecisionKind::Approve, &request);
    f.service
        .approve(request.id, g1.guardian.id, &sig, &g1.caller())
        .await
        .unwrap();
    let removal = f
        .service
        .remove_guardian(f.vault.id, g1.guardian.id, &admin())
        .await
        .unwrap();
    assert_eq!(removal.voided, vec![request.id]);
    assert!(removal.closed.is_empty());
    assert!(removal.guardian.removed_at.is_some());

    // g2's approval is now the only one that counts: no release
    let g2 = &f.members[1];
    let sig = g2.sign(DecisionKind::Approve, &request);
    let outcome = f
        .service
        .approve(request.id, g2.guardian.id, &sig, &g2.caller())
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        DecisionOutcome::Counted { approvals: 1, .. }
    ));

    // with 2 guardians left, one rejection makes 2 approvals unreachable
    let g3 = &f.members[2];
    let sig = g3.sign(DecisionKind::Reject, &request);
    let outcome = f
        .service
        .reject(request.id, g3.guardian.id, &sig, &g3.caller())
        .await
        .unwrap();
    assert_eq!(outcome, DecisionOutcome::Rejected);

    // a new guardian can join and a new request be approved by two active guardians
    f.add_member().await;
    let request = f.request(5_000_000).await;
    let mut released = 0;
    for m in &f.members[1..] {
        let sig = m.sign(DecisionKind::Approve, &request);
        if let Ok(DecisionOutcome::Released(_)) = f
            .service
            .approve(request.id, m.guardian.id, &sig, &m.caller())
            .await
        {
            released += 1;
        }
    }
    assert_eq!(released, 1);
}

#[tokio::test]
async fn removing_guardians_below_the_threshold_closes_open_requests() {
    let f = Fixture::new(2, 2).await;
    let request = f.request(5_000_000).await;
    let removal = f
        .service
        .remove_guardian(f.vault.id, f.members[0].guardian.id, &admin())
        .await
        .unwrap();
    assert_eq!(removal.closed, vec![request.id]);
    assert_eq!(
        f.service.request(request.id).await.unwrap().state,
        RequestState::Rejected
    );
    let err = f
        .service
        .create_request(f.vault.id, redemption(5_000_000), &admin())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::NotEnoughGuardians {
            threshold: 2,
            guardians: 1
        }
    ));
}

#[tokio::test]
async fn operations_below_the_threshold_or_uncovered_need_no_vault() {
    let f = Fixture::new(2, 3).await;
    assert!(!f.vault.policy.requires(
        haven_vault::OperationKind::Redemption,
        Some(haven_vault::Amount(999_999))
    ));
    let err = f
        .service
        .create_request(f.vault.id, redemption(999_999), &admin())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotCovered { .. }));
    let withdrawal = haven_vault::Operation::new(haven_vault::OperationKind::Withdrawal)
        .amount(haven_vault::Amount(u128::MAX));
    let err = f
        .service
        .create_request(f.vault.id, withdrawal, &admin())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotCovered { .. }));
    let role = haven_vault::Operation::new(haven_vault::OperationKind::MinterRoleChange)
        .params(serde_json::json!({"grant": "0xabc"}));
    f.service
        .create_request(f.vault.id, role, &admin())
        .await
        .unwrap();
}

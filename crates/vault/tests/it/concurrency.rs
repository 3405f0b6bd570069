use haven_vault::{DecisionKind, DecisionOutcome, RequestState};

use crate::support::Fixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_concurrent_approvals_of_a_two_of_three_release_once_200_times() {
    let f = Fixture::new(2, 3).await;
    for round in 0..200 {
        let request = f.request(5_000_000).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(3));
        let mut tasks = Vec::new();
        for member in &f.members {
            let service = f.service.clone();
            let barrier = barrier.clone();
            let guardian = member.guardian.id;
            let caller = member.caller();
            let sig = member.sign(DecisionKind::Approve, &request);
            let id = request.id;
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                service.approve(id, guardian, &sig, &caller).await
            }));
        }
        let mut released = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(DecisionOutcome::Released(_)) => released += 1,
                Ok(DecisionOutcome::Counted { .. }) => {}
                Err(haven_vault::Error::RequestClosed {
                    state: RequestState::Approved,
                    ..
                }) => {}
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(released, 1, "round {round}");
        let stored = f.service.request(request.id).await.unwrap();
        assert_eq!(
            (stored.state, stored.released),
            (RequestState::Approved, true)
        );
    }
    let released = f
        .actions()
        .iter()
        .filter(|a| *a == "vault.request.released")
        .count();
    assert_eq!(released, 200);
}

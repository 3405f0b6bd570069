use std::sync::Arc;

use chrono::{Duration, Utc};
use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use ed25519_dalek::SigningKey;
use haven_db::PgVaultStore;
use haven_testkit::TestDb;
use haven_vault::conformance;
use haven_vault::{
    Amount, Decision, DecisionKind, Error, Guardian, GuardianId, Operation, OperationKind, Policy,
    Recorded, RequestState, Vault, VaultId, VaultStore,
};

async fn store() -> (TestDb, haven_db::PgPool, PgVaultStore) {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 8).await.unwrap();
    let store = PgVaultStore::new(pool.clone());
    (db, pool, store)
}

fn decision(
    request: &haven_vault::VaultRequest,
    guardian: &Guardian,
    kind: DecisionKind,
) -> Decision {
    Decision {
        request_id: request.id,
        guardian_id: guardian.id,
        kind,
        signature: [9; 64],
        decided_at: Utc::now(),
        voided_at: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_vault_store_passes_the_conformance_suite() {
    let (_db, _pool, store) = store().await;
    conformance::run_all(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_survives_a_fresh_store_on_a_new_pool() {
    let (db, pool, store) = store().await;
    let vault = conformance::vault(&store, 2).await;
    let guardians = conformance::guardians(&store, vault.id, 3).await;
    let request = conformance::request(&store, vault.id, Utc::now() + Duration::hours(1)).await;
    let approval = decision(&request, &guardians[0], DecisionKind::Approve);
    store.record_decision(&approval, 2).await.unwrap();
    drop(store);
    pool.inner().close();
    drop(pool);

    let fresh = PgVaultStore::new(haven_db::connect(db.url(), 2).await.unwrap());
    assert_eq!(fresh.decisions(request.id).await.unwrap(), vec![approval]);
    assert_eq!(
        fresh.request(request.id).await.unwrap(),
        Some(request.clone())
    );
    assert_eq!(fresh.guardians(vault.id).await.unwrap(), guardians);
    assert_eq!(fresh.vault(vault.id).await.unwrap(), Some(vault));
    // the stored approval still counts: the second one releases
    let second = fresh
        .record_decision(&decision(&request, &guardians[1], DecisionKind::Approve), 2)
        .await
        .unwrap();
    let Recorded::Stored {
        request: after,
        approvers,
        transition: Some(RequestState::Approved),
        ..
    } = second
    else {
        panic!("the second approval releases: {second:?}")
    };
    assert!(after.released);
    assert_eq!(approvers, vec![guardians[0].id, guardians[1].id]);
}

#[derive(diesel::QueryableByName)]
struct Stored {
    #[diesel(sql_type = Text)]
    text: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn amounts_round_trip_exactly_at_the_u128_extremes() {
    let (db, pool, store) = store().await;
    let big = Amount(10u128.pow(30) + 1);
    let vault = Vault {
        id: VaultId::generate(),
        name: "treasury".into(),
        policy: Policy::new(2)
            .cover(OperationKind::Redemption, big)
            .cover(OperationKind::Withdrawal, Amount(u128::MAX))
            .cover(OperationKind::MinterRoleChange, Amount(0)),
        created_at: Utc::now(),
    };
    store.insert_vault(&vault).await.unwrap();
    conformance::guardians(&store, vault.id, 1).await;
    let operation = Operation::new(OperationKind::Withdrawal)
        .amount(Amount(u128::MAX))
        .params(serde_json::json!({"to": "0xabc", "nonce": u64::MAX, "memo": "a\u{0}b"}));
    let canonical = operation.canonical_json().unwrap();
    let request = haven_vault::VaultRequest {
        id: haven_vault::RequestId::generate(),
        vault_id: vault.id,
        hash: haven_vault::canonical::canonical_hash(&operation.to_value()).unwrap(),
        operation,
        canonical,
        requester: "admin-1".into(),
        created_at: Utc::now(),
        expires_at: Utc::now() + Duration::hours(1),
        state: RequestState::Open,
        released: false,
    };
    store.insert_request(&request).await.unwrap();

    let fresh = PgVaultStore::new(haven_db::connect(db.url(), 2).await.unwrap());
    let read = fresh.vault(vault.id).await.unwrap().unwrap();
    assert_eq!(read.policy.covered[&OperationKind::Redemption], big);
    assert_eq!(
        read.policy.covered[&OperationKind::Withdrawal],
        Amount(u128::MAX)
    );
    assert_eq!(read, vault);
    assert!(read.policy.requires(OperationKind::Redemption, Some(big)));
    assert!(
        !read
            .policy
            .requires(OperationKind::Redemption, Some(Amount(big.0 - 1)))
    );
    assert_eq!(
        fresh.request(request.id).await.unwrap(),
        Some(request.clone())
    );

    let mut conn = pool.get().await.unwrap();
    let stored: Stored = diesel::sql_query(
        "SELECT policy -> 'covered' ->> 'redemption' AS text FROM vaults WHERE id = $1",
    )
    .bind::<SqlUuid, _>(vault.id.0)
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(stored.text, "1000000000000000000000000000001");
    let stored: Stored =
        diesel::sql_query("SELECT operation AS text FROM vault_requests WHERE id = $1")
            .bind::<SqlUuid, _>(request.id.0)
            .get_result(&mut conn)
            .await
            .unwrap();
    assert!(
        stored
            .text
            .contains(&format!("\"amount\":\"{}\"", u128::MAX)),
        "{}",
        stored.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_device_key_joins_once_through_two_codes_at_once() {
    let (_db, _pool, store) = store().await;
    let store = Arc::new(store);
    let vault = conformance::vault(store.as_ref(), 1).await;
    let key = SigningKey::from_bytes(&[42; 32]).verifying_key();
    for round in 0..10 {
        let codes = [
            conformance::invitation(store.as_ref(), vault.id, Utc::now() + Duration::hours(1))
                .await,
            conformance::invitation(store.as_ref(), vault.id, Utc::now() + Duration::hours(1))
                .await,
        ];
        let mut tasks = Vec::new();
        for code in &codes {
            let store = store.clone();
            let hash = code.hash();
            let guardian = Guardian {
                id: GuardianId::generate(),
                vault_id: vault.id,
                device_key: key,
                joined_at: Utc::now(),
                removed_at: None,
            };
            tasks.push(tokio::spawn(async move {
                store.redeem_invitation(&hash, &guardian, Utc::now()).await
            }));
        }
        let mut joined = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => joined += 1,
                Err(Error::DeviceKeyInUse) => {}
                Err(other) => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(joined, 1, "round {round}");
        let active: Vec<Guardian> = store
            .guardians(vault.id)
            .await
            .unwrap()
            .into_iter()
            .filter(Guardian::is_active)
            .collect();
        assert_eq!(active.len(), 1);
        // free the key for the next round
        store
            .remove_guardian(vault.id, active[0].id, Utc::now())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn removals_racing_approvals_neither_deadlock_nor_release_twice() {
    let (_db, _pool, store) = store().await;
    let store = Arc::new(store);
    for round in 0..15 {
        let vault = conformance::vault(store.as_ref(), 2).await;
        let guardians = conformance::guardians(store.as_ref(), vault.id, 4).await;
        let request =
            conformance::request(store.as_ref(), vault.id, Utc::now() + Duration::hours(1)).await;
        let mut approvals = Vec::new();
        for guardian in &guardians[..3] {
            let store = store.clone();
            let d = decision(&request, guardian, DecisionKind::Approve);
            approvals.push(tokio::spawn(
                async move { store.record_decision(&d, 2).await },
            ));
        }
        let removal = {
            let store = store.clone();
            let (vault_id, guardian_id) = (vault.id, guardians[0].id);
            tokio::spawn(async move {
                store
                    .remove_guardian(vault_id, guardian_id, Utc::now())
                    .await
            })
        };
        let mut released = 0;
        for task in approvals {
            match task.await.unwrap() {
                Ok(Recorded::Stored {
                    transition: Some(RequestState::Approved),
                    ..
                }) => released += 1,
                Ok(Recorded::Stored {
                    transition: None, ..
                })
                | Err(Error::RequestClosed { .. } | Error::GuardianRemoved { .. }) => {}
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        removal.await.unwrap().unwrap();
        assert_eq!(released, 1, "round {round}");
        let stored = store.request(request.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.state, stored.released),
            (RequestState::Approved, true)
        );
    }
}

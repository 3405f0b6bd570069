use std::sync::Arc;

use haven_vault::{MemoryVaultStore, RequestState, VaultConfig, conformance};

use crate::support::{Fixture, admin};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_store_passes_the_conformance_suite() {
    conformance::run_all(Arc::new(MemoryVaultStore::new())).await;
}

#[tokio::test]
async fn expire_due_closes_overdue_requests_once_each() {
    let config = VaultConfig {
        request_ttl: chrono::Duration::zero(),
        ..VaultConfig::default()
    };
    let f = Fixture::with_config(2, 3, config).await;
    let a = f.request(5_000_000).await;
    let b = f.request(5_000_000).await;
    let mut closed = f.service.expire_due(100, &admin()).await.unwrap();
    closed.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(closed, expected);
    assert!(
        f.service
            .expire_due(100, &admin())
            .await
            .unwrap()
            .is_empty()
    );
    let expired = f
        .service
        .requests(f.vault.id, Some(RequestState::Expired))
        .await
        .unwrap();
    assert_eq!(expired.len(), 2);
    let audited = f
        .actions()
        .iter()
        .filter(|a| *a == "vault.request.expired")
        .count();
    assert_eq!(audited, 2);
}

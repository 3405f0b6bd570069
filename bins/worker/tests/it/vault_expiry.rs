//! The `vault_expiry` job closes overdue vault requests, once, with their audit rows.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use haven_testkit::TestDb;
use haven_vault::{
    Amount, Caller, Operation, OperationKind, Policy, RequestState, VaultConfig, VaultService,
};
use haven_worker::Job;

#[tokio::test(flavor = "multi_thread")]
async fn overdue_vault_requests_expire_once_and_are_audited() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    let store = Arc::new(haven_db::PgVaultStore::new(pool.clone()));
    let short = VaultService::new(
        store.clone(),
        Arc::new(haven_db::PgAuditLog::new(pool.clone())),
        VaultConfig {
            request_ttl: chrono::Duration::milliseconds(200),
            ..VaultConfig::default()
        },
    );
    let admin = Caller::new("admin");
    let policy = Policy::new(1).cover(OperationKind::MasterKeyRotation, Amount(0));
    let vault = short.create_vault("expiry", policy, &admin).await.unwrap();
    let invitation = short.invite(vault.id, &admin).await.unwrap();
    let device = SigningKey::from_bytes(&[3; 32]);
    short
        .join(vault.id, &invitation.code, device.verifying_key(), &admin)
        .await
        .unwrap();
    let operation = Operation::new(OperationKind::MasterKeyRotation);
    let overdue = short
        .create_request(vault.id, operation, &admin)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    let job = haven_worker::jobs::scheduled::VaultExpiryJob::new(pool.clone());
    job.step().await.unwrap();
    job.step().await.unwrap();
    assert_eq!(
        short.request(overdue.id).await.unwrap().state,
        RequestState::Expired
    );
    let expired: Vec<_> = haven_db::PgAuditLog::new(pool)
        .page(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == "vault.request.expired")
        .collect();
    assert_eq!(expired.len(), 1, "expired once");
}

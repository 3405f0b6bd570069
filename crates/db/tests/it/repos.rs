use haven_db::{ApiKeyRepo, ErrorLogRepo, NewApiKey, NewErrorLog, NewUser, Role, UserRepo};
use haven_testkit::TestDb;

#[tokio::test(flavor = "multi_thread")]
async fn users_and_api_keys() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    let users = UserRepo::new(pool.clone());
    let alice = users
        .create(NewUser {
            email: "Alice@Example.com".into(),
            password_hash: None,
            role: Role::Operator,
        })
        .await
        .unwrap();
    let found = users
        .find_by_email("alice@example.COM")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, alice.id);
    let dup = users
        .create(NewUser {
            email: "alice@example.com".into(),
            password_hash: None,
            role: Role::Viewer,
        })
        .await
        .unwrap_err();
    assert!(matches!(dup, haven_db::Error::Conflict { .. }), "{dup:?}");
    assert!(users.set_role(alice.id, Role::Admin).await.unwrap());
    assert_eq!(
        users.get(alice.id).await.unwrap().unwrap().role,
        Role::Admin
    );

    let keys = ApiKeyRepo::new(pool.clone());
    let hash = [7u8; 32];
    let key = keys
        .insert(NewApiKey {
            name: "ci".into(),
            owner_id: alice.id,
            key_hash: hash,
            display_prefix: "hvn_test_ab".into(),
            scopes: vec!["tokens:mint".into()],
            expires_at: None,
            member_id: None,
        })
        .await
        .unwrap();
    assert_eq!(keys.find_by_hash(&hash).await.unwrap().unwrap().id, key.id);
    assert!(keys.revoke(key.id).await.unwrap());
    assert!(
        !keys.revoke(key.id).await.unwrap(),
        "revoking twice reports false"
    );
    assert!(
        keys.find_by_hash(&hash)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert_eq!(keys.list_by_owner(alice.id).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn error_logs_are_redacted() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    let repo = ErrorLogRepo::new(pool);
    let id = uuid::Uuid::new_v4();
    repo.insert(NewErrorLog {
        error_id: id,
        request_id: Some("r1".into()),
        code: "INTERNAL_ERROR".into(),
        status: 500,
        method: Some("POST".into()),
        path: Some("/x".into()),
        message: "connect postgres://u:secretpw@db failed".into(),
    })
    .await
    .unwrap();
    let (code, message) = repo.find(id).await.unwrap().unwrap();
    assert_eq!(code, "INTERNAL_ERROR");
    assert!(!message.contains("secretpw"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_database_is_unavailable() {
    let err = haven_db::connect("postgres://haven:haven@127.0.0.1:1/nope", 1)
        .await
        .unwrap_err();
    assert_eq!(err.code(), haven_core::ErrorCode::ServiceUnavailable);
}

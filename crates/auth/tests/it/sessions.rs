//! Sessions together with JWTs, and rotation races on a multi-threaded runtime.

use std::sync::Arc;

use chrono::Utc;
use haven_auth::conformance;
use haven_auth::{
    Jwt, JwtConfig, Keyring, MemorySessionStore, RevokeReason, Role, SessionError, SessionPolicy,
    SessionStore, SigningKey, TokenType,
};
use tokio::sync::Barrier;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_rotations_of_the_same_refresh_token_one_wins_and_the_family_is_revoked() {
    for _ in 0..50 {
        let store = Arc::new(MemorySessionStore::new());
        let policy = SessionPolicy::default();
        let user = Uuid::new_v4();
        let created = store
            .create(conformance::login(user, "a"), &policy, Utc::now())
            .await
            .expect("create");
        let family = created.session.family_id;
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                let jti = created.refresh_jti;
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.rotate(family, jti, &policy, Utc::now()).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task"));
        }
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert!(
            results.iter().any(|r| matches!(
                r,
                Err(SessionError::ReuseDetected { family_id, user_id })
                    if *family_id == family && *user_id == user
            )),
            "{results:?}"
        );
        let after = store
            .rotate(family, winners[0].refresh_jti, &policy, Utc::now())
            .await;
        assert!(
            matches!(
                after,
                Err(SessionError::FamilyRevoked {
                    reason: RevokeReason::ReuseDetected,
                    ..
                })
            ),
            "{after:?}"
        );
        assert!(
            store
                .list(user, &policy, Utc::now())
                .await
                .expect("list")
                .is_empty()
        );
    }
}

#[tokio::test]
async fn login_refresh_reuse_and_logout_end_to_end() {
    let jwt = Jwt::new(
        JwtConfig::new("haven", "haven-api"),
        Keyring::new(SigningKey::generate_ed25519("k1").expect("key")),
    );
    let store = MemorySessionStore::new();
    let policy = SessionPolicy::default();
    let user = Uuid::new_v4();
    let now = Utc::now();

    // Login.
    let created = store
        .create(conformance::login(user, "laptop"), &policy, now)
        .await
        .expect("create");
    let refresh1 = jwt
        .issue_refresh(
            user,
            Role::Operator,
            created.session.family_id,
            created.refresh_jti,
            now,
        )
        .expect("issue");
    let access = jwt.issue_access(user, Role::Operator, now).expect("issue");

    // Refresh: verify the JWT, then rotate its jti within its family.
    let claims = jwt
        .verify(refresh1.as_str(), TokenType::Refresh)
        .expect("refresh verifies");
    let family = claims.fam.expect("refresh tokens carry fam");
    let rotated = store
        .rotate(family, claims.jti, &policy, now)
        .await
        .expect("rotate");
    let refresh2 = jwt
        .issue_refresh(user, Role::Operator, family, rotated.refresh_jti, now)
        .expect("issue");

    // The old refresh token still verifies as a JWT, but the store detects the reuse.
    let stolen = jwt
        .verify(refresh1.as_str(), TokenType::Refresh)
        .expect("still a valid JWT");
    let reuse = store.rotate(family, stolen.jti, &policy, now).await;
    let error = reuse.expect_err("reuse is refused");
    assert!(
        matches!(error, SessionError::ReuseDetected { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("revoked"), "{error}");
    assert_eq!(error.code().status(), 401);
    let claims2 = jwt
        .verify(refresh2.as_str(), TokenType::Refresh)
        .expect("verifies");
    assert!(matches!(
        store.rotate(family, claims2.jti, &policy, now).await,
        Err(SessionError::FamilyRevoked { .. })
    ));

    // Logout: the access token is denied until its expiry.
    let access_claims = jwt
        .verify(access.as_str(), TokenType::Access)
        .expect("verifies");
    store
        .check_access_token(user, access_claims.jti, access_claims.iat, now)
        .await
        .expect("not revoked yet");
    let exp = chrono::DateTime::from_timestamp(access_claims.exp, 0).expect("exp");
    store
        .deny_access_token(access_claims.jti, exp, now)
        .await
        .expect("deny");
    let denied = store
        .check_access_token(user, access_claims.jti, access_claims.iat, now)
        .await;
    assert!(matches!(denied, Err(SessionError::AccessTokenRevoked)));
}

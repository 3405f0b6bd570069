use chrono::Utc;
use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use haven_auth::conformance;
use haven_auth::{SessionError, SessionPolicy, SessionStore};
use haven_db::PgSessionStore;
use haven_testkit::TestDb;
use uuid::Uuid;

async fn store() -> (TestDb, haven_db::PgPool, PgSessionStore) {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 8).await.unwrap();
    let store = PgSessionStore::new(pool.clone());
    (db, pool, store)
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_session_store_passes_the_conformance_suite() {
    let (_db, _pool, store) = store().await;
    conformance::run_all(&store).await;
}

#[derive(diesel::QueryableByName)]
struct TokenState {
    #[diesel(sql_type = Text)]
    state: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_marks_the_spent_jti_rotated_and_reuse_revokes_the_family_row() {
    let (_db, pool, store) = store().await;
    let policy = SessionPolicy::default();
    let now = Utc::now();
    let created = store
        .create(conformance::login(Uuid::new_v4(), "laptop"), &policy, now)
        .await
        .unwrap();
    let family = created.session.family_id;
    let rotated = store
        .rotate(family, created.refresh_jti, &policy, now)
        .await
        .unwrap();

    let mut conn = pool.get().await.unwrap();
    let states: Vec<TokenState> =
        diesel::sql_query("SELECT state FROM auth_refresh_tokens WHERE jti = $1 OR jti = $2 ORDER BY issued_at, state DESC")
            .bind::<SqlUuid, _>(created.refresh_jti)
            .bind::<SqlUuid, _>(rotated.refresh_jti)
            .load(&mut conn)
            .await
            .unwrap();
    let mut states: Vec<String> = states.into_iter().map(|s| s.state).collect();
    states.sort();
    assert_eq!(states, vec!["current", "rotated"]);

    let err = store
        .rotate(family, created.refresh_jti, &policy, now)
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::ReuseDetected { family_id, .. } if family_id == family));
    let reason: Vec<TokenState> =
        diesel::sql_query("SELECT revoke_reason AS state FROM auth_sessions WHERE family_id = $1")
            .bind::<SqlUuid, _>(family)
            .load(&mut conn)
            .await
            .unwrap();
    assert_eq!(reason[0].state, "reuse_detected");
    // The family's current token no longer works either.
    let err = store
        .rotate(family, rotated.refresh_jti, &policy, now)
        .await
        .unwrap_err();
    assert!(matches!(err, SessionError::FamilyRevoked { .. }), "{err:?}");
}

//! `CachedSessionStore`: the same answers as the store behind it, fewer round trips, and
//! revocations applied at once here and on the replicas its feed reaches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use haven_auth::conformance;
use haven_auth::session::{CachedSessionStore, Revocation, RevocationFeed};
use haven_auth::{
    Created, MemorySessionStore, NewSession, Rotated, Session, SessionError, SessionPolicy,
    SessionStore,
};
use uuid::Uuid;

/// A store that counts the access-token checks that reach it.
#[derive(Default)]
struct Counting {
    inner: MemorySessionStore,
    checks: AtomicUsize,
}

#[async_trait]
impl SessionStore for Counting {
    async fn create(
        &self,
        new: NewSession,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Created, SessionError> {
        self.inner.create(new, policy, now).await
    }
    async fn rotate(
        &self,
        family: Uuid,
        jti: Uuid,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Rotated, SessionError> {
        self.inner.rotate(family, jti, policy, now).await
    }
    async fn list(
        &self,
        user: Uuid,
        policy: &SessionPolicy,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, SessionError> {
        self.inner.list(user, policy, now).await
    }
    async fn revoke(
        &self,
        user: Uuid,
        family: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        self.inner.revoke(user, family, now).await
    }
    async fn revoke_all(&self, user: Uuid, now: DateTime<Utc>) -> Result<(), SessionError> {
        self.inner.revoke_all(user, now).await
    }
    async fn not_before(&self, user: Uuid) -> Result<Option<DateTime<Utc>>, SessionError> {
        self.inner.not_before(user).await
    }
    async fn deny_access_token(
        &self,
        jti: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        self.inner.deny_access_token(jti, expires_at, now).await
    }
    async fn check_access_token(
        &self,
        user: Uuid,
        jti: Uuid,
        iat: i64,
        now: DateTime<Utc>,
    ) -> Result<(), SessionError> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        self.inner.check_access_token(user, jti, iat, now).await
    }
}

/// A feed that keeps what it was given.
#[derive(Default)]
struct Recorded(Mutex<Vec<Revocation>>);

#[async_trait]
impl RevocationFeed for Recorded {
    async fn publish(&self, revocation: &Revocation) {
        self.0.lock().unwrap().push(revocation.clone());
    }
}

fn cached(inner: Arc<Counting>, ttl: Duration) -> CachedSessionStore {
    CachedSessionStore::new(inner, ttl, Duration::from_secs(900), 1000)
}

fn revoked(r: Result<(), SessionError>) -> bool {
    matches!(r, Err(SessionError::AccessTokenRevoked))
}

#[tokio::test]
async fn the_cached_store_passes_the_conformance_suite() {
    let store = cached(Arc::new(Counting::default()), Duration::from_secs(60));
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn an_allowed_token_is_checked_once_per_ttl() {
    let inner = Arc::new(Counting::default());
    let store = cached(inner.clone(), Duration::from_millis(200));
    let (user, jti, iat) = (Uuid::new_v4(), Uuid::new_v4(), Utc::now().timestamp());
    for _ in 0..100 {
        store
            .check_access_token(user, jti, iat, Utc::now())
            .await
            .unwrap();
    }
    assert_eq!(inner.checks.load(Ordering::SeqCst), 1);
    // another user presenting the same jti is not answered from memory
    store
        .check_access_token(Uuid::new_v4(), jti, iat, Utc::now())
        .await
        .unwrap();
    assert_eq!(inner.checks.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(250)).await;
    store
        .check_access_token(user, jti, iat, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        inner.checks.load(Ordering::SeqCst),
        3,
        "asked again after ttl"
    );
}

#[tokio::test]
async fn revocations_through_the_cache_apply_at_once_and_are_published() {
    let inner = Arc::new(Counting::default());
    let store = cached(inner.clone(), Duration::from_secs(60));
    let feed = Arc::new(Recorded::default());
    store.set_feed(feed.clone());
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    store.on_revocation(Box::new(move |r| sink.lock().unwrap().push(r.clone())));
    let now = Utc::now();
    let (user, jti, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let iat = now.timestamp() - 1;
    store.check_access_token(user, jti, iat, now).await.unwrap();
    store
        .check_access_token(user, other, iat, now)
        .await
        .unwrap();

    let expires = now + chrono::Duration::minutes(15);
    store.deny_access_token(jti, expires, now).await.unwrap();
    assert!(revoked(store.check_access_token(user, jti, iat, now).await));
    assert!(
        store
            .check_access_token(user, other, iat, now)
            .await
            .is_ok()
    );

    store.revoke_all(user, now).await.unwrap();
    assert!(revoked(
        store.check_access_token(user, other, iat, now).await
    ));
    // a token issued after the not-before's second passes
    assert!(
        store
            .check_access_token(user, Uuid::new_v4(), now.timestamp() + 1, now)
            .await
            .is_ok()
    );
    let expected = vec![
        Revocation::Token {
            jti,
            expires_at: expires,
        },
        Revocation::User {
            user_id: user,
            not_before: now,
        },
    ];
    assert_eq!(*feed.0.lock().unwrap(), expected);
    assert_eq!(*heard.lock().unwrap(), expected, "listeners hear them too");
}

#[tokio::test]
async fn a_revocation_from_another_replica_overrides_a_cached_answer() {
    // replica B allowed the token and remembers it; replica A revokes it in the shared store
    let shared = Arc::new(Counting::default());
    let b = cached(shared.clone(), Duration::from_secs(600));
    let now = Utc::now();
    let (user, jti) = (Uuid::new_v4(), Uuid::new_v4());
    b.check_access_token(user, jti, now.timestamp(), now)
        .await
        .unwrap();
    shared
        .deny_access_token(jti, now + chrono::Duration::minutes(5), now)
        .await
        .unwrap();
    assert!(
        b.check_access_token(user, jti, now.timestamp(), now)
            .await
            .is_ok(),
        "B answers from memory until told"
    );
    let wire = serde_json::to_string(&Revocation::Token {
        jti,
        expires_at: now + chrono::Duration::minutes(5),
    })
    .unwrap();
    assert!(wire.contains(r#""kind":"token""#), "{wire}");
    b.apply(&serde_json::from_str(&wire).unwrap());
    assert!(revoked(
        b.check_access_token(user, jti, now.timestamp(), now).await
    ));
}

#[tokio::test]
async fn a_revocation_the_feed_lost_holds_after_the_ttl() {
    let shared = Arc::new(Counting::default());
    let b = cached(shared.clone(), Duration::from_millis(100));
    let now = Utc::now();
    let user = Uuid::new_v4();
    let jti = Uuid::new_v4();
    b.check_access_token(user, jti, now.timestamp() - 5, now)
        .await
        .unwrap();
    shared.revoke_all(user, now).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(revoked(
        b.check_access_token(user, jti, now.timestamp() - 5, Utc::now())
            .await
    ));
}

#[tokio::test]
async fn memory_stays_within_the_capacity_whatever_the_number_of_tokens() {
    let inner = Arc::new(Counting::default());
    let store = CachedSessionStore::new(
        inner,
        Duration::from_secs(600),
        Duration::from_secs(900),
        64,
    );
    let user = Uuid::new_v4();
    for _ in 0..1000 {
        store
            .check_access_token(user, Uuid::new_v4(), Utc::now().timestamp(), Utc::now())
            .await
            .unwrap();
        assert!(store.remembered() <= 64);
    }
}

//! Behaviour every [`ReplayStore`] and [`IdempotencyStore`] must show, run against each
//! implementation (memory and Redis here, Postgres in `haven-db`).
//!
//! Each suite panics with a description on the first violation. `unique` must differ per
//! run so suites can share a backend (e.g. a random prefix or UUID).

use std::sync::Arc;
use std::time::Duration;

use crate::fingerprint::Fingerprint;
use crate::idempotency::{
    Claim, IdempotencyKey, IdempotencyStore, LockToken, Scope, ScopedKey, StoredResponse,
};
use crate::replay::{ReplayOutcome, ReplayStore};

const TTL: Duration = Duration::from_secs(600);

/// First / duplicate / conflict, per-source scoping, and exactly one winner among
/// concurrent records of one id.
pub async fn replay_store(store: Arc<dyn ReplayStore>, unique: &str) {
    let a = Fingerprint::of(b"body a");
    let b = Fingerprint::of(b"body b");
    let id = format!("msg_{unique}");
    let record = |source: &'static str, fp: Fingerprint| {
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .record(source, &id, &fp, TTL)
                .await
                .unwrap_or_else(|e| panic!("record failed: {e}"))
        }
    };
    assert_eq!(
        record("src", a).await,
        ReplayOutcome::First,
        "first sighting"
    );
    assert_eq!(
        record("src", a).await,
        ReplayOutcome::Duplicate,
        "same body again"
    );
    assert_eq!(
        record("src", b).await,
        ReplayOutcome::Conflict,
        "other body, same id"
    );
    assert_eq!(
        record("src", a).await,
        ReplayOutcome::Duplicate,
        "conflict must not overwrite"
    );
    assert_eq!(
        record("other", b).await,
        ReplayOutcome::First,
        "sources are separate"
    );

    let race_id = format!("race_{unique}");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        let race_id = race_id.clone();
        tasks.push(tokio::spawn(async move {
            store.record("src", &race_id, &a, TTL).await
        }));
    }
    let mut firsts = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(ReplayOutcome::First)) => firsts += 1,
            Ok(Ok(ReplayOutcome::Duplicate)) => {}
            other => panic!("unexpected concurrent record result: {other:?}"),
        }
    }
    assert_eq!(firsts, 1, "exactly one concurrent record wins");
}

fn scoped(unique: &str, name: &str) -> ScopedKey {
    let key =
        IdempotencyKey::parse(&format!("{name}-{unique}").replace(':', "_")).unwrap_or_else(|e| {
            panic!("conformance key invalid ({e}); use a short [A-Za-z0-9_-] unique")
        });
    ScopedKey {
        scope: Scope::new("principal", "POST", "/conformance"),
        key,
    }
}

/// Claim, in-flight, mismatch, completion, replay, release, token ownership and exactly
/// one winner among 100 concurrent claims.
pub async fn idempotency_store(store: Arc<dyn IdempotencyStore>, unique: &str) {
    let fp = Fingerprint::of(b"{\"amount\":1}");
    let other_fp = Fingerprint::of(b"{\"amount\":2}");
    let lock = Duration::from_secs(90);
    let keep = Duration::from_secs(3600);
    let fail = |what: &str, e: crate::StoreError| -> ! { panic!("{what} failed: {e}") };

    let key = scoped(unique, "basic");
    let owner = LockToken::random();
    let intruder = LockToken::random();
    let claim = |token: LockToken, fp: Fingerprint| {
        let store = store.clone();
        let key = key.clone();
        async move {
            store
                .claim(&key, &fp, &token, lock)
                .await
                .unwrap_or_else(|e| fail("claim", e))
        }
    };
    assert_eq!(claim(owner.clone(), fp).await, Claim::Acquired, "free key");
    assert_eq!(
        claim(intruder.clone(), fp).await,
        Claim::InFlight,
        "held key"
    );
    assert_eq!(
        claim(intruder.clone(), other_fp).await,
        Claim::Mismatch,
        "other body"
    );

    let response = StoredResponse {
        status: 201,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: b"{\"id\":\"tx_1\",\"bytes\":\"\x00\xff\"}".to_vec(),
    };
    let done = store
        .complete(&key, &intruder, &response, keep)
        .await
        .unwrap_or_else(|e| fail("complete", e));
    assert!(!done, "only the holder completes");
    let released = store
        .release(&key, &intruder)
        .await
        .unwrap_or_else(|e| fail("release", e));
    assert!(!released, "only the holder releases");
    let done = store
        .complete(&key, &owner, &response, keep)
        .await
        .unwrap_or_else(|e| fail("complete", e));
    assert!(done, "the holder completes");
    assert_eq!(
        claim(intruder.clone(), fp).await,
        Claim::Completed(response.clone()),
        "completed key replays byte for byte"
    );
    assert_eq!(
        claim(intruder.clone(), other_fp).await,
        Claim::Mismatch,
        "still bound to body"
    );
    let released = store
        .release(&key, &owner)
        .await
        .unwrap_or_else(|e| fail("release", e));
    assert!(!released, "a completed key is not released");

    let key2 = scoped(unique, "release");
    let t1 = LockToken::random();
    let t2 = LockToken::random();
    assert_eq!(
        store
            .claim(&key2, &fp, &t1, lock)
            .await
            .unwrap_or_else(|e| fail("claim", e)),
        Claim::Acquired
    );
    assert!(
        store
            .release(&key2, &t1)
            .await
            .unwrap_or_else(|e| fail("release", e))
    );
    assert_eq!(
        store
            .claim(&key2, &other_fp, &t2, lock)
            .await
            .unwrap_or_else(|e| fail("claim", e)),
        Claim::Acquired,
        "a released key is free, whatever the body"
    );

    let mut other_scope = scoped(unique, "basic");
    other_scope.scope.principal = "someone-else".into();
    assert_eq!(
        store
            .claim(&other_scope, &other_fp, &t2, lock)
            .await
            .unwrap_or_else(|e| fail("claim", e)),
        Claim::Acquired,
        "scopes are separate"
    );

    let race = scoped(unique, "race");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let store = store.clone();
        let race = race.clone();
        tasks.push(tokio::spawn(async move {
            store.claim(&race, &fp, &LockToken::random(), lock).await
        }));
    }
    let mut acquired = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(Claim::Acquired)) => acquired += 1,
            Ok(Ok(Claim::InFlight)) => {}
            other => panic!("unexpected concurrent claim result: {other:?}"),
        }
    }
    assert_eq!(acquired, 1, "exactly one of 100 concurrent claims acquires");
}

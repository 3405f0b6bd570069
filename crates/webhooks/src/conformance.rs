//! Behaviour every [`ReplayStore`] and [`IdempotencyStore`] must show, run against each
//! implementation (memory and Redis here, Postgres in `haven-db`).
//!
//! Each suite panics with a description on the first violation. `unique` must differ per
//! run so suites can share a backend (e.g. a random prefix or UUID).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::HeaderValue;

use crate::error::IdempotencyError;
use crate::fingerprint::Fingerprint;
use crate::idempotency::{
    Begin, Claim, Disposition, Idempotency, IdempotencyConfig, IdempotencyKey, IdempotencyStore,
    LockToken, Requirement, Scope, ScopedKey, StoredResponse,
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

/// What one request of [`one_key_under_concurrency`] got.
#[derive(Debug, PartialEq)]
enum Answer {
    Ran,
    InUse,
    Replayed(Vec<u8>),
}

/// The response the scenario's handler gives and every replay must repeat byte for byte.
const RESPONSE: &[u8] = br#"{"tx":"0xabc","amount":"10"}"#;

/// One `POST /token/redeem` with idempotency key `key` and `body` through `idem`; the
/// handler counts itself in `runs` and stays in flight for a while.
async fn redeem(
    idem: &Idempotency<Arc<dyn IdempotencyStore>>,
    key: &str,
    runs: &AtomicUsize,
    body: &[u8],
) -> Result<Answer, IdempotencyError> {
    let key = IdempotencyKey::parse(key).unwrap_or_else(|e| panic!("key {key:?}: {e:?}"));
    let scope = Scope::new("user-1", "POST", "/token/redeem");
    match idem
        .begin(scope, Some(key), body, Requirement::Required)
        .await?
    {
        Begin::Proceed(ticket) => {
            runs.fetch_add(1, Ordering::SeqCst);
            // Let the other requests arrive while this one is in flight.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut headers = http::HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            headers.insert("x-not-stored", HeaderValue::from_static("1"));
            let disposition = idem.finish(ticket, 201, &headers, RESPONSE).await?;
            assert_eq!(disposition, Disposition::Store, "a 201 is stored");
            Ok(Answer::Ran)
        }
        Begin::Replay(stored) => {
            let http = stored.to_http();
            assert_eq!(http.status(), 201);
            assert_eq!(http.headers()["idempotent-replayed"], "true");
            assert_eq!(http.headers()["content-type"], "application/json");
            assert!(
                http.headers().get("x-not-stored").is_none(),
                "only chosen headers are stored"
            );
            Ok(Answer::Replayed(http.into_body()))
        }
        Begin::NoKey => panic!("a key was given"),
    }
}

/// Idempotency acceptance A3 on `store`: 100 concurrent requests with key `key` (unique per
/// run) run the handler exactly once, the others get 409 or the byte-identical replay;
/// afterwards the key replays, and the same key with another body is refused with 422.
pub async fn one_key_under_concurrency(store: Arc<dyn IdempotencyStore>, key: &str) {
    let idem = Arc::new(Idempotency::new(store, IdempotencyConfig::default()));
    let runs = Arc::new(AtomicUsize::new(0));
    let body: &'static [u8] = br#"{"amount":"10","to":"0x1"}"#;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (idem, runs, key) = (idem.clone(), runs.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            match redeem(&idem, &key, &runs, body).await {
                Err(IdempotencyError::InUse) => Answer::InUse,
                other => other.unwrap_or_else(|e| panic!("concurrent request: {e:?}")),
            }
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap_or_else(|e| panic!("request task: {e}")));
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the handler runs exactly once"
    );
    assert_eq!(answers.iter().filter(|a| **a == Answer::Ran).count(), 1);
    for answer in &answers {
        match answer {
            Answer::Ran | Answer::InUse => {}
            Answer::Replayed(bytes) => assert_eq!(bytes, RESPONSE, "replays are byte-identical"),
        }
    }

    let again = redeem(&idem, key, &runs, body).await;
    assert_eq!(again.ok(), Some(Answer::Replayed(RESPONSE.to_vec())));
    let reused = redeem(&idem, key, &runs, br#"{"amount":"11","to":"0x1"}"#).await;
    let Err(err) = reused else {
        panic!("the same key with another body was accepted: {reused:?}")
    };
    assert!(matches!(err, IdempotencyError::Reused), "{err:?}");
    assert_eq!(err.code().as_str(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(err.code().status(), 422);
    assert_eq!(IdempotencyError::InUse.code().status(), 409);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "neither ran the handler");
}

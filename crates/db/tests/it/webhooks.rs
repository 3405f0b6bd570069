//! The Postgres webhook stores: the haven-webhooks conformance suites, A3 with Redis stopped
//! (`FallbackStore(Redis → Postgres)`), and the outbound outbox (transactional enqueue,
//! disjoint claims, leases, the attempt schedule, dead letters and replay, endpoint
//! disabling, secret rotation).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use haven_core::audit::{AuditEvent, Severity};
use haven_db::{
    AttemptOutcome, ClaimedWebhook, PgAuditLog, PgIdempotencyStore, PgPool, PgReplayStore,
    PgWebhookOutbox, RecordedAttempt,
};
use haven_testkit::{RedisServer, TestDb};
use haven_webhooks::conformance;
use haven_webhooks::{
    Claim, Decision, FallbackStore, Fingerprint, HealthVerdict, IdempotencyKey, IdempotencyStore,
    LockToken, RedisIdempotencyStore, RedisReplayStore, ReplayOutcome, ReplayStore, RetryPolicy,
    Scope, ScopedKey, StoredResponse,
};

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

async fn pool(db: &TestDb, size: usize) -> PgPool {
    haven_db::connect(db.url(), size).await.unwrap()
}

fn redis_pool(url: &str) -> deadpool_redis::Pool {
    deadpool_redis::Config::from_url(url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
}

async fn sql(db: &TestDb, statement: &str) -> usize {
    use diesel_async::RunQueryDsl as _;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query(statement)
        .execute(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_stores_pass_the_conformance_suites() {
    let db = TestDb::new().await;
    let pool = pool(&db, 16).await;
    conformance::replay_store(Arc::new(PgReplayStore::new(pool.clone())), &unique()).await;
    conformance::idempotency_store(Arc::new(PgIdempotencyStore::new(pool)), &unique()).await;
}

fn scoped(name: &str) -> ScopedKey {
    ScopedKey {
        scope: Scope::new("user-1", "POST", "/token/redeem"),
        key: IdempotencyKey::parse(name).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_locks_lapse_and_a_late_holder_cannot_overwrite_its_successor() {
    let db = TestDb::new().await;
    let store = PgIdempotencyStore::new(pool(&db, 4).await);
    let key = scoped("crashed-request");
    let fp = Fingerprint::of(b"{}");
    let crashed = LockToken::random();
    let short = Duration::from_millis(1500);
    assert_eq!(
        store.claim(&key, &fp, &crashed, short).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store
            .claim(&key, &fp, &LockToken::random(), short)
            .await
            .unwrap(),
        Claim::InFlight
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let retry = LockToken::random();
    assert_eq!(
        store
            .claim(
                &key,
                &Fingerprint::of(b"other"),
                &retry,
                Duration::from_secs(90)
            )
            .await
            .unwrap(),
        Claim::Acquired,
        "a lapsed lock frees the key, whatever the body"
    );
    let response = StoredResponse {
        status: 201,
        headers: vec![
            ("content-type".into(), b"application/json".to_vec()),
            ("location".into(), b"/tx/\xff1".to_vec()),
        ],
        body: b"late".to_vec(),
    };
    let keep = Duration::from_millis(1500);
    assert!(
        !store
            .complete(&key, &crashed, &response, keep)
            .await
            .unwrap()
    );
    assert!(!store.release(&key, &crashed).await.unwrap());
    assert!(store.complete(&key, &retry, &response, keep).await.unwrap());
    assert_eq!(
        store
            .claim(&key, &Fingerprint::of(b"other"), &crashed, short)
            .await
            .unwrap(),
        Claim::Completed(response),
        "headers and body come back byte for byte"
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        store.claim(&key, &fp, &crashed, short).await.unwrap(),
        Claim::Acquired,
        "retention ended"
    );
    let purged = store.purge_expired().await.unwrap();
    assert_eq!(purged, 0, "the live claim stays");
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_replay_records_expire_after_their_ttl() {
    let db = TestDb::new().await;
    let store = PgReplayStore::new(pool(&db, 4).await);
    let fp = Fingerprint::of(b"x");
    let ttl = Duration::from_millis(1500);
    assert_eq!(
        store.record("s", "m", &fp, ttl).await.unwrap(),
        ReplayOutcome::First
    );
    assert_eq!(
        store
            .record("s", "m", &Fingerprint::of(b"y"), ttl)
            .await
            .unwrap(),
        ReplayOutcome::Conflict
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(
        store.record("s", "m", &fp, ttl).await.unwrap(),
        ReplayOutcome::First
    );
}

/// A3: with Redis stopped, `FallbackStore(Redis → Postgres)` still runs the handler exactly
/// once for 100 concurrent requests with one key; the rest get 409 or the byte-identical
/// replay; another body is refused as a reused key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a3_with_redis_stopped_the_postgres_fallback_runs_the_handler_exactly_once() {
    let db = TestDb::new().await;
    let pg = pool(&db, 16).await;
    let mut redis = RedisServer::spawn();
    let store: Arc<dyn IdempotencyStore> = Arc::new(FallbackStore::new(
        RedisIdempotencyStore::new(redis_pool(&redis.url()), "a3:"),
        PgIdempotencyStore::new(pg.clone()),
    ));

    // Healthy: the claim goes to Redis, Postgres stays empty.
    let probe = scoped("healthy-probe");
    assert_eq!(
        store
            .claim(
                &probe,
                &Fingerprint::of(b""),
                &LockToken::random(),
                Duration::from_secs(5)
            )
            .await
            .unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        sql(&db, "SELECT 1 FROM idempotency_keys").await,
        0,
        "Redis took it"
    );

    redis.stop();
    conformance::one_key_under_concurrency(store, "redeem-0001").await;
    assert_eq!(
        sql(
            &db,
            "SELECT 1 FROM idempotency_keys WHERE key = 'redeem-0001' AND state = 'completed'"
        )
        .await,
        1,
        "the fallback stored the result in Postgres"
    );

    // Replay protection falls back the same way.
    let replay: Arc<dyn ReplayStore> = Arc::new(FallbackStore::new(
        RedisReplayStore::new(redis_pool(&redis.url()), "a3:"),
        PgReplayStore::new(pg),
    ));
    conformance::replay_store(replay, &unique()).await;
}

fn fast_policy(waits: usize) -> RetryPolicy {
    RetryPolicy {
        delays: vec![Duration::ZERO; waits],
        jitter: 0.0,
        retry_after_min: Duration::ZERO,
        retry_after_max: Duration::from_secs(3600),
    }
}

const DISABLE_AFTER: Duration = haven_webhooks::DISABLE_AFTER;
const LEASE: Duration = Duration::from_secs(60);

fn failed(error: &str) -> AttemptOutcome {
    AttemptOutcome::NoAnswer {
        error: error.into(),
    }
}

fn answered(status: u16) -> AttemptOutcome {
    AttemptOutcome::Answered {
        status,
        retry_after: None,
    }
}

/// An answer with `status` that asks for the next attempt in `secs` seconds.
fn answered_with_retry_after(status: u16, secs: u64) -> AttemptOutcome {
    AttemptOutcome::Answered {
        status,
        retry_after: Some(Duration::from_secs(secs)),
    }
}

/// A fresh database and an outbox over a pool of `size` connections.
async fn fresh_outbox(size: usize) -> (TestDb, PgWebhookOutbox) {
    let db = TestDb::new().await;
    let outbox = PgWebhookOutbox::new(pool(&db, size).await);
    (db, outbox)
}

/// Creates an endpoint at `https://hooks.example/` with no description; returns its id.
async fn plain_endpoint(outbox: &PgWebhookOutbox) -> uuid::Uuid {
    outbox
        .create_endpoint("https://hooks.example/", "")
        .await
        .unwrap()
        .endpoint
        .id
}

/// Queues an `e` event with an empty payload for `endpoint`; returns its message id.
async fn enqueue_empty(outbox: &PgWebhookOutbox, endpoint: uuid::Uuid) -> String {
    outbox
        .enqueue(endpoint, "e", &serde_json::json!({}))
        .await
        .unwrap()
}

/// Claims the one next due attempt under the standard lease; panics when none is due.
async fn claim_next(outbox: &PgWebhookOutbox) -> ClaimedWebhook {
    outbox.claim_due(1, LEASE).await.unwrap().pop().unwrap()
}

/// Records `outcome` for a claim that still holds its lease; panics when it no longer does.
async fn record(
    outbox: &PgWebhookOutbox,
    claim: &ClaimedWebhook,
    outcome: &AttemptOutcome,
    policy: &RetryPolicy,
) -> RecordedAttempt {
    outbox
        .record_attempt(claim, outcome, policy, DISABLE_AFTER)
        .await
        .unwrap()
        .unwrap()
}

/// Skips the waits: every pending attempt becomes due now.
async fn make_pending_due(db: &TestDb) {
    sql(
        db,
        "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending'",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_is_queued_exactly_when_its_business_transaction_commits() {
    let (db, outbox) = fresh_outbox(4).await;
    let endpoint = outbox
        .create_endpoint("https://hooks.example/haven", "partner")
        .await
        .unwrap();
    assert!(endpoint.secret.starts_with("whsec_"));
    assert!(
        !format!("{endpoint:?}").contains(&endpoint.secret),
        "Debug leaves the secret out"
    );
    let id = endpoint.endpoint.id;
    let payload = serde_json::json!({"type": "token.redeemed", "amount": "10"});
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();

    let rolled_back: Result<(), diesel::result::Error> = conn
        .transaction(async |c| {
            PgAuditLog::append_in(c, AuditEvent::new("u", "token.redeem", Severity::Info))
                .await
                .unwrap();
            PgWebhookOutbox::enqueue_in(c, id, "token.redeemed", &payload)
                .await
                .unwrap();
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(rolled_back.is_err());
    assert!(outbox.claim_due(10, LEASE).await.unwrap().is_empty());

    let message = conn
        .transaction::<_, diesel::result::Error, _>(async |c| {
            PgAuditLog::append_in(c, AuditEvent::new("u", "token.redeem", Severity::Info))
                .await
                .unwrap();
            Ok(
                PgWebhookOutbox::enqueue_in(c, id, "token.redeemed", &payload)
                    .await
                    .unwrap(),
            )
        })
        .await
        .unwrap();
    assert!(message.starts_with("msg_"));
    let claimed = outbox.claim_due(10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(
        (c.message_id.as_str(), c.attempt, c.endpoint_id),
        (message.as_str(), 1, id)
    );
    assert_eq!(c.url, "https://hooks.example/haven");
    assert_eq!(c.event_type, "token.redeemed");
    assert_eq!(c.payload, serde_json::to_vec(&payload).unwrap());
    assert_eq!(c.secrets.len(), 1);
    assert!(
        outbox.claim_due(10, LEASE).await.unwrap().is_empty(),
        "a leased attempt is not claimed twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_take_disjoint_attempts() {
    let (_db, outbox) = fresh_outbox(8).await;
    let id = plain_endpoint(&outbox).await;
    for n in 0..40 {
        outbox
            .enqueue(id, "n", &serde_json::json!({ "n": n }))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let outbox = outbox.clone();
        tasks.push(tokio::spawn(async move {
            outbox.claim_due(15, LEASE).await.unwrap()
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for task in tasks {
        for claim in task.await.unwrap() {
            assert!(seen.insert(claim.message_id.clone()), "claimed twice");
        }
    }
    assert_eq!(seen.len(), 40);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_follows_the_policy_and_honours_retry_after_within_bounds() {
    let (db, outbox) = fresh_outbox(4).await;
    let id = plain_endpoint(&outbox).await;
    let message = enqueue_empty(&outbox, id).await;
    let policy = RetryPolicy::default();
    let wait_after = |attempts: &[haven_db::WebhookAttempt]| {
        let last = attempts.last().unwrap();
        let previous = &attempts[attempts.len() - 2];
        assert_eq!(last.status, "pending");
        (last.next_attempt_at - previous.attempted_at.unwrap()).num_milliseconds()
    };

    // Attempt 1 gets no answer: attempt 2 in 5 s ± 20 %.
    let claim = claim_next(&outbox).await;
    let recorded = record(&outbox, &claim, &failed("connection failed"), &policy).await;
    assert!(matches!(
        recorded.decision,
        Decision::RetryAt { attempt_no: 2, .. }
    ));
    let attempts = outbox.attempts(&message).await.unwrap();
    assert_eq!(attempts[0].status, "failed");
    assert_eq!(attempts[0].error.as_deref(), Some("connection failed"));
    let wait = wait_after(&attempts);
    assert!((4_000..=6_000).contains(&wait), "{wait} ms");
    assert!(
        outbox.claim_due(1, LEASE).await.unwrap().is_empty(),
        "not due yet"
    );

    // 429 with Retry-After: 120 replaces the 5 min step; a huge one is cut to 10 h.
    for (asked, expected) in [(120, 120_000), (u64::MAX / 4, 36_000_000)] {
        make_pending_due(&db).await;
        let claim = claim_next(&outbox).await;
        record(
            &outbox,
            &claim,
            &answered_with_retry_after(429, asked),
            &policy,
        )
        .await;
        let attempts = outbox.attempts(&message).await.unwrap();
        assert_eq!(wait_after(&attempts), expected);
        assert_eq!(attempts[attempts.len() - 2].response_status, Some(429));
    }
    // A 500 ignores Retry-After: attempt 4 failed, attempt 5 after 2 h ± 20 %.
    make_pending_due(&db).await;
    let claim = claim_next(&outbox).await;
    assert_eq!(claim.attempt, 4);
    record(&outbox, &claim, &answered_with_retry_after(500, 1), &policy).await;
    let wait = wait_after(&outbox.attempts(&message).await.unwrap());
    assert!((5_760_000..=8_640_000).contains(&wait), "{wait} ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_failed_attempt_dead_letters_and_an_operator_replays_it() {
    let (_db, outbox) = fresh_outbox(4).await;
    let id = plain_endpoint(&outbox).await;
    let message = outbox
        .enqueue(id, "e", &serde_json::json!({"k": 1}))
        .await
        .unwrap();
    // The default schedule's shape (8 attempts) without its waits.
    let policy = fast_policy(7);
    for attempt in 1..=8u32 {
        let claim = outbox.claim_due(5, LEASE).await.unwrap().pop().unwrap();
        assert_eq!(claim.attempt, attempt);
        let recorded = record(&outbox, &claim, &answered(503), &policy).await;
        if attempt < 8 {
            assert!(matches!(recorded.decision, Decision::RetryAt { .. }));
        } else {
            assert_eq!(recorded.decision, Decision::DeadLetter);
        }
        assert!(matches!(recorded.health, HealthVerdict::Failing { .. }));
    }
    assert!(outbox.claim_due(5, LEASE).await.unwrap().is_empty());
    let statuses: Vec<String> = outbox
        .attempts(&message)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(statuses.len(), 8);
    assert!(statuses[..7].iter().all(|s| s == "failed"));
    assert_eq!(statuses[7], "dead");
    let dead = outbox.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].message_id.as_str(),
            dead[0].attempts,
            dead[0].last_status
        ),
        (message.as_str(), 8, Some(503))
    );

    assert!(outbox.replay_dead(&message).await.unwrap());
    assert!(
        !outbox.replay_dead(&message).await.unwrap(),
        "already queued again"
    );
    assert!(!outbox.replay_dead("msg_unknown").await.unwrap());
    assert!(outbox.dead_letters(10).await.unwrap().is_empty());
    let claim = outbox.claim_due(5, LEASE).await.unwrap().pop().unwrap();
    assert_eq!(claim.attempt, 9);
    let recorded = record(&outbox, &claim, &answered(204), &policy).await;
    assert_eq!(recorded.decision, Decision::Delivered);
    assert_eq!(recorded.health, HealthVerdict::Healthy);
    assert_eq!(
        outbox.endpoint(id).await.unwrap().unwrap().failing_since,
        None
    );
    assert!(
        outbox
            .record_attempt(&claim, &answered(204), &policy, DISABLE_AFTER)
            .await
            .unwrap()
            .is_none(),
        "an outcome is recorded once"
    );
    assert!(!outbox.replay_dead(&message).await.unwrap(), "delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lapsed_lease_passes_the_attempt_to_the_next_worker() {
    let (_db, outbox) = fresh_outbox(4).await;
    let id = plain_endpoint(&outbox).await;
    let message = enqueue_empty(&outbox, id).await;
    let stale = outbox
        .claim_due(1, Duration::from_millis(200))
        .await
        .unwrap()
        .pop()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = claim_next(&outbox).await;
    assert_eq!(fresh.message_id, stale.message_id);
    assert_eq!(fresh.attempt, 1, "the same attempt, claimed again");
    let policy = RetryPolicy::default();
    assert!(
        outbox
            .record_attempt(&stale, &answered(200), &policy, DISABLE_AFTER)
            .await
            .unwrap()
            .is_none(),
        "the stale holder records nothing"
    );
    assert_eq!(
        record(&outbox, &fresh, &answered(200), &policy)
            .await
            .decision,
        Decision::Delivered
    );
    let attempts = outbox.attempts(&message).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0].status.as_str(), attempts[0].claims),
        ("delivered", 2)
    );
}

/// Backdates every endpoint's failing streak to `since` (SQL), then times out the next attempt.
async fn time_out_failing_since(
    db: &TestDb,
    outbox: &PgWebhookOutbox,
    policy: &RetryPolicy,
    since: &str,
) -> RecordedAttempt {
    sql(
        db,
        &format!("UPDATE webhook_endpoints SET failing_since = {since}"),
    )
    .await;
    make_pending_due(db).await;
    let claim = claim_next(outbox).await;
    record(outbox, &claim, &failed("timeout"), policy).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_failing_for_five_days_is_disabled_until_enabled() {
    let (db, outbox) = fresh_outbox(4).await;
    let id = plain_endpoint(&outbox).await;
    let policy = RetryPolicy::default();
    enqueue_empty(&outbox, id).await;
    let claim = claim_next(&outbox).await;
    let recorded = record(&outbox, &claim, &answered(500), &policy).await;
    assert!(!recorded.disabled_endpoint);
    let since = outbox
        .endpoint(id)
        .await
        .unwrap()
        .unwrap()
        .failing_since
        .unwrap();
    assert!((Utc::now() - since).num_seconds().abs() < 60);

    // Almost five days later: still enabled. Five days: disabled.
    let recorded = time_out_failing_since(
        &db,
        &outbox,
        &policy,
        "now() - interval '5 days' + interval '1 minute'",
    )
    .await;
    assert!(!recorded.disabled_endpoint);
    let recorded = time_out_failing_since(&db, &outbox, &policy, "now() - interval '5 days'").await;
    assert!(recorded.disabled_endpoint);
    assert!(matches!(recorded.health, HealthVerdict::Disable { .. }));
    let endpoint = outbox.endpoint(id).await.unwrap().unwrap();
    assert!(!endpoint.enabled && endpoint.disabled_at.is_some());

    make_pending_due(&db).await;
    assert!(
        outbox.claim_due(5, LEASE).await.unwrap().is_empty(),
        "nothing is sent to a disabled endpoint"
    );
    assert!(outbox.enable_endpoint(id).await.unwrap());
    let endpoint = outbox.endpoint(id).await.unwrap().unwrap();
    assert!(endpoint.enabled && endpoint.failing_since.is_none());
    assert_eq!(outbox.claim_due(5, LEASE).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_signs_alongside_the_old_one_until_the_overlap_ends() {
    let (db, outbox) = fresh_outbox(4).await;
    let created = outbox
        .create_endpoint("https://hooks.example/", "")
        .await
        .unwrap();
    let id = created.endpoint.id;
    let new = outbox
        .rotate_secret(id, Duration::from_secs(3600))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(new, created.secret);
    assert!(
        outbox
            .rotate_secret(uuid::Uuid::new_v4(), Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );
    enqueue_empty(&outbox, id).await;
    let claim = claim_next(&outbox).await;
    assert_eq!(claim.secrets.len(), 2);
    assert_eq!(claim.secrets[0].expiry(), None, "the new secret first");
    assert!(claim.secrets[1].expiry().is_some());

    sql(
        &db,
        "UPDATE webhook_endpoint_secrets SET expires_at = now() WHERE expires_at IS NOT NULL",
    )
    .await;
    enqueue_empty(&outbox, id).await;
    let claim = claim_next(&outbox).await;
    assert_eq!(claim.secrets.len(), 1, "the expired secret no longer signs");
}

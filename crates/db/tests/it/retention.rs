//! Retention deletes only rows past their keeping time, in batches, and never the audit log.

use std::time::Duration;

use diesel_async::RunQueryDsl;
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_db::{PgAuditLog, PgJobRuns, RetentionPolicy, apply_retention};
use haven_testkit::TestDb;

async fn exec(pool: &haven_db::PgPool, sql: &str) {
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

async fn count(pool: &haven_db::PgPool, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = pool.get().await.unwrap();
    let n: N = diesel::sql_query(sql).get_result(&mut conn).await.unwrap();
    n.n
}

/// One old and one recent row of every kind retention looks at, plus rows it must keep
/// whatever their age.
async fn seed(pool: &haven_db::PgPool) {
    for (tag, age) in [("old", "100 days"), ("new", "1 day")] {
        // delivered alerts (and an old undelivered one, kept)
        exec(pool, &format!(
            "INSERT INTO transaction_monitoring (id, rule_id, event_type, severity, subject, description, \
             event_id, event_ts, created_at, delivered_at) VALUES (gen_random_uuid(), 'r', 'reward', 'low', \
             's', '{tag}', 'e-{tag}', now() - interval '{age}', now() - interval '{age}', now() - interval '{age}')"
        )).await;
        exec(
            pool,
            &format!(
                "INSERT INTO error_logs (error_id, code, status, message, created_at) \
             VALUES (gen_random_uuid(), 'internal', 500, '{tag}', now() - interval '{age}')"
            ),
        )
        .await;
        exec(pool, &format!(
            "INSERT INTO webhook_messages (id, endpoint_id, event_type, payload, created_at) \
             VALUES ('msg_{tag}', '00000000-0000-0000-0000-000000000001', 'reward.confirmed', '\\x00', now() - interval '{age}')"
        )).await;
        exec(pool, &format!(
            "INSERT INTO webhook_deliveries (message_id, attempt, status, next_attempt_at, attempted_at, created_at) \
             VALUES ('msg_{tag}', 1, 'delivered', now(), now() - interval '{age}', now() - interval '{age}')"
        )).await;
    }
    exec(pool,
        "INSERT INTO transaction_monitoring (id, rule_id, event_type, severity, subject, description, \
         event_id, event_ts, created_at) VALUES (gen_random_uuid(), 'r', 'reward', 'low', 's', \
         'undelivered', 'e-undelivered', now() - interval '200 days', now() - interval '200 days')",
    ).await;
    // an old message never delivered (dead): kept for the operator
    exec(pool,
        "INSERT INTO webhook_messages (id, endpoint_id, event_type, payload, created_at) \
         VALUES ('msg_dead', '00000000-0000-0000-0000-000000000001', 'reward.confirmed', '\\x00', now() - interval '200 days')",
    ).await;
    exec(pool,
        "INSERT INTO webhook_deliveries (message_id, attempt, status, next_attempt_at, attempted_at) \
         VALUES ('msg_dead', 1, 'dead', now(), now() - interval '200 days')",
    ).await;
    for (key, expires) in [
        ("expiredkey", "- interval '1 hour'"),
        ("livekey01", "+ interval '1 hour'"),
    ] {
        exec(pool, &format!(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, state, status, header_names, \
             header_values, body, expires_at) VALUES ('[\"u\",\"POST\",\"/x\"]', '{key}', \
             decode(repeat('00', 32), 'hex'), 'completed', 200, '{{}}', '{{}}', '\\x00', now() {expires})"
        )).await;
        exec(
            pool,
            &format!(
                "INSERT INTO webhook_replay (source, id, body_hash, expires_at) \
             VALUES ('aurora', '{key}', decode(repeat('00', 32), 'hex'), now() {expires})"
            ),
        )
        .await;
    }
}

/// A5: only rows past their retention go; the audit chain is untouched and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_only_expired_rows_and_keeps_the_audit_chain() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    exec(&pool,
        "INSERT INTO webhook_endpoints (id, url) VALUES ('00000000-0000-0000-0000-000000000001', 'https://example.com/hook')",
    ).await;
    seed(&pool).await;
    let audit = PgAuditLog::new(pool.clone());
    for i in 0..5 {
        audit
            .append(AuditEvent::new("ops", "wallet.sign", Severity::Info).target(format!("w{i}")))
            .await
            .unwrap();
    }
    let runs = PgJobRuns::new(pool.clone());
    for (days, job) in [(40, "old-job"), (1, "new-job")] {
        let at = chrono::Utc::now() - chrono::Duration::days(days);
        let id = runs
            .claim(job, at, "w", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        runs.finish(id, "w", 1, None).await.unwrap();
        exec(
            &pool,
            &format!(
                "UPDATE job_runs SET finished_at = now() - interval '{days} days' WHERE id = {id}"
            ),
        )
        .await;
    }
    let dead_at = chrono::Utc::now() - chrono::Duration::days(100);
    runs.record_dead_pulse("dead-job", dead_at, "w", 3, "boom")
        .await
        .unwrap();
    exec(
        &pool,
        "UPDATE job_runs SET finished_at = now() - interval '100 days' WHERE job = 'dead-job'",
    )
    .await;
    let audited = count(&pool, "SELECT count(*) AS n FROM audit_log").await;

    let policy = RetentionPolicy {
        batch: 1, // one row per statement: the batching loop is exercised
        ..RetentionPolicy::default()
    };
    let report = apply_retention(&pool, &policy, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(report.alerts, 1, "{report:?}");
    assert_eq!(report.error_logs, 1);
    assert_eq!(report.webhook_messages, 1);
    assert_eq!(report.idempotency_keys, 1);
    assert_eq!(report.webhook_replay, 1);
    assert_eq!(report.job_runs, 1);

    let left = |sql: &'static str| count(&pool, sql);
    assert_eq!(
        left("SELECT count(*) AS n FROM transaction_monitoring WHERE description = 'old'").await,
        0
    );
    assert_eq!(left("SELECT count(*) AS n FROM transaction_monitoring WHERE description IN ('new', 'undelivered')").await, 2);
    assert_eq!(
        left("SELECT count(*) AS n FROM error_logs WHERE message = 'new'").await,
        1
    );
    assert_eq!(left("SELECT count(*) AS n FROM error_logs").await, 1);
    assert_eq!(
        left("SELECT count(*) AS n FROM webhook_messages WHERE id IN ('msg_new', 'msg_dead')")
            .await,
        2
    );
    assert_eq!(left("SELECT count(*) AS n FROM webhook_messages").await, 2);
    assert_eq!(
        left("SELECT count(*) AS n FROM webhook_deliveries WHERE message_id = 'msg_old'").await,
        0
    );
    assert_eq!(
        left("SELECT count(*) AS n FROM idempotency_keys WHERE key = 'livekey01'").await,
        1
    );
    assert_eq!(left("SELECT count(*) AS n FROM idempotency_keys").await, 1);
    assert_eq!(left("SELECT count(*) AS n FROM webhook_replay").await, 1);
    assert_eq!(
        left("SELECT count(*) AS n FROM job_runs WHERE job IN ('new-job', 'dead-job')").await,
        2
    );
    assert_eq!(left("SELECT count(*) AS n FROM job_runs").await, 2);

    // the audit log: every row kept, the chain intact
    assert_eq!(
        count(&pool, "SELECT count(*) AS n FROM audit_log").await,
        audited
    );
    let verified = audit.verify().await.unwrap().unwrap();
    assert_eq!(verified.count, audited);

    // a second pass finds nothing more
    let again = apply_retention(&pool, &policy, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(again, haven_db::RetentionReport::default());
}

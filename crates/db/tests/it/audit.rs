use std::sync::Arc;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::{AuditEvent, AuditSink, ChainBreak, Severity};
use haven_db::PgAuditLog;
use haven_testkit::TestDb;

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(format!("user{}", i % 7), "wallet.sign", Severity::Info)
        .target(format!("wallet-{i}"))
        .request_id(format!("req-{i}"))
        .ip("203.0.113.9")
        .details(serde_json::json!({"i": i, "nested": {"b": [1, 2.5, "x"], "a": null}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_parallel_appends_form_one_valid_chain() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 16).await.unwrap();
    let log = Arc::new(PgAuditLog::new(pool));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let log = log.clone();
        tasks.push(tokio::spawn(
            async move { log.append(event(i)).await.unwrap() },
        ));
    }
    let mut seqs: Vec<i64> = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().seq);
    }
    seqs.sort();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    let report = log.verify().await.unwrap().unwrap();
    assert_eq!(report.count, 100);
    let (head_seq, head_hash) = log.head().await.unwrap().unwrap();
    assert_eq!(head_seq, 100);
    assert_eq!(head_hash, report.head);
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_and_deletes_are_refused_and_edits_are_found() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    let log = PgAuditLog::new(pool);
    for i in 0..5 {
        log.append(event(i)).await.unwrap();
    }
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    for sql in [
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 3",
        "TRUNCATE audit_log",
    ] {
        let err = diesel::sql_query(sql).execute(&mut conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert!(log.verify().await.unwrap().is_ok());

    diesel::sql_query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::sql_query("UPDATE audit_log SET details = '{\"i\": 999}' WHERE seq = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        log.verify().await.unwrap(),
        Err(ChainBreak::Modified { seq: 3 })
    );
}

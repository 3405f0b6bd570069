//! The Postgres alert store: the shared conformance suite, review transitions audited in the
//! same transaction, racing reviewers, permissions, and the delivery outbox claims.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::ErrorCode;
use haven_core::audit::AuditRecord;
use haven_db::{DeliveryOutcome, PgAlertStore, PgAuditLog};
use haven_fraud::conformance::{alert_store_suite, audit_summary, sample_alert};
use haven_fraud::{
    AlertStore, Error, ReviewService, ReviewState, Reviewer, ReviewerRole, Severity,
};
use haven_testkit::TestDb;

struct Setup {
    _db: TestDb,
    url: String,
    store: Arc<PgAlertStore>,
    audit: Arc<PgAuditLog>,
    service: ReviewService,
}

async fn setup() -> Setup {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 16).await.unwrap();
    let store = Arc::new(PgAlertStore::new(pool.clone()));
    let audit = Arc::new(PgAuditLog::new(pool));
    let service = ReviewService::new(store.clone(), audit.clone());
    Setup {
        url: db.url().to_owned(),
        _db: db,
        store,
        audit,
        service,
    }
}

async fn audit_rows(audit: &PgAuditLog) -> Vec<AuditRecord> {
    audit.page(0, 1000).await.unwrap()
}

fn analyst(id: &str) -> Reviewer {
    Reviewer::new(id, ReviewerRole::Analyst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_alert_store_conformance_suite() {
    let s = setup().await;
    alert_store_suite(s.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_transition_writes_one_audit_row_with_the_reviewer() {
    let s = setup().await;
    let alert = sample_alert("alice", "velocity", Severity::High, 0);
    assert!(s.store.insert(&alert).await.unwrap());

    let acked = s
        .service
        .acknowledge(&analyst("carol"), alert.id, Some("looking"))
        .await
        .unwrap();
    assert_eq!(acked.state, ReviewState::Acknowledged);
    assert_eq!(acked.reviewed_by.as_deref(), Some("carol"));
    let admin = Reviewer::new("dave", ReviewerRole::Admin);
    let fp = s
        .service
        .mark_false_positive(&admin, alert.id, Some("known customer"))
        .await
        .unwrap();
    assert_eq!(fp.state, ReviewState::FalsePositive);
    assert!(fp.reviewed());
    assert_eq!(fp.reviewed_by.as_deref(), Some("dave"));
    let texts: Vec<&str> = fp.notes.iter().map(|n| n.text.as_str()).collect();
    assert_eq!(texts, vec!["looking", "known customer"]);

    let stored = s.store.get(alert.id).await.unwrap().unwrap();
    assert_eq!(stored, fp, "what the service returned is what is stored");

    let rows = audit_rows(&s.audit).await;
    let summary = audit_summary(&rows);
    let id = alert.id.to_string();
    assert_eq!(
        summary,
        vec![
            ("carol", "fraud.alert.acknowledged", Some(id.as_str())),
            ("dave", "fraud.alert.false_positive", Some(id.as_str())),
        ]
    );
    assert_eq!(rows[1].event.details["from"], "acknowledged");
    assert_eq!(rows[1].event.details["rule_id"], "velocity");
    assert_eq!(s.audit.verify().await.unwrap().unwrap().count, 2);

    // Illegal transitions are refused and leave no audit row.
    let err = s
        .service
        .acknowledge(&analyst("carol"), alert.id, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidTransition, "{err:?}");
    assert_eq!(audit_rows(&s.audit).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_audit_append_rolls_the_transition_back() {
    let s = setup().await;
    let alert = sample_alert("alice", "velocity", Severity::High, 0);
    s.store.insert(&alert).await.unwrap();
    s.service
        .acknowledge(&analyst("carol"), alert.id, None)
        .await
        .unwrap();

    // Make the audit log refuse exactly the `resolved` event, as a full disk or a lost
    // connection would, after the state UPDATE has run in the same transaction.
    let mut conn = AsyncPgConnection::establish(&s.url).await.unwrap();
    diesel::sql_query(
        "CREATE FUNCTION refuse_resolved() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.action = 'fraud.alert.resolved' THEN \
         RAISE EXCEPTION 'audit log refuses'; END IF; RETURN NEW; END $$",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query(
        "CREATE TRIGGER refuse_resolved BEFORE INSERT ON audit_log \
         FOR EACH ROW EXECUTE FUNCTION refuse_resolved()",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let err = s
        .service
        .resolve(&analyst("dave"), alert.id, Some("refunded"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Audit(_)), "{err:?}");
    let stored = s.store.get(alert.id).await.unwrap().unwrap();
    assert_eq!(
        stored.state,
        ReviewState::Acknowledged,
        "no transition without its audit row"
    );
    assert_eq!(stored.reviewed_by.as_deref(), Some("carol"));
    assert!(stored.notes.is_empty(), "the note went with the rollback");
    assert_eq!(audit_rows(&s.audit).await.len(), 1);

    diesel::sql_query("DROP TRIGGER refuse_resolved ON audit_log")
        .execute(&mut conn)
        .await
        .unwrap();
    let resolved = s
        .service
        .resolve(&analyst("dave"), alert.id, None)
        .await
        .unwrap();
    assert_eq!(resolved.state, ReviewState::Resolved);
    assert_eq!(audit_rows(&s.audit).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_reviewers_from_the_same_state_exactly_one_wins() {
    let s = setup().await;
    let alert = sample_alert("alice", "velocity", Severity::High, 0);
    s.store.insert(&alert).await.unwrap();
    let service = Arc::new(s.service.clone());
    let mut tasks = Vec::new();
    for i in 0..12 {
        let service = service.clone();
        let id = alert.id;
        tasks.push(tokio::spawn(async move {
            service
                .acknowledge(&analyst(&format!("r{i}")), id, None)
                .await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(record) => winners.push(record.reviewed_by.unwrap()),
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidTransition, "{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one acknowledgement wins");
    let rows = audit_rows(&s.audit).await;
    assert_eq!(rows.len(), 1, "one audit row for the one transition");
    assert_eq!(rows[0].event.actor, winners[0]);
    let stored = s.store.get(alert.id).await.unwrap().unwrap();
    assert_eq!(stored.reviewed_by.as_ref(), Some(&winners[0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn viewers_cannot_transition_or_annotate() {
    let s = setup().await;
    let alert = sample_alert("bob", "unusual_amount", Severity::Medium, 0);
    s.store.insert(&alert).await.unwrap();
    let viewer = Reviewer::new("vera", ReviewerRole::Viewer);
    let err = s
        .service
        .acknowledge(&viewer, alert.id, Some("mine"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    let err = s
        .service
        .add_note(&viewer, alert.id, "mine")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    let stored = s.store.get(alert.id).await.unwrap().unwrap();
    assert_eq!(stored.state, ReviewState::Open);
    assert_eq!(stored.reviewed_by, None);
    assert!(stored.notes.is_empty());
    assert!(audit_rows(&s.audit).await.is_empty());

    let acked = s
        .service
        .acknowledge(&analyst("ann"), alert.id, None)
        .await
        .unwrap();
    assert_eq!(acked.reviewed_by.as_deref(), Some("ann"));
    assert!(acked.reviewed_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivery_claims_are_disjoint_fenced_and_final() {
    let s = setup().await;
    let mut ids = HashSet::new();
    for minute in 0..20 {
        let alert = sample_alert(&format!("u{minute}"), "velocity", Severity::High, minute);
        ids.insert(alert.id);
        s.store.insert(&alert).await.unwrap();
    }
    let state = s
        .store
        .delivery_state(*ids.iter().next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.delivery_attempts, 0, "queued with the insert");
    assert_eq!(state.delivered_at, None);

    // Concurrent claimers never share an alert.
    let lease = Duration::from_secs(60);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = s.store.clone();
        tasks.push(tokio::spawn(async move {
            store.claim_deliveries(8, 5, lease).await.unwrap()
        }));
    }
    let mut claims = Vec::new();
    for t in tasks {
        claims.extend(t.await.unwrap());
    }
    let claimed: HashSet<_> = claims.iter().map(|c| c.alert.id).collect();
    assert_eq!(claimed.len(), claims.len(), "no alert claimed twice");
    assert_eq!(claimed, ids, "every due alert claimed");
    assert!(claims.iter().all(|c| c.attempt == 1));
    assert!(
        s.store
            .claim_deliveries(100, 5, lease)
            .await
            .unwrap()
            .is_empty(),
        "leased alerts are not due"
    );

    let first = &claims[0];
    let done = DeliveryOutcome::Delivered {
        sinks: vec!["log".into()],
    };
    assert!(s.store.finish_delivery(first, &done).await.unwrap());
    assert!(
        !s.store.finish_delivery(first, &done).await.unwrap(),
        "a delivered alert is final"
    );
    let state = s
        .store
        .delivery_state(first.alert.id)
        .await
        .unwrap()
        .unwrap();
    assert!(state.delivered_at.is_some());
    assert_eq!(state.delivered_sinks, vec!["log".to_owned()]);

    // A failure schedules the retry; a stale claim (older attempt) cannot write.
    let second = &claims[1];
    let failed = DeliveryOutcome::Failed {
        sinks: vec!["log".into()],
        error: "webhook endpoint answered 500".into(),
        retry_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
    };
    assert!(s.store.finish_delivery(second, &failed).await.unwrap());
    let again = s.store.claim_deliveries(100, 5, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].alert.id, second.alert.id);
    assert_eq!(again[0].attempt, 2);
    assert_eq!(again[0].delivered_sinks, vec!["log".to_owned()]);
    assert!(
        !s.store.finish_delivery(second, &done).await.unwrap(),
        "the claim of attempt 1 is fenced off by attempt 2"
    );
    let state = s
        .store
        .delivery_state(second.alert.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.delivered_at, None);
    assert_eq!(
        state.last_delivery_error.as_deref(),
        Some("webhook endpoint answered 500")
    );

    // Out of attempts: never claimed again.
    let give_up = DeliveryOutcome::Failed {
        sinks: vec![],
        error: "still failing".into(),
        retry_at: None,
    };
    assert!(s.store.finish_delivery(&again[0], &give_up).await.unwrap());
    assert!(
        s.store
            .claim_deliveries(100, 2, lease)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_inserted_in_a_rolled_back_transaction_is_not_queued() {
    let s = setup().await;
    let alert = sample_alert("carl", "velocity", Severity::High, 0);
    let mut conn = AsyncPgConnection::establish(&s.url).await.unwrap();
    let result: Result<(), haven_db::Error> = conn
        .transaction(async |c| {
            assert!(PgAlertStore::insert_in(c, &alert).await?);
            Err(haven_db::Error::Query(
                diesel::result::Error::RollbackTransaction,
            ))
        })
        .await;
    assert!(result.is_err());
    assert!(s.store.get(alert.id).await.unwrap().is_none());
    assert!(
        s.store
            .claim_deliveries(10, 5, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
}

/// The Postgres search agrees with the in-memory store's on text SQL would misread (quotes,
/// pattern and escape characters, non-ASCII case, nested metadata, numbers) and on the time
/// bounds combined with it.
#[tokio::test(flavor = "multi_thread")]
async fn text_search_and_time_bounds_agree_with_the_memory_store() {
    use haven_fraud::{AlertFilter, MemoryAlertStore};
    use serde_json::json;
    let s = setup().await;
    let memory = MemoryAlertStore::new();
    let texts = [
        (
            "it's 50% over; _all_ of it",
            json!({"amount": 5000, "who": "O'Brien"}),
        ),
        (
            r"path C:\temp\x; $1 OR 1=1 --",
            json!({"deep": [{"k": "Ärger im Büro"}]}),
        ),
        (
            "plain velocity",
            json!({"ok": true, "none": null, "ratio": 1.5}),
        ),
    ];
    let mut alerts = Vec::new();
    for (minute, (description, metadata)) in texts.into_iter().enumerate() {
        let mut alert = sample_alert("dora", "velocity", Severity::Medium, minute as i64);
        alert.description = description.into();
        alert.metadata = metadata;
        assert!(s.store.insert(&alert).await.unwrap());
        assert!(memory.insert(&alert).await.unwrap());
        alerts.push(alert);
    }
    let ids = |records: Vec<haven_fraud::AlertRecord>| {
        records.into_iter().map(|r| r.alert.id).collect::<Vec<_>>()
    };
    for text in [
        "'",
        "it's",
        "50%",
        "%",
        "_all_",
        "_",
        r"\",
        r"C:\TEMP",
        r"\x",
        "$1 or 1=1",
        "--",
        "o'brien",
        "5000",
        "ärger",
        "ÄRGER IM",
        "büro",
        "true",
        "1.5",
        "null",
        "amount",
        "dora",
        "VELOCITY",
        "",
        "nothing here",
    ] {
        for since in [None, Some(alerts[1].created_at)] {
            let filter = AlertFilter {
                text: Some(text.into()),
                since,
                ..AlertFilter::default()
            };
            let pg = ids(s.store.list(&filter).await.unwrap());
            let mem = ids(memory.list(&filter).await.unwrap());
            assert_eq!(pg, mem, "{text:?} since {since:?}");
        }
    }
    let only = |text: &str| AlertFilter {
        text: Some(text.into()),
        ..AlertFilter::default()
    };
    assert_eq!(
        ids(s.store.list(&only("_all_")).await.unwrap()),
        vec![alerts[0].id]
    );
    assert_eq!(
        ids(s.store.list(&only("ärger")).await.unwrap()),
        vec![alerts[1].id]
    );
    assert_eq!(
        ids(s.store.list(&only("1.5")).await.unwrap()),
        vec![alerts[2].id]
    );
    assert_eq!(
        ids(s.store.list(&only("%")).await.unwrap()),
        vec![alerts[0].id]
    );
}

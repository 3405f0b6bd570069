//! The inbound inbox relay: verified events become outbound webhook messages exactly once,
//! in one transaction with their processed mark.

use std::collections::BTreeSet;
use std::sync::Arc;

use diesel::sql_types::{Bytea, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_db::{PgInbox, PgWebhookOutbox, RelayReport, RelayRoutes};
use haven_testkit::TestDb;
use serde_json::Value;
use uuid::Uuid;

#[derive(diesel::QueryableByName)]
struct Message {
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Bytea)]
    payload: Vec<u8>,
}

async fn messages(db: &TestDb) -> Vec<(String, Value)> {
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let rows: Vec<Message> =
        diesel::sql_query("SELECT event_type, payload FROM webhook_messages ORDER BY id")
            .load(&mut conn)
            .await
            .unwrap();
    rows.into_iter()
        .map(|m| (m.event_type, serde_json::from_slice(&m.payload).unwrap()))
        .collect()
}

async fn endpoint(outbox: &PgWebhookOutbox, name: &str) -> Uuid {
    outbox
        .create_endpoint(&format!("http://127.0.0.1:9/{name}"), name)
        .await
        .unwrap()
        .endpoint
        .id
}

#[tokio::test(flavor = "multi_thread")]
async fn routed_events_are_relayed_once_and_unrouted_ones_wait() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    let inbox = PgInbox::new(pool.clone());
    let outbox = PgWebhookOutbox::new(pool);
    let (ledger, crm) = (
        endpoint(&outbox, "ledger").await,
        endpoint(&outbox, "crm").await,
    );
    for i in 0..3 {
        let body = format!(r#"{{"event":"payment.succeeded","n":{i}}}"#);
        inbox
            .receive("aurora", &format!("a{i}"), body.as_bytes())
            .await
            .unwrap();
    }
    inbox.receive("tribe", "t1", b"\x00not json").await.unwrap();
    inbox.receive("unrouted", "u1", b"{}").await.unwrap();
    let routes = RelayRoutes::from([
        ("aurora".to_owned(), vec![ledger, crm]),
        ("tribe".to_owned(), vec![ledger]),
    ]);

    let report = inbox.relay_due(&routes, 100).await.unwrap();
    assert_eq!(
        report,
        RelayReport {
            events: 4,
            messages: 7
        }
    );
    assert_eq!(
        inbox.relay_due(&routes, 100).await.unwrap(),
        RelayReport::default()
    );

    let sent = messages(&db).await;
    assert_eq!(sent.len(), 7);
    let aurora: Vec<&Value> = sent
        .iter()
        .filter(|(t, _)| t == "inbound.aurora")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(aurora.len(), 6);
    assert_eq!(aurora[0]["source"], "aurora");
    assert_eq!(aurora[0]["message_id"], "a0");
    assert_eq!(aurora[0]["data"]["event"], "payment.succeeded");
    let tribe = &sent.iter().find(|(t, _)| t == "inbound.tribe").unwrap().1;
    assert_eq!(tribe["body_base64"], "AG5vdCBqc29u");
    assert!(tribe.get("data").is_none());

    let waiting = inbox.waiting_by_source().await.unwrap();
    assert_eq!(
        waiting.into_iter().collect::<Vec<_>>(),
        [("unrouted".to_owned(), 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_relays_never_relay_an_event_twice() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 8).await.unwrap();
    let inbox = Arc::new(PgInbox::new(pool.clone()));
    let ledger = endpoint(&PgWebhookOutbox::new(pool), "ledger").await;
    for i in 0..60 {
        inbox
            .receive("aurora", &format!("m{i}"), b"{}")
            .await
            .unwrap();
    }
    let routes = Arc::new(RelayRoutes::from([("aurora".to_owned(), vec![ledger])]));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (inbox, routes) = (inbox.clone(), routes.clone());
        workers.push(tokio::spawn(async move {
            let mut relayed = 0;
            loop {
                let report = inbox.relay_due(&routes, 5).await.unwrap();
                if report.events == 0 {
                    return relayed;
                }
                relayed += report.events;
            }
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    assert_eq!(total, 60);
    let sent = messages(&db).await;
    let ids: BTreeSet<String> = sent
        .iter()
        .map(|(_, p)| p["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        (sent.len(), ids.len()),
        (60, 60),
        "each event relayed exactly once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_relay_writes_nothing_and_the_next_one_starts_over() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    let inbox = PgInbox::new(pool.clone());
    let outbox = PgWebhookOutbox::new(pool);
    let ledger = endpoint(&outbox, "ledger").await;
    inbox.receive("aurora", "a1", b"{}").await.unwrap();
    inbox.receive("aurora", "a2", b"{}").await.unwrap();
    // The second endpoint does not exist: the second message cannot be queued.
    let broken = RelayRoutes::from([("aurora".to_owned(), vec![ledger, Uuid::now_v7()])]);
    assert!(inbox.relay_due(&broken, 100).await.is_err());
    assert!(
        messages(&db).await.is_empty(),
        "nothing of the failed relay remains"
    );
    assert_eq!(inbox.waiting_by_source().await.unwrap()["aurora"], 2);

    let fixed = RelayRoutes::from([("aurora".to_owned(), vec![ledger])]);
    let report = inbox.relay_due(&fixed, 100).await.unwrap();
    assert_eq!(
        report,
        RelayReport {
            events: 2,
            messages: 2
        }
    );
    assert!(inbox.waiting_by_source().await.unwrap().is_empty());
}

/// Group commit: 300 concurrent deliveries — 100 new messages, each also redelivered with
/// the same body and reused with another — give exactly one acceptance per message, the
/// redeliveries duplicates and the reuses conflicts, whatever batches they fell into; the
/// rows hold the accepted bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_share_statements_and_keep_every_outcome() {
    use haven_db::InboxOutcome;
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    let inbox = PgInbox::new(pool.clone());
    let mut tasks = Vec::new();
    for i in 0..100 {
        for (kind, body) in [
            ("first", format!(r#"{{"n":{i}}}"#)),
            ("again", format!(r#"{{"n":{i}}}"#)),
            ("other", format!(r#"{{"n":{i},"forged":true}}"#)),
        ] {
            let inbox = inbox.clone();
            tasks.push(tokio::spawn(async move {
                let outcome = inbox
                    .receive("aurora", &format!("m{i}"), body.as_bytes())
                    .await
                    .unwrap();
                (i, kind, outcome)
            }));
        }
    }
    let mut per_message = vec![Vec::new(); 100];
    for task in tasks {
        let (i, kind, outcome) = task.await.unwrap();
        per_message[i].push((kind, outcome));
    }
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        message_id: String,
        #[diesel(sql_type = Bytea)]
        body: Vec<u8>,
    }
    let rows: Vec<Row> = diesel::sql_query("SELECT message_id, body FROM inbound_webhooks")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 100);
    let statements = inbox.statements();
    assert!(
        statements < 300,
        "300 concurrent deliveries took {statements} statements: no batch formed"
    );
    for (i, outcomes) in per_message.iter().enumerate() {
        let accepted: Vec<_> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, InboxOutcome::Accepted { .. }))
            .collect();
        assert_eq!(accepted.len(), 1, "message {i}: {outcomes:?}");
        let winner = accepted[0].0;
        let row = rows
            .iter()
            .find(|r| r.message_id == format!("m{i}"))
            .unwrap();
        let forged = String::from_utf8_lossy(&row.body).contains("forged");
        assert_eq!(forged, winner == "other", "message {i}: {outcomes:?}");
        for (kind, outcome) in outcomes {
            let same_body = (*kind == "other") == forged;
            match outcome {
                InboxOutcome::Accepted { .. } => {}
                InboxOutcome::Duplicate { .. } => assert!(same_body, "{i}: {outcomes:?}"),
                InboxOutcome::Conflict { .. } => assert!(!same_body, "{i}: {outcomes:?}"),
            }
        }
    }
}

/// A row Postgres refuses (a message id with a NUL byte) fails only its own delivery, even
/// when it travels in a batch with others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_row_fails_only_its_own_delivery() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    let inbox = PgInbox::new(pool.clone());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let inbox = inbox.clone();
        let id = if i == 17 {
            "bad\0id".to_owned()
        } else {
            format!("ok{i}")
        };
        tasks.push(tokio::spawn(async move {
            (i, inbox.receive("aurora", &id, b"{}").await)
        }));
    }
    for task in tasks {
        let (i, result) = task.await.unwrap();
        assert_eq!(result.is_err(), i == 17, "delivery {i}: {result:?}");
    }
    for i in (0..40).filter(|i| *i != 17) {
        assert_eq!(inbox.count("aurora", &format!("ok{i}")).await.unwrap(), 1);
    }
}

/// Without a database every queued delivery is answered at once with the error; none is
/// retried row by row against a pool that has no connection to give.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_database_every_delivery_fails_at_once() {
    let pool = haven_db::connect_lazy("postgres://haven@127.0.0.1:1/none", 2).unwrap();
    let inbox = PgInbox::new(pool);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let inbox = inbox.clone();
        tasks.push(tokio::spawn(async move {
            inbox.receive("aurora", &format!("m{i}"), b"{}").await
        }));
    }
    for task in tasks {
        assert!(matches!(
            task.await.unwrap(),
            Err(haven_db::Error::Unavailable(_))
        ));
    }
    assert_eq!(inbox.statements(), 0, "no statement was attempted");
}

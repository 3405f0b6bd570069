//! Verified inbound webhooks relayed from the inbox to their source's endpoints and
//! delivered signed, each exactly once (real Postgres, a local receiver).

use std::time::Duration;

use haven_db::{PgInbox, PgWebhookOutbox};
use haven_testkit::TestDb;
use haven_webhooks::Secret;
use haven_webhooks::receiver::Receiver;
use haven_worker::Job;
use haven_worker::config::InboundRelayConfig;
use haven_worker::jobs::inbound_relay::InboundRelay;
use serde_json::Value;

use crate::webhook_delivery::{job, loopback_config, point_endpoint_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_events_reach_their_route_once_and_unrouted_ones_wait() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    let inbox = PgInbox::new(pool.clone());
    let outbox = PgWebhookOutbox::new(pool.clone());
    let created = outbox
        .create_endpoint("http://placeholder/", "ledger")
        .await
        .unwrap();
    let receiver = Receiver::start(vec![Secret::standard(&created.secret).unwrap()], vec![]).await;
    let ledger = point_endpoint_at(&db, created.endpoint.id, &receiver.url()).await;
    inbox
        .receive(
            "aurora",
            "evt_1",
            br#"{"event":"payment.succeeded","amount":"10"}"#,
        )
        .await
        .unwrap();
    inbox.receive("aurora", "evt_2", b"{}").await.unwrap();
    inbox.receive("tribe", "t_1", b"{}").await.unwrap();

    // One configured endpoint does not exist: it is dropped (and logged), the rest relays.
    let config =
        InboundRelayConfig::parse(&format!("aurora={ledger},{}", uuid::Uuid::now_v7()), 1).unwrap();
    let relay = InboundRelay::new(&config, pool);
    assert_eq!(relay.interval(), Some(Duration::from_secs(1)));
    let first = relay.relay_due().await.unwrap();
    assert_eq!((first.events, first.messages), (2, 2));
    relay.step().await.unwrap();
    assert_eq!(relay.relay_due().await.unwrap().events, 0, "relayed once");

    let delivery = job(outbox, &loopback_config(), Duration::from_secs(60));
    delivery.deliver_due().await.unwrap();
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 2, "{:?}", receiver.log());
    let bodies: Vec<Value> = receiver
        .log()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(bodies.iter().all(|b| b["type"] == "inbound.aurora"));
    let first = bodies.iter().find(|b| b["message_id"] == "evt_1").unwrap();
    assert_eq!(first["data"]["event"], "payment.succeeded");
    assert_eq!(first["source"], "aurora");

    let waiting = inbox.waiting_by_source().await.unwrap();
    assert_eq!(waiting.get("tribe"), Some(&1), "no route: the event waits");
    assert_eq!(waiting.get("aurora"), None);
}

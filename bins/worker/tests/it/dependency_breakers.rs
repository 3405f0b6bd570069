//! The worker's breakers around the dependencies it delivers to: each outbound webhook
//! endpoint has its own (`webhook_endpoint:<id>`), the alert sinks have `smtp` and
//! `alerts_webhook`. A failing dependency opens its breaker, after which nothing more is
//! sent to it — webhook attempts wait for their lease without spending an attempt, alerts
//! fail fast with "circuit breaker is open" — and the breaker is in the registry that
//! `/health`, `/metrics` and the admin routes list.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use haven_db::{PgAlertStore, PgWebhookOutbox};
use haven_fraud::conformance::sample_alert;
use haven_fraud::{AlertStore, Severity, SmtpConfig, SmtpSecurity};
use haven_resilience::{BreakerConfig, BreakerRegistry, BreakerState};
use haven_testkit::TestDb;
use haven_webhooks::Secret;
use haven_webhooks::receiver::{Receiver, Turn};
use haven_worker::config::FraudDeliveryConfig;
use haven_worker::jobs::fraud_delivery::{DeliveryPolicy, FraudDelivery};
use haven_worker::jobs::webhook_delivery::endpoint_breaker;

use crate::webhook_delivery::{job, loopback_config, point_endpoint_at};

fn registry() -> Arc<BreakerRegistry> {
    Arc::new(BreakerRegistry::new(BreakerConfig::default()).unwrap())
}

fn state(registry: &BreakerRegistry, name: &str) -> BreakerState {
    registry
        .get(name)
        .unwrap_or_else(|| panic!("breaker {name} is registered"))
        .status()
        .state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_opens_its_breaker_and_its_attempts_wait_unspent() {
    haven_testkit::install_crypto_provider();
    let db = TestDb::new().await;
    let outbox = PgWebhookOutbox::new(haven_db::connect(db.url(), 4).await.unwrap());
    let failing = outbox
        .create_endpoint("http://placeholder/", "down")
        .await
        .unwrap();
    let healthy = outbox
        .create_endpoint("http://placeholder/", "up")
        .await
        .unwrap();
    let down = Receiver::start(
        vec![Secret::standard(&failing.secret).unwrap()],
        vec![Turn::status(500); 20],
    )
    .await;
    let up = Receiver::start(vec![Secret::standard(&healthy.secret).unwrap()], vec![]).await;
    let failing_id = point_endpoint_at(&db, failing.endpoint.id, &down.url()).await;
    let healthy_id = point_endpoint_at(&db, healthy.endpoint.id, &up.url()).await;
    let mut messages = Vec::new();
    for i in 0..8 {
        let payload = serde_json::json!({"n": i});
        messages.push(outbox.enqueue(failing_id, "t", &payload).await.unwrap());
    }
    outbox
        .enqueue(healthy_id, "t", &serde_json::json!({"ok": true}))
        .await
        .unwrap();

    let breakers = registry();
    let job = job(outbox.clone(), &loopback_config(), Duration::from_secs(60))
        .with_batch(50, 1)
        .with_breakers(breakers.clone());
    let first = job.deliver_due().await.unwrap();
    // five failures in a row open the breaker (the default rule); after that nothing is
    // sent there: every pending attempt (the 3 never sent, and the retries of the 5, due at
    // once under this test's zero backoff) is claimed, held back and left to its lease
    assert_eq!(
        down.log().len(),
        5,
        "nothing is sent once the breaker is open"
    );
    assert_eq!((first.retried, first.deferred), (5, 8), "{first:?}");
    assert_eq!(first.delivered, 1, "the healthy endpoint is not held back");
    assert_eq!(up.log().len(), 1);
    let name = endpoint_breaker(failing_id);
    assert_eq!(state(&breakers, &name), BreakerState::Open);
    assert_eq!(
        state(&breakers, &endpoint_breaker(healthy_id)),
        BreakerState::Closed
    );
    let mut attempts = Vec::new();
    for message in &messages {
        attempts.extend(outbox.attempts(message).await.unwrap());
    }
    let pending = attempts.iter().filter(|a| a.status == "pending").count();
    assert_eq!(
        (attempts.len(), pending),
        (13, 8),
        "held back attempts are not spent: {attempts:?}"
    );

    // held back attempts stay leased: the next step finds nothing due and sends nothing
    let second = job.deliver_due().await.unwrap();
    assert_eq!(second.claimed, 0, "{second:?}");
    assert_eq!(down.log().len(), 5);

    // an operator's reset lets them through again
    breakers.get(&name).unwrap().reset().await.unwrap();
    assert_eq!(state(&breakers, &name), BreakerState::Closed);
}

/// An SMTP "server" that accepts connections and hangs up at once, counting them.
async fn hanging_up_server() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_smtp_relay_opens_the_smtp_breaker_and_is_no_longer_called() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    let store = PgAlertStore::new(pool.clone());
    let mut alerts = Vec::new();
    for i in 0..7 {
        let alert = sample_alert(&format!("m{i}"), "velocity", Severity::High, i);
        assert!(store.insert(&alert).await.unwrap());
        alerts.push(alert);
    }
    let (port, accepted) = hanging_up_server().await;
    let config = FraudDeliveryConfig {
        policy: DeliveryPolicy {
            batch: 10,
            concurrency: 1,
            max_attempts: 8,
            backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(60),
            lease: Duration::from_secs(60),
        },
        interval: Duration::from_secs(1),
        webhook: None,
        smtp: Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::None,
            credentials: None,
            from: "Haven Alerts <alerts@example.com>".into(),
            to: vec!["ops@example.com".into()],
            timeout: Duration::from_secs(5),
        }),
    };
    let breakers = registry();
    let job = FraudDelivery::from_config(&config, pool, &breakers).unwrap();
    assert_eq!(job.deliver_batch().await.unwrap(), 7);

    assert_eq!(
        accepted.load(Ordering::SeqCst),
        5,
        "two alerts never reached the relay"
    );
    assert_eq!(state(&breakers, "smtp"), BreakerState::Open);
    let mut open = 0;
    for alert in &alerts {
        let delivery = store.delivery_state(alert.id).await.unwrap().unwrap();
        assert!(
            delivery.delivered_at.is_none(),
            "undelivered, to be retried"
        );
        let error = delivery.last_delivery_error.unwrap_or_default();
        if error.contains("circuit breaker is open") {
            open += 1;
        } else {
            assert!(error.contains("SMTP"), "{error}");
        }
    }
    assert_eq!(open, 2);
}

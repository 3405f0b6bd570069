//! A4 through the worker's delivery job, real Postgres and a local HTTP receiver: a
//! receiver that fails twice then succeeds gets exactly one accepted delivery, signed so
//! that our verifier and the PyPI `standardwebhooks` package both accept it; a crash
//! between commit and send (or in the middle of a send) still delivers exactly once; each
//! recorded outcome is counted once, and the worker serves the counts on `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use haven_core::audit::{AuditEvent, Severity};
use haven_db::{CreatedEndpoint, PgAuditLog, PgWebhookOutbox};
use haven_testkit::MetricsCapture;
use haven_testkit::TestDb;
use haven_webhooks::receiver::{Received, Receiver, Turn, standardwebhooks_accepts};
use haven_webhooks::{HttpSender, RetryPolicy, Secret, SenderConfig};
use haven_worker::Job;
use haven_worker::config::WebhookDeliveryConfig;
use haven_worker::jobs::webhook_delivery::{DeliveryReport, WebhookDelivery};
use haven_worker::metrics::WEBHOOK_DELIVERIES;

/// The configured destination check with loopback allow-listed, as the tests' config does.
pub(crate) fn loopback_config() -> WebhookDeliveryConfig {
    WebhookDeliveryConfig {
        allow: vec!["127.0.0.1/32".parse().unwrap()],
        allow_http: true,
        ..WebhookDeliveryConfig::default()
    }
}

/// The default schedule's shape (8 attempts) without its waits, so a test can step through it.
fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        delays: vec![Duration::ZERO; 7],
        jitter: 0.0,
        retry_after_min: Duration::ZERO,
        retry_after_max: Duration::from_secs(1),
    }
}

pub(crate) fn job(
    outbox: PgWebhookOutbox,
    config: &WebhookDeliveryConfig,
    lease: Duration,
) -> WebhookDelivery {
    let sender = HttpSender::new(
        WebhookDelivery::destinations(config),
        SenderConfig {
            timeout: Duration::from_secs(10),
            ..SenderConfig::default()
        },
    )
    .unwrap();
    WebhookDelivery::new(outbox, sender, fast_policy()).with_lease(lease)
}

/// A job on the loopback config whose one-minute lease never lapses during a test.
fn loopback_job(outbox: &PgWebhookOutbox) -> WebhookDelivery {
    job(outbox.clone(), &loopback_config(), Duration::from_secs(60))
}

/// A fresh database, its outbox, and a new endpoint (not yet pointed anywhere).
async fn outbox_with_endpoint(description: &str) -> (TestDb, PgWebhookOutbox, CreatedEndpoint) {
    let db = TestDb::new().await;
    let outbox = PgWebhookOutbox::new(haven_db::connect(db.url(), 4).await.unwrap());
    let created = outbox
        .create_endpoint("http://placeholder/", description)
        .await
        .unwrap();
    (db, outbox, created)
}

/// Starts a receiver that verifies with `secret` and answers `turns` (then 204), and points
/// `endpoint` at it.
async fn start_receiver(
    db: &TestDb,
    endpoint: uuid::Uuid,
    secret: &str,
    turns: Vec<Turn>,
) -> (Receiver, uuid::Uuid) {
    let receiver = Receiver::start(vec![Secret::standard(secret).unwrap()], turns).await;
    let endpoint = point_endpoint_at(db, endpoint, &receiver.url()).await;
    (receiver, endpoint)
}

/// What the receiver answered to each logged request, in order (`None`: it never answered).
fn answers(log: &[Received]) -> Vec<Option<u16>> {
    log.iter().map(|r| r.answered).collect()
}

/// Writes a business change (an audit row) and its webhook in one committed transaction.
async fn commit_business_change(
    db: &TestDb,
    endpoint: uuid::Uuid,
    payload: &serde_json::Value,
) -> String {
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    conn.transaction::<_, haven_db::Error, _>(async |c| {
        PgAuditLog::append_in(c, AuditEvent::new("user-1", "token.redeem", Severity::Info)).await?;
        PgWebhookOutbox::enqueue_in(c, endpoint, "token.redeemed", payload).await
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a4_a_receiver_failing_twice_then_succeeding_gets_exactly_one_accepted_delivery() {
    let capture = MetricsCapture::new();
    let _local = capture.set_local();
    let (db, outbox, created) = outbox_with_endpoint("a4").await;
    let old_secret = created.secret.clone();
    // Mid-rotation: every delivery carries a signature per active secret.
    let new_secret = outbox
        .rotate_secret(created.endpoint.id, Duration::from_secs(3600))
        .await
        .unwrap()
        .unwrap();
    let (receiver, endpoint) = start_receiver(
        &db,
        created.endpoint.id,
        &new_secret,
        vec![Turn::status(503), Turn::status(500)],
    )
    .await;

    let payload = serde_json::json!({"type": "token.redeemed", "data": {"amount": "10"}});
    let message = commit_business_change(&db, endpoint, &payload).await;
    let job = loopback_job(&outbox);

    let mut reports = Vec::new();
    for _ in 0..4 {
        reports.push(job.deliver_due().await.unwrap());
    }
    let report = |claimed, delivered, retried| DeliveryReport {
        claimed,
        delivered,
        retried,
        dead: 0,
        lost: 0,
        deferred: 0,
    };
    assert_eq!(
        reports,
        vec![
            report(1, 0, 1),
            report(1, 0, 1),
            report(1, 1, 0),
            report(0, 0, 0)
        ]
    );
    job.step().await.unwrap();
    assert_eq!(
        capture.counters(WEBHOOK_DELIVERIES),
        vec![
            (r#"outcome="delivered""#.to_owned(), 1),
            (r#"outcome="failed""#.to_owned(), 2)
        ],
        "one count per recorded attempt, under its outcome"
    );

    let log = receiver.log();
    assert_eq!(
        answers(&log),
        vec![Some(503), Some(500), Some(204)],
        "every attempt verified (no 401) and only the third was accepted"
    );
    assert_eq!(
        receiver.accepted(),
        vec![message.clone()],
        "exactly one accepted delivery"
    );
    for r in &log {
        assert_eq!(
            r.body,
            serde_json::to_vec(&payload).unwrap(),
            "the stored bytes are sent"
        );
        assert_eq!(r.headers["webhook-id"], message);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["webhook-signature"].split(' ').count(), 2);
    }
    standardwebhooks_accepts(&log, &new_secret);
    standardwebhooks_accepts(&log, &old_secret);

    let attempts = outbox.attempts(&message).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.attempt, a.status.as_str(), a.response_status))
            .collect::<Vec<_>>(),
        vec![
            (1, "failed", Some(503)),
            (2, "failed", Some(500)),
            (3, "delivered", Some(204))
        ]
    );
}

/// The endpoint is created before the receiver's port is known; tests point it there.
pub(crate) async fn point_endpoint_at(db: &TestDb, endpoint: uuid::Uuid, url: &str) -> uuid::Uuid {
    use diesel_async::RunQueryDsl as _;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let updated = diesel::sql_query("UPDATE webhook_endpoints SET url = $1 WHERE id = $2")
        .bind::<diesel::sql_types::Text, _>(url)
        .bind::<diesel::sql_types::Uuid, _>(endpoint)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(updated, 1);
    endpoint
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a4_a_crash_between_commit_and_send_still_delivers_exactly_once() {
    let (db, outbox, created) = outbox_with_endpoint("a4").await;
    let (receiver, endpoint) =
        start_receiver(&db, created.endpoint.id, &created.secret, vec![]).await;
    let payload = serde_json::json!({"type": "token.redeemed", "data": {"amount": "7"}});
    let message = commit_business_change(&db, endpoint, &payload).await;

    // A worker claims the attempt (its first step half) and dies before sending.
    let lease = Duration::from_millis(2000);
    let crashed = job(outbox.clone(), &loopback_config(), lease);
    let claims = crashed.outbox().claim_due(10, lease).await.unwrap();
    assert_eq!(claims.len(), 1);
    drop(claims);
    drop(crashed);

    // While the dead worker's lease lasts, nobody sends; afterwards a live worker does.
    let live = loopback_job(&outbox);
    assert_eq!(live.deliver_due().await.unwrap().claimed, 0);
    assert!(receiver.log().is_empty());
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let report = live.deliver_due().await.unwrap();
    assert_eq!((report.claimed, report.delivered), (1, 1));
    assert_eq!(live.deliver_due().await.unwrap().claimed, 0);

    assert_eq!(receiver.log().len(), 1, "sent once");
    assert_eq!(receiver.accepted(), vec![message.clone()]);
    let attempts = outbox.attempts(&message).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0].status.as_str(), attempts[0].claims),
        ("delivered", 2),
        "the same attempt, claimed twice, recorded once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_dropped_in_the_middle_of_a_send_is_retried_after_its_lease() {
    let (db, outbox, created) = outbox_with_endpoint("a4").await;
    let (receiver, endpoint) = start_receiver(
        &db,
        created.endpoint.id,
        &created.secret,
        vec![Turn::stall()],
    )
    .await;
    let message = commit_business_change(&db, endpoint, &serde_json::json!({"n": 1})).await;

    let lease = Duration::from_millis(800);
    let doomed = Arc::new(job(outbox.clone(), &loopback_config(), lease));
    let step = tokio::spawn({
        let doomed = doomed.clone();
        async move { doomed.step().await }
    });
    // Kill the step once the receiver holds its request.
    for _ in 0..1000 {
        if !receiver.log().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        receiver.log().len(),
        1,
        "the doomed step reached the receiver"
    );
    step.abort();
    assert!(step.await.unwrap_err().is_cancelled());

    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let live = loopback_job(&outbox);
    let report = live.deliver_due().await.unwrap();
    assert_eq!((report.claimed, report.delivered), (1, 1));
    assert_eq!(live.deliver_due().await.unwrap().claimed, 0);
    assert_eq!(answers(&receiver.log()), vec![None, Some(204)]);
    assert_eq!(receiver.accepted(), vec![message.clone()], "processed once");
    let attempts = outbox.attempts(&message).await.unwrap();
    assert_eq!(
        (
            attempts.len(),
            attempts[0].status.as_str(),
            attempts[0].claims
        ),
        (1, "delivered", 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_unless_allow_listed() {
    let (db, outbox, created) = outbox_with_endpoint("").await;
    let (receiver, endpoint) =
        start_receiver(&db, created.endpoint.id, &created.secret, vec![]).await;
    let message = commit_business_change(&db, endpoint, &serde_json::json!({})).await;

    // http allowed but loopback not allow-listed: refused, and recorded as a failure.
    let strict = WebhookDeliveryConfig {
        allow_http: true,
        ..WebhookDeliveryConfig::default()
    };
    let report = job(outbox.clone(), &strict, Duration::from_secs(60))
        .deliver_due()
        .await
        .unwrap();
    assert_eq!((report.claimed, report.retried), (1, 1));
    assert!(receiver.log().is_empty(), "nothing reached the receiver");
    let attempts = outbox.attempts(&message).await.unwrap();
    let error = attempts[0].error.as_deref().unwrap();
    assert!(error.contains("not public"), "{error}");

    // The default configuration refuses plain http as well.
    let https_only = WebhookDelivery::destinations(&WebhookDeliveryConfig::default());
    assert!(https_only.require_https && https_only.allow.is_empty());

    // Allow-listed: delivered.
    let report = loopback_job(&outbox).deliver_due().await.unwrap();
    assert_eq!((report.claimed, report.delivered), (1, 1));
    assert_eq!(receiver.accepted(), vec![message]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_last_attempt_is_counted_dead() {
    let capture = MetricsCapture::new();
    let _local = capture.set_local();
    let (db, outbox, created) = outbox_with_endpoint("").await;
    let (_receiver, endpoint) = start_receiver(
        &db,
        created.endpoint.id,
        &created.secret,
        vec![Turn::status(500)],
    )
    .await;
    commit_business_change(&db, endpoint, &serde_json::json!({})).await;
    let single_attempt = RetryPolicy {
        delays: Vec::new(),
        ..fast_policy()
    };
    let sender = HttpSender::new(
        WebhookDelivery::destinations(&loopback_config()),
        SenderConfig::default(),
    )
    .unwrap();
    let job = WebhookDelivery::new(outbox, sender, single_attempt);
    let report = job.deliver_due().await.unwrap();
    assert_eq!((report.claimed, report.dead), (1, 1), "{report:?}");
    assert_eq!(job.deliver_due().await.unwrap().claimed, 0);
    assert_eq!(
        capture.counters(WEBHOOK_DELIVERIES),
        vec![(r#"outcome="dead""#.to_owned(), 1)]
    );
}

/// The worker's own `/metrics` serves the delivery counts its job recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_serves_delivery_counts_on_metrics() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (db, outbox, created) = outbox_with_endpoint("").await;
    let (receiver, endpoint) =
        start_receiver(&db, created.endpoint.id, &created.secret, vec![]).await;

    let config = haven_worker::config::WorkerConfig::for_tests(
        db.url(),
        &haven_testkit::TestRedis::server_url(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let delivery = loopback_job(&outbox).every(Duration::from_millis(100));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(haven_worker::run_with_jobs(
        config,
        listener,
        vec![Arc::new(delivery)],
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let scrape = async || {
        let res = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        res.text().await.unwrap()
    };
    // Other tests in this binary deliver too: compare before and after.
    let before = delivered(&scrape().await);

    let message = commit_business_change(&db, endpoint, &serde_json::json!({"n": 2})).await;
    for _ in 0..100 {
        if !receiver.accepted().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.accepted(), vec![message]);
    // The outcome is recorded (and counted) just after the receiver answered.
    let mut text = scrape().await;
    for _ in 0..100 {
        if delivered(&text) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = scrape().await;
    }
    assert!(delivered(&text) > before, "{before} then {text}");
    for name in [
        "haven_webhook_deliveries_total",
        "haven_tokens_minted_total",
        "haven_tokens_burned_total",
        "haven_nonce_leases_outstanding",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} in {text}"
        );
    }

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), worker)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap();
}

/// `haven_webhook_deliveries_total{outcome="delivered"}` in a scrape, 0 when absent.
fn delivered(text: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(r#"haven_webhook_deliveries_total{outcome="delivered"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

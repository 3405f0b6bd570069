//! A4 through the worker's delivery job, real Postgres and a local HTTP receiver: a
//! receiver that fails twice then succeeds gets exactly one accepted delivery, signed so
//! that our verifier and the PyPI `standardwebhooks` package both accept it; a crash
//! between commit and send (or in the middle of a send) still delivers exactly once.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use haven_core::audit::{AuditEvent, Severity};
use haven_db::{PgAuditLog, PgWebhookOutbox};
use haven_testkit::TestDb;
use haven_webhooks::{
    HttpSender, MemoryReplayStore, RetryPolicy, Scheme, Secret, SenderConfig, Verifier, VerifyError,
};
use haven_worker::Job;
use haven_worker::config::WebhookDeliveryConfig;
use haven_worker::jobs::webhook_delivery::{DeliveryReport, WebhookDelivery};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
enum Turn {
    Status(u16),
    /// Read the request, never answer (the sender is killed meanwhile).
    Stall,
}

#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
    answered: Option<u16>,
}

/// A minimal HTTP/1.1 receiver: answers from a script, then 204. Like a careful receiver, it
/// verifies every request and processes (counts) a message only on its first verified 2xx.
struct Receiver {
    port: u16,
    log: Arc<Mutex<Vec<Received>>>,
    accepted: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(secret: &str, script: Vec<Turn>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let verifier = Arc::new(Verifier::new(
            "haven-outbound",
            Scheme::Standard,
            vec![Secret::standard(secret).unwrap()],
        ));
        let replay = Arc::new(MemoryReplayStore::new());
        let script = Arc::new(Mutex::new(script.into_iter()));
        let (log2, accepted2) = (log.clone(), accepted.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (log, accepted, verifier, replay, script) = (
                    log2.clone(),
                    accepted2.clone(),
                    verifier.clone(),
                    replay.clone(),
                    script.clone(),
                );
                tokio::spawn(async move {
                    let (headers, body) = read_request(&mut sock).await;
                    let mut map = http::HeaderMap::new();
                    for (k, v) in &headers {
                        map.insert(
                            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            v.parse().unwrap(),
                        );
                    }
                    let now = chrono::Utc::now().timestamp();
                    let turn = script.lock().unwrap().next();
                    let status = match (verifier.verify(&map, &body, now), turn) {
                        (Err(_), _) => Some(401),
                        (Ok(_), Some(Turn::Stall)) => None,
                        (Ok(_), Some(Turn::Status(s))) if !(200..300).contains(&s) => Some(s),
                        (Ok(_), _) => {
                            match verifier.verify_and_record(&map, &body, now, &*replay).await {
                                Ok(v) => {
                                    accepted.lock().unwrap().push(v.replay_id);
                                    Some(204)
                                }
                                Err(VerifyError::Duplicate { .. }) => Some(200),
                                Err(_) => Some(409),
                            }
                        }
                    };
                    log.lock().unwrap().push(Received {
                        headers,
                        body,
                        answered: status,
                    });
                    let Some(status) = status else {
                        // Hold the connection open until the test ends.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    };
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self {
            port,
            log,
            accepted,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    fn log(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> (HashMap<String, String>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the headers ended");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut headers = HashMap::new();
    for line in head.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers
        .get("content-length")
        .map_or(0, |v| v.parse().unwrap());
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    (headers, body)
}

/// Checks the deliveries with the independent `standardwebhooks` package, through the
/// script the webhooks crate's own tests use (`scripts/test-tools.sh` puts a Python with
/// the package first on `PATH`).
fn python_verifies(deliveries: &[Received], secret: &str) {
    let list: Vec<serde_json::Value> = deliveries
        .iter()
        .map(|d| {
            serde_json::json!({
                "secret": secret,
                "headers": d.headers,
                "body": String::from_utf8(d.body.clone()).unwrap(),
            })
        })
        .collect();
    let script = haven_testkit::workspace_root()
        .join("crates/webhooks/tests/scripts/standardwebhooks_verify.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent signature check");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&list).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "standardwebhooks rejected a delivery (exit {:?}; run `eval \"$(scripts/test-tools.sh --env)\"` if it is missing): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The configured destination check with loopback allow-listed, as the tests' config does.
fn loopback_config() -> WebhookDeliveryConfig {
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

fn job(
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
    let db = TestDb::new().await;
    let outbox = PgWebhookOutbox::new(haven_db::connect(db.url(), 4).await.unwrap());
    let created = outbox
        .create_endpoint("http://placeholder/", "a4")
        .await
        .unwrap();
    let old_secret = created.secret.clone();
    // Mid-rotation: every delivery carries a signature per active secret.
    let new_secret = outbox
        .rotate_secret(created.endpoint.id, Duration::from_secs(3600))
        .await
        .unwrap()
        .unwrap();
    let receiver = Receiver::start(&new_secret, vec![Turn::Status(503), Turn::Status(500)]).await;
    let endpoint = point_endpoint_at(&db, created.endpoint.id, &receiver.url()).await;

    let payload = serde_json::json!({"type": "token.redeemed", "data": {"amount": "10"}});
    let message = commit_business_change(&db, endpoint, &payload).await;
    let job = job(outbox.clone(), &loopback_config(), Duration::from_secs(60));

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

    let log = receiver.log();
    assert_eq!(
        log.iter().map(|r| r.answered).collect::<Vec<_>>(),
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
    python_verifies(&log, &new_secret);
    python_verifies(&log, &old_secret);

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
async fn point_endpoint_at(db: &TestDb, endpoint: uuid::Uuid, url: &str) -> uuid::Uuid {
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
    let db = TestDb::new().await;
    let outbox = PgWebhookOutbox::new(haven_db::connect(db.url(), 4).await.unwrap());
    let created = outbox
        .create_endpoint("http://placeholder/", "a4")
        .await
        .unwrap();
    let receiver = Receiver::start(&created.secret, vec![]).await;
    let endpoint = point_endpoint_at(&db, created.endpoint.id, &receiver.url()).await;
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
    let live = job(outbox.clone(), &loopback_config(), Duration::from_secs(60));
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
    let db = TestDb::new().await;
    let outbox = PgWebhookOutbox::new(haven_db::connect(db.url(), 4).await.unwrap());
    let created = outbox
        .create_endpoint("http://placeholder/", "a4")
        .await
        .unwrap();
    let receiver = Receiver::start(&created.secret, vec![Turn::Stall]).await;
    let endpoint = point_endpoint_at(&db, created.endpoint.id, &receiver.url()).await;
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
    let live = job(outbox.clone(), &loopback_config(), Duration::from_secs(60));
    let report = live.deliver_due().await.unwrap();
    assert_eq!((report.claimed, report.delivered), (1, 1));
    assert_eq!(live.deliver_due().await.unwrap().claimed, 0);
    assert_eq!(
        receiver
            .log()
            .iter()
            .map(|r| r.answered)
            .collect::<Vec<_>>(),
        vec![None, Some(204)]
    );
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
    let db = TestDb::new().await;
    let outbox = PgWebhookOutbox::new(haven_db::connect(db.url(), 4).await.unwrap());
    let created = outbox
        .create_endpoint("http://placeholder/", "")
        .await
        .unwrap();
    let receiver = Receiver::start(&created.secret, vec![]).await;
    let endpoint = point_endpoint_at(&db, created.endpoint.id, &receiver.url()).await;
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
    let report = job(outbox.clone(), &loopback_config(), Duration::from_secs(60))
        .deliver_due()
        .await
        .unwrap();
    assert_eq!((report.claimed, report.delivered), (1, 1));
    assert_eq!(receiver.accepted(), vec![message]);
}

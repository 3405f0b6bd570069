//! The fraud alert delivery job against a real database and a local webhook receiver:
//! exactly once after success, retry with backoff after a failure, no double delivery by
//! concurrent jobs.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use haven_db::PgAlertStore;
use haven_fraud::conformance::sample_alert;
use haven_fraud::{AlertSink, AlertStore, LogSink, Severity, StandardWebhookSigner, WebhookSink};
use haven_testkit::{StubRequest, StubResponse, StubServer, TestDb};
use haven_worker::Job;
use haven_worker::jobs::fraud_delivery::{DeliveryPolicy, FraudDelivery};
use secrecy::SecretString;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver got, and the status it answered.
#[derive(Debug, Clone)]
struct Hit {
    request: StubRequest,
    answered: u16,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.request.header(name).unwrap()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.request.body).unwrap()
    }
}

/// A webhook endpoint (the test kit's [`StubServer`]): answers the queued statuses in
/// order, then 200.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    _server: StubServer,
}

impl Receiver {
    async fn spawn(statuses: Vec<u16>) -> Self {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let statuses = Mutex::new(VecDeque::from(statuses));
        let log = hits.clone();
        let server = StubServer::start(move |request| {
            let status = statuses.lock().unwrap().pop_front().unwrap_or(200);
            log.lock().unwrap().push(Hit {
                request: request.clone(),
                answered: status,
            });
            StubResponse::status(status)
        })
        .await;
        Self {
            url: format!("{}/alerts", server.url()),
            hits,
            _server: server,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

fn policy() -> DeliveryPolicy {
    DeliveryPolicy {
        batch: 4,
        concurrency: 2,
        max_attempts: 3,
        backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(1),
        lease: Duration::from_secs(60),
    }
}

async fn job(db: &TestDb, receiver: &Receiver) -> FraudDelivery {
    haven_testkit::install_crypto_provider();
    let pool = haven_db::connect(db.url(), 4).await.unwrap();
    let signer =
        StandardWebhookSigner::from_secret(&SecretString::from(SECRET.to_owned())).unwrap();
    let sinks: Vec<Arc<dyn AlertSink>> = vec![
        Arc::new(LogSink),
        Arc::new(WebhookSink::new(&receiver.url, Arc::new(signer)).unwrap()),
    ];
    FraudDelivery::new(PgAlertStore::new(pool), sinks, policy())
}

async fn store(db: &TestDb) -> PgAlertStore {
    PgAlertStore::new(haven_db::connect(db.url(), 4).await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_is_delivered_exactly_once_across_two_steps() {
    let db = TestDb::new().await;
    let receiver = Receiver::spawn(vec![]).await;
    let store = store(&db).await;
    let alert = sample_alert("alice", "velocity", Severity::High, 0);
    assert!(store.insert(&alert).await.unwrap());
    let job = job(&db, &receiver).await;

    job.step().await.unwrap();
    job.step().await.unwrap();

    let hits = receiver.hits();
    assert_eq!(
        hits.len(),
        1,
        "delivered once, not again on the second step"
    );
    let hit = &hits[0];
    assert_eq!(hit.json()["type"], "fraud.alert");
    assert_eq!(hit.json()["data"]["id"], alert.id.to_string());
    let msg_id = format!("msg_{}", alert.id.simple());
    assert_eq!(hit.header("webhook-id"), msg_id);
    let signer =
        StandardWebhookSigner::from_secret(&SecretString::from(SECRET.to_owned())).unwrap();
    let ts: i64 = hit.header("webhook-timestamp").parse().unwrap();
    assert_eq!(
        hit.header("webhook-signature"),
        signer.signature(&msg_id, ts, &hit.request.body),
        "the webhook is signed over the bytes received"
    );

    let state = store.delivery_state(alert.id).await.unwrap().unwrap();
    assert!(state.delivered_at.is_some());
    assert_eq!(state.delivery_attempts, 1);
    assert_eq!(
        state.delivered_sinks,
        vec!["log".to_owned(), "webhook".to_owned()]
    );
    assert_eq!(state.last_delivery_error, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_answering_500_gets_the_alert_again_later() {
    let db = TestDb::new().await;
    let receiver = Receiver::spawn(vec![500]).await;
    let store = store(&db).await;
    let alert = sample_alert("bob", "unusual_amount", Severity::Medium, 0);
    store.insert(&alert).await.unwrap();
    let job = job(&db, &receiver).await;

    job.step().await.unwrap();
    assert_eq!(receiver.hits().len(), 1);
    assert_eq!(receiver.hits()[0].answered, 500);
    let state = store.delivery_state(alert.id).await.unwrap().unwrap();
    assert_eq!(state.delivered_at, None);
    assert_eq!(state.delivery_attempts, 1);
    assert!(
        state
            .last_delivery_error
            .as_deref()
            .is_some_and(|e| e.contains("webhook") && e.contains("500")),
        "{state:?}"
    );
    assert_eq!(
        state.delivered_sinks,
        vec!["log".to_owned()],
        "log accepted it"
    );

    // Not yet due: the retry waits for its backoff.
    job.step().await.unwrap();
    assert_eq!(receiver.hits().len(), 1, "no retry before the backoff");

    let wait = (state.next_attempt_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    assert!(wait <= Duration::from_secs(1), "backoff of 1 s: {wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    job.step().await.unwrap();
    job.step().await.unwrap();

    let hits = receiver.hits();
    assert_eq!(hits.len(), 2, "one retry, then nothing more");
    assert_eq!(hits[1].answered, 200);
    assert_eq!(hits[0].header("webhook-id"), hits[1].header("webhook-id"));
    let state = store.delivery_state(alert.id).await.unwrap().unwrap();
    assert!(state.delivered_at.is_some());
    assert_eq!(state.delivery_attempts, 2);
    assert_eq!(
        state.delivered_sinks,
        vec!["log".to_owned(), "webhook".to_owned()],
        "the log sink was not repeated on the retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_jobs_never_deliver_the_same_alert() {
    let db = TestDb::new().await;
    let receiver = Receiver::spawn(vec![]).await;
    let store = store(&db).await;
    let mut ids = HashSet::new();
    for i in 0..40 {
        let alert = sample_alert(&format!("user{i}"), "velocity", Severity::High, i);
        ids.insert(alert.id.to_string());
        store.insert(&alert).await.unwrap();
    }
    let a = job(&db, &receiver).await;
    let b = job(&db, &receiver).await;
    let (ra, rb) = tokio::join!(a.step(), b.step());
    ra.unwrap();
    rb.unwrap();
    let (ra, rb) = tokio::join!(a.step(), b.step());
    ra.unwrap();
    rb.unwrap();

    let hits = receiver.hits();
    let delivered: Vec<String> = hits
        .iter()
        .map(|h| h.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    let unique: HashSet<String> = delivered.iter().cloned().collect();
    assert_eq!(delivered.len(), 40, "each alert delivered once");
    assert_eq!(unique, ids);
    for id in &ids {
        let state = store
            .delivery_state(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(state.delivered_at.is_some(), "{id}");
        assert_eq!(state.delivery_attempts, 1, "{id}");
    }
}

//! The `Idempotency-Key` middleware over a real Redis store, through real HTTP: concurrent
//! duplicates run the handler once, replays are byte-identical, misuse gets its error code.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage, HttpResponse, HttpServer, web};
use haven_api::idempotency::{self, IdempotencyGate, PrincipalId};
use haven_testkit::TestRedis;
use haven_webhooks::{IdempotencyConfig, IdempotencyStore, RedisIdempotencyStore};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Counter {
    runs: Arc<AtomicUsize>,
    /// Answer 503 on the first run (a failure that must release the key).
    fail_first: bool,
}

async fn pay(counter: web::Data<Counter>, body: web::Json<Value>) -> HttpResponse {
    let run = counter.runs.fetch_add(1, Ordering::SeqCst) + 1;
    // Hold the key long enough for the concurrent duplicates to arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    if counter.fail_first && run == 1 {
        return HttpResponse::ServiceUnavailable().json(json!({"error": "SERVICE_UNAVAILABLE"}));
    }
    HttpResponse::Created()
        .insert_header(("location", format!("/payments/{run}")))
        .insert_header(("x-not-stored", "1"))
        .json(json!({"payment": run, "amount": body["amount"], "nonce": uuid::Uuid::new_v4()}))
}

/// Test stand-in for authentication: the principal comes from a header.
async fn principal(
    req: actix_web::dev::ServiceRequest,
    next: Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if let Some(p) = req
        .headers()
        .get("x-test-principal")
        .and_then(|v| v.to_str().ok())
    {
        req.extensions_mut().insert(PrincipalId(p.to_owned()));
    }
    next.call(req).await
}

/// Serves `/pay` (key required) and `/note` (key optional) on a thread of its own.
fn serve(store: Arc<dyn IdempotencyStore>, counter: Counter) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let gate = web::Data::new(IdempotencyGate::new(store, IdempotencyConfig::default()));
    let counter = web::Data::new(counter);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new()
                    .app_data(gate.clone())
                    .app_data(counter.clone())
                    .wrap(from_fn(principal))
                    .service(
                        web::resource("/pay")
                            .wrap(from_fn(idempotency::required))
                            .post(pay),
                    )
                    .service(
                        web::resource("/note")
                            .wrap(from_fn(idempotency::optional))
                            .post(pay),
                    )
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        });
    });
    format!("http://127.0.0.1:{port}")
}

async fn redis_store() -> (TestRedis, Arc<dyn IdempotencyStore>) {
    let redis = TestRedis::new().await;
    let store = Arc::new(RedisIdempotencyStore::new(redis.pool(), redis.prefix()));
    (redis, store)
}

async fn post(
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut req = reqwest::Client::new().post(url).json(body);
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.unwrap().to_vec())
}

fn code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_duplicates_run_the_handler_once() {
    let (_redis, store) = redis_store().await;
    let counter = Counter::default();
    let base = serve(store, counter.clone());
    let url = format!("{base}/pay");
    let body = json!({"amount": "12.50"});

    let requests = (0..100).map(|_| {
        let (url, body) = (url.clone(), body.clone());
        tokio::spawn(async move { post(&url, Some("pay-0001-abcd"), &body).await })
    });
    let mut created = Vec::new();
    let mut in_use = 0;
    for r in futures::future::join_all(requests).await {
        let (status, headers, bytes) = r.unwrap();
        match status {
            201 => created.push((headers, bytes)),
            409 => {
                assert_eq!(code(&bytes), "IDEMPOTENCY_KEY_IN_USE");
                in_use += 1;
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&bytes)),
        }
    }
    assert_eq!(
        counter.runs.load(Ordering::SeqCst),
        1,
        "the handler ran once"
    );
    assert!(!created.is_empty());
    assert_eq!(created.len() + in_use, 100);

    // A later retry replays the stored response byte for byte, flagged as a replay.
    let (status, headers, bytes) = post(&url, Some("pay-0001-abcd"), &body).await;
    assert_eq!(status, 201);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(headers["location"], "/payments/1");
    assert!(
        headers.get("x-not-stored").is_none(),
        "only the chosen headers are kept"
    );
    let original = created
        .iter()
        .find(|(h, _)| h.get("idempotent-replayed").is_none())
        .expect("the original response");
    assert_eq!(bytes, original.1, "byte-identical replay");
    for (_, other) in &created {
        assert_eq!(other, &bytes);
    }
    assert_eq!(counter.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn misuse_gets_its_error_code_and_runs_nothing() {
    let (_redis, store) = redis_store().await;
    let counter = Counter::default();
    let base = serve(store, counter.clone());
    let url = format!("{base}/pay");

    let (status, _, bytes) = post(&url, Some("reuse-key-0001"), &json!({"amount": "1"})).await;
    assert_eq!(status, 201);
    // Same key, different body.
    let (status, _, bytes2) = post(&url, Some("reuse-key-0001"), &json!({"amount": "2"})).await;
    assert_eq!(
        (status, code(&bytes2).as_str()),
        (422, "IDEMPOTENCY_KEY_REUSED")
    );
    // No key on a route that requires one.
    let (status, _, body) = post(&url, None, &json!({"amount": "1"})).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "IDEMPOTENCY_KEY_REQUIRED")
    );
    // Malformed keys: too short, bad characters.
    for bad in ["short", "has space inside", "semi;colon-key"] {
        let (status, _, body) = post(&url, Some(bad), &json!({"amount": "1"})).await;
        assert_eq!(
            (status, code(&body).as_str()),
            (400, "INVALID_IDEMPOTENCY_KEY"),
            "{bad}"
        );
    }
    assert_eq!(
        counter.runs.load(Ordering::SeqCst),
        1,
        "only the first request ran"
    );
    assert!(!bytes.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_body_key_works_and_the_header_wins() {
    let (_redis, store) = redis_store().await;
    let counter = Counter::default();
    let base = serve(store, counter.clone());
    let url = format!("{base}/pay");
    let body = json!({"amount": "5", "idempotency_key": "body-key-0001"});
    let (first, _, one) = post(&url, None, &body).await;
    let (second, headers, two) = post(&url, None, &body).await;
    assert_eq!((first, second), (201, 201));
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(one, two);
    // The header names another key: a new request.
    let (third, headers, _) = post(&url, Some("header-key-0001"), &body).await;
    assert_eq!(third, 201);
    assert!(headers.get("idempotent-replayed").is_none());
    assert_eq!(counter.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_releases_the_key_for_a_retry() {
    let (_redis, store) = redis_store().await;
    let counter = Counter {
        fail_first: true,
        ..Counter::default()
    };
    let base = serve(store, counter.clone());
    let url = format!("{base}/pay");
    let body = json!({"amount": "7"});
    let (status, _, _) = post(&url, Some("retry-after-503"), &body).await;
    assert_eq!(status, 503);
    let (status, headers, _) = post(&url, Some("retry-after-503"), &body).await;
    assert_eq!(status, 201, "the key was released, the retry ran");
    assert!(headers.get("idempotent-replayed").is_none());
    assert_eq!(counter.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_scoped_by_principal_and_optional_routes_run_without_one() {
    let (_redis, store) = redis_store().await;
    let counter = Counter::default();
    let base = serve(store, counter.clone());
    let client = reqwest::Client::new();
    for who in ["alice", "bob"] {
        let res = client
            .post(format!("{base}/pay"))
            .header("idempotency-key", "shared-key-0001")
            .header("x-test-principal", who)
            .json(&json!({"amount": "3"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        assert!(res.headers().get("idempotent-replayed").is_none(), "{who}");
    }
    assert_eq!(counter.runs.load(Ordering::SeqCst), 2);

    let (a, _, _) = post(&format!("{base}/note"), None, &json!({"amount": "1"})).await;
    let (b, _, _) = post(&format!("{base}/note"), None, &json!({"amount": "1"})).await;
    assert_eq!((a, b), (201, 201));
    assert_eq!(
        counter.runs.load(Ordering::SeqCst),
        4,
        "no key: no protection, both ran"
    );
}

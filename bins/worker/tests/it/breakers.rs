//! The worker's breakers are the replicas' shared breakers: listed on its `/health` and
//! `/metrics`, moved by an operator action through any api replica.

use std::time::{Duration, Instant};

use haven_api::testing::spawn_api_with;
use haven_testkit::{RedisServer, TestDb};
use haven_worker::config::WorkerConfig;
use serde_json::Value;

async fn eth_rpc_on_health(port: u16) -> Value {
    let body: Value = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "eth_rpc")
        .cloned()
        .unwrap_or_else(|| panic!("no eth_rpc on the worker's /health: {body}"))
}

async fn admin_token(db: &TestDb) -> String {
    let admin = haven_db::UserRepo::new(haven_db::connect(db.url(), 2).await.unwrap())
        .create(haven_db::NewUser {
            email: format!("{}@example.com", uuid::Uuid::new_v4().simple()),
            password_hash: None,
            role: haven_db::Role::Admin,
        })
        .await
        .unwrap()
        .id;
    haven_auth::Jwt::new(
        haven_auth::JwtConfig::new("haven", "haven-api"),
        haven_auth::Keyring::new(
            haven_auth::SigningKey::hs256("k1", haven_api::config::auth::DEV_JWT_SECRET.as_bytes())
                .unwrap(),
        ),
    )
    .issue_access(admin, haven_auth::Role::Admin, chrono::Utc::now())
    .unwrap()
    .as_str()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_reports_the_shared_eth_rpc_breaker_an_api_replica_forced_open() {
    haven_testkit::install_crypto_provider();
    let mut redis = RedisServer::spawn();
    let prefix = format!("haven:test:{}:", uuid::Uuid::new_v4().simple());
    let (url, api_prefix) = (redis.url(), prefix.clone());
    let api = spawn_api_with(move |c| {
        c.common.redis_url = url.into();
        c.auth.redis_prefix = api_prefix;
    })
    .await;
    // the api has no node breaker of its own; this one is the worker's, by name
    api.breakers.get_or_create("eth_rpc").unwrap();

    let db = TestDb::new().await;
    let mut config = WorkerConfig::for_tests(db.url(), &redis.url());
    config.redis_prefix = prefix;
    let breakers = std::sync::Arc::new(haven_worker::breaker_registry(&config).unwrap());
    breakers.get_or_create("eth_rpc").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(haven_worker::run_with_breakers(
        config,
        listener,
        Vec::new(),
        breakers,
        async move {
            let _ = stopped.await;
        },
    ));
    let until = |within: Duration, check: fn(&Value) -> bool| async move {
        let started = Instant::now();
        loop {
            if let Ok(b) =
                tokio::time::timeout(Duration::from_secs(1), eth_rpc_on_health(port)).await
            {
                if check(&b) {
                    return b;
                }
                assert!(started.elapsed() < within, "not within {within:?}: {b}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    until(Duration::from_secs(5), |b| b["shared"] == true).await;

    let res = reqwest::Client::new()
        .post(api.url("/api/v1/admin/health/circuit-breakers/eth_rpc/force-open"))
        .bearer_auth(admin_token(&api.db).await)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    until(Duration::from_secs(1), |b| b["state"] == "FORCED_OPEN").await;
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"haven_breaker_state{breaker="eth_rpc"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"haven_breaker_transitions_total{breaker="eth_rpc",from="CLOSED",to="FORCED_OPEN"}"#
        ),
        "{metrics}"
    );

    // Without Redis the worker decides alone, keeping the last shared state.
    redis.stop();
    let local = until(Duration::from_secs(3), |b| b["shared"] == false).await;
    assert_eq!(local["degraded"], true, "{local}");
    assert_eq!(local["state"], "FORCED_OPEN", "{local}");
    redis.restart();
    until(Duration::from_secs(3), |b| b["shared"] == true).await;

    let _ = stop.send(());
    worker.await.unwrap().unwrap();
}

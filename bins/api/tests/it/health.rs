use haven_api::testing::{spawn_api, spawn_api_with};
use haven_testkit::{RedisServer, TestRedis};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn health_and_ready_name_both_dependencies() {
    let api = spawn_api().await;
    let client = reqwest::Client::new();
    let res = client.get(api.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    let res = client.get(api.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    for dep in ["postgres", "redis"] {
        assert_eq!(body["checks"][dep]["status"], "up", "{body}");
        assert!(body["checks"][dep]["latency_ms"].is_number(), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_is_503_naming_redis_when_redis_stops() {
    let mut redis = RedisServer::spawn();
    let url = redis.url();
    let api = spawn_api_with(|c| c.common.redis_url = url.clone().into()).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(api.url("/ready")).send().await.unwrap().status(),
        200
    );

    redis.stop();
    let res = client.get(api.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["down"], serde_json::json!(["redis"]), "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "down");
    assert_eq!(body["checks"]["postgres"]["status"], "up");
    // Liveness does not depend on Redis.
    assert_eq!(
        client
            .get(api.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    redis.restart();
    let res = client.get(api.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 200, "recovers when Redis is back");
    drop(TestRedis::server_url());
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_finishes() {
    let api = spawn_api().await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(api.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let port = api.port;
    api.shutdown().await.unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

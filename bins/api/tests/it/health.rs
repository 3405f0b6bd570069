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

/// `/ready` reports the node — chain id, latest block and its age, through the shared
/// `eth_rpc` breaker listed on `/health` — without making the api unready when it is down.
#[tokio::test(flavor = "multi_thread")]
async fn ready_reports_the_node_without_depending_on_it() {
    let anvil = haven_testkit::Anvil::spawn();
    let endpoint = anvil.endpoint();
    let api = spawn_api_with(move |c| c.common.eth_rpc_url = endpoint).await;
    let get = |url: String| async move {
        let res = reqwest::get(url).await.unwrap();
        let status = res.status();
        (status, res.json::<Value>().await.unwrap())
    };
    let (status, body) = get(api.url("/ready")).await;
    assert_eq!(status, 200, "{body}");
    let rpc = &body["checks"]["rpc"];
    assert_eq!(rpc["status"], "up", "{body}");
    assert_eq!(rpc["chain_id"], haven_testkit::Anvil::CHAIN_ID, "{body}");
    assert!(rpc["latest_block"].is_u64(), "{body}");
    let age = rpc["block_age_secs"].as_i64().unwrap();
    assert!((-5..600).contains(&age), "a fresh node's block age: {age}");
    assert_eq!(body["degraded"], serde_json::json!([]), "{body}");
    let (_, health) = get(api.url("/health")).await;
    let names: Vec<&str> = health["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert!(names.contains(&"eth_rpc"), "{health}");

    let api = spawn_api_with(|c| c.common.eth_rpc_url = "http://127.0.0.1:9".into()).await;
    let (status, body) = get(api.url("/ready")).await;
    assert_eq!(
        status, 200,
        "the node does not make the api unready: {body}"
    );
    assert_eq!(body["checks"]["rpc"]["status"], "down", "{body}");
    assert_eq!(body["degraded"], serde_json::json!(["rpc"]), "{body}");
    assert_eq!(body["down"], serde_json::json!([]), "{body}");

    api.breakers
        .get("eth_rpc")
        .unwrap()
        .force_open()
        .await
        .unwrap();
    let (_, body) = get(api.url("/ready")).await;
    assert_eq!(body["checks"]["rpc"]["status"], "circuit_open", "{body}");
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

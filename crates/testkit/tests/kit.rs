//! The kit's own helpers against the real services.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use haven_testkit::{Anvil, TestRedis};

#[tokio::test]
async fn redis_prefix_is_isolated_and_cleaned() {
    let redis = TestRedis::new().await;
    let url = redis.url().to_owned();
    let key = redis.key("a");
    let mut conn = redis.pool().get().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(redis.key_count(), 1);
    drop(conn);
    drop(redis);
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_connection().unwrap();
    let exists: bool = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
    assert!(!exists, "key survived cleanup");
}

#[test]
fn anvil_answers_and_stops() {
    let mut anvil = Anvil::spawn();
    let chain = anvil.rpc("eth_chainId", serde_json::json!([]));
    assert_eq!(chain, "0x7a69");
    let port = anvil.port();
    anvil.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    anvil.restart();
    assert_eq!(anvil.rpc("eth_blockNumber", serde_json::json!([])), "0x0");
}

#[test]
fn private_redis_server_stops_and_restarts() {
    let mut server = haven_testkit::RedisServer::spawn();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .unwrap();
    server.stop();
    assert!(client.get_connection().is_err());
    server.restart();
    let mut conn = client.get_connection().unwrap();
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut conn).unwrap();
    assert_eq!(v, None, "a restarted server starts empty");
}

//! The kit's own helpers against the real services.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_databases_are_isolated_and_fast() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    // Warm the template so the clones below are measured alone.
    drop(haven_testkit::TestDb::new().await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let db = haven_testkit::TestDb::new().await;
            let took = started.elapsed();
            let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
            diesel::sql_query(format!(
                "INSERT INTO users (id, email, role) VALUES (gen_random_uuid(), 'u{i}@example.com', 'viewer')"
            ))
            .execute(&mut conn)
            .await
            .unwrap();
            let count = diesel::sql_query("SELECT 1 FROM users").execute(&mut conn).await.unwrap();
            assert_eq!(count, 1, "each database sees only its own rows");
            (db, took)
        }));
    }
    let mut took = Vec::new();
    let mut names = std::collections::HashSet::new();
    for task in tasks {
        let (db, t) = task.await.unwrap();
        assert!(names.insert(db.name().to_owned()));
        took.push(t);
    }
    took.sort();
    eprintln!(
        "per-test database creation, 20 in parallel: median {:?}, max {:?}",
        took[10], took[19]
    );
}

#[tokio::test]
async fn a_clone_is_timed_and_dropped_afterwards() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    drop(haven_testkit::TestDb::new().await);
    let started = std::time::Instant::now();
    let db = haven_testkit::TestDb::new().await;
    let took = started.elapsed();
    // The figure goes to docs/BENCHMARKS.md; timing is never asserted in tests.
    eprintln!("TestDb creation took {took:?}");
    let name = db.name().to_owned();
    drop(db);
    let mut conn = AsyncPgConnection::establish(&haven_testkit::TestDb::server_url())
        .await
        .unwrap();
    let left = diesel::sql_query(format!(
        "SELECT 1 FROM pg_database WHERE datname = '{name}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(left, 0, "the test database was not dropped");
}

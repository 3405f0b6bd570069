//! What replicas share: circuit breakers (through Redis, local while it is down).

use std::time::{Duration, Instant};

use haven_api::testing::{TestApi, spawn_api_with};
use haven_testkit::RedisServer;

use crate::support::ApiProcess;
use serde_json::Value;

const BREAKER: &str = "price:primary";

/// Two replicas on one Redis and one key prefix, each with the `price:primary` breaker.
async fn two_replicas(redis_url: &str) -> (TestApi, TestApi) {
    let prefix = format!("haven:test:{}:", uuid::Uuid::new_v4().simple());
    let replica = || {
        let (url, prefix) = (redis_url.to_owned(), prefix.clone());
        spawn_api_with(move |c| {
            c.common.redis_url = url.into();
            c.auth.redis_prefix = prefix;
            // never called here; configuring it is what creates the breaker
            c.treasury.price_primary_url = Some("http://127.0.0.1:9/".into());
        })
    };
    (replica().await, replica().await)
}

async fn breaker_on_health(api: &TestApi) -> Value {
    let body: Value = reqwest::get(api.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == BREAKER)
        .cloned()
        .unwrap_or_else(|| panic!("no {BREAKER} on /health: {body}"))
}

/// Polls `/health` of `api` until `check` holds for the breaker, for at most `within`.
async fn until(api: &TestApi, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let breaker = breaker_on_health(api).await;
        if check(&breaker) {
            return breaker;
        }
        assert!(
            started.elapsed() < within,
            "not within {within:?}: {breaker}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn breakers_are_shared_fall_back_to_local_state_without_redis_and_share_again() {
    haven_testkit::install_crypto_provider();
    let mut redis = RedisServer::spawn();
    let (a, b) = two_replicas(&redis.url()).await;
    let shared = |v: &Value| v["shared"] == true && v["degraded"] == false;
    until(&a, Duration::from_secs(3), shared).await;
    until(&b, Duration::from_secs(3), shared).await;

    // A transition through one replica is what the other reports.
    a.breakers.get(BREAKER).unwrap().force_open().await.unwrap();
    until(&b, Duration::from_secs(1), |v| v["state"] == "FORCED_OPEN").await;
    a.breakers.get(BREAKER).unwrap().reset().await.unwrap();
    until(&b, Duration::from_secs(1), |v| v["state"] == "CLOSED").await;

    redis.stop();
    let local = |v: &Value| v["shared"] == false && v["degraded"] == true;
    let on_a = until(&a, Duration::from_secs(3), local).await;
    until(&b, Duration::from_secs(3), local).await;
    assert_eq!(on_a["state"], "CLOSED", "the last shared state is kept");
    // An operator action cannot reach the other replicas now, so it is refused.
    let refused = a.breakers.get(BREAKER).unwrap().force_open().await;
    assert!(refused.is_err(), "{refused:?}");
    // Still deciding locally: calls are admitted.
    let permit = a.breakers.get(BREAKER).unwrap().acquire().await;
    assert!(permit.is_ok(), "a local fallback admits calls while CLOSED");

    redis.restart();
    until(&a, Duration::from_secs(3), shared).await;
    until(&b, Duration::from_secs(3), shared).await;
    b.breakers.get(BREAKER).unwrap().force_open().await.unwrap();
    until(&a, Duration::from_secs(1), |v| v["state"] == "FORCED_OPEN").await;
}

/// An admin's access token from the development signer both processes trust.
async fn admin_token(db: &haven_testkit::TestDb) -> String {
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    let admin = haven_db::UserRepo::new(pool)
        .create(haven_db::NewUser {
            email: format!("{}@example.com", uuid::Uuid::new_v4().simple()),
            password_hash: None,
            role: haven_db::Role::Admin,
        })
        .await
        .unwrap()
        .id;
    crate::support::dev_jwt("k1")
        .issue_access(admin, haven_auth::Role::Admin, chrono::Utc::now())
        .unwrap()
        .as_str()
        .to_owned()
}

/// The `haven-worker` binary next to this package's `haven-api` (a workspace test run builds
/// both); built on demand when this package's tests run alone.
fn worker_binary() -> std::path::PathBuf {
    let worker =
        std::path::Path::new(env!("CARGO_BIN_EXE_haven-api")).with_file_name("haven-worker");
    if !worker.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "haven-worker", "--bin", "haven-worker"])
            .status()
            .unwrap();
        assert!(status.success(), "building haven-worker");
    }
    worker
}

/// The real `haven-worker` binary as its own process; killed when dropped.
struct WorkerProcess {
    child: std::process::Child,
    port: u16,
}

impl WorkerProcess {
    fn start(db: &haven_testkit::TestDb, env: &[(&str, String)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(worker_binary())
            .env_remove("HAVEN_CONFIG")
            .env("HAVEN_ENV", "test")
            .env("DATABASE_URL", db.url())
            .env("HAVEN_WORKER_ADDR", format!("127.0.0.1:{port}"))
            .env("HAVEN_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Self { child, port }
    }

    /// The worker's `eth_rpc` breaker on its `/health` (`None` until it answers).
    async fn eth_rpc(&self) -> Option<Value> {
        let body: Value = reqwest::get(format!("http://127.0.0.1:{}/health", self.port))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["breakers"]
            .as_array()?
            .iter()
            .find(|b| b["name"] == "eth_rpc")
            .cloned()
    }

    /// Waits (up to `within`) until the worker's `eth_rpc` is in `state`, shared.
    async fn until_eth_rpc(&self, state: &str, within: Duration) {
        let started = Instant::now();
        loop {
            let now = self.eth_rpc().await;
            if now
                .as_ref()
                .is_some_and(|b| b["state"] == state && b["shared"] == true)
            {
                return;
            }
            assert!(
                started.elapsed() < within,
                "the worker's eth_rpc is not {state} within {within:?}: {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Point 6: two `haven-api` processes and a `haven-worker` on one Postgres and one Redis act
/// as one service: a breaker transition, a rate-limit budget and an API key revocation made
/// through one replica hold on the other, and the node's breaker moved through an api
/// replica holds on the worker.
#[tokio::test(flavor = "multi_thread")]
async fn two_api_processes_share_breakers_rate_limits_and_key_revocations() {
    haven_testkit::install_crypto_provider();
    let redis = RedisServer::spawn();
    let db = haven_testkit::TestDb::new().await;
    let env = [
        ("REDIS_URL", redis.url()),
        (
            "HAVEN_REDIS_PREFIX",
            format!("haven:test:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("HAVEN_PRICE_PRIMARY_URL", "http://127.0.0.1:9/".to_owned()),
        ("HAVEN_RATE_LIMIT_PUBLIC_PER_MIN", "4".to_owned()),
    ];
    let worker = WorkerProcess::start(&db, &env);
    let a = ApiProcess::start(&db, &env).await;
    let b = ApiProcess::start(&db, &env).await;
    let http = reqwest::Client::new();
    let bearer = format!("Bearer {}", admin_token(&db).await);
    worker
        .until_eth_rpc("CLOSED", Duration::from_secs(60))
        .await;

    // (a) A breaker forced open through A is reported open by B within 1 s.
    let res = http
        .post(a.url("/api/v1/admin/health/circuit-breakers/price:primary/force-open"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let forced = Instant::now();
    loop {
        let body: Value = http
            .get(b.url("/api/v1/admin/health/circuit-breakers"))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let on_b = body["breakers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == BREAKER)
            .cloned()
            .unwrap_or_else(|| panic!("no {BREAKER} on B: {body}"));
        if on_b["state"] == "FORCED_OPEN" {
            assert_eq!(on_b["shared"], true, "{on_b}");
            break;
        }
        assert!(forced.elapsed() < Duration::from_secs(1), "B: {on_b}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The node's breaker, forced open through A, holds on the worker within 1 s, and a
    // reset through B reaches it too.
    let transition = |api: &ApiProcess, action: &str| {
        http.post(api.url(&format!(
            "/api/v1/admin/health/circuit-breakers/eth_rpc/{action}"
        )))
        .header("authorization", &bearer)
        .send()
    };
    assert_eq!(transition(&a, "force-open").await.unwrap().status(), 200);
    worker
        .until_eth_rpc("FORCED_OPEN", Duration::from_secs(1))
        .await;
    assert_eq!(transition(&b, "reset").await.unwrap().status(), 200);
    worker.until_eth_rpc("CLOSED", Duration::from_secs(1)).await;

    // (b) The public budget (4 a minute) spent on A is refused on B.
    let validate = |api: &ApiProcess| {
        http.post(api.url("/api/v1/addresses/validate"))
            .json(&serde_json::json!({"chain": "evm", "address": "0x0"}))
            .send()
    };
    for _ in 0..4 {
        assert_eq!(validate(&a).await.unwrap().status(), 200);
    }
    let refused = validate(&b).await.unwrap();
    assert_eq!(refused.status(), 429, "the budget spent on A holds on B");
    assert!(refused.headers().contains_key("retry-after"));

    // (c) An API key revoked on A fails on B within the key cache's 30 s.
    let created: Value = http
        .post(a.url("/api/v1/api-keys"))
        .header("authorization", &bearer)
        .json(&serde_json::json!({"name": "replicas", "scopes": ["transactions:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let whoami = |api: &ApiProcess| {
        http.get(api.url("/api/v1/auth/whoami"))
            .header("x-api-key", &key)
            .send()
    };
    // B validates (and caches) the key before A revokes it.
    assert_eq!(whoami(&b).await.unwrap().status(), 200);
    let res = http
        .delete(a.url(&format!(
            "/api/v1/api-keys/{}",
            created["id"].as_str().unwrap()
        )))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let revoked = Instant::now();
    loop {
        let status = whoami(&b).await.unwrap().status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked.elapsed() < Duration::from_secs(31),
            "B still accepts the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

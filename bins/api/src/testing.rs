//! The real api on port 0 with a fresh database, for tests and benchmarks (feature
//! `test-utils`).

use haven_testkit::{TestDb, TestRedis};

use crate::config::ApiConfig;

/// The real api serving on a free port with a fresh database; stopped when dropped.
#[derive(Debug)]
pub struct TestApi {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The port.
    pub port: u16,
    /// The api's database.
    pub db: TestDb,
    /// The api's Redis key prefix (sessions, lockout, idempotency keys, rate-limit buckets
    /// all live under it), removed when the test ends.
    pub redis: TestRedis,
    /// The app's circuit breakers: register one to see it on `/health`, `/metrics` and the
    /// admin breaker routes.
    pub breakers: std::sync::Arc<haven_resilience::BreakerRegistry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow_like::Result>>,
}

mod anyhow_like {
    pub type Result = std::result::Result<(), String>;
}

impl TestApi {
    /// `address + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn shutdown(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await.map_err(|e| e.to_string())?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the api on port 0 with a fresh database and the local Redis.
pub async fn spawn_api() -> TestApi {
    spawn_api_with(|_| {}).await
}

/// Like [`spawn_api`], letting the test adjust the configuration first.
pub async fn spawn_api_with(adjust: impl FnOnce(&mut ApiConfig)) -> TestApi {
    spawn_api_on(TestDb::new().await, adjust).await
}

/// Like [`spawn_api_with`], on a database the test prepared (wallets, a deployed token, …).
pub async fn spawn_api_on(db: TestDb, adjust: impl FnOnce(&mut ApiConfig)) -> TestApi {
    haven_testkit::install_crypto_provider();
    let redis = TestRedis::new().await;
    let mut config = ApiConfig::for_tests(db.url(), redis.url());
    // everything the api keeps in Redis goes under the test's own prefix
    config.auth.redis_prefix = redis.prefix().to_owned();
    config.rate_limits.key_prefix = format!("{}ratelimit:", redis.prefix());
    adjust(&mut config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a test port: {e}"));
    let app = crate::Application::build(config, listener)
        .unwrap_or_else(|e| panic!("the api did not build: {e:#}"));
    let port = app.port();
    let breakers = app.breakers();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async move {
            let _ = stopped.await;
        })
        .await
        .map_err(|e| format!("{e:#}"))
    });
    TestApi {
        address: format!("http://127.0.0.1:{port}"),
        port,
        db,
        redis,
        breakers,
        stop: Some(stop),
        server: Some(server),
    }
}

use deadpool_redis::{Config, Pool, Runtime};

/// An isolated slice of the local Redis: every key a test writes should start with
/// [`TestRedis::prefix`]. The keys are deleted when the value is dropped.
///
/// The server comes from `REDIS_URL` (default `redis://127.0.0.1:6379`).
pub struct TestRedis {
    url: String,
    prefix: String,
    pool: Pool,
}

impl std::fmt::Debug for TestRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRedis")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl TestRedis {
    /// Connects (panicking with a hint if Redis is down) and picks a random prefix.
    pub async fn new() -> Self {
        let url = Self::server_url();
        let pool = Config::from_url(url.clone())
            .create_pool(Some(Runtime::Tokio1))
            .unwrap_or_else(|e| panic!("bad REDIS_URL {url}: {e}"));
        // A reachable server answers; a busy one (another test saturating it) may miss the
        // client's connect or response timeout, so a timed-out connection or PING is retried
        // for up to a minute before the test gives up. A refused connection fails at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let retry = |timed_out: bool| timed_out && std::time::Instant::now() < deadline;
        loop {
            let mut conn = match pool.get().await {
                Ok(conn) => conn,
                Err(e) if retry(pool_timed_out(&e)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
                Err(e) => panic!("cannot reach Redis at {url}: {e}; {}", crate::START_HINT),
            };
            match redis::cmd("PING").query_async::<String>(&mut conn).await {
                Ok(pong) => {
                    assert_eq!(pong, "PONG");
                    break;
                }
                Err(e) if retry(e.is_timeout()) => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => panic!("Redis at {url} does not answer PING: {e}"),
            }
        }
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        Self { url, prefix, pool }
    }

    /// `REDIS_URL` or the local default.
    pub fn server_url() -> String {
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key prefix reserved for this test, e.g. `test:3f2a…:`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `prefix + name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A pool on the server (cheap to clone).
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    /// Number of keys currently under the prefix.
    pub fn key_count(&self) -> usize {
        scan_keys(&self.url, &self.prefix).len()
    }
}

fn scan_keys(url: &str, prefix: &str) -> Vec<String> {
    let Ok(client) = redis::Client::open(url) else {
        return Vec::new();
    };
    let Ok(mut conn) = client.get_connection() else {
        return Vec::new();
    };
    let pattern = format!("{prefix}*");
    let iter: redis::RedisResult<redis::Iter<'_, String>> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(&pattern)
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(&mut conn);
    match iter {
        Ok(keys) => keys.filter_map(Result::ok).collect(),
        Err(_) => Vec::new(),
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let url = self.url.clone();
        let prefix = self.prefix.clone();
        // A plain thread: Drop may run inside a runtime, where blocking is not allowed.
        let cleanup = std::thread::spawn(move || {
            let keys = scan_keys(&url, &prefix);
            if keys.is_empty() {
                return;
            }
            if let Ok(mut conn) = redis::Client::open(url.as_str()).and_then(|c| c.get_connection())
            {
                for chunk in keys.chunks(500) {
                    let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
                }
            }
        });
        let _ = cleanup.join();
    }
}

/// Whether taking a connection failed only because the server was too slow to answer.
fn pool_timed_out(error: &deadpool_redis::PoolError) -> bool {
    match error {
        deadpool_redis::PoolError::Timeout(_) => true,
        deadpool_redis::PoolError::Backend(e) => e.is_timeout(),
        _ => false,
    }
}

//! Distributed GCRA limiter decisions per second against plain Redis `INCR` at the same
//! concurrency, plus `redis-benchmark -t incr` with the same number of clients, all in one
//! run. Uses the Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`).

use std::num::NonZeroU32;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deadpool_redis::{Config, Pool, PoolConfig, Runtime};
use haven_resilience::{DistributedLimiter, RateQuota};

const CONCURRENCY: usize = 50;
const PREFIX: &str = "bench:resilience:";

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn pool() -> Pool {
    let mut config = Config::from_url(redis_url());
    config.pool = Some(PoolConfig::new(CONCURRENCY));
    config
        .create_pool(Some(Runtime::Tokio1))
        .unwrap_or_else(|e| panic!("pool: {e}"))
}

/// Runs `iters` operations spread over `CONCURRENCY` tasks and returns the wall time.
async fn concurrent<F, Fut>(iters: u64, op: Arc<F>) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let per_task = iters.div_ceil(CONCURRENCY as u64);
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|task| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                for _ in 0..per_task {
                    op(task).await;
                }
            })
        })
        .collect();
    for t in tasks {
        // a failed operation panicked its task: the measurement is void
        t.await
            .unwrap_or_else(|e| panic!("a benchmark task failed: {e}"));
    }
    // Normalise to exactly `iters` operations.
    start
        .elapsed()
        .mul_f64(iters as f64 / (per_task * CONCURRENCY as u64) as f64)
}

fn redis_benchmark_incr() -> Option<String> {
    let url = url::Url::parse(&redis_url()).ok()?;
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            url.host_str()?,
            "-p",
            &url.port().unwrap_or(6379).to_string(),
        ])
        .args([
            "-t",
            "incr",
            "-c",
            &CONCURRENCY.to_string(),
            "-n",
            "200000",
            "-q",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split('\r')
        .flat_map(|s| s.lines())
        .rfind(|l| l.starts_with("INCR:") && l.contains("requests per second"))
        .map(|l| l.trim().to_owned())
}

fn decisions(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let pool = pool();
    let quota = RateQuota::new(
        NonZeroU32::MIN.saturating_add(999_999),
        Duration::from_secs(1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let limiter = Arc::new(
        DistributedLimiter::new(pool.clone(), PREFIX, quota, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let keys: Arc<Vec<String>> = Arc::new((0..CONCURRENCY).map(|i| format!("k{i}")).collect());

    let mut group = c.benchmark_group(format!("distributed_limiter_c{CONCURRENCY}"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("redis_incr", |b| {
        let pool = pool.clone();
        let keys = Arc::clone(&keys);
        b.to_async(&rt).iter_custom(move |iters| {
            let pool = pool.clone();
            let keys = Arc::clone(&keys);
            concurrent(
                iters,
                Arc::new(move |task: usize| {
                    let pool = pool.clone();
                    let key = format!("{PREFIX}incr:{}", keys[task]);
                    async move {
                        let mut conn = pool
                            .get()
                            .await
                            .unwrap_or_else(|e| panic!("no Redis connection: {e}"));
                        let _: i64 = redis::cmd("INCR")
                            .arg(&key)
                            .query_async(&mut conn)
                            .await
                            .unwrap_or_else(|e| panic!("INCR failed: {e}"));
                    }
                }),
            )
        })
    });
    group.bench_function("gcra_lua_decision", |b| {
        let limiter = Arc::clone(&limiter);
        let keys = Arc::clone(&keys);
        b.to_async(&rt).iter_custom(move |iters| {
            let limiter = Arc::clone(&limiter);
            let keys = Arc::clone(&keys);
            concurrent(
                iters,
                Arc::new(move |task: usize| {
                    let limiter = Arc::clone(&limiter);
                    let keys = Arc::clone(&keys);
                    async move {
                        // an error is not a decision: timing it would flatter the limiter
                        limiter
                            .check(&keys[task])
                            .await
                            .unwrap_or_else(|e| panic!("the limiter's Redis call failed: {e}"));
                    }
                }),
            )
        })
    });
    group.finish();

    match redis_benchmark_incr() {
        Some(line) => println!("baseline redis-benchmark -t incr -c {CONCURRENCY}: {line}"),
        None => println!("baseline redis-benchmark -t incr: not available"),
    }
    rt.block_on(async {
        if let Ok(mut conn) = pool.get().await {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{PREFIX}*"))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> =
                    redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
            }
        }
    });
}

criterion_group!(benches, decisions);
criterion_main!(benches);

//! Reserve + commit throughput on Redis with 64 concurrent clients, against two baselines
//! measured in the same run: `redis-benchmark -t incr -c 64` (the server's ceiling for one
//! tiny command per operation) and the seed design, a distributed lock around GET + SET.
//!
//! `cargo bench -p haven-nonce --bench reserve` (Redis from `REDIS_URL`, default
//! `redis://127.0.0.1:6379`; `redis-benchmark` on `PATH`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deadpool_redis::{Pool, PoolConfig, Runtime};
use haven_nonce::conformance::fresh_key;
use haven_nonce::{NonceKey, NonceStore, RedisNonceStore};
use haven_testkit::TestRedis;

const CLIENTS: usize = 64;
/// Operations per client per criterion iteration.
const OPS_PER_CLIENT: u64 = 50;
const OPS: u64 = CLIENTS as u64 * OPS_PER_CLIENT;
const LEASE_TTL: Duration = Duration::from_secs(30);

fn pool(url: &str) -> Pool {
    let mut config = deadpool_redis::Config::from_url(url);
    config.pool = Some(PoolConfig::new(CLIENTS));
    config.create_pool(Some(Runtime::Tokio1)).unwrap()
}

/// Runs `op` on `CLIENTS` concurrent tasks, `per_client` times each; returns the wall time.
async fn run_clients<F, Fut>(per_client: u64, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let op = op.clone();
            tokio::spawn(async move {
                for _ in 0..per_client {
                    op(client).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

async fn reserve_commit(store: &RedisNonceStore, key: &NonceKey) {
    let lease = store.reserve(key, LEASE_TTL).await.unwrap();
    store.commit(&lease).await.unwrap();
}

/// The seed's design: `SET lock NX PX` (retried at once while held), GET, SET, then a
/// compare-and-delete unlock. Retrying immediately is its best case; redis-py's `Lock`
/// sleeps 0.1 s between attempts by default.
async fn lock_get_set_unlock(pool: &Pool, counter: &str, lock: &str, unlock: &redis::Script) {
    let mut conn = pool.get().await.unwrap();
    let token = uuid::Uuid::new_v4().simple().to_string();
    loop {
        let acquired: Option<String> = redis::cmd("SET")
            .arg(lock)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        if acquired.is_some() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let current: Option<u64> = redis::cmd("GET")
        .arg(counter)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(counter)
        .arg(current.unwrap_or(0) + 1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = unlock
        .key(lock)
        .arg(&token)
        .invoke_async(&mut conn)
        .await
        .unwrap();
}

/// `redis-benchmark -t incr -c 64 -n <n>`: the time it would take at its reported rate.
fn redis_benchmark_incr(url: &str, n: u64) -> Duration {
    let parsed = url::Url::parse(url).unwrap();
    let output = Command::new("redis-benchmark")
        .args(["-h", parsed.host_str().unwrap_or("127.0.0.1")])
        .args(["-p", &parsed.port().unwrap_or(6379).to_string()])
        .args([
            "-t",
            "incr",
            "-c",
            &CLIENTS.to_string(),
            "-n",
            &n.to_string(),
            "--csv",
        ])
        .output()
        .expect("redis-benchmark on PATH");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rps: f64 = stdout
        .lines()
        .find(|l| l.starts_with("\"INCR\""))
        .and_then(|l| l.split(',').nth(1))
        .map(|v| v.trim_matches('"').parse().unwrap())
        .unwrap_or_else(|| panic!("cannot parse redis-benchmark output: {stdout}"));
    Duration::from_secs_f64(n as f64 / rps)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = rt.block_on(TestRedis::new());
    let pool = pool(redis.url());
    let store = RedisNonceStore::new(pool.clone(), redis.prefix());
    let unlock = redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    );

    let mut group = c.benchmark_group("nonce_64_clients");
    group.throughput(Throughput::Elements(OPS));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("redis_benchmark_incr", |b| {
        b.iter_custom(|iters| redis_benchmark_incr(redis.url(), iters * OPS));
    });

    // The same client stack as the store: one multiplexed connection shared by all tasks.
    let mux = rt.block_on(async { deadpool_redis::Connection::take(pool.get().await.unwrap()) });
    group.bench_function("client_incr", |b| {
        let counter = redis.key("incr");
        b.to_async(&rt).iter_custom(|iters| {
            let (mux, counter) = (mux.clone(), counter.clone());
            async move {
                run_clients(iters * OPS_PER_CLIENT, move |_| {
                    let (mut conn, counter) = (mux.clone(), counter.clone());
                    async move {
                        let _: u64 = redis::cmd("INCR")
                            .arg(&counter)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                    }
                })
                .await
            }
        });
    });

    group.bench_function("haven_reserve_commit", |b| {
        let key = fresh_key();
        b.to_async(&rt).iter_custom(|iters| {
            let store = store.clone();
            async move {
                run_clients(iters * OPS_PER_CLIENT, move |_| {
                    let store = store.clone();
                    async move { reserve_commit(&store, &key).await }
                })
                .await
            }
        });
    });

    group.bench_function("seed_lock_get_set_unlock", |b| {
        let (counter, lock) = (redis.key("seed:nonce"), redis.key("seed:lock"));
        b.to_async(&rt).iter_custom(|iters| {
            let (pool, counter, lock, unlock) =
                (pool.clone(), counter.clone(), lock.clone(), unlock.clone());
            async move {
                // The seed design serialises every client on one lock: run a tenth of the
                // operations and scale the time up.
                let per_client = (iters * OPS_PER_CLIENT / 10).max(1);
                let elapsed = run_clients(per_client, move |_| {
                    let (pool, counter, lock, unlock) =
                        (pool.clone(), counter.clone(), lock.clone(), unlock.clone());
                    async move { lock_get_set_unlock(&pool, &counter, &lock, &unlock).await }
                })
                .await;
                elapsed.mul_f64((iters * OPS_PER_CLIENT) as f64 / per_client as f64)
            }
        });
    });
    group.finish();
    drop(redis);
}

criterion_group!(benches, bench);
criterion_main!(benches);

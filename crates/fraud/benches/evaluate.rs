//! Evaluation throughput and latency with a large history, memory and Redis stores.
//!
//! For each store the same default rule set evaluates fresh events twice in one run: against
//! an empty store (the baseline) and after `FRAUD_BENCH_HISTORY` events (default 1,000,000)
//! of history spread over 10,000 users and 24 hours of event time. Criterion reports the
//! mean/median time per evaluation; a second pass of `FRAUD_BENCH_SAMPLES` sequential
//! evaluations (default 20,000) prints p50/p99/max latency and throughput, and the history
//! load itself gives the concurrent throughput. The floor for Redis is measured in the same
//! run: one bare `PING` round trip on the same server, sampled the same way.
//!
//! `cargo bench -p haven-fraud --bench evaluate`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use criterion::Criterion;
use haven_fraud::{
    Amount, AuthFailureEvent, DEFAULT_RULES, Engine, Event, GasSampleEvent, MemoryWindowStore,
    PaymentEvent, RedisWindowStore, Rules, WindowStore,
};
use haven_testkit::RedisServer;

const USERS: i64 = 10_000;
const HISTORY_SPAN_MS: i64 = 24 * 3600 * 1000;

fn env_or(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// A deterministic mix: 70 % purchases, 20 % transfers, 7 % auth failures, 3 % gas samples.
fn event(i: i64, ts_ms: i64, tag: &str) -> Event {
    let ts = t0() + chrono::Duration::milliseconds(ts_ms);
    let user = format!("user{}", (i.wrapping_mul(7919)).rem_euclid(USERS));
    let amount = Amount::from_whole(1_000 + (i.rem_euclid(997) as u64) * 1_000);
    let id = format!("{tag}{i}");
    match i.rem_euclid(100) {
        0..70 => Event::Purchase(PaymentEvent {
            event_id: id,
            user,
            amount,
            currency: "NGN".into(),
            destination: None,
            ts,
        }),
        70..90 => Event::Transfer(PaymentEvent {
            event_id: id,
            user,
            amount,
            currency: "NGN".into(),
            destination: Some(format!("0x{:040x}", i.rem_euclid(50_000))),
            ts,
        }),
        90..97 => Event::AuthFailure(AuthFailureEvent {
            event_id: id,
            principal: user,
            ip: format!("10.{}.{}.{}", i % 200, (i / 200) % 250, i % 250)
                .parse()
                .unwrap(),
            ts,
        }),
        _ => Event::GasSample(GasSampleEvent {
            event_id: id,
            chain: format!("chain{}", i % 4),
            wei: 20_000_000_000 + i128::from(i % 10) * 1_000_000_000,
            ts,
        }),
    }
}

/// Loads `n` events of history with `tasks` concurrent evaluators; returns events/s.
async fn load_history(engine: &Arc<Engine>, n: i64, tasks: i64) -> f64 {
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let engine = engine.clone();
        handles.push(tokio::spawn(async move {
            let mut i = t;
            while i < n {
                // Event time spread evenly over the history span, in order per task.
                let ts = i * HISTORY_SPAN_MS / n.max(1);
                engine.evaluate(&event(i, ts, "h")).await.unwrap();
                i += tasks;
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

struct Case {
    name: String,
    engine: Arc<Engine>,
    /// Next event index and event time for fresh events.
    next: Arc<AtomicI64>,
}

impl Case {
    fn fresh(&self) -> Event {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        // Fresh events continue after the history, 10 ms apart in event time.
        event(i, HISTORY_SPAN_MS + i * 10, "f")
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn main() {
    let history = env_or("FRAUD_BENCH_HISTORY", 1_000_000);
    let samples = env_or("FRAUD_BENCH_SAMPLES", 20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // A private server: the shared one is busy with other test suites, whose key scans would
    // also slow down (and be slowed by) a million keys of history.
    let server = RedisServer::spawn();
    let mut config = deadpool_redis::Config::from_url(server.url());
    config.pool = Some(deadpool_redis::PoolConfig::new(32));
    let pool = config
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let rules = Arc::new(Rules::from_toml(DEFAULT_RULES).unwrap());

    let mut cases = Vec::new();
    let mut loads = Vec::new();
    for (store_name, with_history) in [
        ("memory", false),
        ("memory", true),
        ("redis", false),
        ("redis", true),
    ] {
        let label = if with_history {
            format!("{store_name}/history={history}")
        } else {
            format!("{store_name}/empty")
        };
        let store: Arc<dyn WindowStore> = match store_name {
            "memory" => Arc::new(MemoryWindowStore::new()),
            _ => Arc::new(RedisWindowStore::new(pool.clone())),
        };
        let engine =
            Arc::new(Engine::new(rules.clone(), store).with_key_prefix(format!("bench:{label}:")));
        if with_history {
            let rate = rt.block_on(load_history(&engine, history, 32));
            eprintln!("{label}: history loaded at {rate:.0} events/s (32 concurrent evaluators)");
            loads.push((label.clone(), rate));
        }
        cases.push(Case {
            name: label,
            engine,
            next: Arc::new(AtomicI64::new(0)),
        });
    }

    let mut criterion = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    {
        let mut group = criterion.benchmark_group("evaluate");
        for case in &cases {
            group.bench_function(&case.name, |b| {
                b.to_async(&rt).iter(|| {
                    let event = case.fresh();
                    let engine = case.engine.clone();
                    async move { engine.evaluate(&event).await.unwrap() }
                });
            });
        }
        group.finish();
    }
    criterion.final_summary();

    println!("\n| case | samples | p50 | p99 | max | sequential events/s |");
    println!("|---|---|---|---|---|---|");
    for case in &cases {
        let mut latencies = Vec::with_capacity(samples as usize);
        let started = Instant::now();
        rt.block_on(async {
            for _ in 0..samples {
                let event = case.fresh();
                let t = Instant::now();
                case.engine.evaluate(&event).await.unwrap();
                latencies.push(t.elapsed());
            }
        });
        let total = started.elapsed();
        latencies.sort_unstable();
        println!(
            "| {} | {} | {:.1} µs | {:.1} µs | {:.1} µs | {:.0} |",
            case.name,
            samples,
            percentile(&latencies, 0.50).as_secs_f64() * 1e6,
            percentile(&latencies, 0.99).as_secs_f64() * 1e6,
            latencies.last().unwrap().as_secs_f64() * 1e6,
            samples as f64 / total.as_secs_f64(),
        );
    }
    // The floor of any Redis-backed evaluation: one round trip, same server, same machine.
    let mut conn = deadpool_redis::Connection::take(rt.block_on(pool.get()).unwrap());
    let mut latencies = Vec::with_capacity(samples as usize);
    let started = Instant::now();
    rt.block_on(async {
        for _ in 0..samples {
            let t = Instant::now();
            let _: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
            latencies.push(t.elapsed());
        }
    });
    let total = started.elapsed();
    latencies.sort_unstable();
    println!(
        "| redis PING, one round trip (floor) | {} | {:.1} µs | {:.1} µs | {:.1} µs | {:.0} |",
        samples,
        percentile(&latencies, 0.50).as_secs_f64() * 1e6,
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        latencies.last().unwrap().as_secs_f64() * 1e6,
        samples as f64 / total.as_secs_f64(),
    );
    drop(conn);

    println!("\n| history load | events/s (32 concurrent evaluators) |");
    println!("|---|---|");
    for (label, rate) in loads {
        println!("| {label} | {rate:.0} |");
    }
    drop(cases);
    drop(pool);
    // The private server is killed on drop, with all its keys.
    drop(server);
}

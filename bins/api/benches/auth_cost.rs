//! The cost of authentication (A7): requests/s and latency of an authenticated no-op,
//! `GET /api/v1/auth/whoami` with an API key and with a JWT, against two unauthenticated
//! baselines, all in the same run on the same server: `GET /health` (exempt from the rate
//! limiter: the bare server) and `POST /api/v1/addresses/validate` (a cheap public route that
//! passes the per-IP limiter in Redis, as the authenticated routes pass the per-principal one).
//!
//! `cargo bench -p haven-api --bench auth_cost` (Postgres and Redis from `DATABASE_URL` /
//! `REDIS_URL`, as for the tests). `AUTH_BENCH_SECS` sets the seconds per measurement
//! (default 3), `AUTH_BENCH_CLIENTS` the concurrent keep-alive clients (default 8).
//!
//! The scenarios run interleaved in rounds (baseline, API key, JWT, baseline, …) so that a
//! change of machine load hits all of them alike; each figure is the median over the rounds.
//! The limits are set high enough never to refuse. Against the second baseline the difference
//! is authentication: the API key's format check, HMAC and cache lookup; the JWT's signature
//! check and its deny-list / not-before lookup in Postgres.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use chrono::Utc;
use haven_api::config::auth::DEV_JWT_SECRET;
use haven_api::testing::{TestApi, spawn_api_with};
use haven_auth::{Jwt, JwtConfig, Keyring, Role, SigningKey};
use serde_json::{Value, json};

const ROUNDS: usize = 3;

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    path: &'static str,
}

struct Sample {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `clients` keep-alive clients against `url` with `header` for `secs`; every answer
/// must be 200.
async fn measure(
    url: String,
    header: Option<(String, String)>,
    body: Option<Value>,
    clients: u64,
    secs: u64,
) -> Sample {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.clone();
            let header = header.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let mut req = match &body {
                        Some(body) => client.post(&url).json(body),
                        None => client.get(&url),
                    };
                    if let Some((name, value)) = &header {
                        req = req.header(name, value);
                    }
                    let t = Instant::now();
                    let res = req.send().await.unwrap();
                    let status = res.status();
                    res.bytes().await.unwrap();
                    latencies.push(t.elapsed());
                    assert_eq!(status, 200, "{url}");
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let at = |q: f64| all[((all.len() as f64 - 1.0) * q) as usize];
    Sample {
        rps: all.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn credentials(api: &TestApi) -> (String, String) {
    let pool = haven_db::connect(api.db.url(), 2).await.unwrap();
    let user = haven_db::UserRepo::new(pool)
        .create(haven_db::NewUser {
            email: "bench@example.com".into(),
            password_hash: None,
            role: haven_db::Role::Admin,
        })
        .await
        .unwrap()
        .id;
    let jwt = Jwt::new(
        JwtConfig::new("haven", "haven-api"),
        Keyring::new(SigningKey::hs256("k1", DEV_JWT_SECRET.as_bytes()).unwrap()),
    )
    .issue_access(user, Role::Admin, Utc::now())
    .unwrap();
    let bearer = format!("Bearer {}", jwt.as_str());
    let created: Value = reqwest::Client::new()
        .post(api.url("/api/v1/api-keys"))
        .header("authorization", &bearer)
        .json(&json!({"name": "bench", "scopes": ["addresses:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().expect("created key").to_owned();
    (bearer, key)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let secs = env_or("AUTH_BENCH_SECS", 3);
        let clients = env_or("AUTH_BENCH_CLIENTS", 8);
        let plenty = NonZeroU32::new(10_000_000).unwrap();
        let api = spawn_api_with(|c| {
            c.rate_limits.public_per_min = plenty;
            c.rate_limits.authenticated_per_min = plenty;
        })
        .await;
        let (bearer, key) = credentials(&api).await;
        let scenarios = [
            Scenario {
                name: "GET /health (no auth, no limiter)",
                path: "/health",
            },
            Scenario {
                name: "POST /api/v1/addresses/validate (no auth)",
                path: "/api/v1/addresses/validate",
            },
            Scenario {
                name: "GET /api/v1/auth/whoami (X-API-Key)",
                path: "/api/v1/auth/whoami",
            },
            Scenario {
                name: "GET /api/v1/auth/whoami (Bearer JWT)",
                path: "/api/v1/auth/whoami",
            },
        ];
        let header = |i: usize| match i {
            2 => Some(("x-api-key".to_owned(), key.clone())),
            3 => Some(("authorization".to_owned(), bearer.clone())),
            _ => None,
        };
        let body = |i: usize| {
            (i == 1).then(|| json!({"chain": "evm", "address": "0x52908400098527886E0F7030069857D2E4169EE7"}))
        };
        // Warm-up: connections, the key cache, the database pool.
        for (i, s) in scenarios.iter().enumerate() {
            measure(api.url(s.path), header(i), body(i), clients, 1).await;
        }
        let mut samples: Vec<Vec<Sample>> = scenarios.iter().map(|_| Vec::new()).collect();
        for _ in 0..ROUNDS {
            for (i, s) in scenarios.iter().enumerate() {
                samples[i].push(
                    measure(api.url(s.path), header(i), body(i), clients, secs).await,
                );
            }
        }
        println!(
            "auth_cost: {clients} clients, {ROUNDS} rounds x {secs} s per scenario, medians over rounds"
        );
        println!(
            "{:<44} {:>8} {:>8} {:>8} {:>10} {:>10}",
            "scenario", "req/s", "p50 ms", "p99 ms", "vs health", "vs public"
        );
        let base = median(samples[0].iter().map(|s| s.rps).collect());
        let public = median(samples[1].iter().map(|s| s.rps).collect());
        for (s, runs) in scenarios.iter().zip(&samples) {
            let rps = median(runs.iter().map(|r| r.rps).collect());
            let p50 = median(runs.iter().map(|r| r.p50.as_secs_f64() * 1e3).collect());
            let p99 = median(runs.iter().map(|r| r.p99.as_secs_f64() * 1e3).collect());
            println!(
                "{:<44} {:>8.0} {:>8.2} {:>8.2} {:>10.2} {:>10.2}",
                s.name,
                rps,
                p50,
                p99,
                rps / base,
                rps / public
            );
        }
        api.shutdown().await.unwrap();
    });
}

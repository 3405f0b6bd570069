#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod breakers;
mod chain_monitor;
mod chaos;
mod cli;
mod console;
mod dependency_breakers;
mod fraud_delivery;
mod inbound_relay;
mod jobs;
mod jobs_processes;
mod readme_config;
mod rewards;
mod rewards_property;
mod rewards_webhooks;
mod stack;
mod token_api;
mod vault_expiry;
mod vault_withdrawals;
mod webhook_delivery;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use haven_testkit::{TestDb, TestRedis};
use haven_worker::Job;

struct Counting(Arc<AtomicU64>);

impl Job for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            if n == 1 {
                anyhow::bail!("second step fails with password=hunter2");
            }
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_jobs_reports_them_and_stops_cleanly() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = TestDb::new().await;
    let mut config =
        haven_worker::config::WorkerConfig::for_tests(db.url(), &TestRedis::server_url());
    config.tick_secs = 1;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let steps = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(haven_worker::run_with_jobs(
        config,
        listener,
        vec![Arc::new(Counting(steps.clone()))],
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{base}/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Wait (bounded) for the failing second step to be reported.
    let mut jobs = serde_json::Value::Null;
    for _ in 0..100 {
        jobs = client
            .get(format!("{base}/jobs"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if jobs[0]["failures"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(jobs[0]["name"], "counting");
    assert_eq!(jobs[0]["failures"], 1, "{jobs}");
    let last_error = jobs[0]["last_error"].as_str().unwrap();
    assert!(!last_error.contains("hunter2"), "{last_error}");

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(15), worker)
        .await
        .expect("the worker stops within its drain timeout")
        .unwrap()
        .unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

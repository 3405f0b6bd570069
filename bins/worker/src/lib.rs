//! The haven background worker.
//!
//! [`run`] starts the periodic jobs and a small HTTP listener (`/health`, `/ready`,
//! `/jobs`, and `/metrics` in the Prometheus text format, see [`metrics`]) and stops both cleanly when the shutdown future resolves: a job that is running
//! finishes its current step, no new step starts.

pub mod config;
pub mod jobs;
pub mod metrics;

use std::future::Future;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use futures::future::BoxFuture;
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::sync::watch;

use crate::config::WorkerConfig;

/// A periodic job: one `step` per tick.
pub trait Job: Send + Sync + 'static {
    /// A stable name for logs and `/jobs`.
    fn name(&self) -> &'static str;
    /// Does one unit of work. Errors are logged and the job runs again at the next tick.
    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>>;
    /// Its own tick; `None` runs it every `HAVEN_WORKER_TICK_SECS`.
    fn interval(&self) -> Option<Duration> {
        None
    }
}

/// What `/jobs` reports for one job.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStatus {
    /// Job name.
    pub name: &'static str,
    /// Completed steps.
    pub runs: u64,
    /// Failed steps.
    pub failures: u64,
    /// The last failure, redacted.
    pub last_error: Option<String>,
}

#[derive(Clone)]
struct WorkerState {
    db: haven_db::PgPool,
    redis: deadpool_redis::Pool,
    jobs: Arc<Mutex<Vec<JobStatus>>>,
}

/// Installs rustls' `ring` provider as the process's TLS crypto provider unless one is
/// installed already. The libraries never choose it; [`run`] and [`run_with_jobs`] call this
/// before any job builds a client.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // a concurrent install that won the race is just as good
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Runs the worker with the given jobs until `shutdown` resolves.
pub async fn run_with_jobs(
    config: WorkerConfig,
    listener: TcpListener,
    jobs: Vec<Arc<dyn Job>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    install_crypto_provider();
    let db = haven_db::connect_lazy(
        config.common.database_url.expose_secret(),
        config.common.db_pool_size,
    )
    .context("DATABASE_URL")?;
    let redis = haven_service::probe::redis_pool(config.common.redis_url.expose_secret(), 4)
        .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
    // Before the first job step, so nothing a job records is lost.
    crate::metrics::install();
    let statuses = Arc::new(Mutex::new(
        jobs.iter()
            .map(|j| JobStatus {
                name: j.name(),
                ..JobStatus::default()
            })
            .collect::<Vec<_>>(),
    ));
    let state = WorkerState {
        db,
        redis,
        jobs: statuses.clone(),
    };
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .service(web::resource("/health").get(health))
            .service(web::resource("/ready").get(ready))
            .service(web::resource("/jobs").get(job_list))
            .service(web::resource("/metrics").get(crate::metrics::render))
    })
    .listen(listener)?
    .disable_signals()
    .workers(1)
    .shutdown_timeout(10)
    .run();
    let server_handle = server.handle();
    tracing::info!(port, jobs = jobs.len(), "worker listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let tick = Duration::from_secs(config.tick_secs);
    let mut runners = Vec::new();
    for (index, job) in jobs.into_iter().enumerate() {
        let every = job.interval().unwrap_or(tick);
        runners.push(tokio::spawn(drive(
            job,
            index,
            every,
            statuses.clone(),
            stop_rx.clone(),
        )));
    }
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        server_handle.stop(true).await;
    });
    server.await?;
    for runner in runners {
        let _ = runner.await;
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// Runs the worker with its standard jobs until `shutdown` resolves.
pub async fn run(
    config: WorkerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // before any job builds its HTTP clients
    install_crypto_provider();
    let mut jobs: Vec<Arc<dyn Job>> = Vec::new();
    let alerts_db = haven_db::connect_lazy(config.common.database_url.expose_secret(), 4)
        .context("DATABASE_URL")?;
    jobs.push(Arc::new(
        crate::jobs::fraud_delivery::FraudDelivery::from_config(&config.fraud, alerts_db)
            .context("fraud alert delivery settings")?,
    ));
    let webhooks_db = haven_db::connect_lazy(config.common.database_url.expose_secret(), 4)
        .context("DATABASE_URL")?;
    jobs.push(Arc::new(
        crate::jobs::webhook_delivery::WebhookDelivery::from_config(&config.webhooks, webhooks_db)
            .context("webhook delivery settings")?,
    ));
    if config.inbound_relay.routes.is_empty() {
        tracing::info!("inbound_relay job is off: HAVEN_INBOUND_RELAY is unset");
    } else {
        let pool = haven_db::connect_lazy(config.common.database_url.expose_secret(), 2)
            .context("DATABASE_URL")?;
        jobs.push(Arc::new(crate::jobs::inbound_relay::InboundRelay::new(
            &config.inbound_relay,
            pool,
        )));
    }
    match config.chain.settings() {
        Ok(settings) => {
            // The rewards job works on many rewards at once, each step a few queries: the
            // chain pipeline and the ledger get the configured pool size.
            let pool = haven_db::connect_lazy(
                config.common.database_url.expose_secret(),
                config.common.db_pool_size,
            )
            .context("DATABASE_URL")?;
            let chain = Arc::new(crate::jobs::chain_monitor::Chain::new(
                settings,
                config.common.eth_rpc_url.clone(),
                pool.clone(),
                Arc::new(crate::jobs::chain_alerts::StoredChainAlerts::new(
                    pool.clone(),
                )),
            ));
            jobs.push(Arc::new(crate::jobs::chain_monitor::ChainMonitorJob::over(
                chain.clone(),
            )));
            // The api's network statistics, invalidated here after a mint or burn.
            let stats =
                haven_service::probe::redis_pool(config.common.redis_url.expose_secret(), 2)
                    .map(|redis| {
                        Arc::new(haven_service::cache::SharedCache::new(
                            Some(redis),
                            format!("{}network:stats", config.redis_prefix),
                            std::time::Duration::from_secs(300),
                        ))
                    })
                    .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
            jobs.push(Arc::new(
                crate::jobs::rewards::RewardsJob::new(
                    chain.clone(),
                    haven_db::PgRewards::new(pool.clone()),
                    config.rewards,
                )
                .with_stats(stats.clone()),
            ));
            jobs.push(Arc::new(crate::jobs::movements::MovementsJob::new(
                chain,
                haven_db::PgTreasury::new(pool),
                Some(stats),
                config.rewards.interval,
            )));
        }
        Err(unset) => tracing::info!(
            unset = %unset.join(", "),
            "chain_monitor, rewards and token_movements jobs are off: their chain settings are unset"
        ),
    }
    run_with_jobs(config, listener, jobs, shutdown).await
}

async fn drive(
    job: Arc<dyn Job>,
    index: usize,
    tick: Duration,
    statuses: Arc<Mutex<Vec<JobStatus>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = interval.tick() => {}
        }
        let result = job.step().await;
        if let Ok(mut all) = statuses.lock()
            && let Some(status) = all.get_mut(index)
        {
            status.runs += 1;
            if let Err(e) = &result {
                status.failures += 1;
                status.last_error = Some(haven_core::redact(&format!("{e:#}")));
            }
        }
        if let Err(e) = result {
            tracing::warn!(job = job.name(), error = %haven_core::redact(&format!("{e:#}")), "job step failed");
        }
        if *stop.borrow() {
            break;
        }
    }
    tracing::info!(job = job.name(), "job stopped");
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn ready(state: web::Data<WorkerState>) -> HttpResponse {
    let timeout = Duration::from_secs(2);
    let (postgres, redis) = tokio::join!(
        haven_service::probe::postgres(&state.db, timeout),
        haven_service::probe::redis(&state.redis, timeout),
    );
    let ready = postgres.is_up() && redis.is_up();
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {"postgres": postgres, "redis": redis},
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn job_list(state: web::Data<WorkerState>) -> HttpResponse {
    let jobs = state.jobs.lock().map(|j| j.clone()).unwrap_or_default();
    HttpResponse::Ok().json(jobs)
}

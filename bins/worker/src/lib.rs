//! The haven background worker.
//!
//! [`run`] starts the jobs on the apalis [`runtime`] and a small HTTP listener (`/health`,
//! `/ready`, `/jobs`, and `/metrics` in the Prometheus text format, see [`metrics`]), and
//! stops both cleanly when the shutdown future resolves: no new run starts, running ones
//! get `HAVEN_SHUTDOWN_GRACE_SECS` to finish, and what still runs then is given back.

mod compose;
pub mod config;
pub mod jobs;
pub mod metrics;
pub mod runtime;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use futures::future::BoxFuture;
use secrecy::ExposeSecret;

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

#[derive(Clone)]
struct WorkerState {
    db: haven_db::PgPool,
    redis: deadpool_redis::Pool,
    jobs: Arc<runtime::Shared>,
    breakers: Arc<haven_resilience::BreakerRegistry>,
}

/// The worker's circuit breakers, shared through Redis under `HAVEN_REDIS_PREFIX` with
/// every replica of the api and the worker (local state while Redis is unreachable). Must
/// be called inside a Tokio runtime.
pub fn breaker_registry(
    config: &WorkerConfig,
) -> anyhow::Result<haven_resilience::BreakerRegistry> {
    let redis = haven_service::probe::redis_pool(config.common.redis_url.expose_secret(), 2)
        .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
    Ok(haven_resilience::BreakerRegistry::shared(
        haven_resilience::BreakerConfig::default(),
        haven_resilience::SharedBreakerConfig {
            key_prefix: format!("{}breaker:", config.redis_prefix),
            ..haven_resilience::SharedBreakerConfig::default()
        },
        redis,
    )?)
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

/// Runs the worker with the given jobs, each pulsed at its own interval (or every
/// `HAVEN_WORKER_TICK_SECS`), until `shutdown` resolves.
pub async fn run_with_jobs(
    config: WorkerConfig,
    listener: TcpListener,
    jobs: Vec<Arc<dyn Job>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tick = Duration::from_secs(config.tick_secs);
    let registrations = jobs
        .into_iter()
        .map(|job| runtime::Registration {
            schedule: runtime::Schedule::Every(job.interval().unwrap_or(tick)),
            job,
        })
        .collect();
    run_with_registrations(config, listener, registrations, shutdown).await
}

/// Runs the worker with the given jobs and schedules until `shutdown` resolves.
pub async fn run_with_registrations(
    config: WorkerConfig,
    listener: TcpListener,
    registrations: Vec<runtime::Registration>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let breakers = Arc::new(breaker_registry(&config)?);
    run_with_breakers(config, listener, registrations, breakers, shutdown).await
}

/// [`run_with_registrations`] reporting `breakers` (those the jobs were built with) on
/// `/health` and `/metrics`.
pub async fn run_with_breakers(
    config: WorkerConfig,
    listener: TcpListener,
    registrations: Vec<runtime::Registration>,
    breakers: Arc<haven_resilience::BreakerRegistry>,
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
    let settings = runtime::Settings {
        owner: runtime::Settings::owner_name(),
        attempts: config.jobs.attempts,
        backoff: config.jobs.backoff,
        timeout: config.jobs.timeout,
        shutdown_grace: config.jobs.shutdown_grace,
        queue_poll: Duration::from_secs(1),
    };
    let jobs = registrations.len();
    tracing::info!(owner = %settings.owner, jobs, "job runtime starting");
    let runtime = runtime::Runtime::new(settings, db.clone(), registrations);
    let state = WorkerState {
        db,
        redis,
        jobs: runtime.shared(),
        breakers,
    };
    haven_resilience::metrics::count_transitions(&state.breakers);
    let registry = web::Data::new(state.breakers.clone());
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(registry.clone())
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
    tracing::info!(port, jobs, "worker listening");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let jobs_done = tokio::spawn(runtime.run(async move {
        let _ = stop_rx.await;
    }));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(());
        // the listener stays up (health, /jobs) until the jobs are done
        let _ = jobs_done.await;
        server_handle.stop(true).await;
    });
    server.await?;
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
    let breakers = Arc::new(breaker_registry(&config)?);
    // the node's breaker, shared with the api (listed even while the chain jobs are off)
    breakers.get_or_create("eth_rpc")?;
    let registrations = compose::standard(&config, &breakers)?;
    run_with_breakers(config, listener, registrations, breakers, shutdown).await
}

/// Liveness; lists the circuit breakers' states (informative, never a reason to fail).
async fn health(state: web::Data<WorkerState>) -> HttpResponse {
    HttpResponse::Ok()
        .json(serde_json::json!({"status": "ok", "breakers": state.breakers.statuses()}))
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
    HttpResponse::Ok().json(state.jobs.statuses().await)
}

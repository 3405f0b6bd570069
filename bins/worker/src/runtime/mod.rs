//! The job runtime, on apalis: one apalis worker per job under one `Monitor`.
//!
//! Each job's stack, outermost first: concurrency limit (1: a job never overlaps itself in
//! one process) → [`ledger`] (the claim in `job_runs` and the run's outcome) → retry
//! ([`retry::AttemptPolicy`]: record, back off, try again) → catch-panic (a panic is a
//! failed attempt, not a dead process) → timeout → tracing (a span per attempt) → the
//! job's `step`.
//!
//! Occurrences come from [`streams`]: a dispatcher's pulse (outbox jobs; replicas share the
//! rows through `FOR UPDATE SKIP LOCKED`, so every replica pulses), an apalis-cron schedule
//! (each occurrence is claimed once across replicas; an occurrence missed while no worker
//! ran is run once at start-up), and the runs queued in `job_runs` (retries, runs given
//! back at shutdown, runs whose worker died).

pub mod board;
pub mod ledger;
pub mod retry;
pub mod streams;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::layers::catch_panic::CatchPanicLayer;
use apalis::prelude::{BoxDynError, Monitor, Task, WorkerBuilder, WorkerBuilderExt};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::Job;
use crate::config::jobs::CronExpr;

/// When a job runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// An outbox dispatcher: a pulse every interval, on every replica.
    Every(Duration),
    /// A schedule: each occurrence on exactly one replica.
    Cron {
        /// The expression.
        expr: Box<CronExpr>,
        /// The time zone it is read in.
        timezone: chrono_tz::Tz,
    },
}

impl Schedule {
    fn describe(&self) -> String {
        match self {
            Schedule::Every(every) => format!("every {}ms", every.as_millis()),
            Schedule::Cron { expr, timezone } => format!("cron {} ({timezone})", expr.as_str()),
        }
    }
}

/// A job and its schedule.
#[derive(Clone)]
pub struct Registration {
    /// The job.
    pub job: Arc<dyn Job>,
    /// When it runs.
    pub schedule: Schedule,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("job", &self.job.name())
            .field("schedule", &self.schedule)
            .finish()
    }
}

/// Where an occurrence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A dispatcher's pulse.
    Pulse,
    /// A scheduled time.
    Scheduled,
    /// A queued run of `job_runs`.
    Queued(i64),
}

/// One thing for a job to do: the apalis task's arguments.
#[derive(Debug, Clone)]
pub struct Occurrence {
    /// The job.
    pub job: &'static str,
    /// Its time (scheduled time, pulse time, or now for a queued run).
    pub at: DateTime<Utc>,
    /// Where it came from.
    pub origin: Origin,
    /// A dispatcher's interval (zero otherwise).
    pub every: Duration,
    /// The run's attempts, set by the ledger.
    pub slot: Option<retry::Slot>,
}

impl Occurrence {
    fn pulse(job: &'static str, at: DateTime<Utc>, every: Duration) -> Self {
        Self {
            job,
            at,
            origin: Origin::Pulse,
            every,
            slot: None,
        }
    }
    fn scheduled(job: &'static str, at: DateTime<Utc>) -> Self {
        Self {
            job,
            at,
            origin: Origin::Scheduled,
            every: Duration::ZERO,
            slot: None,
        }
    }
    fn queued(job: &'static str, id: i64) -> Self {
        Self {
            job,
            at: Utc::now(),
            origin: Origin::Queued(id),
            every: Duration::ZERO,
            slot: None,
        }
    }
}

/// The runtime's policy.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This worker's name in `job_runs` (host, process and a random part).
    pub owner: String,
    /// Attempts of a run before it is dead.
    pub attempts: u32,
    /// The first retry's wait (doubled after each further failure).
    pub backoff: Duration,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// How long running work may finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// How often queued runs and expired leases are looked for.
    pub queue_poll: Duration,
}

impl Settings {
    /// How long a claim holds: every attempt at its limit with its backoff, and a minute.
    pub fn lease(&self) -> Duration {
        let mut total = Duration::from_secs(60);
        for n in 1..=self.attempts {
            total += self.timeout + retry::backoff(self.backoff, n);
        }
        total
    }

    /// A fresh owner name for this process.
    pub fn owner_name() -> String {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "host".to_owned());
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}:{}:{}", std::process::id(), &id[..8])
    }
}

/// What every job's layers share.
pub struct Shared {
    /// The policy.
    pub settings: Settings,
    /// `job_runs`.
    pub runs: haven_db::PgJobRuns,
    /// `/jobs`.
    pub board: board::Board,
    stopping: AtomicBool,
    in_flight: Mutex<HashSet<i64>>,
    cron: BTreeMap<&'static str, (cron::Schedule, chrono_tz::Tz)>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Shared {
    /// Whether shutdown has started (no new run starts, no retry waits).
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn in_flight(&self, id: i64, running: bool) {
        if let Ok(mut set) = self.in_flight.lock() {
            if running {
                set.insert(id);
            } else {
                set.remove(&id);
            }
        }
    }

    /// `/jobs`: each job's status, with its record in `job_runs` and next scheduled time.
    pub async fn statuses(&self) -> Vec<board::JobStatus> {
        let mut statuses = self.board.snapshot();
        let now = Utc::now();
        for status in &mut statuses {
            if let Some((schedule, timezone)) = self.cron.get(status.name) {
                status.next_run = streams::next(schedule, *timezone, now);
            }
            match self.runs.latest(status.name).await {
                Ok(run) => status.last_run = run,
                Err(e) => tracing::warn!(error = %e, "/jobs: job_runs unavailable"),
            }
            status.dead = self.runs.dead_count(status.name).await.unwrap_or(0);
        }
        statuses
    }
}

/// Calls the job's `step`.
#[derive(Clone)]
struct JobService {
    job: Arc<dyn Job>,
}

impl tower::Service<Task<Occurrence>> for JobService {
    type Response = ();
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<(), BoxDynError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _task: Task<Occurrence>) -> Self::Future {
        let job = self.job.clone();
        Box::pin(async move { job.step().await.map_err(BoxDynError::from) })
    }
}

/// The runtime: built, then [`Runtime::run`] until shutdown.
#[derive(Debug)]
pub struct Runtime {
    shared: Arc<Shared>,
    registrations: Vec<Registration>,
}

impl Runtime {
    /// The runtime for `registrations` over `pool`'s `job_runs`.
    pub fn new(
        settings: Settings,
        pool: haven_db::PgPool,
        registrations: Vec<Registration>,
    ) -> Self {
        let board = board::Board::default();
        let mut cron = BTreeMap::new();
        for registration in &registrations {
            board.register(registration.job.name(), registration.schedule.describe());
            if let Schedule::Cron { expr, timezone } = &registration.schedule {
                cron.insert(
                    registration.job.name(),
                    (expr.schedule().clone(), *timezone),
                );
            }
        }
        Self {
            shared: Arc::new(Shared {
                settings,
                runs: haven_db::PgJobRuns::new(pool),
                board,
                stopping: AtomicBool::new(false),
                in_flight: Mutex::new(HashSet::new()),
                cron,
            }),
            registrations,
        }
    }

    /// What the listener reads `/jobs` from.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Runs every job until `shutdown` resolves; then stops taking work, lets running work
    /// finish within the grace period, and gives back what is still running.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let shared = self.shared.clone();
        let (queued_tx, queued_rx) = watch::channel(streams::QueuedRuns::default());
        let names: Vec<String> = self
            .registrations
            .iter()
            .map(|r| r.job.name().to_owned())
            .collect();
        let watcher = tokio::spawn(watch_queue(shared.clone(), names, queued_tx));
        let mut monitor = Monitor::new().shutdown_timeout(shared.settings.shutdown_grace);
        for registration in self.registrations {
            let catch_up = catch_up(&shared, &registration).await;
            monitor = register(
                monitor,
                registration,
                shared.clone(),
                queued_rx.clone(),
                catch_up,
            );
        }
        let signal_shared = shared.clone();
        let signal = async move {
            shutdown.await;
            signal_shared.stopping.store(true, Ordering::SeqCst);
            tracing::info!("shutdown: no new job run starts; running ones get the grace period");
            Ok(())
        };
        if let Err(e) = monitor.run_with_signal(signal).await {
            tracing::warn!(error = %e, "job monitor stopped with an error");
        }
        watcher.abort();
        give_back_in_flight(&shared).await;
    }
}

fn register(
    monitor: Monitor,
    registration: Registration,
    shared: Arc<Shared>,
    queued: watch::Receiver<streams::QueuedRuns>,
    catch_up: Option<DateTime<Utc>>,
) -> Monitor {
    monitor.register(move |_restarts| {
        let job = registration.job.clone();
        let name = job.name();
        WorkerBuilder::new(name)
            .backend(streams::occurrences(
                name,
                &registration.schedule,
                catch_up,
                queued.clone(),
            ))
            .concurrency(1)
            .layer(ledger::LedgerLayer {
                shared: shared.clone(),
            })
            .retry(retry::AttemptPolicy {
                shared: shared.clone(),
            })
            .layer(CatchPanicLayer::with_panic_handler(retry::on_panic))
            .timeout(shared.settings.timeout)
            .enable_tracing()
            .build(JobService { job })
    })
}

/// The occurrence a schedule missed while no worker ran, when the job has run before.
async fn catch_up(shared: &Shared, registration: &Registration) -> Option<DateTime<Utc>> {
    let Schedule::Cron { expr, timezone } = &registration.schedule else {
        return None;
    };
    let name = registration.job.name();
    let previous = streams::previous(expr.schedule(), *timezone, Utc::now())?;
    match shared.runs.latest(name).await {
        Ok(Some(latest)) if latest.occurrence < previous => {
            tracing::info!(job = name, missed = %previous, "running the occurrence missed while no worker ran");
            Some(previous)
        }
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(job = name, error = %e, "cannot tell whether an occurrence was missed");
            None
        }
    }
}

/// Every `queue_poll`: queues the runs whose owner's lease ran out and publishes the queued
/// runs for the jobs' streams.
async fn watch_queue(
    shared: Arc<Shared>,
    names: Vec<String>,
    queued: watch::Sender<streams::QueuedRuns>,
) {
    let mut interval = tokio::time::interval(shared.settings.queue_poll);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        if shared.stopping() {
            return;
        }
        match shared.runs.requeue_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                runs = n,
                "queued again the runs of a worker that stopped without finishing them"
            ),
            Err(e) => tracing::debug!(error = %e, "job_runs unavailable"),
        }
        if let Ok(runs) = shared.runs.queued(&names, 100).await {
            let runs: Vec<(i64, String)> = runs.into_iter().map(|r| (r.id, r.job)).collect();
            if !runs.is_empty() {
                queued.send_replace(Arc::new(runs));
            }
        }
    }
}

async fn give_back_in_flight(shared: &Shared) {
    let ids: Vec<i64> = shared
        .in_flight
        .lock()
        .map(|set| set.iter().copied().collect())
        .unwrap_or_default();
    for id in ids {
        match shared.runs.give_back(id, &shared.settings.owner).await {
            Ok(()) => tracing::warn!(
                run = id,
                "a run still running at the end of the grace period was given back"
            ),
            Err(e) => {
                tracing::error!(run = id, error = %e, "could not give a run back: its lease will expire")
            }
        }
    }
}

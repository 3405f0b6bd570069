//! The job runtime (apalis): retries of panicking jobs, dead letters and their retry, the
//! catch-up of a missed occurrence, and shutdown with work running.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use haven_db::{JobRun, JobRunFilter, JobRunState, PgJobRuns};
use haven_testkit::{TestDb, TestRedis};
use haven_worker::Job;
use haven_worker::config::WorkerConfig;
use haven_worker::config::jobs::CronExpr;
use haven_worker::runtime::{Registration, Schedule};
use serde_json::Value;
use tokio::sync::oneshot;

/// Panics on its first `panics` steps (or while `broken`), then succeeds; sleeps `busy`
/// in each step.
struct Flaky {
    name: &'static str,
    calls: AtomicU64,
    panics: u64,
    broken: AtomicBool,
    busy: Duration,
    started: AtomicBool,
}

impl Flaky {
    fn new(name: &'static str, panics: u64) -> Arc<Self> {
        Arc::new(Self {
            name,
            calls: AtomicU64::new(0),
            panics,
            broken: AtomicBool::new(false),
            busy: Duration::ZERO,
            started: AtomicBool::new(false),
        })
    }
}

impl Job for Flaky {
    fn name(&self) -> &'static str {
        self.name
    }
    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            self.started.store(true, Ordering::SeqCst);
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.panics || self.broken.load(Ordering::SeqCst) {
                panic!("{} failed on call {n}", self.name);
            }
            tokio::time::sleep(self.busy).await;
            Ok(())
        })
    }
}

fn every_second() -> Schedule {
    Schedule::Cron {
        expr: Box::new(CronExpr::parse("test", "* * * * * *").unwrap()),
        timezone: chrono_tz::UTC,
    }
}

struct Running {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn start(db: &TestDb, registrations: Vec<Registration>, grace: Duration) -> Self {
        let mut config = WorkerConfig::for_tests(db.url(), &TestRedis::server_url());
        config.jobs.shutdown_grace = grace;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(haven_worker::run_with_registrations(
            config,
            listener,
            registrations,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            port,
            stop: Some(stop),
            handle,
        }
    }

    async fn jobs(&self) -> Value {
        reqwest::get(format!("http://127.0.0.1:{}/jobs", self.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Stops it; how long the stop took.
    async fn stop(mut self) -> Duration {
        let started = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("the worker stops")
            .unwrap()
            .unwrap();
        started.elapsed()
    }
}

async fn runs_of(db: &TestDb, job: &str) -> Vec<JobRun> {
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    let mut runs = PgJobRuns::new(pool)
        .list(&JobRunFilter {
            job: Some(job.to_owned()),
            limit: Some(1000),
            ..JobRunFilter::default()
        })
        .await
        .unwrap();
    runs.reverse();
    runs
}

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `haven-admin` binary of this build (built when a narrower `cargo test` left it out).
fn admin_exe() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let admin = dir.join("haven-admin");
    if !admin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "haven-admin"])
            .status()
            .unwrap();
        assert!(status.success(), "building haven-admin");
    }
    admin
}

fn admin(db: &TestDb, args: &[&str]) -> (i32, String) {
    let output = Command::new(admin_exe())
        .args(args)
        .env_remove("HAVEN_CONFIG")
        .env("DATABASE_URL", db.url())
        .env("REDIS_URL", TestRedis::server_url())
        .env("HAVEN_ENV", "test")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// A2: a job that panics on its first two runs is retried and succeeds on the third.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_panicking_twice_succeeds_on_its_third_attempt() {
    let db = TestDb::new().await;
    let job = Flaky::new("flaky", 2);
    let worker = Running::start(
        &db,
        vec![Registration {
            job: job.clone(),
            schedule: every_second(),
        }],
        Duration::from_secs(5),
    );
    wait_for("the first run to end", Duration::from_secs(20), || async {
        runs_of(&db, "flaky")
            .await
            .first()
            .is_some_and(|r| r.state == JobRunState::Succeeded)
    })
    .await;
    let first = runs_of(&db, "flaky").await.remove(0);
    assert_eq!(first.attempts, 3, "{first:?}");
    assert!(
        first
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("panicked") && e.contains("failed on call 1")),
        "{first:?}"
    );
    let jobs = worker.jobs().await;
    assert_eq!(jobs[0]["name"], "flaky");
    assert_eq!(jobs[0]["panics"], 2, "{jobs}");
    assert_eq!(jobs[0]["dead"], 0, "{jobs}");
    assert!(jobs[0]["next_run"].is_string(), "{jobs}");
    wait_for("a later run", Duration::from_secs(20), || async {
        runs_of(&db, "flaky").await.len() >= 2
    })
    .await;
    worker.stop().await;
    // the process survived the panics and every later run succeeded at once
    let runs = runs_of(&db, "flaky").await;
    assert!(runs.len() >= 2, "{runs:?}");
    assert!(
        runs[1..]
            .iter()
            .all(|r| r.state == JobRunState::Succeeded && r.attempts == 1),
        "{runs:?}"
    );
}

/// A2: a job that always panics is dead-lettered, shown by `/jobs` and `haven-admin jobs
/// dead`, and `haven-admin jobs retry` runs it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_panicking_job_is_dead_lettered_and_retried_on_demand() {
    let db = TestDb::new().await;
    let job = Flaky::new("doomed", 0);
    job.broken.store(true, Ordering::SeqCst);
    let worker = Running::start(
        &db,
        vec![Registration {
            job: job.clone(),
            schedule: every_second(),
        }],
        Duration::from_secs(5),
    );
    wait_for("a dead run", Duration::from_secs(20), || async {
        runs_of(&db, "doomed")
            .await
            .iter()
            .any(|r| r.state == JobRunState::Dead)
    })
    .await;
    let jobs = worker.jobs().await;
    assert!(jobs[0]["dead"].as_i64().unwrap() >= 1, "{jobs}");
    assert!(jobs[0]["last_error"].as_str().unwrap().contains("panicked"));

    let (code, out) = admin(&db, &["jobs", "dead", "--json"]);
    assert_eq!(code, 0, "{out}");
    let dead: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let oldest = dead.last().unwrap().clone();
    assert_eq!(oldest["job"], "doomed");
    assert_eq!(oldest["state"], "dead");
    assert_eq!(oldest["attempts"], 3);
    let id = oldest["id"].as_i64().unwrap();
    let (code, table) = admin(&db, &["jobs", "dead"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("doomed") && table.contains("ATTEMPTS"),
        "{table}"
    );

    // repaired, the dead run is sent back and runs again
    job.broken.store(false, Ordering::SeqCst);
    let (code, out) = admin(&db, &["jobs", "retry", &id.to_string()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"retried\""), "{out}");
    wait_for(
        "the retried run to succeed",
        Duration::from_secs(20),
        || async {
            runs_of(&db, "doomed")
                .await
                .iter()
                .any(|r| r.id == id && r.state == JobRunState::Succeeded)
        },
    )
    .await;
    // only a dead run can be retried
    let (code, out) = admin(&db, &["jobs", "retry", &id.to_string()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("only a dead run"), "{out}");
    let (code, out) = admin(&db, &["jobs", "list", "--state", "finished"]);
    assert_eq!(code, 2, "{out}");
    worker.stop().await;
}

/// A4: shutdown while a run is running: within the grace period it finishes; past it, it
/// is given back and the next worker runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_or_gives_back_the_running_run() {
    let db = TestDb::new().await;
    // finishes within the grace period
    let quick = Arc::new(Flaky {
        busy: Duration::from_millis(1500),
        ..Arc::into_inner(Flaky::new("quick", 0)).unwrap()
    });
    let worker = Running::start(
        &db,
        vec![Registration {
            job: quick.clone(),
            schedule: every_second(),
        }],
        Duration::from_secs(10),
    );
    wait_for("the run to start", Duration::from_secs(20), || async {
        quick.started.load(Ordering::SeqCst)
    })
    .await;
    worker.stop().await;
    let runs = runs_of(&db, "quick").await;
    assert!(!runs.is_empty());
    assert!(
        runs.iter().all(|r| r.state == JobRunState::Succeeded),
        "{runs:?}"
    );

    // runs past the grace period: given back, then run by the next worker
    let slow = Arc::new(Flaky {
        busy: Duration::from_secs(60),
        ..Arc::into_inner(Flaky::new("slow", 0)).unwrap()
    });
    let worker = Running::start(
        &db,
        vec![Registration {
            job: slow.clone(),
            schedule: every_second(),
        }],
        Duration::from_secs(1),
    );
    wait_for("the run to start", Duration::from_secs(20), || async {
        slow.started.load(Ordering::SeqCst)
    })
    .await;
    let took = worker.stop().await;
    assert!(took < Duration::from_secs(15), "stopped in {took:?}");
    let runs = runs_of(&db, "slow").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].state, JobRunState::Queued, "{runs:?}");
    let given_back = runs[0].id;

    let fixed = Flaky::new("slow", 0);
    let worker = Running::start(
        &db,
        vec![Registration {
            job: fixed,
            schedule: Schedule::Cron {
                // never on its own: only the queued run
                expr: Box::new(CronExpr::parse("test", "0 0 0 1 1 * 2099").unwrap()),
                timezone: chrono_tz::UTC,
            },
        }],
        Duration::from_secs(5),
    );
    wait_for(
        "the given-back run to succeed",
        Duration::from_secs(20),
        || async {
            runs_of(&db, "slow")
                .await
                .iter()
                .any(|r| r.id == given_back && r.state == JobRunState::Succeeded)
        },
    )
    .await;
    worker.stop().await;
}

/// An occurrence missed while no worker ran runs once at start-up; a job that never ran
/// does not catch up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_occurrence_runs_once_at_start_up() {
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    let runs = PgJobRuns::new(pool);
    let two_days_ago = chrono::Utc::now() - chrono::Duration::days(2);
    let id = runs
        .claim("daily", two_days_ago, "old-worker", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    runs.finish(id, "old-worker", 1, None).await.unwrap();
    let daily = || Schedule::Cron {
        expr: Box::new(CronExpr::parse("test", "0 0 2 * * *").unwrap()),
        timezone: chrono_tz::UTC,
    };
    let job = Flaky::new("daily", 0);
    let fresh = Flaky::new("fresh", 0);
    let worker = Running::start(
        &db,
        vec![
            Registration {
                job: job.clone(),
                schedule: daily(),
            },
            Registration {
                job: fresh.clone(),
                schedule: daily(),
            },
        ],
        Duration::from_secs(5),
    );
    wait_for("the missed occurrence", Duration::from_secs(20), || async {
        runs_of(&db, "daily").await.len() == 2
    })
    .await;
    worker.stop().await;
    let daily_runs = runs_of(&db, "daily").await;
    let missed = &daily_runs[1];
    assert_eq!(missed.state, JobRunState::Succeeded);
    assert_eq!(missed.occurrence.format("%H:%M:%S").to_string(), "02:00:00");
    assert!(missed.occurrence > two_days_ago);
    assert_eq!(job.calls.load(Ordering::SeqCst), 1);
    assert_eq!(fresh.calls.load(Ordering::SeqCst), 0);
    assert!(runs_of(&db, "fresh").await.is_empty());
}

/// A6: apalis runs the jobs: it is in the worker's dependency tree, and the only caller of a
/// job's `step` is the apalis service in `runtime/` (no hand-made loop drives a job).
#[test]
fn apalis_is_the_only_thing_that_runs_a_job() {
    let tree = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "haven-worker",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let tree = String::from_utf8_lossy(&tree.stdout);
    for name in ["apalis v1", "apalis-cron v1", "apalis-core v1"] {
        assert!(
            tree.lines().any(|l| l.starts_with(name)),
            "{name} is not in the tree"
        );
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut callers = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if std::fs::read_to_string(&path).unwrap().contains(".step()") {
                callers.push(path.strip_prefix(&src).unwrap().display().to_string());
            }
        }
    }
    assert_eq!(callers, ["runtime/mod.rs"], "who calls Job::step");
}

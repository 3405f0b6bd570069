//! The job runtime across real `haven-worker` processes: two replicas with the same
//! schedules run each occurrence once, and SIGTERM ends a worker cleanly (exit 0, no run
//! left running).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use haven_db::{JobRunFilter, JobRunState, PgJobRuns};
use haven_testkit::{TestDb, TestRedis};

struct Worker {
    child: Child,
    log: std::path::PathBuf,
}

impl Worker {
    /// A worker whose retention job runs every second, logging at info to a file.
    fn start(db: &TestDb, name: &str) -> Self {
        Self::start_with(db, name, &[])
    }

    /// [`Worker::start`] with more settings.
    fn start_with(db: &TestDb, name: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::env::temp_dir().join(format!(
            "haven-worker-{name}-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_haven-worker"));
        command.envs(env.iter().copied());
        let child = command
            .env_remove("HAVEN_CONFIG")
            .env("HAVEN_ENV", "test")
            .env("DATABASE_URL", db.url())
            .env("REDIS_URL", TestRedis::server_url())
            .env("HAVEN_WORKER_ADDR", format!("127.0.0.1:{port}"))
            .env("HAVEN_SCHEDULE_RETENTION", "* * * * * *")
            .env("HAVEN_SHUTDOWN_GRACE_SECS", "5")
            .env("HAVEN_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn,haven_worker::jobs::scheduled=info")
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("the worker starts");
        Self { child, log }
    }

    /// How many retention passes it logged.
    fn passes(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("retention pass"))
            .count()
    }

    /// SIGTERM, then waits (bounded) for the exit; its exit code.
    fn terminate(&mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

async fn retention_runs(db: &TestDb) -> Vec<haven_db::JobRun> {
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    PgJobRuns::new(pool)
        .list(&JobRunFilter {
            job: Some("retention".into()),
            limit: Some(1000),
            ..JobRunFilter::default()
        })
        .await
        .unwrap()
}

/// A3: two worker processes with a schedule every second, for 20 s: each occurrence runs
/// once — the occurrences recorded are distinct, and the two processes' passes add up to
/// them exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_run_each_scheduled_occurrence_once() {
    let db = TestDb::new().await;
    let mut a = Worker::start(&db, "a");
    let mut b = Worker::start(&db, "b");
    tokio::time::sleep(Duration::from_secs(20)).await;
    // SIGTERM both: every started run finishes before they exit
    assert_eq!(a.terminate(), Some(0));
    assert_eq!(b.terminate(), Some(0));

    let runs = retention_runs(&db).await;
    let mut occurrences: Vec<_> = runs.iter().map(|r| r.occurrence).collect();
    occurrences.sort();
    occurrences.dedup();
    assert_eq!(occurrences.len(), runs.len(), "one row per occurrence");
    assert!(runs.len() >= 15, "about one run a second: {}", runs.len());
    assert!(
        runs.iter()
            .all(|r| r.state == JobRunState::Succeeded && r.attempts == 1),
        "{runs:?}"
    );
    let mut by_owner: BTreeMap<String, usize> = BTreeMap::new();
    for run in &runs {
        *by_owner.entry(run.owner.clone().unwrap()).or_default() += 1;
    }
    let (passes_a, passes_b) = (a.passes(), b.passes());
    println!(
        "two workers, 20 s of a schedule every second: {} occurrences, passes {passes_a} + {passes_b}, by owner {by_owner:?}",
        runs.len()
    );
    assert_eq!(
        passes_a + passes_b,
        runs.len(),
        "each occurrence ran exactly once across both processes"
    );
}

/// A4 (process): SIGTERM ends the worker with exit code 0 and leaves no run `running`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_worker_cleanly() {
    let db = TestDb::new().await;
    let mut worker = Worker::start(&db, "term");
    let deadline = Instant::now() + Duration::from_secs(30);
    while retention_runs(&db).await.len() < 3 {
        assert!(Instant::now() < deadline, "the worker ran nothing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let started = Instant::now();
    assert_eq!(worker.terminate(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(10));
    let runs = retention_runs(&db).await;
    assert!(
        runs.iter().all(|r| r.state != JobRunState::Running),
        "{runs:?}"
    );
}

/// The scheduled Aurora sync feeds the partner's bookings through the intake: run again and
/// again over the same window, it rewards each booking once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_partner_sync_rewards_each_booking_once() {
    use haven_testkit::{StubResponse, StubServer};
    haven_testkit::install_crypto_provider();
    let db = TestDb::new().await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let booking = |id: &str, guest: &str| {
        format!(
            r#"{{"booking_id":"{id}-{tag}","guest_id":"{guest}-{tag}","total_price":100,"nights":1,"status":"confirmed"}}"#
        )
    };
    let listed = format!(
        r#"{{"bookings":[{},{}],"next_cursor":null}}"#,
        booking("s1", "g1"),
        booking("s2", "g2")
    );
    let partner = StubServer::start(move |req| {
        assert_eq!(req.header("authorization"), Some("Bearer aurora-key"));
        StubResponse::json(listed.clone())
    })
    .await;
    let prefix = format!("haven:sync:{}:", uuid::Uuid::new_v4().simple());
    let mut worker = Worker::start_with(
        &db,
        "sync",
        &[
            ("HAVEN_AURORA_URL", partner.url()),
            ("HAVEN_AURORA_API_KEY", "aurora-key"),
            ("HAVEN_SCHEDULE_AURORA_SYNC", "* * * * * *"),
            ("HAVEN_REDIS_PREFIX", &prefix),
        ],
    );
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    let runs = PgJobRuns::new(pool.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = runs
            .list(&JobRunFilter {
                job: Some("aurora_sync".into()),
                state: Some(JobRunState::Succeeded),
                limit: Some(100),
            })
            .await
            .unwrap();
        if done.len() >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sync did not run three times"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(worker.terminate(), Some(0));
    let rewards = haven_db::PgRewards::new(pool)
        .rewards_in(haven_rewards::RewardState::Pending, 100)
        .await
        .unwrap();
    let ours: Vec<_> = rewards
        .iter()
        .filter(|r| r.business_key.contains(&tag))
        .collect();
    assert_eq!(ours.len(), 2, "one reward per booking: {ours:?}");
    assert!(partner.count() >= 3);
}

/// How soon a dispatcher picks up an outbox row after its commit: fraud alerts written
/// straight into `transaction_monitoring` while a worker runs with its default pulse (1 s),
/// each timed from its commit to its `delivered_at`. Prints the figures (docs/BENCHMARKS.md
/// records them); the assertion is only that every alert is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_outbox_row_is_picked_up_at_the_next_pulse() {
    use diesel_async::RunQueryDsl;
    let db = TestDb::new().await;
    let mut worker = Worker::start_with(
        &db,
        "pickup",
        &[("HAVEN_SCHEDULE_RETENTION", "0 0 0 1 1 * 2099")],
    );
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    // the worker is up once its first pulse has looked (give it a moment)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut latencies = Vec::new();
    for i in 0..8 {
        let id = uuid::Uuid::new_v4();
        let mut conn = pool.get().await.unwrap();
        diesel::sql_query(format!(
            "INSERT INTO transaction_monitoring (id, rule_id, event_type, severity, subject, \
             description, event_id, event_ts, created_at) VALUES ('{id}', 'r', 'reward', 'low', \
             's', 'pickup {i}', 'e-{id}', now(), now())"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        let committed = Instant::now();
        let deadline = committed + Duration::from_secs(30);
        loop {
            #[derive(diesel::QueryableByName)]
            struct Delivered {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                done: bool,
            }
            let row: Delivered = diesel::sql_query(format!(
                "SELECT delivered_at IS NOT NULL AS done FROM transaction_monitoring WHERE id = '{id}'"
            ))
            .get_result(&mut conn)
            .await
            .unwrap();
            if row.done {
                latencies.push(committed.elapsed());
                break;
            }
            assert!(Instant::now() < deadline, "alert {i} was not delivered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // commits land at different points of the pulse
        tokio::time::sleep(Duration::from_millis(370)).await;
    }
    assert_eq!(worker.terminate(), Some(0));
    latencies.sort();
    println!(
        "outbox pickup (fraud alerts, 1 s pulse): median {:?}, max {:?}, all {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        latencies
    );
}

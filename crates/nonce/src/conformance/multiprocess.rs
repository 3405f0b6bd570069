//! The multi-process concurrency scenario every shared backend must survive: several OS
//! processes × many tasks reserve nonces on one account; each task releases 10 % of its
//! leases, abandons 1 % (a simulated crash: the lease just expires) and commits the rest,
//! until every nonce below N is committed. The union of the commits must be exactly 0..N.
//!
//! A backend's test binary has two tests: the parent calls [`run_processes`], which starts
//! [`PROCESSES`] copies of the same test binary running an ignored worker test; the worker
//! test calls [`WorkerArgs::from_env`] and [`run_worker`] with its own store.
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn processes_share_one_key() {
//!     let key = fresh_key();
//!     let n = multiprocess::total_nonces();
//!     let committed =
//!         multiprocess::run_processes("module::worker", key, n, &[("MY_URL", url)]).await;
//!     multiprocess::assert_contiguous(&committed, n);
//! }
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! #[ignore = "worker process"]
//! async fn worker() {
//!     let Some(args) = multiprocess::WorkerArgs::from_env() else { return };
//!     let store = Arc::new(MyStore::new(std::env::var("MY_URL").unwrap()));
//!     multiprocess::run_worker(store, &args, Duration::from_secs(2)).await;
//! }
//! ```

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{Error, NonceKey, NonceStore};

/// Worker processes started by [`run_processes`].
pub const PROCESSES: usize = 4;
/// Tasks per worker process.
pub const TASKS_PER_PROCESS: usize = 64;

/// How many nonces to commit: `HAVEN_NONCE_A2_N`, default 50 000.
pub fn total_nonces() -> u64 {
    std::env::var("HAVEN_NONCE_A2_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

/// Starts [`PROCESSES`] copies of the running test binary, each running the ignored test
/// `worker_test` (its full path, e.g. `"nonce::worker_process"`) with `env` and the scenario's
/// own variables; waits for all and returns each worker's committed nonces.
///
/// # Panics
/// When a worker cannot start, fails, or leaves no readable result.
pub async fn run_processes(
    worker_test: &str,
    key: NonceKey,
    n: u64,
    env: &[(&str, &str)],
) -> Vec<Vec<u64>> {
    let out = std::env::temp_dir().join(format!("haven-nonce-a2-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&out).expect("a temporary directory");
    let exe = std::env::current_exe().expect("the test binary");
    let mut children = Vec::new();
    for worker in 0..PROCESSES {
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args([
            worker_test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("A2_WORKER", worker.to_string())
        .env("A2_CHAIN", key.chain_id().to_string())
        .env("A2_ADDRESS", key.address_hex())
        .env("A2_N", n.to_string())
        .env("A2_OUT", &out)
        .kill_on_drop(true);
        for (name, value) in env {
            cmd.env(name, value);
        }
        children.push(cmd.spawn().expect("a worker process"));
    }
    for mut child in children {
        let status = child.wait().await.expect("waiting for a worker");
        assert!(status.success(), "worker failed: {status}");
    }
    let per_worker = (0..PROCESSES)
        .map(|worker| {
            let path = out.join(format!("{worker}.txt"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("worker {worker} left no result ({e})"));
            text.lines().map(|l| l.parse().expect("a nonce")).collect()
        })
        .collect();
    let _ = std::fs::remove_dir_all(&out);
    per_worker
}

/// Asserts that the workers' commits are together exactly 0..n, none twice, and that every
/// worker took part.
///
/// # Panics
/// When they are not.
pub fn assert_contiguous(per_worker: &[Vec<u64>], n: u64) {
    let counts: Vec<usize> = per_worker.iter().map(Vec::len).collect();
    assert!(
        counts.iter().all(|&c| c > 0),
        "every process took part: {counts:?}"
    );
    let all: Vec<u64> = per_worker.iter().flatten().copied().collect();
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a nonce was committed twice");
    assert_eq!(
        unique,
        (0..n).collect::<BTreeSet<_>>(),
        "committed set is not 0..{n}"
    );
}

/// What a worker process was started with.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    /// The worker's index.
    pub worker: u64,
    /// The shared account.
    pub key: NonceKey,
    /// Commit every nonce below this.
    pub n: u64,
    out: PathBuf,
}

impl WorkerArgs {
    /// The arguments, or `None` when this process was not started by [`run_processes`] (the
    /// ignored worker test run on its own does nothing).
    ///
    /// # Panics
    /// When the variables are present but malformed.
    pub fn from_env() -> Option<Self> {
        let worker = std::env::var("A2_WORKER").ok()?;
        let var = |name: &str| std::env::var(name).expect(name);
        Some(Self {
            worker: worker.parse().expect("A2_WORKER"),
            key: NonceKey::parse(
                var("A2_CHAIN").parse().expect("A2_CHAIN"),
                &var("A2_ADDRESS"),
            )
            .expect("A2_ADDRESS"),
            n: var("A2_N").parse().expect("A2_N"),
            out: PathBuf::from(var("A2_OUT")),
        })
    }
}

/// What one worker did.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Nonces committed.
    pub committed: Vec<u64>,
    /// Leases released.
    pub released: u64,
    /// Leases abandoned (left to expire).
    pub abandoned: u64,
    /// Commits refused with `LeaseLost`.
    pub lost: u64,
    /// Calls retried after `StoreUnavailable` (a lost reply or an exhausted pool under load).
    pub retries: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.committed.extend(other.committed);
        self.released += other.released;
        self.abandoned += other.abandoned;
        self.lost += other.lost;
        self.retries += other.retries;
    }
}

/// Runs [`TASKS_PER_PROCESS`] tasks on `store` until every nonce below `args.n` is committed,
/// then writes this worker's commits for the parent and returns its tally.
///
/// # Panics
/// When the store answers something the scenario does not allow (e.g. a commit error other
/// than `LeaseLost`), or the result cannot be written.
pub async fn run_worker(
    store: Arc<dyn NonceStore>,
    args: &WorkerArgs,
    lease_ttl: Duration,
) -> Tally {
    let tasks: Vec<_> = (0..TASKS_PER_PROCESS as u64)
        .map(|task| {
            let (store, key, n) = (store.clone(), args.key, args.n);
            let seed = args.worker * 1_000 + task + 1;
            tokio::spawn(async move { run_task(store.as_ref(), &key, n, seed, lease_ttl).await })
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        total.merge(task.await.expect("a worker task"));
    }
    eprintln!(
        "worker {}: committed {}, released {}, abandoned {}, lost {}, retries {}",
        args.worker,
        total.committed.len(),
        total.released,
        total.abandoned,
        total.lost,
        total.retries
    );
    let lines: String = total.committed.iter().map(|c| format!("{c}\n")).collect();
    std::fs::write(args.out.join(format!("{}.txt", args.worker)), lines).expect("the result file");
    total
}

/// Retries calls that failed with `StoreUnavailable`, as a real caller would: a `reserve`
/// whose reply was lost leaves an orphan lease that expires; `commit` and `release` are
/// idempotent.
macro_rules! retrying {
    ($tally:expr, $call:expr) => {
        loop {
            match $call {
                Err(Error::StoreUnavailable { .. }) => {
                    $tally.retries += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                other => break other,
            }
        }
    };
}

/// A small deterministic generator (xorshift64*), enough to pick what each lease does.
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % 100
    }
}

async fn run_task(
    store: &dyn NonceStore,
    key: &NonceKey,
    n: u64,
    seed: u64,
    lease_ttl: Duration,
) -> Tally {
    let mut dice = Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut tally = Tally::default();
    loop {
        let lease = retrying!(tally, store.reserve(key, lease_ttl).await).unwrap();
        if lease.nonce >= n {
            retrying!(tally, store.release(&lease).await).unwrap();
            // Done only when nothing below n is free or leased anywhere; abandoned leases
            // need their TTL to pass before the next reserve reclaims them.
            let status = retrying!(tally, store.status(key).await).unwrap();
            let unfinished =
                status.free.iter().any(|&f| f < n) || status.leases.iter().any(|l| l.nonce < n);
            if !unfinished {
                return tally;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        match dice.roll() {
            0..10 => {
                retrying!(tally, store.release(&lease).await).unwrap();
                tally.released += 1;
            }
            10 => tally.abandoned += 1,
            _ => match retrying!(tally, store.commit(&lease).await) {
                Ok(()) => tally.committed.push(lease.nonce),
                Err(Error::LeaseLost { .. }) => tally.lost += 1,
                Err(other) => panic!("commit failed: {other}"),
            },
        }
    }
}

//! A2: several OS processes, each with many tasks, share one account on Redis.
//!
//! The parent test re-runs this test binary as worker processes (the ignored
//! `worker_process` test, configured through `A2_*` environment variables). Every worker task
//! reserves, then releases (10 %), abandons (1 %, a simulated crash: the lease simply expires)
//! or commits; workers stop once every nonce below N is committed. The committed sets the
//! workers report must together be exactly 0..N.

use std::collections::BTreeSet;
use std::time::Duration;

use haven_nonce::conformance::fresh_key;
use haven_nonce::{Error, NonceKey, NonceStore, RedisNonceStore};
use haven_testkit::TestRedis;
use rand::{Rng, SeedableRng};

const PROCESSES: usize = 4;
const TASKS_PER_PROCESS: usize = 64;
/// Long enough for an honest reserve → commit under load; abandoned leases wait this out.
const LEASE_TTL: Duration = Duration::from_secs(2);

/// `HAVEN_NONCE_A2_N` scales the run (default 50 000 nonces).
fn total_nonces() -> u64 {
    std::env::var("HAVEN_NONCE_A2_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_share_one_key_without_duplicates_or_gaps() {
    let redis = TestRedis::new().await;
    let key = fresh_key();
    let n = total_nonces();
    let out = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();

    let mut children = Vec::new();
    for worker in 0..PROCESSES {
        let child = tokio::process::Command::new(&exe)
            .args([
                "concurrency::worker_process",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("A2_WORKER", worker.to_string())
            .env("A2_PREFIX", redis.prefix())
            .env("A2_CHAIN", key.chain_id().to_string())
            .env("A2_ADDRESS", key.address_hex())
            .env("A2_N", n.to_string())
            .env("A2_OUT", out.path())
            .env("REDIS_URL", redis.url())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        children.push(child);
    }
    for mut child in children {
        let status = child.wait().await.unwrap();
        assert!(status.success(), "worker failed: {status}");
    }

    let mut committed = Vec::new();
    let mut per_worker = Vec::new();
    for worker in 0..PROCESSES {
        let text = std::fs::read_to_string(out.path().join(format!("{worker}.txt"))).unwrap();
        let nonces: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
        per_worker.push(nonces.len());
        committed.extend(nonces);
    }
    let unique: BTreeSet<u64> = committed.iter().copied().collect();
    assert_eq!(unique.len(), committed.len(), "a nonce was committed twice");
    assert_eq!(
        unique,
        (0..n).collect::<BTreeSet<_>>(),
        "committed set is not 0..{n}"
    );
    assert!(
        per_worker.iter().all(|&c| c > 0),
        "every process took part: {per_worker:?}"
    );

    let store = RedisNonceStore::new(crate::patient_pool(redis.url(), 16), redis.prefix());
    let status = store.status(&key).await.unwrap();
    assert!(
        status.leases.iter().all(|l| l.nonce >= n),
        "{:?}",
        status.leases
    );
    assert!(status.free.iter().all(|&f| f >= n), "{:?}", status.free);
}

#[derive(Debug, Default)]
struct Tally {
    committed: Vec<u64>,
    released: u64,
    abandoned: u64,
    lost: u64,
    timeouts: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of processes_share_one_key_without_duplicates_or_gaps"]
async fn worker_process() {
    let Ok(worker) = std::env::var("A2_WORKER") else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    let key = NonceKey::parse(var("A2_CHAIN").parse().unwrap(), &var("A2_ADDRESS")).unwrap();
    let n: u64 = var("A2_N").parse().unwrap();
    let pool = crate::patient_pool(&TestRedis::server_url(), 4);
    let store = RedisNonceStore::new(pool, var("A2_PREFIX"));
    let seed: u64 = worker.parse::<u64>().unwrap() * 1_000;

    let tasks: Vec<_> = (0..TASKS_PER_PROCESS as u64)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move { run_task(&store, &key, n, seed + task).await })
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.unwrap();
        total.committed.extend(tally.committed);
        total.released += tally.released;
        total.abandoned += tally.abandoned;
        total.lost += tally.lost;
        total.timeouts += tally.timeouts;
    }
    eprintln!(
        "worker {worker}: committed {}, released {}, abandoned {}, lost {}, timeouts {}",
        total.committed.len(),
        total.released,
        total.abandoned,
        total.lost,
        total.timeouts
    );
    let lines: String = total.committed.iter().map(|c| format!("{c}\n")).collect();
    std::fs::write(
        std::path::Path::new(&var("A2_OUT")).join(format!("{worker}.txt")),
        lines,
    )
    .unwrap();
}

/// Retries calls that failed on the client's response timeout, as a real caller would: a
/// `reserve` whose reply was lost leaves an orphan lease that expires; `commit` and
/// `release` are idempotent.
macro_rules! retrying {
    ($tally:expr, $call:expr) => {
        loop {
            match $call {
                Err(Error::StoreUnavailable { .. }) => $tally.timeouts += 1,
                other => break other,
            }
        }
    };
}

async fn run_task(store: &RedisNonceStore, key: &NonceKey, n: u64, seed: u64) -> Tally {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    loop {
        let lease = retrying!(tally, store.reserve(key, LEASE_TTL).await).unwrap();
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
        match rng.random_range(0..100) {
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

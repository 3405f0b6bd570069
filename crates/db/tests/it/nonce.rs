//! The Postgres nonce store: the shared conformance suite, A2 with several processes, and
//! use inside a caller's transaction.

use std::collections::BTreeSet;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use haven_db::PgNonceStore;
use haven_nonce::conformance::{self, fresh_key};
use haven_nonce::{Error, NonceKey, NonceStore};
use haven_testkit::TestDb;
use rand::{Rng, SeedableRng};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_the_conformance_suite() {
    let db = TestDb::new().await;
    let store = PgNonceStore::new(haven_db::connect(db.url(), 16).await.unwrap());
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_database_is_store_unavailable() {
    let pool = haven_db::connect_lazy("postgres://haven:haven@127.0.0.1:1/none", 1).unwrap();
    let store = PgNonceStore::new(pool);
    let err = store
        .reserve(&fresh_key(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StoreUnavailable {
                backend: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_caller_transaction_takes_its_lease_with_it() {
    let db = TestDb::new().await;
    let store = PgNonceStore::new(haven_db::connect(db.url(), 4).await.unwrap());
    let key = fresh_key();
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();

    let result: Result<(), diesel::result::Error> = conn
        .transaction(async |c| {
            let lease = PgNonceStore::reserve_in(c, &key, Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(lease.nonce, 0);
            PgNonceStore::commit_in(c, &lease).await.unwrap();
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(result.is_err());
    assert_eq!(
        store.status(&key).await.unwrap().next,
        0,
        "the rollback undid the reservation"
    );

    conn.transaction::<_, diesel::result::Error, _>(async |c| {
        let lease = PgNonceStore::reserve_in(c, &key, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(lease.nonce, 0);
        PgNonceStore::commit_in(c, &lease).await.unwrap();
        Ok(())
    })
    .await
    .unwrap();
    let status = store.status(&key).await.unwrap();
    assert_eq!((status.next, status.committed), (1, vec![0]));
}

const PROCESSES: usize = 4;
const TASKS_PER_PROCESS: usize = 64;
/// Connections per process; 4 × 16 stays under Postgres's default of 100.
const POOL_PER_PROCESS: usize = 16;
const LEASE_TTL: Duration = Duration::from_secs(5);

/// `HAVEN_NONCE_A2_N` scales the run (default 50 000 nonces).
fn total_nonces() -> u64 {
    std::env::var("HAVEN_NONCE_A2_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

/// A2 on Postgres: 4 OS processes × 64 tasks share one account; 10 % releases, 1 % abandoned
/// leases; the committed set ends exactly 0..N.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_share_one_key_without_duplicates_or_gaps() {
    let db = TestDb::new().await;
    let key = fresh_key();
    let n = total_nonces();
    let out = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut children = Vec::new();
    for worker in 0..PROCESSES {
        children.push(
            tokio::process::Command::new(&exe)
                .args([
                    "nonce::worker_process",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("A2_WORKER", worker.to_string())
                .env("A2_DATABASE_URL", db.url())
                .env("A2_CHAIN", key.chain_id().to_string())
                .env("A2_ADDRESS", key.address_hex())
                .env("A2_N", n.to_string())
                .env("A2_OUT", out.path())
                .kill_on_drop(true)
                .spawn()
                .unwrap(),
        );
    }
    for mut child in children {
        let status = child.wait().await.unwrap();
        assert!(status.success(), "worker failed: {status}");
    }
    let mut committed = Vec::new();
    for worker in 0..PROCESSES {
        let text = std::fs::read_to_string(out.path().join(format!("{worker}.txt"))).unwrap();
        let nonces: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert!(!nonces.is_empty(), "process {worker} committed nothing");
        committed.extend(nonces);
    }
    let unique: BTreeSet<u64> = committed.iter().copied().collect();
    assert_eq!(unique.len(), committed.len(), "a nonce was committed twice");
    assert_eq!(
        unique,
        (0..n).collect::<BTreeSet<_>>(),
        "committed set is not 0..{n}"
    );
}

#[derive(Default)]
struct Tally {
    committed: Vec<u64>,
    released: u64,
    abandoned: u64,
    lost: u64,
    retries: u64,
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
    let store = PgNonceStore::new(
        haven_db::connect(&var("A2_DATABASE_URL"), POOL_PER_PROCESS)
            .await
            .unwrap(),
    );
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
        total.retries += tally.retries;
    }
    eprintln!(
        "worker {worker}: committed {}, released {}, abandoned {}, lost {}, retries {}",
        total.committed.len(),
        total.released,
        total.abandoned,
        total.lost,
        total.retries
    );
    let lines: String = total.committed.iter().map(|c| format!("{c}\n")).collect();
    std::fs::write(
        std::path::Path::new(&var("A2_OUT")).join(format!("{worker}.txt")),
        lines,
    )
    .unwrap();
}

/// Retries calls that failed transiently (a pooled connection not free in time under this
/// load), as a real caller would: a `reserve` whose reply was lost leaves an orphan lease that
/// expires; `commit` and `release` are idempotent.
macro_rules! retrying {
    ($tally:expr, $call:expr) => {
        loop {
            match $call {
                Err(Error::StoreUnavailable { .. }) => $tally.retries += 1,
                other => break other,
            }
        }
    };
}

async fn run_task(store: &PgNonceStore, key: &NonceKey, n: u64, seed: u64) -> Tally {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    loop {
        let lease = retrying!(tally, store.reserve(key, LEASE_TTL).await).unwrap();
        if lease.nonce >= n {
            retrying!(tally, store.release(&lease).await).unwrap();
            let status = retrying!(tally, store.status(key).await).unwrap();
            let unfinished =
                status.free.iter().any(|&f| f < n) || status.leases.iter().any(|l| l.nonce < n);
            if !unfinished {
                return tally;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
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

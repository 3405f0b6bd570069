//! The money path under chaos: 1,000 signed reward events through the api into a real
//! worker process on anvil while a driver SIGKILLs the worker 50 times (restarting it each
//! time), restarts Redis twice and cuts the worker off the RPC node twice. At the end every
//! reward is confirmed once, no mint is duplicated, the ledger total is the token's
//! `totalSupply`, and the minter's nonces are exactly 0..n with none burned or reused.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use haven_testkit::RedisServer;
use rand::Rng;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::stack::{Sender, Stack, hnv};

const EVENTS: usize = 1000;
/// Bookings per member: under the `rapid_rewards` rule (10 an hour), so nothing is held.
const PER_MEMBER: usize = 8;
const KILLS: usize = 50;
const SENDERS: usize = 8;

/// A TCP proxy in front of the RPC node that can be cut: while down it drops every open
/// connection and refuses new ones.
struct CuttableProxy {
    port: u16,
    up: watch::Sender<bool>,
}

impl CuttableProxy {
    async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, rx) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !*rx.borrow() {
                    continue; // dropped: the connection is reset
                }
                let mut down = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { port, up }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

fn bodies(tag: &str) -> Vec<String> {
    (0..EVENTS)
        .map(|i| {
            format!(
                r#"{{"booking_id":"chaos-{tag}-{i}","guest_id":"chaos-{tag}-{}","total_price":100,"nights":1}}"#,
                i / PER_MEMBER
            )
        })
        .collect()
}

/// Sends every body once accepted (202), retrying as a partner would when the api answers
/// anything else (Redis restarts may refuse some).
async fn send_all(api: Sender, bodies: Arc<Vec<String>>, sent: &AtomicUsize) {
    let senders = (0..SENDERS).map(|sender| {
        let bodies = bodies.clone();
        let stack = api.clone();
        async move {
            for body in bodies.iter().skip(sender).step_by(SENDERS) {
                let started = Instant::now();
                loop {
                    let (status, answer) = stack.send("aurora/booking-created", body).await;
                    if status == 202 || (status == 200 && answer["status"] == "duplicate") {
                        break;
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "an event was refused for a minute: {status} {answer}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                sent.fetch_add(1, Ordering::SeqCst);
                // spread the events over the chaos
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
    });
    futures::future::join_all(senders).await;
}

struct Chaos {
    kills: usize,
    redis_restarts: usize,
    rpc_outages: usize,
}

async fn wreak(
    stack: &mut Stack,
    redis: &mut RedisServer,
    rpc: &CuttableProxy,
    done: &AtomicBool,
) -> Chaos {
    let mut chaos = Chaos {
        kills: 0,
        redis_restarts: 0,
        rpc_outages: 0,
    };
    while chaos.kills < KILLS {
        let pause = rand::rng().random_range(200..1200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        stack.kill_worker();
        chaos.kills += 1;
        if chaos.kills == 15 || chaos.kills == 35 {
            redis.stop();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            redis.restart();
            chaos.redis_restarts += 1;
        }
        stack.start_worker();
        if chaos.kills == 10 || chaos.kills == 30 {
            rpc.set_up(false);
            tokio::time::sleep(Duration::from_secs(4)).await;
            rpc.set_up(true);
            chaos.rpc_outages += 1;
        }
        if done.load(Ordering::SeqCst) && chaos.kills >= KILLS {
            break;
        }
    }
    chaos
}

/// `Transfer` logs of the token from the zero address (mints): (tx hash, recipient, amount).
async fn mints(stack: &Stack) -> Vec<(B256, Address, U256)> {
    let filter = Filter::new()
        .address(stack.token)
        .event("Transfer(address,address,uint256)")
        .topic1(B256::ZERO)
        .from_block(0);
    stack
        .reader
        .get_logs(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|log| {
            let to = Address::from_word(log.topics()[2]);
            let amount = U256::from_be_slice(&log.data().data);
            (log.transaction_hash.unwrap(), to, amount)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a1_rewards_are_minted_exactly_once_through_kills_and_outages() {
    let mut redis = RedisServer::spawn();
    let redis_url = redis.url();
    let api_redis = redis_url.clone();
    let mut stack = Stack::start_with(|c| {
        let plenty = std::num::NonZeroU32::new(10_000_000).unwrap();
        c.rate_limits.webhook_per_min = plenty;
        c.rate_limits.public_per_min = plenty;
        c.common.redis_url = api_redis.into();
        c.common.db_pool_size = 16;
    })
    .await;
    stack.kill_worker();
    let rpc = CuttableProxy::start(stack.anvil.port()).await;
    stack.set_worker_env("REDIS_URL", &redis_url);
    stack.set_worker_env("ETH_RPC_URL", &rpc.url());
    stack.set_worker_env("HAVEN_REWARDS_POLL_MS", "50");
    stack.set_worker_env("HAVEN_JOB_BACKOFF_MS", "100");
    // a killed worker's claimed rewards are taken again after 15 s instead of 2 min
    stack.set_worker_env("HAVEN_REWARDS_LEASE_SECS", "15");
    // `HAVEN_TEST_WORKER_LOG=<file>` keeps the worker's warnings there
    stack.set_worker_env("RUST_LOG", "warn");
    stack.start_worker();

    let started = Instant::now();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let all = Arc::new(bodies(&tag));
    let sent = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let api = stack.sender();
    let (_, chaos) = tokio::join!(
        async {
            send_all(api, all.clone(), &sent).await;
            done.store(true, Ordering::SeqCst);
        },
        wreak(&mut stack, &mut redis, &rpc, &done)
    );
    assert_eq!(sent.load(Ordering::SeqCst), EVENTS);
    // the last worker stays up; every reward settles
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let rewards = stack.rewards().await;
        let mut states: BTreeMap<String, usize> = BTreeMap::new();
        for r in &rewards {
            *states.entry(format!("{:?}", r.state)).or_default() += 1;
        }
        if states.get("Confirmed").copied().unwrap_or(0) >= EVENTS {
            break;
        }
        if Instant::now() > deadline {
            let txs = tx_states(&stack).await;
            panic!("not every reward was confirmed: rewards {states:?}, transactions {txs:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let settled = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    verify(&stack, &tag, &chaos, settled).await;
}

async fn verify(stack: &Stack, tag: &str, chaos: &Chaos, settled: Duration) {
    let rewards = stack.rewards().await;
    let ours: Vec<_> = rewards
        .iter()
        .filter(|r| r.external_id.contains(tag) || r.business_key.contains(tag))
        .collect();
    assert_eq!(ours.len(), EVENTS, "one reward per event");
    let confirmed: Vec<_> = ours
        .iter()
        .filter(|r| r.state == haven_rewards::RewardState::Confirmed)
        .collect();
    assert_eq!(confirmed.len(), EVENTS, "every reward confirmed");
    let ledger_total = confirmed
        .iter()
        .fold(U256::ZERO, |sum, r| sum + U256::from(r.amount.base_units()));
    assert_eq!(ledger_total, hnv(200) * U256::from(EVENTS));

    // mints on chain: one per reward, each the reward's own transaction
    let mints = mints(stack).await;
    let tx_hashes = tx_hashes(stack).await;
    let mut per_reward: HashMap<&str, usize> = HashMap::new();
    let mut unknown = 0usize;
    for (hash, _, _) in &mints {
        match tx_hashes.get(hash) {
            Some(tx_id) => *per_reward.entry(tx_id.as_str()).or_default() += 1,
            None => unknown += 1,
        }
    }
    let duplicates = per_reward.values().map(|n| n - 1).sum::<usize>() + unknown;
    let minted_rewards = confirmed
        .iter()
        .filter(|r| per_reward.get(r.tx_id.as_str()) == Some(&1))
        .count();
    let total_supply = stack.total_supply().await;
    let minted_sum = mints.iter().fold(U256::ZERO, |sum, (_, _, a)| sum + *a);

    // the minter's nonces: exactly 0..n, each mined once
    let mut nonces = BTreeSet::new();
    let mut senders = BTreeMap::new();
    for (hash, _, _) in &mints {
        let tx = stack
            .reader
            .get_transaction_by_hash(*hash)
            .await
            .unwrap()
            .unwrap();
        use alloy::consensus::Transaction as _;
        nonces.insert(tx.inner.nonce());
        *senders.entry(tx.inner.signer()).or_insert(0usize) += 1;
    }
    let (minter, mined) = senders.iter().next().map(|(a, n)| (*a, *n)).unwrap();
    let next_nonce = stack.reader.get_transaction_count(minter).await.unwrap();

    println!(
        "chaos: events {EVENTS}, worker kills {}, redis restarts {}, rpc outages {}, \
         confirmed rewards {}, duplicate mints {duplicates}, ledger total {} HNV, \
         totalSupply {} HNV, minter nonces 0..{next_nonce} ({} mined), settled in {:.0?}",
        chaos.kills,
        chaos.redis_restarts,
        chaos.rpc_outages,
        confirmed.len(),
        ledger_total / hnv(1),
        total_supply / hnv(1),
        nonces.len(),
        settled,
    );
    assert_eq!(chaos.kills, KILLS);
    assert_eq!(chaos.redis_restarts, 2);
    assert_eq!(chaos.rpc_outages, 2);
    assert_eq!(duplicates, 0, "no mint is duplicated");
    assert_eq!(mints.len(), EVENTS, "one mint per reward");
    assert_eq!(
        minted_rewards, EVENTS,
        "each reward minted by its own transaction"
    );
    assert_eq!(minted_sum, ledger_total);
    assert_eq!(
        total_supply, ledger_total,
        "the ledger total is totalSupply"
    );
    assert_eq!(senders.len(), 1, "one minter");
    assert_eq!(mined, EVENTS);
    assert_eq!(
        nonces,
        (0..next_nonce).collect::<BTreeSet<u64>>(),
        "no nonce burned or reused"
    );
    assert_eq!(next_nonce, EVENTS as u64);
}

/// The `transactions` table's rows per status.
async fn tx_states(stack: &Stack) -> Vec<(String, i64)> {
    use diesel::sql_types::{BigInt, Text};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = stack.pool.get().await.unwrap();
    let rows: Vec<Row> =
        diesel::sql_query("SELECT status, count(*) AS n FROM transactions GROUP BY status")
            .load(&mut conn)
            .await
            .unwrap();
    rows.into_iter().map(|r| (r.status, r.n)).collect()
}

/// The `transactions` table's hash → tx id.
async fn tx_hashes(stack: &Stack) -> HashMap<B256, String> {
    use diesel::sql_types::{Bytea, Nullable, Text};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        tx_id: String,
        #[diesel(sql_type = Nullable<Bytea>)]
        hash: Option<Vec<u8>>,
    }
    let mut conn = stack.pool.get().await.unwrap();
    let rows: Vec<Row> = diesel::sql_query("SELECT tx_id, hash FROM transactions")
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter()
        .filter_map(|r| Some((B256::try_from(r.hash?.as_slice()).ok()?, r.tx_id)))
        .collect()
}

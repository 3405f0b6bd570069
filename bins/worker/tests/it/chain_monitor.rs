//! The chain monitoring job against a real anvil and a real database: one `step()` handles a
//! reverted transaction and a stuck one, and `run` registers the job only when configured.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_chain::conformance::fixtures;
use haven_chain::{ChainAlert, HavenToken, MemoryAlertSink, TxStatus, TxStore};
use haven_custody::{Custody, CustodyConfig, LocalKeyProvider};
use haven_db::{PgAuditLog, PgPool, PgTxStore, PgWalletStore};
use haven_testkit::{Anvil, TestDb, TestRedis};
use haven_worker::Job;
use haven_worker::config::{ChainJobConfig, ChainSettings, WorkerConfig};
use haven_worker::jobs::chain_monitor::ChainMonitorJob;
use serde_json::json;

struct Setup {
    anvil: Anvil,
    db: TestDb,
    pool: PgPool,
    token: Address,
    master_keys: String,
    reader: DynProvider,
}

/// Custody wallets `minter` (holding MINTER_ROLE) and `intruder` (without) in Postgres, the
/// token deployed, both funded.
async fn setup() -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let anvil = Anvil::spawn();
    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 8).await.unwrap();
    let master_keys = LocalKeyProvider::generate_entry(1).unwrap().to_string();
    let custody = Arc::new(Custody::new(
        Arc::new(PgWalletStore::new(pool.clone())),
        Arc::new(LocalKeyProvider::parse(&master_keys).unwrap()),
        Arc::new(PgAuditLog::new(pool.clone())),
        CustodyConfig::default(),
    ));
    fixtures::create_wallets(&custody, &["minter", "intruder"]).await;
    let minter = fixtures::wallet_address(&custody, "minter").await;
    let intruder = fixtures::wallet_address(&custody, "intruder").await;
    let token = fixtures::deploy_and_fund(
        &anvil.endpoint(),
        Anvil::DEV_PRIVATE_KEYS[0],
        minter,
        &[minter, intruder],
    )
    .await;
    let reader = ProviderBuilder::new()
        .connect_http(anvil.endpoint().parse().unwrap())
        .erased();
    Setup {
        anvil,
        db,
        pool,
        token,
        master_keys,
        reader,
    }
}

impl Setup {
    fn chain_config(&self, wallet: &str) -> ChainJobConfig {
        ChainJobConfig {
            token_address: Some(self.token),
            wallet: Some(haven_custody::WalletId::new(wallet).unwrap()),
            master_keys: Some(self.master_keys.clone().into()),
            ..ChainJobConfig::off()
        }
    }

    fn job(&self, wallet: &str, alerts: Arc<MemoryAlertSink>) -> ChainMonitorJob {
        let settings: ChainSettings = self.chain_config(wallet).settings().unwrap();
        ChainMonitorJob::new(settings, self.anvil.endpoint(), self.pool.clone(), alerts)
    }

    async fn total_supply(&self) -> U256 {
        HavenToken::new(self.token, &self.reader)
            .totalSupply()
            .call()
            .await
            .unwrap()
    }

    async fn status_column(&self, tx_id: &str) -> String {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            status: String,
        }
        let mut conn = AsyncPgConnection::establish(self.db.url()).await.unwrap();
        diesel::sql_query("SELECT status FROM transactions WHERE tx_id = $1")
            .bind::<diesel::sql_types::Text, _>(tx_id)
            .get_result::<Row>(&mut conn)
            .await
            .unwrap()
            .status
    }
}

/// Receipt status 0: the wallet has no MINTER_ROLE, the mint is mined and reverts; one step
/// marks the row failed and raises an alert naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_step_marks_a_reverted_transaction_failed_and_alerts() {
    let s = setup().await;
    let alerts = Arc::new(MemoryAlertSink::new());
    let job = s.job("intruder", alerts.clone());
    let ops = job.ops().await.unwrap();
    let record = ops
        .mint(
            "reward:denied",
            Address::repeat_byte(0x42),
            U256::from(3u64),
        )
        .await
        .unwrap();
    assert_eq!(record.status, TxStatus::Broadcast);
    assert_eq!(s.status_column("reward:denied").await, "broadcast");

    job.step().await.unwrap();

    assert_eq!(s.status_column("reward:denied").await, "failed");
    let stored = PgTxStore::new(s.pool.clone())
        .get("reward:denied")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, TxStatus::Failed);
    assert!(
        stored.error.as_deref().unwrap().contains("status 0"),
        "{stored:?}"
    );
    assert!(stored.block_number.is_some());
    let raised = alerts.alerts();
    assert!(
        raised.iter().any(|a| matches!(
            a,
            ChainAlert::Failed { tx_id, hash, .. } if tx_id == "reward:denied" && Some(*hash) == record.hash
        )),
        "{raised:?}"
    );
    assert_eq!(s.total_supply().await, U256::ZERO);
}

/// A transaction pending past the threshold (mining off): one step raises the stuck alert and
/// replaces it with the same nonce and bumped fees; once a block is mined, the next step
/// confirms the replacement and the mint happened once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_step_replaces_a_stuck_transaction_with_bumped_fees() {
    let s = setup().await;
    let alerts = Arc::new(MemoryAlertSink::new());
    let job = s.job("minter", alerts.clone());
    let ops = job.ops().await.unwrap();
    s.anvil.rpc("evm_setAutomine", json!([false]));
    let amount = U256::from(1_000u64);
    let first = ops
        .mint("reward:stuck", Address::repeat_byte(0x43), amount)
        .await
        .unwrap();
    assert_eq!(first.status, TxStatus::Broadcast);

    // A step before the threshold leaves it alone.
    job.step().await.unwrap();
    let untouched = ops.get("reward:stuck").await.unwrap().unwrap();
    assert_eq!(untouched.replacements, 0);

    // Broadcast ten minutes ago, as far as the table knows.
    let mut conn = AsyncPgConnection::establish(s.db.url()).await.unwrap();
    diesel::sql_query(
        "UPDATE transactions SET broadcast_at = broadcast_at - interval '10 minutes' \
         WHERE tx_id = 'reward:stuck'",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    job.step().await.unwrap();
    let replaced = ops.get("reward:stuck").await.unwrap().unwrap();
    assert_eq!(replaced.status, TxStatus::Broadcast);
    assert_eq!(replaced.replacements, 1, "{replaced:?}");
    assert_eq!(replaced.nonce, first.nonce, "a replacement keeps the nonce");
    assert_ne!(replaced.hash, first.hash);
    assert_eq!(replaced.previous_hashes, vec![first.hash.unwrap()]);
    let (old_max, new_max) = (
        first.max_fee_per_gas.unwrap(),
        replaced.max_fee_per_gas.unwrap(),
    );
    assert!(new_max * 8 >= old_max * 9, "{old_max} -> {new_max}");
    assert!(
        alerts
            .alerts()
            .iter()
            .any(|a| matches!(a, ChainAlert::Stuck { tx_id, .. } if tx_id == "reward:stuck")),
        "{:?}",
        alerts.alerts()
    );

    s.anvil.rpc("evm_mine", json!([]));
    job.step().await.unwrap();
    let done = ops.get("reward:stuck").await.unwrap().unwrap();
    assert_eq!(done.status, TxStatus::Confirmed, "{done:?}");
    assert_eq!(
        done.hash, replaced.hash,
        "the bumped version is the one mined"
    );
    assert_eq!(s.total_supply().await, amount);
}

/// `run` registers the job only when the chain settings are complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_registers_the_job_only_when_configured() {
    let s = setup().await;
    for (chain, registered) in [
        (ChainJobConfig::off(), false),
        (s.chain_config("minter"), true),
    ] {
        let mut config = WorkerConfig::for_tests(s.db.url(), &TestRedis::server_url());
        config.common.eth_rpc_url = s.anvil.endpoint();
        config.chain = chain;
        config.jobs.chain_monitor =
            haven_worker::config::jobs::CronExpr::parse("test", "* * * * * *").unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(haven_worker::run(config, listener, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let mut monitor = None;
        let mut listed = false;
        for _ in 0..100 {
            if let Ok(response) = client
                .get(format!("http://127.0.0.1:{port}/jobs"))
                .send()
                .await
            {
                let jobs: serde_json::Value = response.json().await.unwrap();
                listed = true;
                monitor = jobs
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|j| j["name"] == "chain_monitor")
                    .cloned();
                if !registered || monitor.as_ref().is_some_and(|m| m["runs"] != 0) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(listed, "the worker answered /jobs");
        if registered {
            let monitor = monitor.expect("chain_monitor is registered");
            assert!(monitor["runs"].as_u64().unwrap() >= 1, "{monitor}");
            assert_eq!(monitor["failures"], 0, "{monitor}");
        } else {
            assert_eq!(monitor, None, "chain_monitor runs without its settings");
        }
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), worker)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// Chain alerts land in `transaction_monitoring`: open for review and queued for the
/// `fraud_delivery` job like any fraud alert.
#[tokio::test(flavor = "multi_thread")]
async fn chain_alerts_are_stored_for_review_and_delivery() {
    use haven_chain::ChainAlertSink;
    use haven_fraud::{AlertFilter, AlertStore, ReviewState, Severity};
    use haven_worker::jobs::chain_alerts::StoredChainAlerts;

    let db = TestDb::new().await;
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    let sink = StoredChainAlerts::new(pool.clone());
    sink.alert(ChainAlert::Failed {
        tx_id: "booking:42:mint".into(),
        hash: alloy::primitives::B256::repeat_byte(7),
        block_number: 12,
    })
    .await;
    sink.alert(ChainAlert::GasSpike {
        gas_price: 90_000_000_000,
        baseline: 30_000_000_000,
    })
    .await;

    let store = haven_db::PgAlertStore::new(pool);
    let filter = AlertFilter {
        limit: 10,
        ..AlertFilter::default()
    };
    let mut stored = store.list(&filter).await.unwrap();
    stored.sort_by_key(|r| r.alert.event_type.clone());
    let summary: Vec<_> = stored
        .iter()
        .map(|r| {
            (
                r.alert.event_type.as_str(),
                r.alert.rule_id.as_str(),
                r.alert.severity,
                r.alert.subject.as_str(),
                r.state,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "gas_spike",
                "chain.gas_spike",
                Severity::Medium,
                "chain",
                ReviewState::Open
            ),
            (
                "transaction_failed",
                "chain.tx_failed",
                Severity::High,
                "tx:booking:42:mint",
                ReviewState::Open
            ),
        ]
    );
    assert!(stored[1].alert.description.contains("booking:42:mint"));
    assert_eq!(stored[1].alert.metadata["chain_alert"]["kind"], "failed");

    let claimed = store
        .claim_deliveries(10, 5, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "both are queued for delivery");
}

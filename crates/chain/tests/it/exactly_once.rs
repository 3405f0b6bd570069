use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;
use futures::StreamExt;
use haven_chain::{ChainConfig, Error, FaultHook, HavenToken, TxRecord, TxStatus};
use haven_testkit::Anvil;

use crate::harness::{balance_of, chain_nonce, setup, total_supply, user};

async fn confirm_all(env: &crate::harness::Env, expected: u64) {
    // Automine: every broadcast is already mined, so a few cycles settle everything. Under a
    // loaded machine receipt calls can time out (or the RPC breaker can open for a while):
    // the cycle then skips those records, as the worker's next minute would, so keep cycling
    // for up to a minute.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut last_errors = Vec::new();
    while std::time::Instant::now() < deadline {
        let report = env.ops.monitor_once(chrono::Utc::now()).await.unwrap();
        last_errors = report.errors;
        let confirmed = env
            .ops
            .list(TxStatus::Confirmed, usize::MAX)
            .await
            .unwrap()
            .len() as u64;
        if confirmed == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!(
        "not all confirmed: {:?}; last cycle's errors: {last_errors:?}",
        env.ops.summary(chrono::Utc::now()).await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_has_name_symbol_decimals_and_roles() {
    let anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    let token = HavenToken::new(env.token, &env.reader);
    assert_eq!(token.name().call().await.unwrap(), "HAVEN");
    assert_eq!(token.symbol().call().await.unwrap(), "HNV");
    assert_eq!(token.decimals().call().await.unwrap(), 18);
    let minter_role = token.MINTER_ROLE().call().await.unwrap();
    assert!(
        token
            .hasRole(minter_role, env.ops.from_address())
            .call()
            .await
            .unwrap()
    );
}

/// A1: many mints to many users concurrently; the supply equals the ledger and the
/// minter's nonces are 0..n with no gap or duplicate. `HAVEN_CHAIN_A1_MINTS` scales it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a1_concurrent_mints_match_the_ledger_with_contiguous_nonces() {
    let mints: u64 = std::env::var("HAVEN_CHAIN_A1_MINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let users = 100;
    let anvil = Anvil::spawn();
    let env = setup(
        &anvil,
        ChainConfig {
            batch: 10_000,
            ..ChainConfig::default()
        },
    )
    .await;

    let results: Vec<TxRecord> = futures::stream::iter(0..mints)
        .map(|i| {
            let ops = env.ops.clone();
            async move {
                ops.mint(&format!("reward:{i}"), user(i % users), U256::from(i + 1))
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(results.len() as u64, mints);
    confirm_all(&env, mints).await;

    let ledger: U256 = (0..mints).map(|i| U256::from(i + 1)).sum();
    assert_eq!(total_supply(&env.reader, env.token).await, ledger);
    let mut per_user = vec![U256::ZERO; users as usize];
    for i in 0..mints {
        per_user[(i % users) as usize] += U256::from(i + 1);
    }
    for u in [0u64, 1, users / 2, users - 1] {
        assert_eq!(
            balance_of(&env.reader, env.token, user(u)).await,
            per_user[u as usize]
        );
    }

    let mut nonces: Vec<u64> = env
        .ops
        .list(TxStatus::Confirmed, usize::MAX)
        .await
        .unwrap()
        .iter()
        .map(|r| r.nonce.unwrap())
        .collect();
    nonces.sort_unstable();
    assert_eq!(
        nonces,
        (0..mints).collect::<Vec<_>>(),
        "nonces are contiguous from 0"
    );
    assert_eq!(
        chain_nonce(&env.reader, env.ops.from_address()).await,
        mints
    );
}

/// A2: one tx_id submitted three times at once puts one mint on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a2_same_tx_id_three_times_concurrently_mints_once() {
    let anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    let amount = U256::from(7_000u64);
    let calls = (0..3).map(|_| {
        let ops = env.ops.clone();
        tokio::spawn(async move { ops.mint("booking:1:mint", user(1), amount).await })
    });
    let outcomes = futures::future::join_all(calls).await;
    for outcome in outcomes {
        let record = outcome.unwrap().unwrap();
        assert_eq!(record.tx_id, "booking:1:mint");
    }
    confirm_all(&env, 1).await;
    assert_eq!(total_supply(&env.reader, env.token).await, amount);
    assert_eq!(chain_nonce(&env.reader, env.ops.from_address()).await, 1);

    // A later retry returns the same record and changes nothing.
    let again = env
        .ops
        .mint("booking:1:mint", user(1), amount)
        .await
        .unwrap();
    assert_eq!(again.status, TxStatus::Confirmed);
    assert_eq!(total_supply(&env.reader, env.token).await, amount);

    // The same tx_id for a different request is refused.
    let err = env
        .ops
        .mint("booking:1:mint", user(2), amount)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TxIdReused { .. }), "{err:?}");
    assert_eq!(err.code(), haven_core::ErrorCode::IdempotencyKeyReused);
}

#[derive(Debug)]
pub struct CrashAfterSigning;

impl FaultHook for CrashAfterSigning {
    fn stop_after_signed(&self, _record: &TxRecord) -> bool {
        true
    }
}

#[derive(Debug)]
pub struct CrashBeforeCommit;

impl FaultHook for CrashBeforeCommit {
    fn stop_after_signed(&self, _record: &TxRecord) -> bool {
        false
    }
    fn stop_before_commit(&self, _record: &TxRecord) -> bool {
        true
    }
}

/// A crash after the signed transaction was recorded and before its nonce was committed:
/// the lease expires and another transaction takes the nonce. The record is then signed
/// anew with a fresh nonce, never broadcast with the nonce another transaction used.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nonce_lost_before_its_commit_is_never_broadcast_and_the_record_is_signed_anew() {
    let anvil = Anvil::spawn();
    let config = ChainConfig {
        lease_ttl: Duration::from_secs(1),
        ..ChainConfig::default()
    };
    let env = setup(&anvil, config).await;
    let amount = U256::from(11u64);

    env.ops.set_fault_hook(Some(Arc::new(CrashBeforeCommit)));
    let err = env
        .ops
        .mint("reward:lost-nonce", user(4), amount)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Interrupted {
                stage: "recorded",
                ..
            }
        ),
        "{err:?}"
    );
    let stranded = env.store_record("reward:lost-nonce").await;
    assert_eq!(stranded.status, TxStatus::Signed);
    assert_eq!(stranded.nonce, Some(0));
    env.ops.set_fault_hook(None);

    // the lease runs out and the next transaction takes nonce 0
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let other = env.ops.mint("reward:other", user(5), amount).await.unwrap();
    assert_eq!(other.nonce, Some(0));

    // the stranded record resumes: signed anew with nonce 1, not broadcast with nonce 0
    let resumed = env
        .ops
        .mint("reward:lost-nonce", user(4), amount)
        .await
        .unwrap();
    assert_eq!(resumed.status, TxStatus::Broadcast, "{resumed:?}");
    assert_eq!(resumed.nonce, Some(1));
    assert_ne!(resumed.hash, stranded.hash);
    confirm_all(&env, 2).await;
    assert_eq!(
        total_supply(&env.reader, env.token).await,
        amount * U256::from(2)
    );
    assert_eq!(chain_nonce(&env.reader, env.ops.from_address()).await, 2);
}

/// A3: a crash between signing and broadcasting; the rerun sends the recorded bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a3_crash_between_sign_and_broadcast_rebroadcasts_the_same_raw_tx() {
    let anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    let amount = U256::from(55u64);

    env.ops.set_fault_hook(Some(Arc::new(CrashAfterSigning)));
    let err = env
        .ops
        .mint("reward:crash", user(3), amount)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Interrupted {
                stage: "signed",
                ..
            }
        ),
        "{err:?}"
    );
    let signed = env.store_record("reward:crash").await;
    assert_eq!(signed.status, TxStatus::Signed);
    let raw = signed.raw.clone().unwrap();
    assert_eq!(
        chain_nonce(&env.reader, env.ops.from_address()).await,
        0,
        "nothing left the process"
    );
    assert_eq!(total_supply(&env.reader, env.token).await, U256::ZERO);

    env.ops.set_fault_hook(None);
    let rerun = env.ops.mint("reward:crash", user(3), amount).await.unwrap();
    assert_eq!(rerun.status, TxStatus::Broadcast);
    assert_eq!(
        rerun.raw.as_ref(),
        Some(&raw),
        "the recorded bytes are sent, not new ones"
    );
    assert_eq!(rerun.hash, signed.hash);
    assert_eq!(rerun.nonce, signed.nonce);

    // The on-chain transaction is exactly the recorded one.
    let onchain: serde_json::Value = anvil.rpc(
        "eth_getRawTransactionByHash",
        serde_json::json!([signed.hash.unwrap()]),
    );
    assert_eq!(
        onchain.as_str().unwrap(),
        alloy::primitives::hex::encode_prefixed(&raw)
    );

    confirm_all(&env, 1).await;
    assert_eq!(total_supply(&env.reader, env.token).await, amount);
    assert_eq!(chain_nonce(&env.reader, env.ops.from_address()).await, 1);
}

/// The monitoring cycle also finishes a crashed submission on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn monitor_broadcasts_a_signed_record_left_by_a_crash() {
    let anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    env.ops.set_fault_hook(Some(Arc::new(CrashAfterSigning)));
    env.ops
        .mint("reward:orphan", user(4), U256::from(9u64))
        .await
        .unwrap_err();
    env.ops.set_fault_hook(None);
    let report = env.ops.monitor_once(chrono::Utc::now()).await.unwrap();
    assert_eq!(report.rebroadcast, 1);
    confirm_all(&env, 1).await;
    assert_eq!(total_supply(&env.reader, env.token).await, U256::from(9u64));
}

impl crate::harness::Env {
    pub async fn store_record(&self, tx_id: &str) -> TxRecord {
        use haven_chain::TxStore;
        self.store.get(tx_id).await.unwrap().unwrap()
    }
}

use alloy::primitives::U256;
use haven_chain::metrics::{TOKENS_BURNED, TOKENS_MINTED};
use haven_chain::{ChainAlert, ChainConfig, TxStatus};
use haven_testkit::{Anvil, MetricsCapture};
use serde_json::json;

use crate::harness::{
    custody_with, deploy_and_fund, ops_for, setup, total_supply, user, wallet_address,
};

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

/// A4: with mining off, a transaction past the pending threshold raises an alert and is
/// replaced with the same nonce and fees ≥ 12.5 % higher; once mined, one mint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a4_stuck_transaction_is_replaced_with_bumped_fees_and_confirms() {
    let anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    anvil.rpc("evm_setAutomine", json!([false]));

    let amount = U256::from(1_000u64);
    let first = env.ops.mint("reward:stuck", user(9), amount).await.unwrap();
    assert_eq!(first.status, TxStatus::Broadcast);
    let t0 = first.broadcast_at.unwrap();

    let early = env.ops.monitor_once(t0 + minutes(1)).await.unwrap();
    assert_eq!(early.replaced, 0);
    assert!(env.alerts.alerts().is_empty());

    let late = env.ops.monitor_once(t0 + minutes(6)).await.unwrap();
    assert_eq!(late.replaced, 1, "{late:?}");
    let stuck_alerts: Vec<_> = env
        .alerts
        .alerts()
        .into_iter()
        .filter(|a| matches!(a, ChainAlert::Stuck { tx_id, .. } if tx_id == "reward:stuck"))
        .collect();
    assert_eq!(stuck_alerts.len(), 1);

    let replaced = env.ops.get("reward:stuck").await.unwrap().unwrap();
    assert_eq!(replaced.nonce, first.nonce, "a replacement keeps the nonce");
    assert_ne!(replaced.hash, first.hash);
    assert_eq!(replaced.previous_hashes, vec![first.hash.unwrap()]);
    assert_eq!(replaced.replacements, 1);
    let (old_max, new_max) = (
        first.max_fee_per_gas.unwrap(),
        replaced.max_fee_per_gas.unwrap(),
    );
    let (old_tip, new_tip) = (
        first.max_priority_fee_per_gas.unwrap(),
        replaced.max_priority_fee_per_gas.unwrap(),
    );
    assert!(new_max * 8 >= old_max * 9, "{old_max} -> {new_max}");
    assert!(new_tip * 8 >= old_tip * 9, "{old_tip} -> {new_tip}");

    // The second replacement waits twice as long.
    let not_yet = env
        .ops
        .monitor_once(t0 + minutes(6) + minutes(9))
        .await
        .unwrap();
    assert_eq!(not_yet.replaced, 0);

    anvil.rpc("evm_mine", json!([]));
    let report = env.ops.monitor_once(t0 + minutes(16)).await.unwrap();
    assert_eq!(report.confirmed, 1, "{report:?}");
    let done = env.ops.get("reward:stuck").await.unwrap().unwrap();
    assert_eq!(done.status, TxStatus::Confirmed);
    assert_eq!(
        done.hash, replaced.hash,
        "the bumped version is the one mined"
    );
    assert_eq!(total_supply(&env.reader, env.token).await, amount);

    let summary = env.ops.summary(t0 + minutes(16)).await.unwrap();
    assert_eq!(
        (summary.pending, summary.stuck, summary.confirmed),
        (0, 0, 1)
    );
}

/// Receipt status 0 → failed + alert; an operator retry after fixing the cause confirms.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reverted_transaction_fails_with_an_alert_and_retries_after_a_fix() {
    let anvil = Anvil::spawn();
    let custody = custody_with(&["minter", "intruder"]).await;
    let minter = wallet_address(&custody, "minter").await;
    let intruder = wallet_address(&custody, "intruder").await;
    let token = deploy_and_fund(&anvil, minter, &[minter, intruder]).await;
    let env = ops_for(&anvil, custody, "intruder", token, ChainConfig::default()).await;

    // The intruder has no MINTER_ROLE: the mint is mined and reverts.
    let record = env
        .ops
        .mint("reward:denied", user(5), U256::from(3u64))
        .await
        .unwrap();
    assert_eq!(record.status, TxStatus::Broadcast);
    let reports = crate::harness::cycle_until(&env, "reward:denied", TxStatus::Failed).await;
    let failed: u32 = reports.iter().map(|r| r.failed).sum();
    assert_eq!(failed, 1, "{reports:?}");
    assert!(env.alerts.alerts().iter().any(
        |a| matches!(a, ChainAlert::Failed { tx_id, hash, .. } if tx_id == "reward:denied" && Some(*hash) == record.hash)
    ));
    assert_eq!(env.ops.list(TxStatus::Failed, 10).await.unwrap().len(), 1);
    assert_eq!(env.ops.summary(chrono::Utc::now()).await.unwrap().failed, 1);

    // Retrying something that did not fail is refused.
    let err = env.ops.retry("missing").await.unwrap_err();
    assert_eq!(err.code(), haven_core::ErrorCode::NotFound);

    // Fix: grant the role, then retry.
    let admin = crate::harness::admin_provider(&anvil);
    let handle = haven_chain::HavenToken::new(token, &admin);
    let role = handle.MINTER_ROLE().call().await.unwrap();
    handle
        .grantRole(role, intruder)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    let retried = env.ops.retry("reward:denied").await.unwrap();
    assert_eq!(retried.status, TxStatus::Broadcast);
    assert_eq!(retried.nonce, Some(1), "the failed one consumed nonce 0");
    crate::harness::cycle_until(&env, "reward:denied", TxStatus::Confirmed).await;
    let done = env.ops.get("reward:denied").await.unwrap().unwrap();
    assert_eq!(done.status, TxStatus::Confirmed);
    assert_eq!(total_supply(&env.reader, token).await, U256::from(3u64));
    let err = env.ops.retry("reward:denied").await.unwrap_err();
    assert_eq!(err.code(), haven_core::ErrorCode::InvalidTransition);
}

/// Burn and transfer go through the same pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burn_and_transfer_move_the_minters_own_tokens() {
    let capture = MetricsCapture::new();
    let _local = capture.set_local();
    let anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    let me = env.ops.from_address();
    env.ops.mint("seed", me, U256::from(100u64)).await.unwrap();
    env.ops
        .transfer("pay", user(7), U256::from(30u64))
        .await
        .unwrap();
    env.ops.burn("burn", U256::from(20u64)).await.unwrap();
    for tx_id in ["seed", "pay", "burn"] {
        crate::harness::cycle_until(&env, tx_id, TxStatus::Confirmed).await;
    }
    assert_eq!(
        env.ops.list(TxStatus::Confirmed, 10).await.unwrap().len(),
        3
    );
    assert_eq!(
        total_supply(&env.reader, env.token).await,
        U256::from(80u64)
    );
    assert_eq!(
        crate::harness::balance_of(&env.reader, env.token, user(7)).await,
        U256::from(30u64)
    );
    assert_eq!(
        crate::harness::balance_of(&env.reader, env.token, me).await,
        U256::from(50u64)
    );
    // One mint and one burn confirmed; the transfer counts as neither.
    assert_eq!(capture.counter(TOKENS_MINTED, &[]), 1);
    assert_eq!(capture.counter(TOKENS_BURNED, &[]), 1);
}

/// `haven_tokens_minted_total` moves by exactly one for one confirmed mint, however many
/// cycles run before and after the confirmation, and when two cycles race for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirmed_mint_is_counted_once_however_many_cycles_see_it() {
    let capture = MetricsCapture::new();
    let _local = capture.set_local();
    let anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    let gauge = || capture.gauge(haven_nonce::metrics::LEASES_OUTSTANDING, &[]);

    env.ops
        .mint("reward:counted", user(3), U256::from(5u64))
        .await
        .unwrap();
    assert_eq!(gauge(), 0.0, "the nonce lease was committed");
    let mut cycles = 0;
    loop {
        let (a, b) = futures::join!(
            env.ops.monitor_once(chrono::Utc::now()),
            env.ops.monitor_once(chrono::Utc::now())
        );
        cycles += 2;
        let confirmed = a.unwrap().confirmed + b.unwrap().confirmed;
        assert!(confirmed <= 1, "one of two racing cycles confirms");
        let record = env.ops.get("reward:counted").await.unwrap().unwrap();
        if record.status == TxStatus::Confirmed {
            break;
        }
        assert!(cycles < 100, "{record:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        env.ops.monitor_once(chrono::Utc::now()).await.unwrap();
    }
    assert_eq!(capture.counter(TOKENS_MINTED, &[]), 1);
    assert_eq!(capture.counter(TOKENS_BURNED, &[]), 0);
    assert!(capture.counters(haven_chain::metrics::ALERTS).is_empty());
    assert_eq!(gauge(), 0.0);
}

/// Gas price ≥ 2 × baseline raises an alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gas_price_spike_raises_an_alert() {
    let anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    let quiet = env.ops.monitor_once(chrono::Utc::now()).await.unwrap();
    let baseline = quiet.gas_price.unwrap();
    assert!(env.alerts.alerts().is_empty());

    let spiked = baseline * 4 + 1_000_000_000;
    anvil.rpc(
        "anvil_setNextBlockBaseFeePerGas",
        json!([format!("0x{spiked:x}")]),
    );
    anvil.rpc("evm_mine", json!([]));
    let report = env.ops.monitor_once(chrono::Utc::now()).await.unwrap();
    assert!(report.gas_price.unwrap() >= 2 * baseline, "{report:?}");
    assert!(
        env.alerts
            .alerts()
            .iter()
            .any(|a| matches!(a, ChainAlert::GasSpike { .. })),
        "{:?}",
        env.alerts.alerts()
    );
}

/// A confirmed transaction whose block is reverted goes back to broadcast, is rebroadcast
/// and confirms again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reorged_confirmation_goes_back_to_broadcast() {
    let capture = MetricsCapture::new();
    let _local = capture.set_local();
    let anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    let snapshot = anvil.rpc("evm_snapshot", json!([]));
    env.ops
        .mint("reward:reorg", user(8), U256::from(11u64))
        .await
        .unwrap();
    crate::harness::cycle_until(&env, "reward:reorg", TxStatus::Confirmed).await;
    assert_eq!(
        env.ops.get("reward:reorg").await.unwrap().unwrap().status,
        TxStatus::Confirmed
    );

    anvil.rpc("evm_revert", json!([snapshot]));
    anvil.rpc("evm_mine", json!([]));
    let report = env.ops.monitor_once(chrono::Utc::now()).await.unwrap();
    assert_eq!(report.reorged, 1, "{report:?}");
    assert_eq!(
        capture.counter(haven_chain::metrics::ALERTS, &[("kind", "reorged")]),
        1
    );
    assert!(
        env.alerts
            .alerts()
            .iter()
            .any(|a| matches!(a, ChainAlert::Reorged { .. }))
    );

    // Rebroadcast on the way back; the next cycle confirms it again.
    anvil.rpc("evm_mine", json!([]));
    crate::harness::cycle_until(&env, "reward:reorg", TxStatus::Confirmed).await;
    let record = env.ops.get("reward:reorg").await.unwrap().unwrap();
    assert_eq!(record.status, TxStatus::Confirmed, "{record:?}");
    assert_eq!(
        total_supply(&env.reader, env.token).await,
        U256::from(11u64)
    );
    assert_eq!(record.reorgs, 1);
    // Counted once: the confirmation made anew after the reorg is not counted again.
    assert_eq!(capture.counter(TOKENS_MINTED, &[]), 1);
}

/// `refresh` checks one transaction now: a mined mint is confirmed without a monitoring
/// cycle, an unmined one stays `broadcast`, and a refresh racing a cycle records the
/// confirmation once (counted once).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_confirms_one_transaction_without_a_cycle() {
    let capture = MetricsCapture::new();
    let _local = capture.set_local();
    let anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    assert!(env.ops.refresh("reward:unknown").await.unwrap().is_none());

    anvil.rpc("evm_setAutomine", json!([false]));
    env.ops
        .mint("reward:refreshed", user(4), U256::from(7u64))
        .await
        .unwrap();
    let waiting = env.ops.refresh("reward:refreshed").await.unwrap().unwrap();
    assert_eq!(waiting.status, TxStatus::Broadcast, "not mined yet");

    anvil.rpc("evm_mine", json!([]));
    let (refreshed, cycle) = futures::join!(
        env.ops.refresh("reward:refreshed"),
        env.ops.monitor_once(chrono::Utc::now())
    );
    cycle.unwrap();
    let refreshed = refreshed.unwrap().unwrap();
    assert_eq!(refreshed.status, TxStatus::Confirmed, "{refreshed:?}");
    assert!(refreshed.block_number.is_some());
    // Later refreshes and cycles change nothing.
    let again = env.ops.refresh("reward:refreshed").await.unwrap().unwrap();
    assert_eq!(again.version, refreshed.version);
    env.ops.monitor_once(chrono::Utc::now()).await.unwrap();
    assert_eq!(capture.counter(TOKENS_MINTED, &[]), 1);
    assert_eq!(total_supply(&env.reader, env.token).await, U256::from(7u64));
}

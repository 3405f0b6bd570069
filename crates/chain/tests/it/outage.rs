use std::time::Duration;

use alloy::primitives::U256;
use haven_chain::{ChainConfig, Error, TxStatus};
use haven_core::ErrorCode;
use haven_testkit::Anvil;

use crate::harness::{deploy_and_fund, setup, total_supply, user};

/// A5: with the node down the breaker opens after its threshold and requests fail fast
/// with CIRCUIT_OPEN, each still recorded `queued`. The restarted anvil is a fresh chain, so
/// the token is redeployed (same deployer and nonce → same address) and the minter refunded;
/// "nothing lost" means every request accepted during the outage is minted exactly once on
/// that chain by the monitoring cycle, with no nonce gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a5_rpc_down_opens_the_breaker_and_queued_work_resumes() {
    let mut anvil = Anvil::spawn();
    let env = setup(&anvil, ChainConfig::default()).await;
    let minter = env.ops.from_address();
    anvil.stop();

    let mut codes = Vec::new();
    for i in 0..10u64 {
        let err = env
            .ops
            .mint(&format!("outage:{i}"), user(i), U256::from(i + 1))
            .await
            .unwrap_err();
        codes.push(err.code());
        if i >= 3 {
            assert!(
                matches!(err, Error::CircuitOpen { .. }),
                "call {i}: {err:?}"
            );
        }
    }
    assert_eq!(&codes[3..], &[ErrorCode::CircuitOpen; 7]);
    assert!(
        codes[..3].iter().all(|c| *c != ErrorCode::CircuitOpen),
        "{codes:?}"
    );
    let queued = env.ops.list(TxStatus::Queued, 100).await.unwrap();
    assert_eq!(queued.len(), 10, "every request was recorded");

    anvil.restart();
    let token = deploy_and_fund(&anvil, minter, &[minter]).await;
    assert_eq!(
        token, env.token,
        "a fresh chain redeploys to the same address"
    );

    // Still open until its timeout elapses.
    let err = env
        .ops
        .mint("outage:late", user(50), U256::from(100u64))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::CircuitOpen);
    env.clock.advance(Duration::from_secs(31));

    let later = chrono::Utc::now() + chrono::Duration::minutes(2);
    let report = env.ops.monitor_once(later).await.unwrap();
    assert_eq!(report.resumed, 11, "{report:?}");
    env.ops.monitor_once(later).await.unwrap();
    let confirmed = env.ops.list(TxStatus::Confirmed, 100).await.unwrap();
    assert_eq!(confirmed.len(), 11);
    let mut nonces: Vec<u64> = confirmed.iter().map(|r| r.nonce.unwrap()).collect();
    nonces.sort_unstable();
    assert_eq!(nonces, (0..11).collect::<Vec<_>>());
    let expected: U256 = (0..10u64).map(|i| U256::from(i + 1)).sum::<U256>() + U256::from(100u64);
    assert_eq!(total_supply(&env.reader, env.token).await, expected);
}

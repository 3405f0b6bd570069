//! `burn_from` and `transfer_from`: the operator wallet (`CUSTODIAN_ROLE`) burns and moves a
//! custodial member's tokens; the member wallet never sends a transaction nor holds ETH.

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use haven_chain::metrics::{TOKENS_BURNED, TOKENS_MINTED};
use haven_chain::{
    ChainAlert, ChainConfig, Error, HavenToken, TxKind, TxRequest, TxStatus, TxStore,
};
use haven_core::ErrorCode;
use haven_testkit::{Anvil, MetricsCapture};

use crate::exactly_once::CrashAfterSigning;
use crate::harness::{
    Env, balance_of, chain_nonce, custody_with, cycle_until, deploy_and_fund, ops_for,
    total_supply, user, wallet_address,
};

/// The operator ("minter") and a custodial member wallet in one custody; only the operator
/// is funded with ETH.
async fn setup_with_member(anvil: &Anvil) -> (Env, Address) {
    let custody = custody_with(&["minter", "member"]).await;
    let minter = wallet_address(&custody, "minter").await;
    let member = wallet_address(&custody, "member").await;
    let token = deploy_and_fund(anvil, minter, &[minter]).await;
    let env = ops_for(anvil, custody, "minter", token, ChainConfig::default()).await;
    (env, member)
}

async fn mint_confirmed(env: &Env, tx_id: &str, to: Address, amount: u64) {
    env.ops.mint(tx_id, to, U256::from(amount)).await.unwrap();
    cycle_until(env, tx_id, TxStatus::Confirmed).await;
}

/// The member sent nothing and was never given gas money.
async fn assert_member_untouched(env: &Env, member: Address) {
    assert_eq!(
        env.reader.get_balance(member).await.unwrap(),
        U256::ZERO,
        "the member holds no ETH"
    );
    assert_eq!(
        chain_nonce(&env.reader, member).await,
        0,
        "the member sent no transaction"
    );
}

async fn gas_used(env: &Env, tx_id: &str) -> u64 {
    let record = env.ops.get(tx_id).await.unwrap().unwrap();
    env.reader
        .get_transaction_receipt(record.hash.unwrap())
        .await
        .unwrap()
        .unwrap()
        .gas_used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_minter_holds_the_custodian_role_and_the_admin_grants_it() {
    let anvil = Anvil::spawn();
    let (env, member) = setup_with_member(&anvil).await;
    let token = HavenToken::new(env.token, &env.reader);
    let role = token.CUSTODIAN_ROLE().call().await.unwrap();
    assert_eq!(role, alloy::primitives::keccak256("CUSTODIAN_ROLE"));
    assert!(
        token
            .hasRole(role, env.ops.from_address())
            .call()
            .await
            .unwrap()
    );
    assert!(!token.hasRole(role, member).call().await.unwrap());
    let admin_role = token.getRoleAdmin(role).call().await.unwrap();
    assert_eq!(admin_role, token.DEFAULT_ADMIN_ROLE().call().await.unwrap());
}

/// A burn_from and a transfer_from, each submitted three times at once and once more later,
/// move the member's balance and the supply once; the member never pays gas.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burn_from_and_transfer_from_happen_once_per_tx_id() {
    let capture = MetricsCapture::new();
    let _local = capture.set_local();
    let anvil = Anvil::spawn();
    let (env, member) = setup_with_member(&anvil).await;
    let external = user(77);
    mint_confirmed(&env, "booking:1:reward", member, 1_000).await;

    let burns = (0..3).map(|_| {
        let ops = env.ops.clone();
        tokio::spawn(async move {
            ops.burn_from("booking:1:reverse", member, U256::from(300u64))
                .await
        })
    });
    for outcome in futures::future::join_all(burns).await {
        let record = outcome.unwrap().unwrap();
        assert_eq!(
            (record.kind, record.holder, record.to),
            (TxKind::BurnFrom, Some(member), None)
        );
    }
    cycle_until(&env, "booking:1:reverse", TxStatus::Confirmed).await;
    let again = env
        .ops
        .burn_from("booking:1:reverse", member, U256::from(300u64))
        .await
        .unwrap();
    assert_eq!(again.status, TxStatus::Confirmed);
    assert_eq!(
        balance_of(&env.reader, env.token, member).await,
        U256::from(700u64)
    );
    assert_eq!(
        total_supply(&env.reader, env.token).await,
        U256::from(700u64)
    );

    let transfers = (0..3).map(|_| {
        let ops = env.ops.clone();
        tokio::spawn(async move {
            ops.transfer_from("withdrawal:1", member, external, U256::from(200u64))
                .await
        })
    });
    for outcome in futures::future::join_all(transfers).await {
        let record = outcome.unwrap().unwrap();
        assert_eq!(
            (record.kind, record.holder, record.to),
            (TxKind::TransferFrom, Some(member), Some(external))
        );
    }
    cycle_until(&env, "withdrawal:1", TxStatus::Confirmed).await;
    env.ops
        .transfer_from("withdrawal:1", member, external, U256::from(200u64))
        .await
        .unwrap();
    for _ in 0..3 {
        env.ops.monitor_once(chrono::Utc::now()).await.unwrap();
    }
    assert_eq!(
        balance_of(&env.reader, env.token, member).await,
        U256::from(500u64)
    );
    assert_eq!(
        balance_of(&env.reader, env.token, external).await,
        U256::from(200u64)
    );
    assert_eq!(
        total_supply(&env.reader, env.token).await,
        U256::from(700u64),
        "a transfer leaves the supply alone"
    );
    assert_eq!(
        chain_nonce(&env.reader, env.ops.from_address()).await,
        3,
        "one mint, one burn_from, one transfer_from left the operator"
    );
    assert_member_untouched(&env, member).await;
    // A confirmed burn_from is a burn in the business metrics; a transfer_from is neither.
    assert_eq!(capture.counter(TOKENS_MINTED, &[]), 1);
    assert_eq!(capture.counter(TOKENS_BURNED, &[]), 1);

    // The same tx_id for another holder, recipient or amount is another request: refused.
    let other = user(78);
    for err in [
        env.ops
            .burn_from("booking:1:reverse", other, U256::from(300u64))
            .await
            .unwrap_err(),
        env.ops
            .transfer_from("withdrawal:1", other, external, U256::from(200u64))
            .await
            .unwrap_err(),
        env.ops
            .transfer_from("withdrawal:1", member, other, U256::from(200u64))
            .await
            .unwrap_err(),
        env.ops
            .burn("booking:1:reverse", U256::from(300u64))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::TxIdReused { .. }), "{err:?}");
        assert_eq!(err.code(), ErrorCode::IdempotencyKeyReused);
    }

    // A custodial kind without its holder is refused before anything is recorded.
    let err = env
        .ops
        .submit(TxRequest {
            tx_id: "booking:2:reverse".into(),
            kind: TxKind::BurnFrom,
            to: None,
            holder: None,
            amount: U256::from(1u64),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
    assert_eq!(err.code(), ErrorCode::ValidationError);
    assert!(env.store.get("booking:2:reverse").await.unwrap().is_none());

    // The default gas limits leave at least half again the measured use.
    let config = ChainConfig::default();
    let burned = gas_used(&env, "booking:1:reverse").await;
    let moved = gas_used(&env, "withdrawal:1").await;
    assert!(burned * 3 / 2 <= config.burn_from_gas, "{burned}");
    assert!(moved * 3 / 2 <= config.transfer_from_gas, "{moved}");
}

/// A burn_from above the member's balance is mined, reverts and ends `failed` with an alert;
/// the burn_from of another member sent around it confirms, and nothing else moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burn_from_above_the_balance_fails_alone() {
    let anvil = Anvil::spawn();
    let custody = custody_with(&["minter", "alice", "bob"]).await;
    let minter = wallet_address(&custody, "minter").await;
    let alice = wallet_address(&custody, "alice").await;
    let bob = wallet_address(&custody, "bob").await;
    let token = deploy_and_fund(&anvil, minter, &[minter]).await;
    let env = ops_for(&anvil, custody, "minter", token, ChainConfig::default()).await;
    mint_confirmed(&env, "reward:alice", alice, 100).await;
    mint_confirmed(&env, "reward:bob", bob, 50).await;

    let (over, fine) = futures::join!(
        env.ops
            .burn_from("reverse:alice", alice, U256::from(101u64)),
        env.ops.burn_from("reverse:bob", bob, U256::from(20u64)),
    );
    let over = over.unwrap();
    fine.unwrap();
    cycle_until(&env, "reverse:alice", TxStatus::Failed).await;
    cycle_until(&env, "reverse:bob", TxStatus::Confirmed).await;
    assert!(env.alerts.alerts().iter().any(|a| matches!(
        a,
        ChainAlert::Failed { tx_id, hash, .. } if tx_id == "reverse:alice" && Some(*hash) == over.hash
    )));
    let receipt = env
        .reader
        .get_transaction_receipt(over.hash.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!receipt.status(), "the burn_from was mined and reverted");

    assert_eq!(
        balance_of(&env.reader, token, alice).await,
        U256::from(100u64)
    );
    assert_eq!(balance_of(&env.reader, token, bob).await, U256::from(30u64));
    assert_eq!(total_supply(&env.reader, token).await, U256::from(130u64));

    // The spent nonce does not block what follows.
    env.ops
        .burn_from("reverse:alice:partial", alice, U256::from(40u64))
        .await
        .unwrap();
    cycle_until(&env, "reverse:alice:partial", TxStatus::Confirmed).await;
    assert_eq!(
        balance_of(&env.reader, token, alice).await,
        U256::from(60u64)
    );
    assert_eq!(total_supply(&env.reader, token).await, U256::from(90u64));
    for member in [alice, bob] {
        assert_member_untouched(&env, member).await;
    }
}

/// A wallet without CUSTODIAN_ROLE cannot burn or move a holder's tokens: the node refuses
/// the call, and a signed transaction is mined, reverts and ends `failed`. The admin can
/// revoke the role from the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_custodian_role_burns_and_moves_a_holders_tokens() {
    let anvil = Anvil::spawn();
    let custody = custody_with(&["minter", "intruder", "member"]).await;
    let minter = wallet_address(&custody, "minter").await;
    let intruder = wallet_address(&custody, "intruder").await;
    let member = wallet_address(&custody, "member").await;
    let token = deploy_and_fund(&anvil, minter, &[minter, intruder]).await;
    let operator = ops_for(
        &anvil,
        custody.clone(),
        "minter",
        token,
        ChainConfig::default(),
    )
    .await;
    let env = ops_for(&anvil, custody, "intruder", token, ChainConfig::default()).await;
    mint_confirmed(&operator, "reward:member", member, 100).await;

    let handle = HavenToken::new(token, &env.reader);
    let err = handle
        .custodianBurn(member, U256::from(1u64))
        .from(intruder)
        .call()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is missing role"), "{err}");

    env.ops
        .burn_from("steal:burn", member, U256::from(10u64))
        .await
        .unwrap();
    env.ops
        .transfer_from("steal:move", member, intruder, U256::from(10u64))
        .await
        .unwrap();
    cycle_until(&env, "steal:burn", TxStatus::Failed).await;
    cycle_until(&env, "steal:move", TxStatus::Failed).await;
    assert_eq!(
        balance_of(&env.reader, token, member).await,
        U256::from(100u64)
    );
    assert_eq!(balance_of(&env.reader, token, intruder).await, U256::ZERO);
    assert_eq!(total_supply(&env.reader, token).await, U256::from(100u64));

    // Revoked, the operator is refused too.
    let admin = crate::harness::admin_provider(&anvil);
    let as_admin = HavenToken::new(token, &admin);
    let role = as_admin.CUSTODIAN_ROLE().call().await.unwrap();
    let receipt = as_admin
        .revokeRole(role, minter)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    operator
        .ops
        .burn_from("reverse:revoked", member, U256::from(10u64))
        .await
        .unwrap();
    cycle_until(&operator, "reverse:revoked", TxStatus::Failed).await;
    assert_eq!(
        balance_of(&env.reader, token, member).await,
        U256::from(100u64)
    );
    assert_member_untouched(&env, member).await;
}

/// `balance_of` and `total_supply` read the token, through the RPC breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn balance_of_and_total_supply_read_the_token_through_the_breaker() {
    let mut anvil = Anvil::spawn();
    let (env, member) = setup_with_member(&anvil).await;
    assert_eq!(env.ops.total_supply().await.unwrap(), U256::ZERO);
    assert_eq!(env.ops.balance_of(member).await.unwrap(), U256::ZERO);
    mint_confirmed(&env, "reward:a", member, 1_234).await;
    mint_confirmed(&env, "reward:b", user(1), 66).await;
    env.ops
        .burn_from("reverse:a", member, U256::from(34u64))
        .await
        .unwrap();
    cycle_until(&env, "reverse:a", TxStatus::Confirmed).await;
    assert_eq!(
        env.ops.balance_of(member).await.unwrap(),
        U256::from(1_200u64)
    );
    assert_eq!(
        env.ops.balance_of(user(1)).await.unwrap(),
        U256::from(66u64)
    );
    assert_eq!(
        env.ops.total_supply().await.unwrap(),
        total_supply(&env.reader, env.token).await
    );
    assert_eq!(env.ops.total_supply().await.unwrap(), U256::from(1_266u64));

    // With the node gone the reads fail, then the breaker opens and they fail fast.
    anvil.stop();
    for _ in 0..3 {
        let err = env.ops.balance_of(member).await.unwrap_err();
        assert!(matches!(err, Error::Rpc { .. }), "{err:?}");
    }
    let err = env.ops.total_supply().await.unwrap_err();
    assert!(matches!(err, Error::CircuitOpen { .. }), "{err:?}");
}

/// A crash between signing and broadcasting a burn_from: the rerun sends the recorded
/// bytes, and the supply drops once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_between_signing_and_broadcasting_a_burn_from_burns_once() {
    let anvil = Anvil::spawn();
    let (env, member) = setup_with_member(&anvil).await;
    mint_confirmed(&env, "reward:crash", member, 500).await;
    let amount = U256::from(120u64);

    env.ops.set_fault_hook(Some(Arc::new(CrashAfterSigning)));
    let err = env
        .ops
        .burn_from("reverse:crash", member, amount)
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
    let signed = env.store_record("reverse:crash").await;
    assert_eq!(signed.status, TxStatus::Signed);
    assert_eq!(signed.holder, Some(member));
    assert_eq!(
        chain_nonce(&env.reader, env.ops.from_address()).await,
        1,
        "only the mint left the process"
    );

    env.ops.set_fault_hook(None);
    // The worker's cycle and a retrying caller both pick it up; one burn results.
    let (report, rerun) = futures::join!(
        env.ops.monitor_once(chrono::Utc::now()),
        env.ops.burn_from("reverse:crash", member, amount)
    );
    report.unwrap();
    let rerun = rerun.unwrap();
    assert_eq!(rerun.hash, signed.hash);
    assert_eq!(rerun.nonce, signed.nonce);
    let onchain: serde_json::Value = anvil.rpc(
        "eth_getRawTransactionByHash",
        serde_json::json!([signed.hash.unwrap()]),
    );
    assert_eq!(
        onchain.as_str().unwrap(),
        alloy::primitives::hex::encode_prefixed(signed.raw.as_ref().unwrap())
    );

    cycle_until(&env, "reverse:crash", TxStatus::Confirmed).await;
    assert_eq!(
        balance_of(&env.reader, env.token, member).await,
        U256::from(380u64)
    );
    assert_eq!(
        total_supply(&env.reader, env.token).await,
        U256::from(380u64)
    );
    assert_eq!(chain_nonce(&env.reader, env.ops.from_address()).await, 2);
    assert_member_untouched(&env, member).await;
}

/// A stuck transfer_from is replaced with the same nonce and bumped fees, re-encoded from
/// the record: the replacement still moves the holder's tokens, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_transfer_from_is_replaced_and_moves_the_tokens_once() {
    let anvil = Anvil::spawn();
    let (env, member) = setup_with_member(&anvil).await;
    mint_confirmed(&env, "reward:stuck", member, 100).await;
    anvil.rpc("evm_setAutomine", serde_json::json!([false]));

    let external = user(88);
    let first = env
        .ops
        .transfer_from("withdrawal:stuck", member, external, U256::from(60u64))
        .await
        .unwrap();
    assert_eq!(first.status, TxStatus::Broadcast);
    let t0 = first.broadcast_at.unwrap();
    let report = env
        .ops
        .monitor_once(t0 + chrono::Duration::minutes(6))
        .await
        .unwrap();
    assert_eq!(report.replaced, 1, "{report:?}");
    let replaced = env.ops.get("withdrawal:stuck").await.unwrap().unwrap();
    assert_eq!(replaced.nonce, first.nonce);
    assert_ne!(replaced.hash, first.hash);
    assert_eq!(replaced.holder, Some(member));

    anvil.rpc("evm_mine", serde_json::json!([]));
    let report = env
        .ops
        .monitor_once(t0 + chrono::Duration::minutes(7))
        .await
        .unwrap();
    assert_eq!(report.confirmed, 1, "{report:?}");
    let done = env.ops.get("withdrawal:stuck").await.unwrap().unwrap();
    assert_eq!(
        done.hash, replaced.hash,
        "the bumped version is the one mined"
    );
    assert_eq!(
        balance_of(&env.reader, env.token, member).await,
        U256::from(40u64)
    );
    assert_eq!(
        balance_of(&env.reader, env.token, external).await,
        U256::from(60u64)
    );
    assert_member_untouched(&env, member).await;
}

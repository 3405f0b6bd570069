//! `haven-admin chain deploy` against a real anvil.

use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use haven_chain::HavenToken;
use haven_testkit::Anvil;
use serde_json::Value;

use crate::admin;

fn reader(anvil: &Anvil) -> alloy::providers::DynProvider {
    let _ = rustls::crypto::ring::default_provider().install_default();
    ProviderBuilder::new()
        .connect_http(anvil.endpoint().parse().unwrap())
        .erased()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_prints_the_token_grants_the_minter_and_reuses_its_out_file() {
    let anvil = Anvil::spawn();
    let endpoint = anvil.endpoint();
    let minter = Anvil::DEV_ADDRESSES[3];
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("token.env");
    let out_arg = out_file.to_str().unwrap();
    let env = [
        ("ETH_RPC_URL", endpoint.as_str()),
        ("HAVEN_DEPLOYER_KEY", Anvil::DEV_PRIVATE_KEYS[1]),
    ];

    let (code, out, err) = admin(
        &["chain", "deploy", "--minter", minter, "--out", out_arg],
        &env,
        None,
    );
    assert_eq!(code, 0, "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["chain_id"], Anvil::CHAIN_ID);
    assert_eq!(printed["deployed"], true);
    let minter: Address = minter.parse().unwrap();
    assert_eq!(printed["minter"], minter.to_checksum(None));
    let token: Address = printed["token"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        format!("HAVEN_TOKEN_ADDRESS={}\n", token.to_checksum(None))
    );

    let provider = reader(&anvil);
    let onchain = HavenToken::new(token, &provider);
    assert_eq!(onchain.name().call().await.unwrap(), "HAVEN");
    assert_eq!(onchain.symbol().call().await.unwrap(), "HNV");
    assert_eq!(onchain.decimals().call().await.unwrap(), 18);
    let minter_role = onchain.MINTER_ROLE().call().await.unwrap();
    assert!(onchain.hasRole(minter_role, minter).call().await.unwrap());
    let custodian_role = onchain.CUSTODIAN_ROLE().call().await.unwrap();
    assert!(
        onchain
            .hasRole(custodian_role, minter)
            .call()
            .await
            .unwrap(),
        "the minter is also the custodian of member wallets"
    );
    let deployer: Address = Anvil::DEV_ADDRESSES[1].parse().unwrap();
    assert!(
        !onchain.hasRole(minter_role, deployer).call().await.unwrap(),
        "only the named minter mints"
    );
    let admin_role = onchain.DEFAULT_ADMIN_ROLE().call().await.unwrap();
    assert!(onchain.hasRole(admin_role, deployer).call().await.unwrap());

    // Run again with the same file: the recorded token is reused, nothing is deployed.
    let deployer_nonce = provider.get_transaction_count(deployer).await.unwrap();
    let (code, out, err) = admin(
        &[
            "chain",
            "deploy",
            "--minter",
            &minter.to_string(),
            "--out",
            out_arg,
        ],
        &env,
        None,
    );
    assert_eq!(code, 0, "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["token"], printed["token"]);
    assert_eq!(again["deployed"], false);
    assert_eq!(
        provider.get_transaction_count(deployer).await.unwrap(),
        deployer_nonce
    );

    // Another minter has no role on that token: a new one is deployed and recorded.
    let other = Anvil::DEV_ADDRESSES[4];
    let (code, out, err) = admin(
        &["chain", "deploy", "--minter", other, "--out", out_arg],
        &env,
        None,
    );
    assert_eq!(code, 0, "{err}");
    let fresh: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(fresh["deployed"], true);
    assert_ne!(fresh["token"], printed["token"]);
    assert!(
        std::fs::read_to_string(&out_file)
            .unwrap()
            .contains(fresh["token"].as_str().unwrap())
    );
}

#[test]
fn deploy_needs_a_deployer_key_outside_development_and_a_valid_minter() {
    let (code, _, err) = admin(
        &["chain", "deploy", "--minter", Anvil::DEV_ADDRESSES[3]],
        &[("ETH_RPC_URL", "http://127.0.0.1:1")],
        None,
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("HAVEN_DEPLOYER_KEY"), "{err}");

    let (code, _, err) = admin(&["chain", "deploy", "--minter", "0x1234"], &[], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--minter"), "{err}");
}

#[test]
fn production_refuses_the_anvil_dev_key() {
    let (code, _, err) = admin(
        &["chain", "deploy", "--minter", Anvil::DEV_ADDRESSES[3]],
        &[
            ("HAVEN_ENV", "production"),
            (
                "DATABASE_URL",
                "postgres://app:s3cret@db.internal:5432/haven",
            ),
            ("ETH_RPC_URL", "http://127.0.0.1:1"),
            ("HAVEN_DEPLOYER_KEY", Anvil::DEV_PRIVATE_KEYS[0]),
        ],
        None,
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("HAVEN_DEPLOYER_KEY"), "{err}");
    assert!(!err.contains(&Anvil::DEV_PRIVATE_KEYS[0][2..]), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn development_deploys_from_the_first_anvil_account_without_a_key() {
    let anvil = Anvil::spawn();
    let endpoint = anvil.endpoint();
    let (code, out, err) = admin(
        &["chain", "deploy", "--minter", Anvil::DEV_ADDRESSES[5]],
        &[("HAVEN_ENV", "development"), ("ETH_RPC_URL", &endpoint)],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let printed: Value = serde_json::from_str(&out).unwrap();
    let admin_address: Address = Anvil::DEV_ADDRESSES[0].parse().unwrap();
    assert_eq!(printed["admin"], admin_address.to_checksum(None));
    let token: Address = printed["token"].as_str().unwrap().parse().unwrap();
    let provider = reader(&anvil);
    assert!(!provider.get_code_at(token).await.unwrap().is_empty());
}

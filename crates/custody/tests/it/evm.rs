//! A1 for EVM: signatures recover to the wallet's address, and transactions signed through
//! custody are mined by a real anvil.

use std::str::FromStr;

use alloy::consensus::{TxEip1559, TypedTransaction};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{TransactionBuilder, TxSigner};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use haven_core::audit::verify_chain;
use haven_custody::{Chain, Error};
use haven_testkit::Anvil;

use crate::support::{Fixture, action_outcome, wid};

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[tokio::test]
async fn hash_and_message_signatures_recover_to_the_address() {
    let fx = Fixture::local();
    let id = wid("evm-sig");
    let wallet = fx
        .custody
        .create_wallet(
            id.clone(),
            Chain::Evm,
            serde_json::json!({"k": "v"}),
            &fx.caller,
        )
        .await
        .unwrap();
    let address = Address::from_str(wallet.address()).unwrap();
    assert_eq!(wallet.address(), address.to_checksum(None), "EIP-55");

    let hash = B256::from([0xa5; 32]);
    let sig = fx.custody.sign_hash(&id, &hash, &fx.caller).await.unwrap();
    let sig = sig.as_evm().unwrap();
    assert_eq!(sig.recover_address_from_prehash(&hash).unwrap(), address);

    let message = b"haven custody says hello";
    let sig = fx
        .custody
        .sign_message(&id, message, &fx.caller)
        .await
        .unwrap();
    assert_eq!(
        sig.as_evm()
            .unwrap()
            .recover_address_from_msg(&message[..])
            .unwrap(),
        address
    );

    let actions: Vec<_> = fx.records().iter().map(action_outcome).collect();
    assert_eq!(
        actions,
        [
            ("wallet.create".into(), "ok".into()),
            ("wallet.sign_hash".into(), "ok".into()),
            ("wallet.sign_message".into(), "ok".into()),
        ]
    );
    verify_chain(&fx.records()).unwrap();
}

#[tokio::test]
async fn transactions_signed_through_custody_are_mined_by_anvil() {
    install_crypto();
    let anvil = Anvil::spawn();
    let url: reqwest::Url = anvil.endpoint().parse().unwrap();
    let fx = Fixture::local();
    let id = wid("evm-anvil");
    let wallet = fx
        .custody
        .create_wallet(id.clone(), Chain::Evm, serde_json::Value::Null, &fx.caller)
        .await
        .unwrap();
    let from = Address::from_str(wallet.address()).unwrap();

    // fund the new wallet from anvil's first development account
    let funder = PrivateKeySigner::from_str(Anvil::DEV_PRIVATE_KEYS[0]).unwrap();
    let funding = ProviderBuilder::new()
        .wallet(funder)
        .connect_http(url.clone());
    let receipt = funding
        .send_transaction(
            TransactionRequest::default()
                .with_to(from)
                .with_value(U256::from(10u128.pow(18))),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());

    // 1. through the alloy adapter: alloy fills nonce, gas and fees, custody signs
    let recipient = Address::from_str(Anvil::DEV_ADDRESSES[1]).unwrap();
    let signer = fx.custody.signer(&id, fx.caller.clone()).await.unwrap();
    assert_eq!(TxSigner::address(&signer), from);
    let provider = ProviderBuilder::new()
        .wallet(signer)
        .connect_http(url.clone());
    let value = U256::from(1_000_000_000u64);
    let before = provider.get_balance(recipient).await.unwrap();
    let receipt = provider
        .send_transaction(
            TransactionRequest::default()
                .with_to(recipient)
                .with_value(value),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.from, from);
    assert!(receipt.block_number.is_some());
    assert_eq!(
        provider.get_balance(recipient).await.unwrap(),
        before + value
    );

    // 2. a hand-built EIP-1559 transaction through `sign_transaction`, sent raw
    let plain = ProviderBuilder::new().connect_http(url);
    let nonce = plain.get_transaction_count(from).await.unwrap();
    let fees = plain.estimate_eip1559_fees().await.unwrap();
    let tx = TxEip1559 {
        chain_id: Anvil::CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: fees.max_fee_per_gas,
        max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
        to: recipient.into(),
        value,
        ..Default::default()
    };
    let envelope = fx
        .custody
        .sign_transaction(&id, TypedTransaction::Eip1559(tx), &fx.caller)
        .await
        .unwrap();
    let signed = envelope.as_eip1559().unwrap();
    assert_eq!(
        signed
            .signature()
            .recover_address_from_prehash(&signed.signature_hash())
            .unwrap(),
        from
    );
    let receipt = plain
        .send_raw_transaction(&envelope.encoded_2718())
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.transaction_hash, *envelope.tx_hash());

    let signed: Vec<_> = fx
        .records()
        .iter()
        .filter(|r| r.event.action == "wallet.sign_transaction")
        .map(|r| r.event.details.clone())
        .collect();
    assert_eq!(signed.len(), 2);
    assert!(signed.iter().all(|d| d["outcome"] == "ok"
        && d["chain_id"] == Anvil::CHAIN_ID
        && d["address"] == wallet.address()));
    verify_chain(&fx.records()).unwrap();
}

#[tokio::test]
async fn transactions_without_chain_id_are_refused() {
    let fx = Fixture::local();
    let id = wid("evm-legacy");
    fx.custody
        .create_wallet(id.clone(), Chain::Evm, serde_json::Value::Null, &fx.caller)
        .await
        .unwrap();
    let tx = TypedTransaction::Legacy(alloy::consensus::TxLegacy {
        chain_id: None,
        gas_limit: 21_000,
        ..Default::default()
    });
    let err = fx
        .custody
        .sign_transaction(&id, tx, &fx.caller)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTransaction { .. }), "{err:?}");
    assert_eq!(
        action_outcome(&fx.last_record()),
        ("wallet.sign_transaction".into(), "refused".into())
    );
}

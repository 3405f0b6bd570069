//! A1 for Solana: ed25519 signatures verify against the base58 address.

use ed25519_dalek::{Signature, VerifyingKey};
use haven_custody::{Chain, Error};

use crate::support::{Fixture, action_outcome, wid};

fn public_key(address: &str) -> VerifyingKey {
    let bytes: [u8; 32] = bs58::decode(address)
        .into_vec()
        .unwrap()
        .try_into()
        .unwrap();
    VerifyingKey::from_bytes(&bytes).unwrap()
}

#[tokio::test]
async fn signatures_verify_against_the_address() {
    let fx = Fixture::local();
    let id = wid("sol-1");
    let wallet = fx
        .custody
        .create_wallet(
            id.clone(),
            Chain::Solana,
            serde_json::Value::Null,
            &fx.caller,
        )
        .await
        .unwrap();
    let key = public_key(wallet.address());

    // a Solana transaction is signed as its serialized message bytes
    let message = b"\x01\x00\x01\x03 pretend this is a serialized solana message";
    let sig = fx
        .custody
        .sign_message(&id, message, &fx.caller)
        .await
        .unwrap();
    let sig: &Signature = sig.as_ed25519().unwrap();
    key.verify_strict(message, sig).unwrap();
    assert!(key.verify_strict(b"another message", sig).is_err());

    let hash = alloy::primitives::B256::repeat_byte(3);
    let sig = fx.custody.sign_hash(&id, &hash, &fx.caller).await.unwrap();
    key.verify_strict(hash.as_slice(), sig.as_ed25519().unwrap())
        .unwrap();
    assert_eq!(sig.to_bytes().len(), 64);
}

#[tokio::test]
async fn evm_only_operations_are_refused_for_solana() {
    let fx = Fixture::local();
    let id = wid("sol-2");
    fx.custody
        .create_wallet(
            id.clone(),
            Chain::Solana,
            serde_json::Value::Null,
            &fx.caller,
        )
        .await
        .unwrap();
    let err = fx.custody.signer(&id, fx.caller.clone()).await.unwrap_err();
    assert!(matches!(
        err,
        Error::UnsupportedOperation {
            chain: Chain::Solana,
            ..
        }
    ));
    let tx = alloy::consensus::TypedTransaction::Eip1559(alloy::consensus::TxEip1559 {
        chain_id: 1,
        ..Default::default()
    });
    let err = fx
        .custody
        .sign_transaction(&id, tx, &fx.caller)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedOperation { .. }), "{err:?}");
    assert_eq!(
        action_outcome(&fx.last_record()),
        ("wallet.sign_transaction".into(), "refused".into())
    );
}

//! A2: tampered, truncated or misplaced ciphertexts fail to decrypt with an error, never a
//! panic, and each refusal is audited at HIGH.

use alloy::primitives::B256;
use haven_core::audit::Severity;
use haven_custody::{Chain, Error, SecretKind, WalletStore};

use crate::support::{Fixture, action_outcome, wid};

#[tokio::test]
async fn tampering_is_a_decryption_error() {
    let fx = Fixture::local();
    let a = wid("tamper-a");
    let b = wid("tamper-b");
    for id in [&a, &b] {
        fx.custody
            .create_wallet(id.clone(), Chain::Evm, serde_json::Value::Null, &fx.caller)
            .await
            .unwrap();
    }
    let (_, key_a) = fx.store.signing_key(&a, None).await.unwrap().unwrap();
    let (_, key_b) = fx.store.signing_key(&b, None).await.unwrap().unwrap();
    let hash = B256::repeat_byte(1);

    let mut flipped = key_b.sealed.clone();
    flipped.ciphertext[5] ^= 0x01;
    let mut flipped_tag = key_b.sealed.clone();
    let last = flipped_tag.ciphertext.len() - 1;
    flipped_tag.ciphertext[last] ^= 0x80;
    let mut truncated = key_b.sealed.clone();
    truncated
        .ciphertext
        .truncate(truncated.ciphertext.len() - 16);
    let mut truncated_one = key_b.sealed.clone();
    truncated_one.ciphertext.pop();
    let mut emptied = key_b.sealed.clone();
    emptied.ciphertext.clear();
    let mut nonce = key_b.sealed.clone();
    nonce.nonce[0] ^= 0x01;
    // A's ciphertext and its (valid) wrapped data key on B's row: the DEK unwraps, the AAD
    // names wallet A, so the private key does not open
    let moved = key_a.sealed.clone();
    let mut dek = key_b.sealed.clone();
    dek.wrapped_dek.ciphertext[20] ^= 0x04;
    let mut dek_truncated = key_b.sealed.clone();
    dek_truncated.wrapped_dek.ciphertext.truncate(20);

    let cases = [
        ("flipped ciphertext bit", flipped, SecretKind::PrivateKey),
        ("flipped tag bit", flipped_tag, SecretKind::PrivateKey),
        ("truncated tag", truncated, SecretKind::PrivateKey),
        ("one byte short", truncated_one, SecretKind::PrivateKey),
        ("empty ciphertext", emptied, SecretKind::PrivateKey),
        ("flipped nonce bit", nonce, SecretKind::PrivateKey),
        (
            "wallet A's ciphertext on B's row",
            moved,
            SecretKind::PrivateKey,
        ),
        ("flipped wrapped DEK bit", dek, SecretKind::DataKey),
        ("truncated wrapped DEK", dek_truncated, SecretKind::DataKey),
    ];
    for (name, sealed, expected) in cases {
        fx.store.tamper(&b, 1, sealed);
        let err = fx
            .custody
            .sign_hash(&b, &hash, &fx.caller)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Decryption { what } if what == expected),
            "{name}: {err:?}"
        );
        assert_eq!(err.code(), haven_core::ErrorCode::InternalError);
        let record = fx.last_record();
        assert_eq!(
            action_outcome(&record),
            ("wallet.sign_hash".into(), "refused".into()),
            "{name}"
        );
        assert_eq!(record.event.severity, Severity::High, "{name}");
        assert_eq!(record.event.details["error"], "decryption_failed", "{name}");
    }

    // untouched rows still sign
    fx.store.untamper();
    fx.custody.sign_hash(&b, &hash, &fx.caller).await.unwrap();
    fx.custody.sign_hash(&a, &hash, &fx.caller).await.unwrap();
}

#[tokio::test]
async fn the_same_ciphertext_under_another_chain_or_version_fails() {
    let fx = Fixture::local();
    let evm = wid("tamper-evm");
    let sol = wid("tamper-sol");
    fx.custody
        .create_wallet(evm.clone(), Chain::Evm, serde_json::Value::Null, &fx.caller)
        .await
        .unwrap();
    fx.custody
        .create_wallet(
            sol.clone(),
            Chain::Solana,
            serde_json::Value::Null,
            &fx.caller,
        )
        .await
        .unwrap();
    // version 2 of the EVM wallet gets version 1's sealed key
    let (_, v1) = fx.store.signing_key(&evm, None).await.unwrap().unwrap();
    fx.custody.rotate_wallet(&evm, &fx.caller).await.unwrap();
    fx.store.tamper(&evm, 2, v1.sealed.clone());
    let hash = B256::ZERO;
    assert!(matches!(
        fx.custody.sign_hash(&evm, &hash, &fx.caller).await,
        Err(Error::Decryption {
            what: SecretKind::PrivateKey
        })
    ));
    // the Solana wallet gets the EVM key
    fx.store.tamper(&sol, 1, v1.sealed);
    assert!(matches!(
        fx.custody.sign_hash(&sol, &hash, &fx.caller).await,
        Err(Error::Decryption {
            what: SecretKind::PrivateKey
        })
    ));
}

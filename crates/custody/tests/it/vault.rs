//! The Vault Transit provider against the mock server: wrap / unwrap / rewrap with key
//! versions and `min_decryption_version` (A3 with Vault).

use std::sync::Arc;

use alloy::primitives::B256;
use haven_custody::{
    Chain, CustodyConfig, DataKey, Error, KeyProvider, SecretKind, VaultTransitConfig,
    VaultTransitKeyProvider, WalletStore, WrappedDek,
};
use secrecy::SecretString;

use crate::evm::install_crypto;
use crate::support::{FaultyStore, Fixture, action_outcome, all_keys, decrypt_stored, wid};
use crate::vault_mock::{MockVault, TOKEN};

fn provider(vault: &MockVault, token: &str) -> VaultTransitKeyProvider {
    install_crypto();
    VaultTransitKeyProvider::new(VaultTransitConfig::new(
        vault.address.clone(),
        SecretString::from(token),
        "haven-wallets",
    ))
    .unwrap()
}

/// Sets min_decryption_version through the mock's config endpoint with a plain client.
async fn set_min_decryption_version(vault: &MockVault, min: u32) {
    install_crypto();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/transit/keys/haven-wallets/config",
            vault.address
        ))
        .header("X-Vault-Token", TOKEN)
        .json(&serde_json::json!({"min_decryption_version": min}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

#[tokio::test]
async fn wrap_unwrap_and_versions() {
    let vault = MockVault::start().await;
    let p = provider(&vault, TOKEN);
    let dek = DataKey::generate().unwrap();
    let wrapped = p.wrap(&dek).await.unwrap();
    assert_eq!(wrapped.kek_version, 1);
    assert!(wrapped.ciphertext.starts_with(b"vault:v1:"));
    assert_eq!(p.current_version().await.unwrap(), 1);
    assert_eq!(
        p.unwrap(&wrapped).await.unwrap().expose_secret(),
        dek.expose_secret()
    );

    vault.rotate("haven-wallets");
    assert_eq!(p.current_version().await.unwrap(), 2);
    let decrypts = vault.decrypts();
    let rewrapped = p.rewrap(&wrapped).await.unwrap();
    assert_eq!(
        vault.decrypts(),
        decrypts,
        "rewrap never returns the data key"
    );
    assert_eq!(rewrapped.kek_version, 2);
    assert!(rewrapped.ciphertext.starts_with(b"vault:v2:"));
    assert_eq!(
        p.unwrap(&rewrapped).await.unwrap().expose_secret(),
        dek.expose_secret()
    );

    set_min_decryption_version(&vault, 2).await;
    assert!(matches!(
        p.unwrap(&wrapped).await,
        Err(Error::KekVersionRetired { version: 1 })
    ));
    assert!(p.unwrap(&rewrapped).await.is_ok());

    // tampering inside the Vault ciphertext, or a relabelled version, is a decryption error
    let mut tampered = rewrapped.clone();
    let n = tampered.ciphertext.len();
    tampered.ciphertext[n - 3] = if tampered.ciphertext[n - 3] == b'A' {
        b'B'
    } else {
        b'A'
    };
    assert!(matches!(
        p.unwrap(&tampered).await,
        Err(Error::Decryption {
            what: SecretKind::DataKey
        })
    ));
    let relabelled = WrappedDek {
        kek_version: 3,
        ciphertext: rewrapped.ciphertext.clone(),
    };
    assert!(matches!(
        p.unwrap(&relabelled).await,
        Err(Error::Decryption {
            what: SecretKind::DataKey
        })
    ));
}

#[tokio::test]
async fn a_bad_token_is_refused() {
    let vault = MockVault::start().await;
    let p = provider(&vault, "hvs.wrong");
    let err = p.wrap(&DataKey::generate().unwrap()).await.unwrap_err();
    assert!(
        matches!(&err, Error::ProviderRefused { status: 403, errors } if errors == &["permission denied"]),
        "{err:?}"
    );
    assert_eq!(err.code(), haven_core::ErrorCode::UpstreamError);
    assert!(!err.to_string().contains("hvs.wrong"));
}

#[tokio::test]
async fn an_unreachable_vault_is_unavailable() {
    install_crypto();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = VaultTransitKeyProvider::new(VaultTransitConfig::new(
        format!("http://127.0.0.1:{port}"),
        SecretString::from(TOKEN),
        "k",
    ))
    .unwrap();
    let err = p.current_version().await.unwrap_err();
    assert!(matches!(err, Error::ProviderUnavailable(_)), "{err:?}");
    assert_eq!(err.code(), haven_core::ErrorCode::ServiceUnavailable);
}

#[tokio::test]
async fn custody_over_vault_rotates_kek_with_a_resumed_rewrap() {
    let vault = MockVault::start().await;
    let p: Arc<dyn KeyProvider> = Arc::new(provider(&vault, TOKEN));
    let store = Arc::new(FaultyStore::default());
    let fx = Fixture::with_store(
        store.clone(),
        p.clone(),
        CustodyConfig {
            allow_export: false,
            rewrap_batch_size: 3,
        },
    );
    for i in 0..10 {
        let chain = if i % 2 == 0 {
            Chain::Evm
        } else {
            Chain::Solana
        };
        fx.custody
            .create_wallet(
                wid(&format!("vault-{i}")),
                chain,
                serde_json::Value::Null,
                &fx.caller,
            )
            .await
            .unwrap();
    }
    fx.custody
        .rotate_wallet(&wid("vault-0"), &fx.caller)
        .await
        .unwrap();
    let total = all_keys(&store).await.len() as u64;
    assert_eq!(total, 11);

    vault.rotate("haven-wallets");
    store.fail_rewrap_after(4);
    assert!(
        fx.custody
            .rewrap_all(2, &fx.caller, &mut |_| {})
            .await
            .is_err()
    );
    assert_eq!(store.count_keys_to_rewrap(2).await.unwrap(), total - 4);
    store.heal();
    let decrypts = vault.decrypts();
    let done = fx
        .custody
        .rewrap_all(2, &fx.caller, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(done.rewrapped, total - 4);
    assert_eq!(vault.decrypts(), decrypts, "rewrap happens inside Vault");
    assert_eq!(store.count_keys_to_rewrap(2).await.unwrap(), 0);

    set_min_decryption_version(&vault, 2).await;
    for (wallet, key) in all_keys(&store).await {
        assert_eq!(key.info.kek_version, 2);
        decrypt_stored(p.as_ref(), &wallet, &key).await.unwrap();
    }
    fx.custody
        .sign_hash(&wid("vault-3"), &B256::ZERO, &fx.caller)
        .await
        .unwrap();
    let outcomes: Vec<_> = fx
        .records()
        .iter()
        .filter(|r| r.event.action == "custody.rewrap_all")
        .map(action_outcome)
        .collect();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].1, "refused");
    assert_eq!(outcomes[1].1, "ok");

    // a target that is not Vault's latest version is refused
    assert!(matches!(
        fx.custody.rewrap_all(3, &fx.caller, &mut |_| {}).await,
        Err(Error::KekVersionMismatch {
            requested: 3,
            current: 2
        })
    ));
}

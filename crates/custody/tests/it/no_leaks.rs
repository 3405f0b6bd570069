//! A6: every operation runs under a TRACE subscriber capturing all output; then the log,
//! the audit rows, every error and every `Debug` of public values are searched for each
//! private key, data key and master key in hex, base64 and base58.

use std::io::Write;
use std::sync::{Arc, Mutex};

use alloy::consensus::{TxEip1559, TypedTransaction};
use alloy::network::TxSigner;
use alloy::primitives::{Address, B256, U256};
use alloy::signers::Signer;
use base64::Engine as _;
use haven_custody::{
    Chain, CustodyConfig, KeyProvider, KeyRef, LocalKeyProvider, PageRequest, VaultTransitConfig,
    VaultTransitKeyProvider, WalletFilter, WalletStore,
};
use secrecy::SecretString;

use crate::support::{FaultyStore, Fixture, decrypt_stored, master_key, wid};
use crate::vault_mock::{MockVault, TOKEN};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every textual form a 32-byte secret could leak in.
fn encodings(secret: &[u8]) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    vec![
        hex::encode(secret),
        hex::encode_upper(secret),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        bs58::encode(secret).into_string(),
        format!("{secret:?}"),
        // a hex fragment long enough to be unique
        hex::encode(&secret[..12]),
    ]
}

#[test]
fn no_key_material_reaches_logs_errors_audit_or_debug() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let (surface, secrets) = runtime.block_on(exercise_everything());
    drop(_guard);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("wallet created"), "tracing was captured");
    assert!(logs.contains("custody operation refused"));
    let haystack = format!("{logs}\n{surface}");
    // 2 local master keys, 2 Vault key versions, and for each of the 4 stored keys (EVM
    // v1 and v2, Solana, Vault-wrapped EVM) its private key and data key
    assert_eq!(secrets.len(), 2 + 2 + 4 * 2);
    for (i, secret) in secrets.iter().enumerate() {
        for (j, form) in encodings(secret).iter().enumerate() {
            // the message names the secret and the encoding, not the value
            assert!(
                !haystack.contains(form),
                "secret #{i} leaked in encoding #{j}"
            );
        }
    }
}

/// Runs every operation, collecting everything outward-facing as text; returns it with all
/// secrets involved (read back by decrypting the store directly).
async fn exercise_everything() -> (String, Vec<Vec<u8>>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut surface = String::new();
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    let (v1, raw1) = master_key(1);
    let (v2, raw2) = master_key(2);
    secrets.push(raw1);
    secrets.push(raw2);

    let store = Arc::new(FaultyStore::new());
    let config = CustodyConfig {
        allow_export: true,
        rewrap_batch_size: 2,
    };
    let local_v1: Arc<dyn KeyProvider> = Arc::new(LocalKeyProvider::parse(&v1).unwrap());
    let fx = Fixture::with_store(store.clone(), local_v1, config.clone());
    let c = &fx.custody;
    let caller = &fx.caller;
    let hash = B256::repeat_byte(0x5c);

    let mut note = |s: String| {
        surface.push_str(&s);
        surface.push('\n');
    };
    let evm = wid("leak-evm");
    let sol = wid("leak-sol");
    note(format!(
        "{:?}",
        c.create_wallet(evm.clone(), Chain::Evm, serde_json::json!({"a": 1}), caller)
            .await
    ));
    note(format!(
        "{:?}",
        c.create_wallet(sol.clone(), Chain::Solana, serde_json::Value::Null, caller)
            .await
    ));
    note(format!(
        "{:?}",
        c.create_wallet(evm.clone(), Chain::Evm, serde_json::Value::Null, caller)
            .await
    ));
    note(format!("{:?}", c.get_wallet(&evm, caller).await));
    note(format!(
        "{:?}",
        c.list_wallets(&WalletFilter::default(), &PageRequest::default(), caller)
            .await
    ));
    note(format!("{:?}", c.sign_hash(&evm, &hash, caller).await));
    note(format!("{:?}", c.sign_hash(&sol, &hash, caller).await));
    note(format!("{:?}", c.sign_message(&evm, b"m", caller).await));
    note(format!("{:?}", c.sign_message(&sol, b"m", caller).await));
    let tx = TypedTransaction::Eip1559(TxEip1559 {
        chain_id: 31337,
        gas_limit: 21_000,
        max_fee_per_gas: 2_000_000_000,
        to: Address::repeat_byte(1).into(),
        value: U256::from(5),
        ..Default::default()
    });
    note(format!("{:?}", c.sign_transaction(&evm, tx, caller).await));
    let signer = c.signer(&evm, caller.clone()).await.unwrap();
    note(format!("{signer:?}"));
    note(format!("{:?}", signer.sign_hash(&hash).await));
    let mut raw_tx = TxEip1559 {
        chain_id: 31337,
        gas_limit: 21_000,
        ..Default::default()
    };
    note(format!("{:?}", signer.sign_transaction(&mut raw_tx).await));
    let exported = c
        .export_private_key(&evm, "leak test", caller)
        .await
        .unwrap();
    note(format!("{exported:?}"));
    note(format!(
        "{:?}",
        c.export_private_key(&sol, "", caller).await
    ));
    note(format!("{:?}", c.rotate_wallet(&evm, caller).await));
    note(format!(
        "{:?}",
        c.sign_hash(KeyRef::pinned(evm.clone(), 1), &hash, caller)
            .await
    ));
    note(format!("{:?}", signer.sign_hash(&hash).await));
    // a tampered row fails to decrypt
    let (_, key) = store.signing_key(&sol, None).await.unwrap().unwrap();
    let mut bad = key.sealed.clone();
    bad.ciphertext[0] ^= 1;
    store.tamper(&sol, 1, bad);
    note(format!("{:?}", c.sign_hash(&sol, &hash, caller).await));
    store.untamper();

    // KEK rotation, a rewrap killed midway and resumed, then v1 retired
    let both: Arc<dyn KeyProvider> =
        Arc::new(LocalKeyProvider::parse(&format!("{v1},{v2}")).unwrap());
    let fx2 = Fixture::with_store(store.clone(), both.clone(), config.clone());
    store.fail_rewrap_after(1);
    note(format!(
        "{:?}",
        fx2.custody
            .rewrap_all(2, caller, &mut |p| note_progress(p))
            .await
    ));
    store.heal();
    note(format!(
        "{:?}",
        fx2.custody
            .rewrap_all(2, caller, &mut |p| note_progress(p))
            .await
    ));
    note(format!(
        "{:?}",
        fx2.custody.revoke_wallet(&sol, caller).await
    ));
    note(format!(
        "{:?}",
        fx2.custody.sign_hash(&sol, &hash, caller).await
    ));
    note(format!("{:?}", fx2.custody));
    note(format!("{both:?}"));

    // Vault: the same through transit, including a refusal for a retired version
    let vault = MockVault::start().await;
    let vault_provider: Arc<dyn KeyProvider> = Arc::new(
        VaultTransitKeyProvider::new(VaultTransitConfig::new(
            vault.address.clone(),
            SecretString::from(TOKEN),
            "haven-wallets",
        ))
        .unwrap(),
    );
    note(format!("{vault_provider:?}"));
    let vault_store = Arc::new(FaultyStore::new());
    let fv = Fixture::with_store(vault_store.clone(), vault_provider.clone(), config);
    let vw = wid("leak-vault");
    note(format!(
        "{:?}",
        fv.custody
            .create_wallet(vw.clone(), Chain::Evm, serde_json::Value::Null, caller)
            .await
    ));
    note(format!(
        "{:?}",
        fv.custody.sign_hash(&vw, &hash, caller).await
    ));
    vault.rotate("haven-wallets");
    note(format!(
        "{:?}",
        fv.custody.rewrap_all(2, caller, &mut |_| {}).await
    ));
    note(format!(
        "{:?}",
        fv.custody
            .export_private_key(&vw, "vault export", caller)
            .await
            .map(|k| format!("{k:?}"))
    ));

    // every record of every audit log, as stored
    for records in [fx.records(), fx2.records(), fv.records()] {
        for r in records {
            note(serde_json::to_string(&r).unwrap());
            note(format!("{r:?}"));
        }
    }
    // every stored key (the store sees ciphertexts only; their Debug shows lengths)
    for (wallet, key) in store.all_keys().await {
        note(format!("{key:?}"));
        let plaintext = decrypt_stored(both.as_ref(), &wallet, &key).await.unwrap();
        secrets.push(plaintext.to_vec());
        secrets.push(
            both.unwrap(&key.sealed.wrapped_dek)
                .await
                .unwrap()
                .expose_secret()
                .to_vec(),
        );
    }
    for (wallet, key) in vault_store.all_keys().await {
        note(format!("{key:?}"));
        let plaintext = decrypt_stored(vault_provider.as_ref(), &wallet, &key)
            .await
            .unwrap();
        secrets.push(plaintext.to_vec());
        secrets.push(
            vault_provider
                .unwrap(&key.sealed.wrapped_dek)
                .await
                .unwrap()
                .expose_secret()
                .to_vec(),
        );
    }
    secrets.extend(vault.key_material("haven-wallets"));
    assert!(secrets.iter().any(|s| s == exported.expose_secret()));
    (surface, secrets)
}

fn note_progress(p: &haven_custody::RewrapProgress) {
    tracing::info!(?p, "progress");
}

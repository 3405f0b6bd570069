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

use crate::support::{FaultyStore, Fixture, all_keys, decrypt_stored, master_key, wid};
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

/// Everything outward-facing, as text: logs aside, every result, error and `Debug`.
#[derive(Default)]
struct Surface(String);

impl Surface {
    fn note(&mut self, text: String) {
        self.0.push_str(&text);
        self.0.push('\n');
    }
}

/// Runs every operation, collecting everything outward-facing as text; returns it with all
/// secrets involved (read back by decrypting the store directly).
async fn exercise_everything() -> (String, Vec<Vec<u8>>) {
    haven_testkit::install_crypto_provider();
    let mut surface = Surface::default();
    let (v1, raw1) = master_key(1);
    let (v2, raw2) = master_key(2);
    let mut secrets: Vec<Vec<u8>> = vec![raw1, raw2];

    let store = Arc::new(FaultyStore::default());
    let config = CustodyConfig {
        allow_export: true,
        rewrap_batch_size: 2,
    };
    let local_v1: Arc<dyn KeyProvider> = Arc::new(LocalKeyProvider::parse(&v1).unwrap());
    let fx = Fixture::with_store(store.clone(), local_v1, config.clone());
    let (sol, exported) = wallet_operations(&mut surface, &fx).await;
    let both: Arc<dyn KeyProvider> =
        Arc::new(LocalKeyProvider::parse(&format!("{v1},{v2}")).unwrap());
    let fx2 = Fixture::with_store(store.clone(), both.clone(), config.clone());
    kek_rotation(&mut surface, &fx2, &sol).await;
    surface.note(format!("{both:?}"));
    let vault = MockVault::start().await;
    let vault_provider: Arc<dyn KeyProvider> = Arc::new(
        VaultTransitKeyProvider::new(VaultTransitConfig::new(
            vault.address.clone(),
            SecretString::from(TOKEN),
            "haven-wallets",
        ))
        .unwrap(),
    );
    surface.note(format!("{vault_provider:?}"));
    let vault_store = Arc::new(FaultyStore::default());
    let fv = Fixture::with_store(vault_store.clone(), vault_provider.clone(), config);
    vault_operations(&mut surface, &fv, &vault).await;

    // every record of every audit log, as stored
    for records in [fx.records(), fx2.records(), fv.records()] {
        for r in records {
            surface.note(serde_json::to_string(&r).unwrap());
            surface.note(format!("{r:?}"));
        }
    }
    for (store, provider) in [(&store, &both), (&vault_store, &vault_provider)] {
        secrets.extend(stored_secrets(&mut surface, store, provider.as_ref()).await);
    }
    secrets.extend(vault.key_material("haven-wallets"));
    assert!(secrets.iter().any(|s| s == exported.expose_secret()));
    (surface.0, secrets)
}

/// Creates, reads, lists, signs (hash, message, transaction, through a signer), exports and
/// rotates wallets, and signs with a tampered key; returns the Solana wallet and the export.
async fn wallet_operations(
    surface: &mut Surface,
    fx: &Fixture,
) -> (haven_custody::WalletId, haven_custody::ExportedKey) {
    let c = &fx.custody;
    let caller = &fx.caller;
    let store = &fx.store;
    let hash = B256::repeat_byte(0x5c);
    let evm = wid("leak-evm");
    let sol = wid("leak-sol");
    surface.note(format!(
        "{:?}",
        c.create_wallet(evm.clone(), Chain::Evm, serde_json::json!({"a": 1}), caller)
            .await
    ));
    surface.note(format!(
        "{:?}",
        c.create_wallet(sol.clone(), Chain::Solana, serde_json::Value::Null, caller)
            .await
    ));
    surface.note(format!(
        "{:?}",
        c.create_wallet(evm.clone(), Chain::Evm, serde_json::Value::Null, caller)
            .await
    ));
    surface.note(format!("{:?}", c.get_wallet(&evm, caller).await));
    surface.note(format!(
        "{:?}",
        c.list_wallets(&WalletFilter::default(), &PageRequest::default(), caller)
            .await
    ));
    surface.note(format!("{:?}", c.sign_hash(&evm, &hash, caller).await));
    surface.note(format!("{:?}", c.sign_hash(&sol, &hash, caller).await));
    surface.note(format!("{:?}", c.sign_message(&evm, b"m", caller).await));
    surface.note(format!("{:?}", c.sign_message(&sol, b"m", caller).await));
    let tx = TypedTransaction::Eip1559(TxEip1559 {
        chain_id: 31337,
        gas_limit: 21_000,
        max_fee_per_gas: 2_000_000_000,
        to: Address::repeat_byte(1).into(),
        value: U256::from(5),
        ..Default::default()
    });
    surface.note(format!("{:?}", c.sign_transaction(&evm, tx, caller).await));
    let signer = c.signer(&evm, caller.clone()).await.unwrap();
    surface.note(format!("{signer:?}"));
    surface.note(format!("{:?}", signer.sign_hash(&hash).await));
    let mut raw_tx = TxEip1559 {
        chain_id: 31337,
        gas_limit: 21_000,
        ..Default::default()
    };
    surface.note(format!("{:?}", signer.sign_transaction(&mut raw_tx).await));
    let exported = c
        .export_private_key(&evm, "leak test", caller)
        .await
        .unwrap();
    surface.note(format!("{exported:?}"));
    surface.note(format!(
        "{:?}",
        c.export_private_key(&sol, "", caller).await
    ));
    surface.note(format!("{:?}", c.rotate_wallet(&evm, caller).await));
    surface.note(format!(
        "{:?}",
        c.sign_hash(KeyRef::pinned(evm.clone(), 1), &hash, caller)
            .await
    ));
    surface.note(format!("{:?}", signer.sign_hash(&hash).await));
    // a tampered row fails to decrypt
    let (_, key) = store.signing_key(&sol, None).await.unwrap().unwrap();
    let mut bad = key.sealed.clone();
    bad.ciphertext[0] ^= 1;
    store.tamper(&sol, 1, bad);
    surface.note(format!("{:?}", c.sign_hash(&sol, &hash, caller).await));
    store.untamper();

    (sol, exported)
}

/// KEK rotation: a rewrap killed midway and resumed, then a wallet revoked.
async fn kek_rotation(surface: &mut Surface, fx2: &Fixture, sol: &haven_custody::WalletId) {
    let caller = &fx2.caller;
    let store = &fx2.store;
    let hash = B256::repeat_byte(0x5c);
    // KEK rotation, a rewrap killed midway and resumed, then v1 retired
    store.fail_rewrap_after(1);
    surface.note(format!(
        "{:?}",
        fx2.custody.rewrap_all(2, caller, &mut note_progress).await
    ));
    store.heal();
    surface.note(format!(
        "{:?}",
        fx2.custody.rewrap_all(2, caller, &mut note_progress).await
    ));
    surface.note(format!(
        "{:?}",
        fx2.custody.revoke_wallet(sol, caller).await
    ));
    surface.note(format!(
        "{:?}",
        fx2.custody.sign_hash(sol, &hash, caller).await
    ));
    surface.note(format!("{:?}", fx2.custody));
}

/// The same through Vault transit, including a refusal for a rotated-away version.
async fn vault_operations(surface: &mut Surface, fv: &Fixture, vault: &MockVault) {
    let caller = &fv.caller;
    let hash = B256::repeat_byte(0x5c);
    let vw = wid("leak-vault");
    surface.note(format!(
        "{:?}",
        fv.custody
            .create_wallet(vw.clone(), Chain::Evm, serde_json::Value::Null, caller)
            .await
    ));
    surface.note(format!(
        "{:?}",
        fv.custody.sign_hash(&vw, &hash, caller).await
    ));
    vault.rotate("haven-wallets");
    surface.note(format!(
        "{:?}",
        fv.custody.rewrap_all(2, caller, &mut |_| {}).await
    ));
    surface.note(format!(
        "{:?}",
        fv.custody
            .export_private_key(&vw, "vault export", caller)
            .await
            .map(|k| format!("{k:?}"))
    ));
}

/// Every key `store` holds: its `Debug` noted, its plaintext and data key returned.
async fn stored_secrets(
    surface: &mut Surface,
    store: &FaultyStore,
    provider: &dyn KeyProvider,
) -> Vec<Vec<u8>> {
    let mut secrets = Vec::new();
    for (wallet, key) in all_keys(store).await {
        surface.note(format!("{key:?}"));
        let plaintext = decrypt_stored(provider, &wallet, &key).await.unwrap();
        secrets.push(plaintext.to_vec());
        secrets.push(
            provider
                .unwrap(&key.sealed.wrapped_dek)
                .await
                .unwrap()
                .expose_secret()
                .to_vec(),
        );
    }
    secrets
}

fn note_progress(p: &haven_custody::RewrapProgress) {
    tracing::info!(?p, "progress");
}

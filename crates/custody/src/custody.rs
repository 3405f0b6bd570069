//! The custody service: every wallet operation, each audited.

use std::fmt;
use std::sync::Arc;

use alloy::consensus::{SignableTransaction, TxEnvelope, TypedTransaction};
use alloy::primitives::{B256, eip191_hash_message};
use chrono::Utc;
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::envelope::{DataKey, Purpose, associated_data, open, seal};
use crate::error::{Error, Result, SecretKind};
use crate::keys::{ChainSignature, PrivateKey};
use crate::provider::KeyProvider;
use crate::store::{KeyCursor, WalletStore};
use crate::types::{
    Caller, Chain, KeyInfo, KeyRecord, KeyRef, KeyStatus, PageRequest, SealedKey, Wallet,
    WalletFilter, WalletId, WalletPage, WalletRecord, WalletStatus,
};

/// Settings validated once by the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustodyConfig {
    /// Whether [`Custody::export_private_key`] may ever succeed. Off by default.
    pub allow_export: bool,
    /// How many keys [`Custody::rewrap_all`] reads per store round trip.
    pub rewrap_batch_size: usize,
}

impl Default for CustodyConfig {
    fn default() -> Self {
        Self {
            allow_export: false,
            rewrap_batch_size: 100,
        }
    }
}

/// Where a [`Custody::rewrap_all`] run stands; reported after every key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RewrapProgress {
    /// The KEK version data keys are moved to.
    pub target_kek_version: u32,
    /// Keys below the target when the run started.
    pub total: u64,
    /// Keys this run re-wrapped.
    pub rewrapped: u64,
    /// Keys another writer changed first (left alone; a rerun picks them up if needed).
    pub skipped: u64,
}

impl RewrapProgress {
    /// Keys handled so far.
    pub fn done(&self) -> u64 {
        self.rewrapped + self.skipped
    }
}

/// A private key handed out by [`Custody::export_private_key`]. Zeroed on drop; `Debug`
/// shows the wallet, never the key.
pub struct ExportedKey {
    wallet_id: WalletId,
    chain: Chain,
    key_version: u32,
    address: String,
    secret: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for ExportedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportedKey")
            .field("wallet_id", &self.wallet_id)
            .field("chain", &self.chain)
            .field("key_version", &self.key_version)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl ExportedKey {
    /// The wallet.
    pub fn wallet_id(&self) -> &WalletId {
        &self.wallet_id
    }

    /// The key family.
    pub fn chain(&self) -> Chain {
        self.chain
    }

    /// The key version exported.
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// The address of the key.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The 32 secret bytes (secp256k1 scalar, or ed25519 seed).
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The secret as lower-case hex without `0x`.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.secret.as_ref()))
    }
}

/// Envelope-encrypted wallet custody: keys are generated, sealed and used here and nowhere
/// else.
///
/// **Invariant:** a plaintext private key exists only inside one call, in zeroizing memory;
/// it is never written to the store, a log, an error or an audit event. Every public
/// operation appends exactly one audit event, success or refusal, before it returns; if the
/// append fails the result is withheld and [`Error::Audit`] returned.
pub struct Custody {
    store: Arc<dyn WalletStore>,
    provider: Arc<dyn KeyProvider>,
    audit: Arc<dyn AuditSink>,
    config: CustodyConfig,
}

impl fmt::Debug for Custody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Custody")
            .field("provider", &self.provider)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct Outcome {
    target: Option<String>,
    severity: Severity,
    details: Value,
}

impl Custody {
    /// Wires the store, the KEK provider and the audit log together.
    pub fn new(
        store: Arc<dyn WalletStore>,
        provider: Arc<dyn KeyProvider>,
        audit: Arc<dyn AuditSink>,
        config: CustodyConfig,
    ) -> Self {
        Self {
            store,
            provider,
            audit,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CustodyConfig {
        &self.config
    }

    /// Appends the operation's audit event (refusals and failures at `High`) and passes the
    /// result through, unless the append fails.
    async fn audited<T>(
        &self,
        caller: &Caller,
        action: &'static str,
        outcome: Outcome,
        result: Result<T>,
    ) -> Result<T> {
        let mut details = match outcome.details {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let severity = match &result {
            Ok(_) => {
                details.insert("outcome".into(), "ok".into());
                outcome.severity
            }
            Err(e) => {
                details.insert("outcome".into(), "refused".into());
                details.insert("error".into(), e.kind().into());
                tracing::warn!(action, error = %e, "custody operation refused");
                Severity::High.max(outcome.severity)
            }
        };
        let mut event =
            AuditEvent::new(caller.actor.clone(), action, severity).details(Value::Object(details));
        event.target = outcome.target;
        event.request_id = caller.request_id.clone();
        event.ip = caller.ip.clone();
        match self.audit.append(event).await {
            Ok(_) => result,
            Err(e) => {
                tracing::error!(action, error = %e, "audit append failed; result withheld");
                Err(Error::Audit(e))
            }
        }
    }

    /// Generates a key pair for `chain`, seals it and stores the wallet.
    pub async fn create_wallet(
        &self,
        id: WalletId,
        chain: Chain,
        metadata: Value,
        caller: &Caller,
    ) -> Result<Wallet> {
        let result = self.create_inner(&id, chain, metadata).await;
        let details = match &result {
            Ok(w) => json!({"chain": chain, "address": w.address(), "key_version": 1}),
            Err(_) => json!({"chain": chain}),
        };
        let outcome = Outcome {
            target: Some(id.to_string()),
            severity: Severity::Medium,
            details,
        };
        self.audited(caller, "wallet.create", outcome, result).await
    }

    async fn create_inner(&self, id: &WalletId, chain: Chain, metadata: Value) -> Result<Wallet> {
        let metadata = match metadata {
            Value::Null => Value::Object(Default::default()),
            other => other,
        };
        let now = Utc::now();
        let key = self.seal_new_key(id, chain, 1, now).await?;
        let record = WalletRecord {
            id: id.clone(),
            chain,
            status: WalletStatus::Active,
            current_version: 1,
            metadata,
            created_at: now,
            updated_at: now,
        };
        self.store.insert(&record, &key).await?;
        tracing::info!(wallet_id = %id, %chain, address = %key.info.address, "wallet created");
        Ok(Wallet {
            record,
            keys: vec![key.info],
        })
    }

    async fn seal_new_key(
        &self,
        id: &WalletId,
        chain: Chain,
        version: u32,
        now: chrono::DateTime<Utc>,
    ) -> Result<KeyRecord> {
        let private = PrivateKey::generate(chain)?;
        let address = private.address()?;
        let dek = DataKey::generate()?;
        let aad = associated_data(id, chain, version, Purpose::SigningKey);
        let (nonce, ciphertext) = seal(dek.expose_secret(), private.expose_secret(), &aad)?;
        let wrapped_dek = self.provider.wrap(&dek).await?;
        Ok(KeyRecord {
            wallet_id: id.clone(),
            info: KeyInfo {
                version,
                address,
                status: KeyStatus::Active,
                kek_version: wrapped_dek.kek_version,
                created_at: now,
                retired_at: None,
            },
            sealed: SealedKey {
                nonce,
                ciphertext,
                wrapped_dek,
            },
        })
    }

    /// A wallet's public data and every key version.
    pub async fn get_wallet(&self, id: &WalletId, caller: &Caller) -> Result<Wallet> {
        let result = self
            .store
            .get(id)
            .await
            .and_then(|w| w.ok_or_else(|| Error::WalletNotFound { id: id.clone() }));
        let outcome = Outcome {
            target: Some(id.to_string()),
            severity: Severity::Info,
            details: json!({}),
        };
        self.audited(caller, "wallet.get", outcome, result).await
    }

    /// A page of wallets' public data, ordered by id.
    pub async fn list_wallets(
        &self,
        filter: &WalletFilter,
        page: &PageRequest,
        caller: &Caller,
    ) -> Result<WalletPage> {
        let result = self.store.list(filter, page).await;
        let outcome = Outcome {
            target: None,
            severity: Severity::Info,
            details: json!({
                "chain": filter.chain,
                "status": filter.status.map(WalletStatus::as_str),
                "after": page.after,
                "limit": page.effective_limit(),
                "returned": result.as_ref().map(|p| p.wallets.len()).unwrap_or(0),
            }),
        };
        self.audited(caller, "wallet.list", outcome, result).await
    }

    /// Loads, checks and decrypts one key; the plaintext never leaves `use_key`.
    async fn with_key<T>(
        &self,
        key: &KeyRef,
        use_key: impl FnOnce(&PrivateKey, Chain) -> Result<T>,
    ) -> Result<(T, KeyInfo)> {
        let (wallet, record) = self.load_usable(key).await?;
        let private = self.decrypt(&wallet, &record).await?;
        let out = use_key(&private, wallet.chain)?;
        Ok((out, record.info))
    }

    async fn load_usable(&self, key: &KeyRef) -> Result<(WalletRecord, KeyRecord)> {
        let id = &key.wallet_id;
        let (wallet, record) = self
            .store
            .signing_key(id, key.version)
            .await?
            .ok_or_else(|| match key.version {
                Some(version) => Error::KeyNotFound {
                    id: id.clone(),
                    version,
                },
                None => Error::WalletNotFound { id: id.clone() },
            })?;
        let status = if wallet.status == WalletStatus::Revoked {
            KeyStatus::Revoked
        } else {
            record.info.status
        };
        if status != KeyStatus::Active {
            return Err(Error::NotActive {
                id: id.clone(),
                version: record.info.version,
                status,
            });
        }
        Ok((wallet, record))
    }

    async fn decrypt(&self, wallet: &WalletRecord, record: &KeyRecord) -> Result<PrivateKey> {
        let version = record.info.version;
        let dek = self.provider.unwrap(&record.sealed.wrapped_dek).await?;
        let aad = associated_data(&wallet.id, wallet.chain, version, Purpose::SigningKey);
        let plaintext = open(
            dek.expose_secret(),
            &record.sealed.nonce,
            &record.sealed.ciphertext,
            &aad,
            SecretKind::PrivateKey,
        )?;
        PrivateKey::from_plaintext(wallet.chain, &plaintext).ok_or_else(|| Error::CorruptKey {
            id: wallet.id.clone(),
            version,
            problem: "the plaintext is not a valid private key",
        })
    }

    fn key_details(key: &KeyRef, info: Option<&KeyInfo>, mut extra: Value) -> Value {
        if let Value::Object(map) = &mut extra {
            if let Some(info) = info {
                map.insert("key_version".into(), info.version.into());
                map.insert("address".into(), info.address.clone().into());
            } else if let Some(v) = key.version {
                map.insert("key_version".into(), v.into());
            }
        }
        extra
    }

    /// Signs a 32-byte digest with the key: ECDSA (recoverable) for EVM, ed25519 over the 32
    /// bytes for Solana.
    pub async fn sign_hash(
        &self,
        key: impl Into<KeyRef>,
        hash: &B256,
        caller: &Caller,
    ) -> Result<ChainSignature> {
        let key = key.into();
        let result = self.with_key(&key, |k, _| k.sign_hash(hash)).await;
        let details = json!({"hash": hash.to_string()});
        self.finish_signing(&key, "wallet.sign_hash", details, caller, result)
            .await
    }

    /// Signs a message: EIP-191 `personal_sign` for EVM, plain ed25519 for Solana (which is
    /// also how a serialized Solana transaction message is signed).
    pub async fn sign_message(
        &self,
        key: impl Into<KeyRef>,
        message: &[u8],
        caller: &Caller,
    ) -> Result<ChainSignature> {
        let key = key.into();
        let result = self
            .with_key(&key, |k, chain| match chain {
                Chain::Evm => k.sign_hash(&eip191_hash_message(message)),
                Chain::Solana => Ok(ChainSignature::Ed25519(k.sign_ed25519(message))),
            })
            .await;
        let details = json!({"message_len": message.len()});
        self.finish_signing(&key, "wallet.sign_message", details, caller, result)
            .await
    }

    /// Signs an EVM transaction and returns the envelope ready for `eth_sendRawTransaction`.
    /// Transactions without a chain id (pre-EIP-155 replayable) are refused.
    pub async fn sign_transaction(
        &self,
        key: impl Into<KeyRef>,
        tx: TypedTransaction,
        caller: &Caller,
    ) -> Result<TxEnvelope> {
        let key = key.into();
        let signature = self.sign_signable(&key, &tx, caller).await?;
        Ok(tx.into_envelope(signature))
    }

    /// Signs any alloy signable EVM transaction and returns the signature (the
    /// [`crate::CustodySigner`] path).
    pub(crate) async fn sign_signable(
        &self,
        key: &KeyRef,
        tx: &dyn SignableTransaction<alloy::primitives::Signature>,
        caller: &Caller,
    ) -> Result<alloy::primitives::Signature> {
        let sighash = tx.signature_hash();
        let chain_id = tx.chain_id();
        let result = match chain_id {
            None => Err(Error::InvalidTransaction {
                reason: "the transaction has no chain id".into(),
            }),
            Some(_) => {
                self.with_key(key, |k, chain| match chain {
                    Chain::Evm => k.sign_hash(&sighash),
                    Chain::Solana => Err(Error::UnsupportedOperation {
                        chain,
                        operation: "sign_transaction",
                    }),
                })
                .await
            }
        };
        let details = json!({
            "chain_id": chain_id,
            "nonce": tx.nonce(),
            "to": tx.to().map(|a| a.to_checksum(None)),
            "value": tx.value().to_string(),
            "signature_hash": sighash.to_string(),
        });
        let signature = self
            .finish_signing(key, "wallet.sign_transaction", details, caller, result)
            .await?;
        match signature {
            ChainSignature::Evm(sig) => Ok(sig),
            ChainSignature::Ed25519(_) => Err(Error::UnsupportedOperation {
                chain: Chain::Solana,
                operation: "sign_transaction",
            }),
        }
    }

    async fn finish_signing(
        &self,
        key: &KeyRef,
        action: &'static str,
        details: Value,
        caller: &Caller,
        result: Result<(ChainSignature, KeyInfo)>,
    ) -> Result<ChainSignature> {
        let info = result.as_ref().ok().map(|(_, info)| info);
        let outcome = Outcome {
            target: Some(key.wallet_id.to_string()),
            severity: Severity::Low,
            details: Self::key_details(key, info, details),
        };
        if let Ok((_, info)) = &result {
            tracing::debug!(wallet_id = %key.wallet_id, key_version = info.version, action, "signed");
        }
        self.audited(caller, action, outcome, result.map(|(sig, _)| sig))
            .await
    }

    /// Returns the wallet's current private key once, if export is enabled in the
    /// configuration and a reason is given. Always writes a `HIGH` audit event, also when
    /// refused.
    pub async fn export_private_key(
        &self,
        id: &WalletId,
        reason: &str,
        caller: &Caller,
    ) -> Result<ExportedKey> {
        let reason = reason.trim();
        let key = KeyRef::current(id.clone());
        let result = if !self.config.allow_export {
            Err(Error::ExportDisabled)
        } else if reason.is_empty() {
            Err(Error::ReasonRequired)
        } else {
            self.with_key(&key, |k, chain| {
                let mut secret = Zeroizing::new([0u8; 32]);
                secret.copy_from_slice(k.expose_secret());
                Ok((secret, chain))
            })
            .await
        };
        let info = result.as_ref().ok().map(|(_, info)| info);
        let outcome = Outcome {
            target: Some(id.to_string()),
            severity: Severity::High,
            details: Self::key_details(&key, info, json!({"reason": reason})),
        };
        let result = result.map(|((secret, chain), info)| ExportedKey {
            wallet_id: id.clone(),
            chain,
            key_version: info.version,
            address: info.address,
            secret,
        });
        self.audited(caller, "wallet.export_private_key", outcome, result)
            .await
    }

    /// Gives the wallet a new key version and address; the old key is marked `rotated`,
    /// stays listed and never signs again.
    pub async fn rotate_wallet(&self, id: &WalletId, caller: &Caller) -> Result<Wallet> {
        self.rotate_audited(id, None, caller).await
    }

    /// [`rotate_wallet`](Self::rotate_wallet), only while `from_version` is the wallet's
    /// current key version: otherwise [`Error::VersionMismatch`] and nothing changes. A
    /// caller that retries with the same version therefore rotates at most once.
    pub async fn rotate_wallet_from(
        &self,
        id: &WalletId,
        from_version: u32,
        caller: &Caller,
    ) -> Result<Wallet> {
        self.rotate_audited(id, Some(from_version), caller).await
    }

    async fn rotate_audited(
        &self,
        id: &WalletId,
        from_version: Option<u32>,
        caller: &Caller,
    ) -> Result<Wallet> {
        let result = self.rotate_inner(id, from_version).await;
        let details = match &result {
            Ok(w) => json!({
                "key_version": w.record.current_version,
                "address": w.address(),
                "previous_key_version": w.record.current_version - 1,
            }),
            Err(_) => json!({}),
        };
        let outcome = Outcome {
            target: Some(id.to_string()),
            severity: Severity::Medium,
            details,
        };
        self.audited(caller, "wallet.rotate", outcome, result).await
    }

    async fn rotate_inner(&self, id: &WalletId, from_version: Option<u32>) -> Result<Wallet> {
        let wallet = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| Error::WalletNotFound { id: id.clone() })?;
        let current = wallet.record.current_version;
        if let Some(expected) = from_version.filter(|v| *v != current) {
            return Err(Error::VersionMismatch {
                id: id.clone(),
                expected,
                current,
            });
        }
        if wallet.status() == WalletStatus::Revoked {
            return Err(Error::NotActive {
                id: id.clone(),
                version: current,
                status: KeyStatus::Revoked,
            });
        }
        let now = Utc::now();
        let key = self
            .seal_new_key(id, wallet.chain(), current + 1, now)
            .await?;
        let rotated = self.store.rotate(id, current, &key, now).await?;
        tracing::info!(wallet_id = %id, key_version = current + 1, "wallet rotated");
        Ok(rotated)
    }

    /// Refuses every future signature of the wallet, for good.
    pub async fn revoke_wallet(&self, id: &WalletId, caller: &Caller) -> Result<Wallet> {
        let result = self.store.revoke(id, Utc::now()).await;
        let outcome = Outcome {
            target: Some(id.to_string()),
            severity: Severity::Medium,
            details: json!({}),
        };
        if result.is_ok() {
            tracing::info!(wallet_id = %id, "wallet revoked");
        }
        self.audited(caller, "wallet.revoke", outcome, result).await
    }

    /// Re-wraps every data key below `kek_version` under that KEK, which must be the one the
    /// provider now encrypts with. No private key is decrypted and nothing but wrapped data
    /// keys is written, one compare-and-set per key.
    ///
    /// Resumable and idempotent: keys already at the target are not touched, so a run killed
    /// midway is finished by running it again. `progress` is called once at the start and
    /// after every key.
    pub async fn rewrap_all(
        &self,
        kek_version: u32,
        caller: &Caller,
        progress: &mut (dyn FnMut(&RewrapProgress) + Send),
    ) -> Result<RewrapProgress> {
        let mut state = RewrapProgress {
            target_kek_version: kek_version,
            total: 0,
            rewrapped: 0,
            skipped: 0,
        };
        let result = self.rewrap_inner(&mut state, progress).await;
        let outcome = Outcome {
            target: None,
            severity: Severity::Medium,
            details: serde_json::to_value(state).unwrap_or_default(),
        };
        self.audited(
            caller,
            "custody.rewrap_all",
            outcome,
            result.map(|()| state),
        )
        .await
    }

    async fn rewrap_inner(
        &self,
        state: &mut RewrapProgress,
        progress: &mut (dyn FnMut(&RewrapProgress) + Send),
    ) -> Result<()> {
        let target = state.target_kek_version;
        let current = self.provider.current_version().await?;
        if current != target {
            return Err(Error::KekVersionMismatch {
                requested: target,
                current,
            });
        }
        state.total = self.store.count_keys_to_rewrap(target).await?;
        progress(state);
        let batch_size = self.config.rewrap_batch_size.max(1);
        let mut cursor: Option<KeyCursor> = None;
        loop {
            let batch = self
                .store
                .keys_to_rewrap(target, cursor.as_ref(), batch_size)
                .await?;
            if batch.is_empty() {
                break;
            }
            for key in batch {
                let new = self.provider.rewrap(&key.sealed.wrapped_dek).await?;
                if new.kek_version != target {
                    return Err(Error::KekVersionMismatch {
                        requested: target,
                        current: new.kek_version,
                    });
                }
                let replaced = self
                    .store
                    .replace_wrapped_dek(
                        &key.wallet_id,
                        key.info.version,
                        &key.sealed.wrapped_dek,
                        &new,
                    )
                    .await?;
                if replaced {
                    state.rewrapped += 1;
                } else {
                    state.skipped += 1;
                }
                tracing::debug!(
                    wallet_id = %key.wallet_id,
                    key_version = key.info.version,
                    from = key.sealed.wrapped_dek.kek_version,
                    to = target,
                    replaced,
                    "data key rewrapped"
                );
                cursor = Some(KeyCursor {
                    wallet_id: key.wallet_id,
                    version: key.info.version,
                });
                progress(state);
            }
        }
        tracing::info!(
            target_kek_version = target,
            rewrapped = state.rewrapped,
            skipped = state.skipped,
            "rewrap finished"
        );
        Ok(())
    }

    /// An alloy signer for the wallet's current EVM key, pinned to that key version: after a
    /// rotation or revocation it refuses to sign. Audited as `wallet.signer`.
    pub async fn signer(
        self: &Arc<Self>,
        id: &WalletId,
        caller: Caller,
    ) -> Result<crate::CustodySigner> {
        let result = async {
            let (wallet, key) = self.load_usable(&KeyRef::current(id.clone())).await?;
            if wallet.chain != Chain::Evm {
                return Err(Error::UnsupportedOperation {
                    chain: wallet.chain,
                    operation: "signer",
                });
            }
            let address = key.info.address.parse().map_err(|_| Error::CorruptKey {
                id: id.clone(),
                version: key.info.version,
                problem: "the stored address does not parse",
            })?;
            Ok((key.info, address))
        }
        .await;
        let info = result.as_ref().ok().map(|(info, _)| info);
        let key = KeyRef::current(id.clone());
        let outcome = Outcome {
            target: Some(id.to_string()),
            severity: Severity::Info,
            details: Self::key_details(&key, info, json!({})),
        };
        let (info, address) = self
            .audited(&caller, "wallet.signer", outcome, result)
            .await?;
        Ok(crate::CustodySigner::new(
            Arc::clone(self),
            KeyRef::pinned(id.clone(), info.version),
            address,
            caller,
        ))
    }
}

//! A4: rotated and revoked keys refuse to sign with a clear error; export is gated; every
//! operation wrote its audit row.

use std::sync::Arc;

use alloy::primitives::{Address, B256};
use alloy::signers::Signer;
use haven_core::ErrorCode;
use haven_core::audit::{Severity, verify_chain};
use haven_custody::{
    Chain, CustodyConfig, Error, KeyRef, KeyStatus, LocalKeyProvider, PageRequest, WalletFilter,
    WalletStatus,
};

use crate::support::{Fixture, action_outcome, address_of, master_key, wid};

#[tokio::test]
async fn rotated_and_revoked_keys_refuse_to_sign() {
    let fx = Fixture::local();
    let id = wid("refuse-1");
    let hash = B256::repeat_byte(7);
    let created = fx
        .custody
        .create_wallet(id.clone(), Chain::Evm, serde_json::Value::Null, &fx.caller)
        .await
        .unwrap();
    let old_signer = fx.custody.signer(&id, fx.caller.clone()).await.unwrap();
    old_signer.sign_hash(&hash).await.unwrap();

    let rotated = fx.custody.rotate_wallet(&id, &fx.caller).await.unwrap();
    assert_eq!(rotated.record.current_version, 2);
    assert_ne!(rotated.address(), created.address(), "a new address");
    assert_eq!(rotated.keys.len(), 2, "the old key stays listed");
    assert_eq!(rotated.keys[0].status, KeyStatus::Rotated);
    assert_eq!(rotated.keys[0].address, created.address());
    assert_eq!(rotated.keys[1].status, KeyStatus::Active);

    // the old version refuses, by pin and through the alloy signer pinned to it
    let err = fx
        .custody
        .sign_hash(KeyRef::pinned(id.clone(), 1), &hash, &fx.caller)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotActive {
                version: 1,
                status: KeyStatus::Rotated,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), ErrorCode::WalletNotActive);
    assert_eq!(
        err.to_string(),
        "wallet refuse-1 key version 1 is rotated and cannot be used"
    );
    let alloy_err = old_signer.sign_hash(&hash).await.unwrap_err();
    let inner = match &alloy_err {
        alloy::signers::Error::Other(e) => e.downcast_ref::<Error>().unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        inner,
        Error::NotActive {
            status: KeyStatus::Rotated,
            ..
        }
    ));

    // the current key signs, with the new address
    let sig = fx.custody.sign_hash(&id, &hash, &fx.caller).await.unwrap();
    let signer: Address = sig
        .as_evm()
        .unwrap()
        .recover_address_from_prehash(&hash)
        .unwrap();
    assert_eq!(signer.to_checksum(None), rotated.address());

    // revoked: nothing signs, nothing rotates, nothing exports, for good
    let revoked = fx.custody.revoke_wallet(&id, &fx.caller).await.unwrap();
    assert_eq!(revoked.status(), WalletStatus::Revoked);
    assert_eq!(revoked.keys[1].status, KeyStatus::Revoked);
    for err in [
        fx.custody
            .sign_hash(&id, &hash, &fx.caller)
            .await
            .unwrap_err(),
        fx.custody
            .sign_message(&id, b"x", &fx.caller)
            .await
            .unwrap_err(),
        fx.custody
            .sign_hash(KeyRef::pinned(id.clone(), 1), &hash, &fx.caller)
            .await
            .unwrap_err(),
        fx.custody.rotate_wallet(&id, &fx.caller).await.unwrap_err(),
        fx.custody.signer(&id, fx.caller.clone()).await.unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                Error::NotActive {
                    status: KeyStatus::Revoked,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // still listed, with both keys
    let listed = fx
        .custody
        .list_wallets(
            &WalletFilter {
                chain: None,
                status: Some(WalletStatus::Revoked),
            },
            &PageRequest::default(),
            &fx.caller,
        )
        .await
        .unwrap();
    assert_eq!(listed.wallets.len(), 1);
    assert_eq!(listed.wallets[0].keys.len(), 2);

    let actions: Vec<_> = fx.records().iter().map(action_outcome).collect();
    let expected = [
        ("wallet.create", "ok"),
        ("wallet.signer", "ok"),
        ("wallet.sign_hash", "ok"),
        ("wallet.rotate", "ok"),
        ("wallet.sign_hash", "refused"),
        ("wallet.sign_hash", "refused"),
        ("wallet.sign_hash", "ok"),
        ("wallet.revoke", "ok"),
        ("wallet.sign_hash", "refused"),
        ("wallet.sign_message", "refused"),
        ("wallet.sign_hash", "refused"),
        ("wallet.rotate", "refused"),
        ("wallet.signer", "refused"),
        ("wallet.list", "ok"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, o)| ((*a).to_owned(), (*o).to_owned()))
        .collect();
    assert_eq!(actions, expected);
    for record in fx.records() {
        assert_eq!(record.event.actor, "tester");
        assert_eq!(record.event.request_id.as_deref(), Some("req-42"));
        assert_eq!(record.event.ip.as_deref(), Some("192.0.2.7"));
        if record.event.action != "wallet.list" {
            assert_eq!(record.event.target.as_deref(), Some("refuse-1"));
        }
        if record.event.details["outcome"] == "refused" {
            assert_eq!(record.event.severity, Severity::High);
            assert_eq!(record.event.details["error"], "not_active");
        }
    }
    verify_chain(&fx.records()).unwrap();
}

#[tokio::test]
async fn export_is_off_by_default_needs_a_reason_and_is_audited_high() {
    let (entry, _) = master_key(1);
    let provider = Arc::new(LocalKeyProvider::parse(&entry).unwrap());
    let disabled = Fixture::new(provider.clone(), CustodyConfig::default());
    let id = wid("export-1");
    disabled
        .custody
        .create_wallet(
            id.clone(),
            Chain::Solana,
            serde_json::Value::Null,
            &disabled.caller,
        )
        .await
        .unwrap();
    let err = disabled
        .custody
        .export_private_key(&id, "incident 7", &disabled.caller)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ExportDisabled));
    assert_eq!(err.code(), ErrorCode::Forbidden);
    let record = disabled.last_record();
    assert_eq!(
        action_outcome(&record),
        ("wallet.export_private_key".into(), "refused".into())
    );
    assert_eq!(record.event.severity, Severity::High);

    let enabled = Fixture::with_store(
        disabled.store.clone(),
        provider,
        CustodyConfig {
            allow_export: true,
            ..Default::default()
        },
    );
    let err = enabled
        .custody
        .export_private_key(&id, "   ", &enabled.caller)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReasonRequired));
    assert_eq!(err.code(), ErrorCode::ValidationError);

    let exported = enabled
        .custody
        .export_private_key(&id, "migrating to cold storage", &enabled.caller)
        .await
        .unwrap();
    let wallet = enabled
        .custody
        .get_wallet(&id, &enabled.caller)
        .await
        .unwrap();
    assert_eq!(exported.address(), wallet.address());
    assert_eq!(
        address_of(Chain::Solana, exported.expose_secret()),
        wallet.address()
    );
    assert!(!format!("{exported:?}").contains(&*exported.to_hex()));

    let records = enabled.records();
    let export = records
        .iter()
        .find(|r| {
            r.event.action == "wallet.export_private_key" && r.event.details["outcome"] == "ok"
        })
        .unwrap();
    assert_eq!(export.event.severity, Severity::High);
    assert_eq!(export.event.details["reason"], "migrating to cold storage");
    assert_eq!(export.event.details["key_version"], 1);
    assert_eq!(export.event.actor, "tester");
    assert_eq!(
        records.iter().map(action_outcome).collect::<Vec<_>>(),
        [
            ("wallet.export_private_key".to_owned(), "refused".to_owned()),
            ("wallet.export_private_key".to_owned(), "ok".to_owned()),
            ("wallet.get".to_owned(), "ok".to_owned()),
        ]
    );
}

#[tokio::test]
async fn create_get_and_list_are_audited_and_validated() {
    let fx = Fixture::local();
    assert!(matches!(
        haven_custody::WalletId::new("has space"),
        Err(Error::InvalidWalletId { .. })
    ));
    for i in 0..5 {
        fx.custody
            .create_wallet(
                wid(&format!("list-{i}")),
                Chain::Evm,
                serde_json::Value::Null,
                &fx.caller,
            )
            .await
            .unwrap();
    }
    let err = fx
        .custody
        .create_wallet(
            wid("list-0"),
            Chain::Evm,
            serde_json::Value::Null,
            &fx.caller,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WalletExists { .. }));
    assert_eq!(err.code(), ErrorCode::Conflict);
    let err = fx
        .custody
        .get_wallet(&wid("nope"), &fx.caller)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);

    let first = fx
        .custody
        .list_wallets(&WalletFilter::default(), &PageRequest::first(3), &fx.caller)
        .await
        .unwrap();
    assert_eq!(first.wallets.len(), 3);
    let second = fx
        .custody
        .list_wallets(
            &WalletFilter::default(),
            &PageRequest {
                limit: 3,
                after: first.next.clone(),
            },
            &fx.caller,
        )
        .await
        .unwrap();
    assert_eq!(second.wallets.len(), 2);
    assert!(second.next.is_none());
    let records = fx.records();
    assert_eq!(records.len(), 5 + 1 + 1 + 2);
    assert_eq!(records[5].event.details["error"], "wallet_exists");
    assert_eq!(records[7].event.details["returned"], 3);
}

/// An audit log that is down.
#[derive(Debug)]
struct DownAudit;

#[async_trait::async_trait]
impl haven_core::audit::AuditSink for DownAudit {
    async fn append(
        &self,
        _event: haven_core::audit::AuditEvent,
    ) -> Result<haven_core::audit::AuditRecord, haven_core::audit::AuditError> {
        Err(haven_core::audit::AuditError::Unavailable(
            "audit database down".into(),
        ))
    }
}

#[tokio::test]
async fn without_an_audit_row_no_key_or_signature_leaves() {
    let (entry, _) = master_key(1);
    let provider = Arc::new(LocalKeyProvider::parse(&entry).unwrap());
    let fx = Fixture::new(
        provider.clone(),
        CustodyConfig {
            allow_export: true,
            ..Default::default()
        },
    );
    let id = wid("audit-down");
    fx.custody
        .create_wallet(id.clone(), Chain::Evm, serde_json::Value::Null, &fx.caller)
        .await
        .unwrap();
    let blind = haven_custody::Custody::new(
        fx.store.clone(),
        provider,
        Arc::new(DownAudit),
        CustodyConfig {
            allow_export: true,
            ..Default::default()
        },
    );
    let err = blind
        .export_private_key(&id, "reason", &fx.caller)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Audit(_)), "{err:?}");
    let err = blind
        .sign_hash(&id, &B256::ZERO, &fx.caller)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Audit(_)), "{err:?}");
    assert_eq!(err.code(), ErrorCode::InternalError);
}

/// A rotation that names the version it rotates from happens once: a retry with the same
/// version is refused with `VersionMismatch` (HTTP 409) and leaves the wallet as it was.
#[tokio::test]
async fn a_rotation_from_a_stale_version_changes_nothing() {
    let fx = Fixture::local();
    let id = wid("rotate-from");
    fx.custody
        .create_wallet(id.clone(), Chain::Evm, serde_json::Value::Null, &fx.caller)
        .await
        .unwrap();
    let rotated = fx
        .custody
        .rotate_wallet_from(&id, 1, &fx.caller)
        .await
        .unwrap();
    assert_eq!(rotated.record.current_version, 2);

    let err = fx
        .custody
        .rotate_wallet_from(&id, 1, &fx.caller)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::VersionMismatch {
                expected: 1,
                current: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(err.kind(), "version_mismatch");
    let (action, outcome) = action_outcome(&fx.last_record());
    assert_eq!(action, "wallet.rotate");
    assert_eq!(outcome, "refused", "the refusal is audited as such");
    let wallet = fx.custody.get_wallet(&id, &fx.caller).await.unwrap();
    assert_eq!(wallet.record.current_version, 2, "still one rotation");
    assert_eq!(wallet.keys.len(), 2);
}

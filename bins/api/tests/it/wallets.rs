//! Creating and rotating custody wallets over HTTP: with the master keys the api creates a
//! wallet once (a taken id is a conflict), rotates it once per named version, and audits
//! each call; without them both routes answer 503 `NOT_CONFIGURED`; other roles are
//! refused.

use std::sync::Arc;

use alloy::primitives::B256;
use haven_api::testing::{TestApi, spawn_api, spawn_api_with};
use haven_auth::Role;
use haven_core::audit::AuditRecord;
use haven_custody::{
    Caller, ChainSignature, Custody, CustodyConfig, KeyRef, LocalKeyProvider, WalletId,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{audit_rows, client_as, pool};

fn outcome(record: &AuditRecord) -> &str {
    record.event.details["outcome"].as_str().unwrap_or_default()
}

/// An api holding a fresh master key, and that key.
async fn api_with_keys() -> (TestApi, Arc<LocalKeyProvider>) {
    let entry = LocalKeyProvider::generate_entry(1).unwrap();
    let keys = Arc::new(LocalKeyProvider::parse(&entry).unwrap());
    let held = keys.clone();
    let api = spawn_api_with(move |config| config.custody_keys = Some(held)).await;
    (api, keys)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wallet_is_created_once_and_rotated_once_per_named_version() {
    let (api, keys) = api_with_keys().await;
    let admin = client_as(&api, Role::Admin).await;
    let body = json!({"id": "treasury-hot", "chain": "evm", "metadata": {"team": "payouts"}});
    let (status, created) = admin.post("/api/v1/admin/wallets", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "treasury-hot");
    assert_eq!(created["key_version"], 1);
    assert_eq!(created["metadata"]["team"], "payouts");
    let first = created["address"].as_str().unwrap().to_owned();
    assert!(first.starts_with("0x") && first.len() == 42, "{first}");
    assert!(!created.to_string().contains("sealed"), "no key material");

    // the key is sealed under the api's master key: custody with that key signs with it
    let custody = Custody::new(
        Arc::new(haven_db::PgWalletStore::new(pool(&api).await)),
        keys,
        Arc::new(haven_core::audit::MemoryAuditLog::new()),
        CustodyConfig::default(),
    );
    let id = WalletId::new("treasury-hot").unwrap();
    let hash = B256::repeat_byte(9);
    let ChainSignature::Evm(sig) = custody
        .sign_hash(KeyRef::current(id.clone()), &hash, &Caller::system())
        .await
        .unwrap()
    else {
        panic!("an EVM wallet signs ECDSA");
    };
    let signer = sig.recover_address_from_prehash(&hash).unwrap();
    assert_eq!(signer.to_string().to_lowercase(), first.to_lowercase());

    // the same id again: a conflict, nothing created
    let (status, again) = admin.post("/api/v1/admin/wallets", body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["error"], "CONFLICT");

    let rotate = "/api/v1/admin/wallets/treasury-hot/rotate";
    let (status, rotated) = admin.post(rotate, json!({"from_version": 1})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["key_version"], 2);
    assert_ne!(rotated["address"], first.as_str(), "a new address");
    assert_eq!(rotated["keys"][0]["status"], "rotated");

    // a retry of the same rotation finds it done and changes nothing
    let (status, refused) = admin.post(rotate, json!({"from_version": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("key version 2"),
        "{refused}"
    );
    let (_, now) = admin.get("/api/v1/admin/wallets/treasury-hot").await;
    assert_eq!(now["key_version"], 2);
    assert_eq!(now["keys"].as_array().unwrap().len(), 2);

    let creates = audit_rows(&api, "wallet.create").await;
    let outcomes: Vec<&str> = creates.iter().map(outcome).collect();
    assert_eq!(outcomes, ["ok", "refused"]);
    assert!(creates[0].event.actor.starts_with("user:"));
    assert_eq!(creates[0].event.target.as_deref(), Some("treasury-hot"));
    let rotations = audit_rows(&api, "wallet.rotate").await;
    let outcomes: Vec<&str> = rotations.iter().map(outcome).collect();
    assert_eq!(outcomes, ["ok", "refused"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_wallet_requests_get_the_field_they_got_wrong() {
    let (api, _) = api_with_keys().await;
    let admin = client_as(&api, Role::Admin).await;
    for (body, field) in [
        (json!({"id": "Bad Id", "chain": "evm"}), "id"),
        (json!({"id": "ok-id", "chain": "bitcoin"}), "chain"),
        (
            json!({"id": "ok-id", "chain": "evm", "metadata": [1]}),
            "metadata",
        ),
    ] {
        let (status, problem) = admin.post("/api/v1/admin/wallets", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["error"], "VALIDATION_ERROR");
        assert_eq!(problem["details"]["field"], field, "{problem}");
    }
    let (status, _) = admin
        .post(
            "/api/v1/admin/wallets",
            json!({"id": "x", "chain": "evm", "extra": 1}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused"
    );
    let (status, _) = admin
        .post(
            "/api/v1/admin/wallets/nope/rotate",
            json!({"from_version": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = admin.get("/api/v1/admin/wallets").await;
    assert_eq!(page["wallets"].as_array().unwrap().len(), 0, "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_master_keys_creation_and_rotation_are_not_configured() {
    let api = spawn_api().await;
    let admin = client_as(&api, Role::Admin).await;
    let (status, problem) = admin
        .post(
            "/api/v1/admin/wallets",
            json!({"id": "hot", "chain": "evm"}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(problem["error"], "NOT_CONFIGURED", "not a temporary outage");
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("not configured"),
        "{problem}"
    );
    let (status, problem) = admin
        .post(
            "/api/v1/admin/wallets/hot/rotate",
            json!({"from_version": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    let (_, page) = admin.get("/api/v1/admin/wallets").await;
    assert_eq!(page["wallets"].as_array().unwrap().len(), 0);
    assert!(audit_rows(&api, "wallet.create").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_and_viewers_cannot_create_or_rotate_wallets() {
    let (api, _) = api_with_keys().await;
    for role in [Role::Operator, Role::Viewer] {
        let client = client_as(&api, role).await;
        let (status, _) = client
            .post(
                "/api/v1/admin/wallets",
                json!({"id": "hot", "chain": "evm"}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        let (status, _) = client
            .post(
                "/api/v1/admin/wallets/hot/rotate",
                json!({"from_version": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    assert!(audit_rows(&api, "wallet.create").await.is_empty());
}

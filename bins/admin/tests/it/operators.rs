//! The operator commands: `nonces show|reset`, `breakers list|reset|force-open|disable` and
//! `audit wallet-logs`, as tables and as JSON, with their confirmations and refusals.

use std::time::Duration;

use chrono::Utc;
use haven_api::config::auth::DEV_JWT_SECRET;
use haven_api::testing::{TestApi, spawn_api};
use haven_auth::{Jwt, JwtConfig, Keyring, Role, SigningKey};
use haven_core::audit::{AuditEvent, AuditRecord, AuditSink, Severity};
use haven_nonce::{NonceKey, NonceStore};
use haven_testkit::{Anvil, TestDb};
use serde_json::{Value, json};

use crate::admin;

async fn audit_rows(url: &str, action: &str) -> Vec<AuditRecord> {
    let pool = haven_db::connect(url, 2).await.unwrap();
    haven_db::PgAuditLog::new(pool)
        .page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == action)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn nonces_show_and_reset_refuse_leases_ask_first_and_audit_a_forced_reset() {
    let anvil = Anvil::spawn();
    let db = TestDb::new().await;
    let rpc = anvil.endpoint();
    let env = [("DATABASE_URL", db.url()), ("ETH_RPC_URL", rpc.as_str())];
    let address = Anvil::DEV_ADDRESSES[8];
    let key = NonceKey::parse(Anvil::CHAIN_ID, address).unwrap();
    let store = haven_db::PgNonceStore::new(haven_db::connect(db.url(), 2).await.unwrap());
    let _held = store.reserve(&key, Duration::from_secs(600)).await.unwrap();
    let chain = Anvil::CHAIN_ID.to_string();

    let (code, out, err) = admin(&["nonces", "show", "--chain", &chain, address], &env, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("next") && out.contains("LEASE NONCE"), "{out}");
    let (code, out, _) = admin(
        &["nonces", "show", "--chain", &chain, address, "--json"],
        &env,
        None,
    );
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["next"], 1);
    assert_eq!(shown["leases_outstanding"], 1);

    // the safety refusal: a lease is held
    let reset = ["nonces", "reset", "--chain", &chain, address];
    let (code, _, err) = admin(&[&reset[..], &["--yes"]].concat(), &env, None);
    assert_eq!(code, 1);
    assert!(err.contains("refused") && err.contains("--force"), "{err}");
    // not confirmed: nothing changes
    let (code, _, err) = admin(&[&reset[..], &["--force"]].concat(), &env, Some("no\n"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Type yes"), "{err}");
    let refused = audit_rows(db.url(), "nonce.reset").await;
    assert_eq!(refused.len(), 1, "only the refusal is recorded");
    assert_eq!(refused[0].event.details["outcome"], "refused");

    let (code, out, err) = admin(
        &[&reset[..], &["--force", "--json"]].concat(),
        &env,
        Some("yes\n"),
    );
    assert_eq!(code, 0, "{err}");
    let done: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(done["previous_next"], 1);
    assert_eq!(done["next"], 0);
    assert_eq!(done["dropped_leases"], 1);
    let rows = audit_rows(db.url(), "nonce.reset").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].event.severity, Severity::High);
    assert_eq!(rows[1].event.details["outcome"], "applied");
    assert!(rows[1].event.actor.starts_with("haven-admin:"));

    let (code, _, err) = admin(&["nonces", "show", "--chain", &chain, "0x12"], &env, None);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = admin(
        &["nonces", "reset", "--chain", "1", address, "--yes"],
        &env,
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("serves chain 31337"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_wallet_logs_print_a_table_or_json_lines_and_refuse_bad_filters() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url())];
    let log = haven_db::PgAuditLog::new(haven_db::connect(db.url(), 2).await.unwrap());
    for (action, target, severity) in [
        ("wallet.create", "w1", Severity::Medium),
        ("wallet.sign_hash", "w1", Severity::High),
        ("wallet.revoke", "w2", Severity::High),
        ("user.create", "u1", Severity::Medium),
    ] {
        log.append(AuditEvent::new("user:ops", action, severity).target(target))
            .await
            .unwrap();
    }
    let (code, out, err) = admin(&["audit", "wallet-logs"], &env, None);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("SEQ"), "{out}");
    assert_eq!(
        lines.len(),
        4,
        "a header and the three wallet records: {out}"
    );
    assert!(lines[1].contains("wallet.revoke"), "newest first: {out}");
    let (code, out, _) = admin(
        &[
            "audit",
            "wallet-logs",
            "--wallet",
            "w1",
            "--severity",
            "high",
            "--json",
        ],
        &env,
        None,
    );
    assert_eq!(code, 0);
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["action"], "wallet.sign_hash");
    let (code, _, err) = admin(&["audit", "wallet-logs", "--severity", "loud"], &env, None);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = admin(
        &["audit", "wallet-logs", "--action", "user.create"],
        &env,
        None,
    );
    assert_eq!(code, 2);
}

/// An admin's API key with the `system:operate` scope, made through the api.
async fn operate_key(api: &TestApi) -> String {
    let pool = haven_db::connect(api.db.url(), 2).await.unwrap();
    let user = haven_db::UserRepo::new(pool)
        .create(haven_db::NewUser {
            email: "ops@example.com".into(),
            password_hash: None,
            role: haven_db::Role::Admin,
        })
        .await
        .unwrap();
    let jwt = Jwt::new(
        JwtConfig::new("haven", "haven-api"),
        Keyring::new(SigningKey::hs256("k1", DEV_JWT_SECRET.as_bytes()).unwrap()),
    );
    let token = jwt.issue_access(user.id, Role::Admin, Utc::now()).unwrap();
    let res = reqwest::Client::new()
        .post(api.url("/api/v1/api-keys"))
        .bearer_auth(token.as_str())
        .json(&json!({"name": "cli", "scopes": ["system:operate"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn breakers_are_listed_and_changed_through_the_api_after_confirmation() {
    let api = spawn_api().await;
    api.breakers.get_or_create("partner_api").unwrap();
    let key = operate_key(&api).await;
    let env = [
        ("HAVEN_API_URL", api.address.as_str()),
        ("HAVEN_ADMIN_API_KEY", key.as_str()),
    ];
    let (code, out, err) = admin(&["breakers", "list"], &env, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("partner_api") && l.contains("CLOSED")),
        "{out}"
    );

    let (code, _, err) = admin(&["breakers", "force-open", "partner_api"], &env, Some("\n"));
    assert_eq!(code, 1, "not confirmed: {err}");
    assert_eq!(
        api.breakers
            .get("partner_api")
            .unwrap()
            .status()
            .state
            .as_str(),
        "CLOSED"
    );
    let (code, out, err) = admin(
        &["breakers", "force-open", "partner_api"],
        &env,
        Some("yes\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "partner_api: CLOSED -> FORCED_OPEN");
    let (code, out, _) = admin(&["breakers", "list", "--json"], &env, None);
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&out).unwrap();
    let partner = listed["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "partner_api")
        .unwrap_or_else(|| panic!("partner_api listed: {listed}"));
    assert_eq!(partner["state"], "FORCED_OPEN");
    let (code, _, err) = admin(&["breakers", "reset", "partner_api", "--yes"], &env, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        api.breakers
            .get("partner_api")
            .unwrap()
            .status()
            .state
            .as_str(),
        "CLOSED"
    );
    let rows = audit_rows(api.db.url(), "breaker.force_open").await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].event.actor.starts_with("key:"));

    let (code, _, err) = admin(&["breakers", "reset", "nope", "--yes"], &env, None);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
    // the key never reaches the command line, and without one nothing is sent
    let (code, _, err) = admin(
        &["breakers", "list"],
        &[("HAVEN_API_URL", api.address.as_str())],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("HAVEN_ADMIN_API_KEY"), "{err}");
    let (code, _, err) = admin(
        &["breakers", "list"],
        &[
            ("HAVEN_API_URL", api.address.as_str()),
            ("HAVEN_ADMIN_API_KEY", "wrong"),
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn custody_wallet_show_rotate_and_revoke_ask_first_and_are_audited() {
    let db = TestDb::new().await;
    let master = haven_custody::LocalKeyProvider::generate_entry(1)
        .unwrap()
        .to_string();
    let with_keys = [
        ("DATABASE_URL", db.url()),
        ("HAVEN_MASTER_KEYS", master.as_str()),
    ];
    let without_keys = [("DATABASE_URL", db.url())];
    let (code, _, err) = admin(
        &[
            "custody", "wallet", "create", "--id", "payouts", "--chain", "evm",
        ],
        &with_keys,
        None,
    );
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = admin(&["wallets", "show", "payouts"], &without_keys, None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("status") && out.contains("active") && out.contains("KEY"),
        "{out}"
    );

    let (code, _, err) = admin(
        &["custody", "wallet", "rotate", "payouts"],
        &with_keys,
        Some("no\n"),
    );
    assert_eq!(code, 1, "not confirmed: {err}");
    let (code, out, err) = admin(
        &["custody", "wallet", "rotate", "payouts", "--yes", "--json"],
        &with_keys,
        None,
    );
    assert_eq!(code, 0, "{err}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rotated["current_version"], 2);
    // rotation seals a new key: without the master keys it is refused
    let (code, _, err) = admin(
        &["custody", "wallet", "rotate", "payouts", "--yes"],
        &without_keys,
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("HAVEN_MASTER_KEYS"), "{err}");

    let (code, out, err) = admin(
        &["custody", "wallet", "revoke", "payouts", "--json"],
        &without_keys,
        Some("yes\n"),
    );
    assert_eq!(code, 0, "{err}");
    let revoked: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(revoked["status"], "revoked");
    let (code, _, err) = admin(
        &["custody", "wallet", "rotate", "payouts", "--yes"],
        &with_keys,
        None,
    );
    assert_eq!(code, 1, "a revoked wallet is never rotated: {err}");
    for action in ["wallet.rotate", "wallet.revoke"] {
        let rows = audit_rows(db.url(), action).await;
        assert!(!rows.is_empty(), "{action}");
        assert!(
            rows.iter()
                .all(|r| r.event.actor.starts_with("haven-admin:"))
        );
    }
    let (code, _, _) = admin(&["custody", "wallet", "show", "nope"], &without_keys, None);
    assert_eq!(code, 1);
}

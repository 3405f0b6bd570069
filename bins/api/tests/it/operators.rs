//! The operator routes over real Postgres, Redis and anvil: nonce accounts and their reset,
//! circuit breakers, the audit chain and the wallets' audit records; each change audited,
//! each refused to the wrong role.

use std::time::Duration;

use haven_api::testing::{TestApi, spawn_api, spawn_api_with};
use haven_auth::Role;
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_nonce::{NonceKey, NonceStore};
use haven_testkit::Anvil;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{audit_rows, client_as, pool};

#[tokio::test(flavor = "multi_thread")]
async fn a_nonce_reset_is_refused_with_outstanding_leases_unless_forced() {
    let anvil = Anvil::spawn();
    let endpoint = anvil.endpoint();
    let api = spawn_api_on_node(&endpoint).await;
    let address = Anvil::DEV_ADDRESSES[6];
    let key = NonceKey::parse(Anvil::CHAIN_ID, address).unwrap();
    let store = haven_db::PgNonceStore::new(pool(&api).await);
    let first = store.reserve(&key, Duration::from_secs(600)).await.unwrap();
    store.commit(&first).await.unwrap();
    let _held = store.reserve(&key, Duration::from_secs(600)).await.unwrap();

    let admin = client_as(&api, Role::Admin).await;
    let path = format!("/api/v1/admin/nonces/{}/{address}", Anvil::CHAIN_ID);
    let (status, account) = admin.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["next"], 2);
    assert_eq!(account["leases_outstanding"], 1);
    assert_eq!(account["leases"][0]["nonce"], 1);
    assert_eq!(account["committed"], json!([0]));
    // the account list: each account once, with its leases
    let (status, accounts) = admin.get("/api/v1/admin/nonces").await;
    assert_eq!(status, StatusCode::OK, "{accounts}");
    assert_eq!(
        accounts,
        json!([{"chain_id": Anvil::CHAIN_ID, "address": address, "next": 2,
                "chain_floor": account["chain_floor"], "last_sync": account["last_sync"],
                "leases": 1}])
    );

    // the safety refusal: a signer holds a lease
    let (status, body) = admin.post(&format!("{path}/reset"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["details"]["leases_outstanding"], 1);
    let refused = audit_rows(&api, "nonce.reset").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.details["outcome"], "refused");
    let (_, unchanged) = admin.get(&path).await;
    assert_eq!(unchanged["next"], 2);

    let (status, body) = admin
        .post(&format!("{path}/reset"), json!({"force": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["previous_next"], 2);
    // the node never saw a transaction from this account
    assert_eq!(body["next"], 0);
    assert_eq!(body["dropped_leases"], 1);
    assert_eq!(body["forced"], true);
    let rows = audit_rows(&api, "nonce.reset").await;
    let applied = rows.last().unwrap();
    assert_eq!(applied.event.severity, Severity::High);
    assert_eq!(applied.event.details["outcome"], "applied");
    assert_eq!(applied.event.details["dropped_leases"], 1);
    assert_eq!(
        applied.event.target.as_deref(),
        Some(format!("nonce:{key}").as_str())
    );
    let (_, after) = admin.get(&path).await;
    assert_eq!(after["next"], 0);
    assert_eq!(after["chain_floor"], 0);
    assert_eq!(after["leases_outstanding"], 0);

    // a reset without leases needs no force, and is audited MEDIUM
    let (status, body) = admin.post(&format!("{path}/reset"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        audit_rows(&api, "nonce.reset")
            .await
            .last()
            .unwrap()
            .event
            .severity,
        Severity::Medium
    );
}

async fn spawn_api_on_node(endpoint: &str) -> TestApi {
    let endpoint = endpoint.to_owned();
    spawn_api_with(move |config| config.common.eth_rpc_url = endpoint).await
}

#[tokio::test(flavor = "multi_thread")]
async fn nonce_routes_refuse_other_roles_bad_addresses_and_another_chain() {
    let anvil = Anvil::spawn();
    let api = spawn_api_on_node(&anvil.endpoint()).await;
    let address = Anvil::DEV_ADDRESSES[7];
    let path = format!("/api/v1/admin/nonces/{}/{address}", Anvil::CHAIN_ID);
    for role in [Role::Operator, Role::Viewer] {
        let client = client_as(&api, role).await;
        let (status, _) = client.get(&path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        let (status, _) = client.post(&format!("{path}/reset"), json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    let admin = client_as(&api, Role::Admin).await;
    let (status, body) = admin
        .get(&format!("/api/v1/admin/nonces/{}/0x1234", Anvil::CHAIN_ID))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "INVALID_ADDRESS", "{body}");
    let (status, body) = admin
        .post(
            &format!("/api/v1/admin/nonces/1/{address}/reset"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "UNSUPPORTED_CHAIN", "{body}");
    let (status, _) = admin
        .post(&format!("{path}/reset"), json!({"force": "yes"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(audit_rows(&api, "nonce.reset").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn breakers_are_listed_forced_open_disabled_and_reset_with_audit() {
    let api = spawn_api().await;
    api.breakers.get_or_create("partner_api").unwrap();
    let admin = client_as(&api, Role::Admin).await;
    let base = "/api/v1/admin/health/circuit-breakers";
    let (status, body) = admin.get(base).await;
    assert_eq!(status, StatusCode::OK);
    // sorted by name: the node's `eth_rpc`, which every api registers, then ours
    assert_eq!(body["breakers"][0]["name"], "eth_rpc");
    assert_eq!(body["breakers"][1]["name"], "partner_api");
    assert_eq!(body["breakers"][1]["state"], "CLOSED");

    for (action, state, audit, severity) in [
        (
            "force-open",
            "FORCED_OPEN",
            "breaker.force_open",
            Severity::High,
        ),
        ("disable", "DISABLED", "breaker.disable", Severity::High),
        ("reset", "CLOSED", "breaker.reset", Severity::Medium),
    ] {
        let (status, body) = admin
            .post_empty(&format!("{base}/partner_api/{action}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        assert_eq!(body["breaker"]["state"], state);
        assert_eq!(
            api.breakers
                .get("partner_api")
                .unwrap()
                .status()
                .state
                .as_str(),
            state
        );
        let rows = audit_rows(&api, audit).await;
        assert_eq!(rows.len(), 1, "{audit}");
        assert_eq!(rows[0].event.severity, severity);
        assert_eq!(rows[0].event.target.as_deref(), Some("breaker:partner_api"));
        assert_eq!(rows[0].event.details["to"], state);
    }
    let (status, body) = admin.post_empty(&format!("{base}/nope/reset")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn breaker_routes_refuse_operators_and_viewers() {
    let api = spawn_api().await;
    api.breakers.get_or_create("partner_api").unwrap();
    let base = "/api/v1/admin/health/circuit-breakers";
    for role in [Role::Operator, Role::Viewer] {
        let client = client_as(&api, role).await;
        assert_eq!(client.get(base).await.0, StatusCode::FORBIDDEN);
        let (status, _) = client
            .post_empty(&format!("{base}/partner_api/force-open"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    assert_eq!(
        api.breakers
            .get("partner_api")
            .unwrap()
            .status()
            .state
            .as_str(),
        "CLOSED"
    );
    assert!(audit_rows(&api, "breaker.force_open").await.is_empty());
}

async fn seed_wallet_logs(api: &TestApi) {
    let log = haven_db::PgAuditLog::new(pool(api).await);
    for (action, target, severity) in [
        ("wallet.create", "w1", Severity::Medium),
        ("wallet.sign_transaction", "w1", Severity::High),
        ("wallet.rotate", "w2", Severity::Medium),
        ("user.create", "u1", Severity::Critical),
    ] {
        log.append(AuditEvent::new("user:ops", action, severity).target(target))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_chain_verifies_and_wallet_logs_filter_and_page() {
    let api = spawn_api().await;
    seed_wallet_logs(&api).await;
    let admin = client_as(&api, Role::Admin).await;
    let (status, chain) = admin.get("/api/v1/admin/audit/verify").await;
    assert_eq!(status, StatusCode::OK, "{chain}");
    assert_eq!(chain["valid"], true);
    let (head_seq, head_hash) = haven_db::PgAuditLog::new(pool(&api).await)
        .head()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chain["head_seq"], head_seq);
    assert_eq!(chain["head_hash"], hex::encode(head_hash));
    assert_eq!(chain["records"], head_seq);

    let logs = "/api/v1/admin/audit/wallet-logs";
    let (status, all) = admin.get(logs).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let actions: Vec<&str> = all["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["wallet.rotate", "wallet.sign_transaction", "wallet.create"],
        "newest first, wallet records only"
    );
    let count = |v: &serde_json::Value| v["records"].as_array().unwrap().len();
    let (_, w1) = admin.get(&format!("{logs}?wallet=w1")).await;
    assert_eq!(count(&w1), 2);
    let (_, high) = admin.get(&format!("{logs}?severity=HIGH")).await;
    assert_eq!(count(&high), 1);
    assert_eq!(high["records"][0]["target"], "w1");
    let (_, rotate) = admin.get(&format!("{logs}?action=wallet.rotate")).await;
    assert_eq!(count(&rotate), 1);
    let (_, future) = admin
        .get(&format!("{logs}?from=2999-01-01T00:00:00Z"))
        .await;
    assert_eq!(count(&future), 0);
    let (_, page) = admin.get(&format!("{logs}?limit=2")).await;
    assert_eq!(count(&page), 2);
    let next = page["next"].as_i64().unwrap();
    let (_, rest) = admin.get(&format!("{logs}?limit=2&before={next}")).await;
    assert_eq!(count(&rest), 1);
    assert_eq!(rest["records"][0]["action"], "wallet.create");
    assert!(rest["next"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_routes_refuse_bad_filters_and_non_admins() {
    let api = spawn_api().await;
    let admin = client_as(&api, Role::Admin).await;
    let logs = "/api/v1/admin/audit/wallet-logs";
    for (query, field) in [
        ("severity=LOUD", "severity"),
        ("action=user.create", "action"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("limit=0", "limit"),
    ] {
        let (status, body) = admin.get(&format!("{logs}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"], "INVALID_QUERY", "{query}");
        assert_eq!(body["details"]["field"], field, "{query}");
    }
    for role in [Role::Operator, Role::Viewer] {
        let client = client_as(&api, role).await;
        assert_eq!(
            client.get("/api/v1/admin/audit/verify").await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(client.get(logs).await.0, StatusCode::FORBIDDEN);
    }
}

/// A custody wallet `id` created with a throwaway master key, as `haven-admin` would.
async fn seed_wallet(api: &TestApi, id: &str) {
    use haven_custody::{Caller, Chain, Custody, CustodyConfig, LocalKeyProvider, WalletId};
    let master = LocalKeyProvider::generate_entry(1).unwrap();
    let custody = Custody::new(
        std::sync::Arc::new(haven_db::PgWalletStore::new(pool(api).await)),
        std::sync::Arc::new(LocalKeyProvider::parse(&master).unwrap()),
        std::sync::Arc::new(haven_core::audit::MemoryAuditLog::new()),
        CustodyConfig::default(),
    );
    custody
        .create_wallet(
            WalletId::new(id).unwrap(),
            Chain::Evm,
            json!({}),
            &Caller::system(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wallet_is_read_and_revoked_once_named_twice_with_audit() {
    let api = spawn_api().await;
    seed_wallet(&api, "payouts").await;
    let admin = client_as(&api, Role::Admin).await;
    let (status, wallet) = admin.get("/api/v1/admin/wallets/payouts").await;
    assert_eq!(status, StatusCode::OK, "{wallet}");
    assert_eq!(wallet["status"], "active");
    assert!(wallet["address"].as_str().unwrap().starts_with("0x"));
    assert_eq!(audit_rows(&api, "wallet.get").await.len(), 1);

    let revoke = "/api/v1/admin/wallets/payouts/revoke";
    let (status, body) = admin.post(revoke, json!({"confirm": "other"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"]["field"], "confirm");
    let (_, still) = admin.get("/api/v1/admin/wallets/payouts").await;
    assert_eq!(still["status"], "active");

    let (status, body) = admin.post(revoke, json!({"confirm": "payouts"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "revoked");
    assert_eq!(body["keys"][0]["status"], "revoked");
    let rows = audit_rows(&api, "wallet.revoke").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event.target.as_deref(), Some("payouts"));
    assert!(rows[0].event.actor.starts_with("user:"));

    let (status, _) = admin.get("/api/v1/admin/wallets/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin.get("/api/v1/admin/wallets/bad%20id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn wallet_routes_refuse_operators_and_viewers() {
    let api = spawn_api().await;
    seed_wallet(&api, "payouts").await;
    for role in [Role::Operator, Role::Viewer] {
        let client = client_as(&api, role).await;
        let (status, _) = client.get("/api/v1/admin/wallets/payouts").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        let (status, _) = client
            .post(
                "/api/v1/admin/wallets/payouts/revoke",
                json!({"confirm": "payouts"}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
    }
    assert!(audit_rows(&api, "wallet.revoke").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_shows_transactions_breakers_outboxes_and_the_pool() {
    let api = spawn_api().await;
    crate::admin::seed_transactions(&api).await;
    api.breakers.get_or_create("partner_api").unwrap();
    api.breakers
        .get("partner_api")
        .unwrap()
        .force_open()
        .await
        .unwrap();
    let outbox = haven_db::PgWebhookOutbox::new(pool(&api).await);
    let endpoint = outbox
        .create_endpoint("https://receiver.example.com/hook", "status test")
        .await
        .unwrap();
    outbox
        .enqueue(endpoint.endpoint.id, "reward.confirmed", &json!({"n": 1}))
        .await
        .unwrap();

    let admin = client_as(&api, Role::Admin).await;
    let (status, report) = admin.get("/api/v1/admin/status").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    // queued q-1, broadcast s-1 (stuck) and b-1
    assert_eq!(report["transactions"]["pending"], 3);
    assert_eq!(report["transactions"]["stuck"], 1);
    assert_eq!(report["transactions"]["failed"], 1);
    assert_eq!(
        report["breakers"],
        json!([
            {"name": "eth_rpc", "state": "CLOSED"},
            {"name": "partner_api", "state": "FORCED_OPEN"}
        ])
    );
    let outboxes = report["outboxes"].as_array().unwrap();
    assert_eq!(outboxes.len(), haven_db::OUTBOXES.len());
    let webhooks = outboxes
        .iter()
        .find(|o| o["outbox"] == "webhook_deliveries")
        .unwrap();
    assert_eq!(webhooks["pending"], 1);
    assert!(webhooks["oldest_age_seconds"].as_f64().unwrap() >= 0.0);
    let rewards = outboxes
        .iter()
        .find(|o| o["outbox"] == "reward_jobs")
        .unwrap();
    assert_eq!(rewards["pending"], 0);
    assert!(rewards["oldest_age_seconds"].is_null());
    assert!(report["db_pool"]["max"].as_u64().unwrap() >= 1);

    for role in [Role::Operator, Role::Viewer] {
        let client = client_as(&api, role).await;
        assert_eq!(
            client.get("/api/v1/admin/status").await.0,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_price_sources_breakers_are_registered_where_operators_see_them() {
    let api = spawn_api_with(|config| {
        config.treasury.price_primary_url = Some("http://127.0.0.1:9/price".into());
        config.treasury.price_secondary_url = Some("http://127.0.0.1:9/ticker".into());
    })
    .await;
    let admin = client_as(&api, Role::Admin).await;
    let (status, body) = admin.get("/api/v1/admin/health/circuit-breakers").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["eth_rpc", "price:primary", "price:secondary"]);
    let (status, body) = admin
        .post_empty("/api/v1/admin/health/circuit-breakers/price:primary/force-open")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let metrics = reqwest::get(api.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"haven_breaker_state{breaker="price:primary"} 3"#),
        "{metrics}"
    );
}

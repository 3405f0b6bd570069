//! The administration and operator routes over real Postgres and Redis: users and roles,
//! transaction status and retry, alert review and the wallet list, each change audited.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use base64::Engine as _;
use chrono::Utc;
use haven_api::testing::{TestApi, spawn_api};
use haven_chain::{TxKind, TxRecord, TxStatus, TxStore};
use haven_core::audit::AuditRecord;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Answer, Client, PASSWORD, create_user, login, pool, refresh, try_login};

async fn audit_rows(api: &TestApi, action: &str) -> Vec<AuditRecord> {
    haven_db::PgAuditLog::new(pool(api).await)
        .page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == action)
        .collect()
}

/// Creates an API key named "ops" with `scopes`, asserting 201; its id and the key.
async fn create_key(auth: &Client<'_>, scopes: &[&str]) -> (Uuid, String) {
    let (status, created) = auth
        .post("/api/v1/api-keys", json!({"name": "ops", "scopes": scopes}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["id"].as_str().unwrap().parse().unwrap(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

/// `POST /admin/transactions/{tx_id}/retry` with an optional `Idempotency-Key`; the whole answer.
async fn retry(auth: &Client<'_>, tx_id: &str, idempotency_key: Option<&str>) -> Answer {
    let path = format!("/api/v1/admin/transactions/{tx_id}/retry");
    auth.request(Method::POST, &path, None, idempotency_key)
        .await
}

/// `PUT /users/{user}/role` with `role`; the status and the body.
async fn set_role(auth: &Client<'_>, user: Uuid, role: &str) -> (StatusCode, Value) {
    auth.put(&format!("/api/v1/users/{user}/role"), json!({"role": role}))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_change_is_audited_and_the_old_roles_access_ends() {
    let api = spawn_api().await;
    let alice = create_user(&api, "alice@example.com", haven_db::Role::Admin).await;
    let bob = create_user(&api, "bob@example.com", haven_db::Role::Admin).await;
    let (alice_auth, _) = login(&api, "alice@example.com").await;
    let (bob_auth, bob_tokens) = login(&api, "bob@example.com").await;
    // Bob's keys: one an operator may hold, one only an admin may.
    let (read_key_id, read_key) = create_key(&bob_auth, &["transactions:read"]).await;
    let (admin_key_id, admin_key) = create_key(&bob_auth, &["users:manage"]).await;
    let admin_key_auth = Client::api_key(&api, &admin_key);
    let (status, _) = admin_key_auth.get("/api/v1/users").await;
    assert_eq!(status, StatusCode::OK, "the admin-scoped key works before");

    let (status, change) = set_role(&alice_auth, bob, "operator").await;
    assert_eq!(status, StatusCode::OK, "{change}");
    assert_eq!(change["changed"], true);
    assert_eq!(change["previous_role"], "admin");
    assert_eq!(change["user"]["role"], "operator");
    assert_eq!(change["revoked_api_keys"], json!([admin_key_id]));

    // The old role's access token, its session and the key beyond the new role stop working.
    let (status, body) = bob_auth.whoami().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "old token: {body}");
    let (status, _) = bob_auth.get("/api/v1/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = refresh(&api, &bob_tokens["refresh_token"]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "old session");
    let (status, _) = admin_key_auth.get("/api/v1/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the admin-scoped key");
    let (status, _) = Client::api_key(&api, &read_key)
        .get("/api/v1/admin/transactions/status")
        .await;
    assert_eq!(status, StatusCode::OK, "the key within the new role stays");

    // Tokens are refused up to the second of the change; a new login carries the new role.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (bob_auth, _) = login(&api, "bob@example.com").await;
    let (status, me) = bob_auth.whoami().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "operator");
    let (status, _) = bob_auth.get("/api/v1/users").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an operator cannot manage users"
    );

    let rows = audit_rows(&api, "user.role_change").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let event = &rows[0].event;
    assert_eq!(event.actor, format!("user:{alice}"));
    assert_eq!(
        event.target.as_deref(),
        Some(format!("user:{bob}").as_str())
    );
    assert_eq!(event.severity.as_str(), "HIGH");
    assert_eq!(event.details["from"], "admin");
    assert_eq!(event.details["to"], "operator");
    assert_eq!(event.details["outcome"], "applied");
    assert_eq!(event.details["revoked_api_keys"], json!([admin_key_id]));
    assert!(event.request_id.is_some());
    assert_ne!(read_key_id, admin_key_id);

    // The same role again changes nothing and writes nothing.
    let (status, change) = set_role(&alice_auth, bob, "operator").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(change["changed"], false);
    assert_eq!(audit_rows(&api, "user.role_change").await.len(), 1);

    let (status, body) = set_role(&alice_auth, bob, "root").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = set_role(&alice_auth, Uuid::new_v4(), "viewer").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_admin_can_be_neither_demoted_nor_disabled() {
    let api = spawn_api().await;
    let alice = create_user(&api, "alice@example.com", haven_db::Role::Admin).await;
    let (alice_auth, _) = login(&api, "alice@example.com").await;

    let (status, body) = set_role(&alice_auth, alice, "viewer").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "LAST_ADMIN");
    let (status, body) = alice_auth
        .post_empty(&format!("/api/v1/users/{alice}/disable"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "LAST_ADMIN");
    let (status, me) = alice_auth.whoami().await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a refused change ends nothing: {me}"
    );
    let refused = audit_rows(&api, "user.role_change").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.details["outcome"], "refused");
    assert_eq!(refused[0].event.details["error"], "LAST_ADMIN");

    // Two admins demoting each other at once: exactly one wins.
    let bob = create_user(&api, "bob@example.com", haven_db::Role::Admin).await;
    let (bob_auth, _) = login(&api, "bob@example.com").await;
    let ((a, _), (b, _)) = tokio::join!(
        set_role(&alice_auth, bob, "operator"),
        set_role(&bob_auth, alice, "operator")
    );
    let mut statuses = [a, b];
    statuses.sort();
    // The loser is refused either as the last admin or because its own token just ended.
    assert_eq!(statuses[0], StatusCode::OK, "{statuses:?}");
    assert!(
        statuses[1] == StatusCode::CONFLICT || statuses[1] == StatusCode::UNAUTHORIZED,
        "{statuses:?}"
    );
    let users = haven_db::UserRepo::new(pool(&api).await);
    let admins = [alice, bob].len()
        - [
            users.get(alice).await.unwrap().unwrap().role,
            users.get(bob).await.unwrap().unwrap().role,
        ]
        .iter()
        .filter(|r| **r != haven_db::Role::Admin)
        .count();
    assert_eq!(admins, 1, "one admin is left");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_created_listed_and_disabled_with_audit() {
    let api = spawn_api().await;
    let alice = create_user(&api, "alice@example.com", haven_db::Role::Admin).await;
    let (auth, _) = login(&api, "alice@example.com").await;

    let (status, created) = auth
        .post(
            "/api/v1/users",
            json!({"email": "carol@example.com", "password": PASSWORD, "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["role"], "viewer");
    assert!(created.get("password_hash").is_none());
    let carol: Uuid = created["id"].as_str().unwrap().parse().unwrap();

    for (body, code) in [
        (
            json!({"email": "CAROL@example.com", "password": PASSWORD, "role": "viewer"}),
            "CONFLICT",
        ),
        (
            json!({"email": "dave@example.com", "password": "short", "role": "viewer"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD, "role": "viewer"}),
            "VALIDATION_ERROR",
        ),
        (
            json!({"email": "dave@example.com", "password": PASSWORD, "role": "root"}),
            "VALIDATION_ERROR",
        ),
    ] {
        let (_, error) = auth.post("/api/v1/users", body).await;
        assert_eq!(error["error"], code, "{error}");
    }

    let (status, list) = auth.get("/api/v1/users?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["alice@example.com", "carol@example.com"]);
    assert!(!list.to_string().contains("argon2"), "{list}");
    let (_, page) = auth
        .get(&format!("/api/v1/users?limit=1&after={alice}"))
        .await;
    assert_eq!(page[0]["id"], carol.to_string());

    let (carol_auth, _) = login(&api, "carol@example.com").await;
    let (status, change) = auth
        .post_empty(&format!("/api/v1/users/{carol}/disable"))
        .await;
    assert_eq!(status, StatusCode::OK, "{change}");
    assert!(change["user"]["disabled_at"].is_string());
    let (status, _) = carol_auth.whoami().await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a disabled user's token ends"
    );
    let (status, _) = try_login(&api, "carol@example.com").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "and cannot log in");

    let created = audit_rows(&api, "user.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].event.actor, format!("user:{alice}"));
    assert_eq!(created[0].event.details["role"], "viewer");
    assert!(!format!("{:?}", created[0].event).contains(PASSWORD));
    let disabled = audit_rows(&api, "user.disable").await;
    assert_eq!(disabled.len(), 1);
    assert_eq!(
        disabled[0].event.target.as_deref(),
        Some(format!("user:{carol}").as_str())
    );
}

fn record(tx_id: &str, status: TxStatus) -> TxRecord {
    let mut r = TxRecord::queued(
        tx_id,
        TxKind::Mint,
        31337,
        Address::repeat_byte(0xaa),
        Address::repeat_byte(0xbb),
        Some(Address::repeat_byte(0xcc)),
        U256::from(10u64).pow(U256::from(18u64)),
        120_000,
        Utc::now() - chrono::Duration::hours(2),
    );
    r.status = status;
    if status != TxStatus::Queued {
        r.nonce = Some(7);
        r.hash = Some(B256::repeat_byte(0x11));
        r.raw = Some(Bytes::from_static(b"\x02signed"));
        r.max_fee_per_gas = Some(2_000_000_000);
        r.max_priority_fee_per_gas = Some(1_000_000_000);
        r.attempts = 1;
    }
    r
}

/// Seeds: one queued, one confirmed, one failed (reverted), one stuck (broadcast an hour
/// ago), one freshly broadcast.
pub(crate) async fn seed_transactions(api: &TestApi) -> haven_db::PgTxStore {
    let store = haven_db::PgTxStore::new(pool(api).await);
    let now = Utc::now();
    for (tx_id, status, broadcast_at) in [
        ("q-1", TxStatus::Queued, None),
        (
            "c-1",
            TxStatus::Confirmed,
            Some(now - chrono::Duration::hours(1)),
        ),
        (
            "f-1",
            TxStatus::Failed,
            Some(now - chrono::Duration::hours(1)),
        ),
        (
            "s-1",
            TxStatus::Broadcast,
            Some(now - chrono::Duration::hours(1)),
        ),
        ("b-1", TxStatus::Broadcast, Some(now)),
    ] {
        let mut r = record(tx_id, TxStatus::Queued);
        store.insert(r.clone()).await.unwrap();
        if status != TxStatus::Queued {
            r = record(tx_id, status);
            r.broadcast_at = broadcast_at;
            if status == TxStatus::Failed {
                r.error = Some("reverted (receipt status 0)".into());
                r.block_number = Some(12);
            }
            r.version = 2;
            assert!(store.update(&r).await.unwrap());
        }
    }
    store
}

#[tokio::test(flavor = "multi_thread")]
async fn transaction_status_shows_the_seeded_rows() {
    let api = spawn_api().await;
    create_user(&api, "viewer@example.com", haven_db::Role::Viewer).await;
    seed_transactions(&api).await;
    let (auth, _) = login(&api, "viewer@example.com").await;

    let (status, report) = auth.get("/api/v1/admin/transactions/status").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["counts"],
        json!({"queued": 1, "signed": 0, "broadcast": 2, "confirmed": 1, "failed": 1, "replaced": 0})
    );
    assert_eq!(report["stuck_count"], 1);
    assert_eq!(report["stuck_after_secs"], 300);
    assert_eq!(report["stuck"].as_array().unwrap().len(), 1);
    assert_eq!(report["stuck"][0]["tx_id"], "s-1");
    assert_eq!(report["stuck"][0]["stuck"], true);
    assert_eq!(report["failed"][0]["tx_id"], "f-1");
    assert_eq!(report["failed"][0]["amount"], "1000000000000000000");
    assert_eq!(report["failed"][0]["max_fee_per_gas"], "2000000000");
    assert!(report["failed"][0].get("raw").is_none());
    assert_eq!(report["limit"], 50);

    let (status, one) = auth.get("/api/v1/admin/transactions/b-1").await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["status"], "broadcast");
    assert_eq!(one["stuck"], false);
    assert_eq!(one["to"], Address::repeat_byte(0xcc).to_string());
    assert!(one["holder"].is_null(), "a mint takes no holder's tokens");
    let (status, body) = auth.get("/api/v1/admin/transactions/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "NOT_FOUND");

    for bad in ["limit=0", "limit=501", "limit=x", "color=red"] {
        let (status, body) = auth
            .get(&format!("/api/v1/admin/transactions/status?{bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "INVALID_QUERY", "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_transaction_is_requeued_once_whatever_the_replays() {
    let api = spawn_api().await;
    let ops = create_user(&api, "ops@example.com", haven_db::Role::Operator).await;
    let store = seed_transactions(&api).await;
    let (auth, _) = login(&api, "ops@example.com").await;

    let missing = retry(&auth, "f-1", None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.body["error"], "IDEMPOTENCY_KEY_REQUIRED");

    let confirmed = retry(&auth, "c-1", Some("retry-c-1-0001")).await;
    assert_eq!(confirmed.status, StatusCode::CONFLICT, "{}", confirmed.body);
    assert_eq!(confirmed.body["error"], "TRANSACTION_NOT_RETRYABLE");
    assert_eq!(confirmed.body["details"]["status"], "confirmed");
    let stuck = retry(&auth, "s-1", Some("retry-s-1-0001")).await;
    assert_eq!(stuck.status, StatusCode::CONFLICT, "{}", stuck.body);
    assert_eq!(stuck.body["error"], "TRANSACTION_NOT_RETRYABLE");
    assert_eq!(stuck.body["details"]["stuck"], true);
    let unknown = retry(&auth, "nope", Some("retry-nope-0001")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let first = retry(&auth, "f-1", Some("retry-f-1-0001")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert!(!first.replayed);
    assert_eq!(first.body["status"], "queued");
    assert_eq!(first.body["nonce"], Value::Null);
    assert_eq!(first.body["hash"], Value::Null);
    assert_eq!(first.body["version"], 3);

    let replay = retry(&auth, "f-1", Some("retry-f-1-0001")).await;
    assert_eq!(replay.status, StatusCode::ACCEPTED);
    assert!(replay.replayed);
    assert_eq!(replay.bytes, first.bytes, "the same answer, byte for byte");
    // the record it replayed lives under the test's own Redis prefix, not the shared one
    assert!(
        api.redis.key_count() > 0,
        "nothing under {}",
        api.redis.prefix()
    );

    let again = retry(&auth, "f-1", Some("retry-f-1-0002")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.body["details"]["status"], "queued");

    // One re-submission: the row moved once, and one applied audit row says so.
    let stored = store.get("f-1").await.unwrap().unwrap();
    assert_eq!(stored.status, TxStatus::Queued);
    assert_eq!(stored.version, 3);
    assert_eq!((stored.nonce, stored.raw, stored.hash), (None, None, None));
    let rows = audit_rows(&api, "transaction.retry").await;
    let applied: Vec<_> = rows
        .iter()
        .filter(|r| r.event.details["outcome"] == "applied")
        .collect();
    assert_eq!(applied.len(), 1, "{rows:?}");
    assert_eq!(applied[0].event.actor, format!("user:{ops}"));
    assert_eq!(applied[0].event.target.as_deref(), Some("transaction:f-1"));
    assert_eq!(applied[0].event.details["from"], "failed");
    assert_eq!(applied[0].event.details["previous_nonce"], 7);
    let refused = rows
        .iter()
        .filter(|r| r.event.details["outcome"] == "refused")
        .count();
    assert_eq!(refused, 3, "confirmed, stuck, and the second retry");

    // The others were not touched.
    assert_eq!(store.get("c-1").await.unwrap().unwrap().version, 2);
    assert_eq!(
        store.get("s-1").await.unwrap().unwrap().status,
        TxStatus::Broadcast
    );
}

/// A2b: one `Idempotency-Key` sent to the retry route under two spellings of its path (plain
/// and percent-encoded) is one request: the handler runs once and the second answer is the
/// first, replayed. The scope is the matched route and its decoded parameter, not the path.
#[tokio::test(flavor = "multi_thread")]
async fn one_idempotency_key_covers_every_spelling_of_the_route() {
    let api = spawn_api().await;
    create_user(&api, "ops@example.com", haven_db::Role::Operator).await;
    let store = seed_transactions(&api).await;
    let (auth, _) = login(&api, "ops@example.com").await;
    let key = "retry-f-1-spellings";
    let plain = auth
        .request(
            Method::POST,
            "/api/v1/admin/transactions/f-1/retry",
            None,
            Some(key),
        )
        .await;
    assert_eq!(plain.status, StatusCode::ACCEPTED, "{}", plain.body);
    assert!(!plain.replayed);
    let encoded = auth
        .request(
            Method::POST,
            "/api/v1/admin/%74ransactions/%66-%31/retr%79",
            None,
            Some(key),
        )
        .await;
    assert_eq!(encoded.status, StatusCode::ACCEPTED, "{}", encoded.body);
    assert!(
        encoded.replayed,
        "the second spelling replays the first answer"
    );
    assert_eq!(encoded.bytes, plain.bytes);
    let applied = audit_rows(&api, "transaction.retry")
        .await
        .into_iter()
        .filter(|r| r.event.details["outcome"] == "applied")
        .count();
    assert_eq!(applied, 1, "the handler ran once");
    assert_eq!(store.get("f-1").await.unwrap().unwrap().version, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_scoped_to_read_transactions_reads_the_status_but_cannot_retry() {
    let api = spawn_api().await;
    create_user(&api, "admin@example.com", haven_db::Role::Admin).await;
    seed_transactions(&api).await;
    let (auth, _) = login(&api, "admin@example.com").await;
    let (_, key) = create_key(&auth, &["transactions:read"]).await;
    let key_auth = Client::api_key(&api, &key);

    let (status, report) = key_auth
        .get("/api/v1/admin/transactions/status?limit=1")
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["limit"], 1);
    let refused = retry(&key_auth, "f-1", Some("retry-by-key-0001")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.body["error"], "FORBIDDEN");
    let (status, _) = key_auth.get("/api/v1/admin/alerts").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no alerts:read");
}

fn alert(user: &str, minute: i64) -> haven_fraud::Alert {
    let at = Utc::now() - chrono::Duration::minutes(60 - minute);
    haven_fraud::Alert {
        id: Uuid::now_v7(),
        rule_id: "velocity".into(),
        event_type: "velocity".into(),
        severity: haven_fraud::Severity::High,
        subject: user.into(),
        user: Some(user.into()),
        description: format!("velocity for {user}"),
        metadata: json!({"count": 12}),
        event_id: format!("ev-{}", Uuid::new_v4()),
        event_ts: at,
        created_at: at,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_move_through_review_with_the_caller_as_reviewer() {
    use haven_fraud::AlertStore;
    let api = spawn_api().await;
    let ops = create_user(&api, "ops@example.com", haven_db::Role::Operator).await;
    let store = haven_db::PgAlertStore::new(pool(&api).await);
    let first = alert("alice", 1);
    let second = alert("bob", 2);
    store.insert(&first).await.unwrap();
    store.insert(&second).await.unwrap();
    let (auth, _) = login(&api, "ops@example.com").await;

    let (status, body) = auth
        .post(
            &format!("/api/v1/admin/alerts/{}/transition", first.id),
            json!({"to": "acknowledged", "note": "looking"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "acknowledged");
    assert_eq!(body["reviewed_by"], format!("user:{ops}"));
    assert_eq!(body["notes"][0]["text"], "looking");

    // open → resolved skips a step: 409, and nothing changes.
    let (status, body) = auth
        .post(
            &format!("/api/v1/admin/alerts/{}/transition", second.id),
            json!({"to": "resolved"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "CONFLICT");
    assert_eq!(body["details"], json!({"from": "open", "to": "resolved"}));
    assert_eq!(
        store.get(second.id).await.unwrap().unwrap().state,
        haven_fraud::ReviewState::Open
    );

    for (path, body, expected) in [
        (
            format!("/api/v1/admin/alerts/{}/transition", Uuid::new_v4()),
            json!({"to": "acknowledged"}),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/api/v1/admin/alerts/{}/transition", second.id),
            json!({"to": "closed"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/v1/admin/alerts/{}/transition", second.id),
            json!({"to": "acknowledged", "note": ""}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, answer) = auth.post(&path, body).await;
        assert_eq!(status, expected, "{answer}");
    }

    let (status, list) = auth.get("/api/v1/admin/alerts?state=acknowledged").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], first.id.to_string());
    let (_, all) = auth.get("/api/v1/admin/alerts?limit=1").await;
    assert_eq!(all[0]["id"], second.id.to_string(), "newest first");
    let (status, _) = auth.get("/api/v1/admin/alerts?state=closed").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let applied = audit_rows(&api, "fraud.alert.acknowledged").await;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].event.actor, format!("user:{ops}"));
    assert_eq!(
        applied[0].event.target.as_deref(),
        Some(first.id.to_string().as_str())
    );
    let refused = audit_rows(&api, "fraud.alert.resolved").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.details["outcome"], "refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wallet_list_shows_addresses_and_versions_never_key_material() {
    use haven_custody::{Caller, Chain, Custody, CustodyConfig, LocalKeyProvider, WalletStore};
    let api = spawn_api().await;
    create_user(&api, "admin@example.com", haven_db::Role::Admin).await;
    let wallets = Arc::new(haven_db::PgWalletStore::new(pool(&api).await));
    let master = LocalKeyProvider::generate_entry(1).unwrap();
    let custody = Custody::new(
        wallets.clone(),
        Arc::new(LocalKeyProvider::parse(&master).unwrap()),
        Arc::new(haven_core::audit::MemoryAuditLog::new()),
        CustodyConfig {
            allow_export: false,
            rewrap_batch_size: 10,
        },
    );
    let id = haven_custody::WalletId::new("minter").unwrap();
    let caller = Caller::system();
    custody
        .create_wallet(id.clone(), Chain::Evm, json!({"purpose": "mint"}), &caller)
        .await
        .unwrap();
    custody.rotate_wallet(&id, &caller).await.unwrap();
    let (auth, _) = login(&api, "admin@example.com").await;

    let (status, page) = auth.get("/api/v1/admin/wallets").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let wallet = &page["wallets"][0];
    assert_eq!(wallet["id"], "minter");
    assert_eq!(wallet["key_version"], 2);
    assert_eq!(wallet["keys"].as_array().unwrap().len(), 2);
    assert!(wallet["address"].as_str().unwrap().starts_with("0x"));
    assert_eq!(wallet["address"], wallet["keys"][1]["address"]);
    let mut fields: Vec<&String> = wallet.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "address",
            "chain",
            "created_at",
            "id",
            "key_version",
            "keys",
            "metadata",
            "status",
            "updated_at"
        ]
    );
    let mut key_fields: Vec<&String> = wallet["keys"][0].as_object().unwrap().keys().collect();
    key_fields.sort();
    assert_eq!(
        key_fields,
        [
            "address",
            "created_at",
            "kek_version",
            "retired_at",
            "status",
            "version"
        ]
    );
    // Neither the sealed keys nor the wrapped data keys appear, in any common encoding.
    let text = page.to_string();
    for version in [1, 2] {
        let (_, key) = wallets
            .signing_key(&id, Some(version))
            .await
            .unwrap()
            .unwrap();
        for secret in [&key.sealed.ciphertext, &key.sealed.wrapped_dek.ciphertext] {
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
            assert!(!text.contains(&hex[..16]), "hex key material");
            assert!(!text.contains(&b64[..16]), "base64 key material");
        }
    }

    let (status, _) = auth.get("/api/v1/admin/wallets?chain=btc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, page) = auth.get("/api/v1/admin/wallets?chain=solana").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["wallets"], json!([]));
}

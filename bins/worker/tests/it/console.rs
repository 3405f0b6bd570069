//! The operator console in a real browser: headless chromium driven by playwright-core
//! (`bins/api/console/test/browse.cjs`) against the whole stack (api, worker process, anvil),
//! offline (nothing resolves but 127.0.0.1). The script drives the flows and fails on what
//! the browser sees (console errors, CSP violations, requests leaving 127.0.0.1, axe-core
//! serious or critical violations, action buttons shown to a viewer, forged actions not
//! refused); this test then checks that the operators' clicks did what they say, in the
//! database and on the chain. Screenshots land in `target/console-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use chrono::Utc;
use haven_chain::{TxKind, TxRecord, TxStatus, TxStore};
use haven_fraud::AlertStore;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::stack::{Stack, hnv};

const PASSWORD: &str = "console-test-password-1";
const FAILED_TX: &str = "console:failed:mint";
const BREAKER: &str = "partner_api";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("console-screenshots")
}

fn chromium() -> String {
    let bin = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&bin).exists(),
        "no chromium at {bin}: run scripts/services.sh (it installs Debian's chromium) or set CHROMIUM_BIN"
    );
    bin
}

fn node_modules() -> PathBuf {
    let dir = repo().join(".tools/node_modules");
    for package in ["playwright-core", "axe-core"] {
        assert!(
            dir.join(package).join("package.json").exists(),
            "{package} is not in {}: run scripts/services.sh",
            dir.display()
        );
    }
    dir
}

/// Creates a user with a password through the api (as an administrator would).
async fn user(stack: &Stack, admin: &str, email: &str, role: &str) {
    let (status, _, body) = stack
        .call(
            reqwest::Method::POST,
            "/api/v1/users",
            admin,
            None,
            Some(json!({"email": email, "password": PASSWORD, "role": role})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

fn velocity_alert(member: &str) -> haven_fraud::Alert {
    let at = Utc::now() - chrono::Duration::minutes(5);
    haven_fraud::Alert {
        id: Uuid::now_v7(),
        rule_id: "velocity".into(),
        event_type: "velocity".into(),
        severity: haven_fraud::Severity::High,
        subject: member.into(),
        user: Some(member.into()),
        description: format!("12 bookings in 10 minutes for {member}"),
        metadata: json!({"count": 12}),
        event_id: format!("ev-{}", Uuid::new_v4()),
        event_ts: at,
        created_at: at,
    }
}

/// A mint that reverted: what the transactions page lists as failed.
async fn failed_transaction(stack: &Stack) {
    let store = haven_db::PgTxStore::new(stack.pool.clone());
    let mut record = TxRecord::queued(
        FAILED_TX,
        TxKind::Mint,
        31337,
        // not the stack's token and not its minter: a retry can mint nothing real
        Address::repeat_byte(0xaa),
        Address::repeat_byte(0xbb),
        Some(Address::repeat_byte(0xcc)),
        U256::from(10u64).pow(U256::from(18u64)),
        120_000,
        Utc::now() - chrono::Duration::hours(2),
    );
    store.insert(record.clone()).await.unwrap();
    record.status = TxStatus::Failed;
    record.nonce = Some(7);
    record.hash = Some(B256::repeat_byte(0x11));
    record.raw = Some(Bytes::from_static(b"\x02signed"));
    record.max_fee_per_gas = Some(2_000_000_000);
    record.max_priority_fee_per_gas = Some(1_000_000_000);
    record.attempts = 1;
    record.error = Some("reverted (receipt status 0)".into());
    record.block_number = Some(12);
    record.broadcast_at = Some(Utc::now() - chrono::Duration::hours(1));
    record.version = 2;
    assert!(store.update(&record).await.unwrap());
}

/// A disabled partner endpoint with one dead-lettered message: what the webhooks page shows
/// and replays (disabled, so the worker leaves the replayed message waiting).
async fn dead_letter(stack: &Stack) -> String {
    use diesel_async::RunQueryDsl;
    let outbox = haven_db::PgWebhookOutbox::new(stack.pool.clone());
    let endpoint = outbox
        .create_endpoint("https://partner.example.com/hooks", "partner")
        .await
        .unwrap()
        .endpoint
        .id;
    assert!(outbox.disable_endpoint(endpoint).await.unwrap());
    let message = outbox
        .enqueue(endpoint, "reward.confirmed", &json!({"n": 1}))
        .await
        .unwrap();
    let mut conn = stack.pool.get().await.unwrap();
    diesel::sql_query(
        "UPDATE webhook_deliveries SET status = 'dead', attempted_at = now(), \
         response_status = 503 WHERE message_id = $1",
    )
    .bind::<diesel::sql_types::Text, _>(&message)
    .execute(&mut conn)
    .await
    .unwrap();
    message
}

async fn audit_actors(stack: &Stack, action: &str) -> Vec<Value> {
    haven_db::PgAuditLog::new(stack.pool.clone())
        .page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == action)
        .map(|r| json!({"actor": r.event.actor, "target": r.event.target}))
        .collect()
}

fn db_role(role: &str) -> haven_db::Role {
    match role {
        "admin" => haven_db::Role::Admin,
        "operator" => haven_db::Role::Operator,
        _ => haven_db::Role::Viewer,
    }
}

async fn user_id(stack: &Stack, email: &str) -> String {
    let user = haven_db::UserRepo::new(stack.pool.clone())
        .find_by_email(email)
        .await
        .unwrap()
        .unwrap();
    format!("user:{}", user.id)
}

/// `GET /api/v1/admin/rewards?state=held` (the console's held rewards) lists every member's,
/// and refuses a key scoped to one member.
async fn held_rewards_span_members_but_not_for_a_member_key(
    stack: &Stack,
    admin: &str,
    member: &str,
    reward: &str,
) {
    let path = "/api/v1/admin/rewards?state=held";
    let (status, _, held) = stack
        .call(reqwest::Method::GET, path, admin, None, None)
        .await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["rewards"][0]["id"], reward, "{held}");
    assert_eq!(held["rewards"][0]["member_id"], member, "{held}");
    let (status, _, key) = stack
        .call(
            reqwest::Method::POST,
            "/api/v1/api-keys",
            admin,
            None,
            Some(json!({"name": "member", "scopes": ["members:read"], "member_id": member})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let res = stack
        .client
        .get(stack.api.url(path))
        .header("x-api-key", key["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "a member's key sees its own member only");
    let (status, _, bad) = stack
        .call(
            reqwest::Method::GET,
            "/api/v1/admin/rewards?state=lost",
            admin,
            None,
            None,
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["details"]["field"], "state");
}

const EMAILS: [(&str, &str); 3] = [
    ("operator", "console-operator@example.com"),
    ("admin", "console-admin@example.com"),
    ("viewer", "console-viewer@example.com"),
];

/// What the browser run works on.
struct Seeded {
    member: String,
    reward: String,
    alert: Uuid,
    dead: String,
}

/// Users with passwords, a held reward, an open alert, a failed transaction, a dead letter,
/// a breaker forced open.
async fn seed(stack: &Stack, admin: &str) -> Seeded {
    for (role, email) in EMAILS {
        user(stack, admin, email, role).await;
    }
    // A reward held by the fraud rules: CAD 10,000 for 2 nights, 24,000 HNV.
    let (status, accepted) = stack
        .send(
            "aurora/booking-created",
            r#"{"booking_id":"console-b1","guest_id":"console-g1","total_price":10000,"nights":2}"#,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["reward"]["state"], "held", "{accepted}");
    let member = accepted["member_id"].as_str().unwrap().to_owned();
    let reward = accepted["reward"]["id"].as_str().unwrap().to_owned();
    let alert = velocity_alert(&member);
    assert!(
        haven_db::PgAlertStore::new(stack.pool.clone())
            .insert(&alert)
            .await
            .unwrap()
    );
    failed_transaction(stack).await;
    let dead = dead_letter(stack).await;
    let breaker = stack.api.breakers.get_or_create(BREAKER).unwrap();
    breaker.force_open().await.unwrap();
    assert_eq!(
        stack.total_supply().await,
        U256::ZERO,
        "held: nothing minted"
    );
    Seeded {
        member,
        reward,
        alert: alert.id,
        dead,
    }
}

/// Runs `browse.cjs` against the stack; its summary, once it succeeded.
async fn browse(stack: &Stack, seeded: &Seeded) -> Value {
    let (chromium, node_modules) = (chromium(), node_modules());
    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    let mut command = Command::new("node");
    command
        .arg(repo().join("bins/api/console/test/browse.cjs"))
        .env("NODE_PATH", node_modules)
        .env("CHROMIUM_BIN", chromium)
        .env("CONSOLE_URL", stack.api.url(""))
        .env("SCREENSHOT_DIR", &shots)
        .env("CONSOLE_PASSWORD", PASSWORD)
        .env("OPERATOR_EMAIL", EMAILS[0].1)
        .env("ADMIN_EMAIL", EMAILS[1].1)
        .env("VIEWER_EMAIL", EMAILS[2].1)
        .env("ALERT_ID", seeded.alert.to_string())
        .env("REWARD_ID", &seeded.reward)
        .env("MEMBER_ID", &seeded.member)
        .env("FAILED_TX", FAILED_TX)
        .env("BREAKER", BREAKER)
        .env("DEAD_LETTER", &seeded.dead)
        .env("NONCE_ADDRESS", Address::repeat_byte(0xbb).to_string());
    let out = tokio::task::spawn_blocking(move || {
        command
            .output()
            .expect("node runs (scripts/services.sh installs it)")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser run failed:\n{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("the script's summary");
    assert_eq!(summary["problems"], json!([]), "{stderr}");
    summary
}

/// What the browser saw: the CSP refuses inline script, the token is refreshed, nothing
/// leaves 127.0.0.1 (A3), the viewer's forged actions get 403, and every page has a
/// screenshot (A2) and an axe-core scan (A4).
fn check_summary(summary: &Value) {
    assert_eq!(
        summary["cspSelfCheck"], true,
        "inline script is refused and seen"
    );
    assert_eq!(
        summary["refreshed"], true,
        "the console refreshes its access token"
    );
    assert!(summary["requests"].as_u64().unwrap() > 50, "{summary}");
    assert_eq!(summary["offOrigin"], json!([]), "{summary}");
    let refused = summary["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 3);
    for r in refused {
        assert_eq!(r[1], 403, "{summary}");
    }
    let shots = screenshot_dir();
    for page in [
        "operator-alerts",
        "operator-transactions",
        "operator-transaction-detail",
        "operator-rewards",
        "operator-sessions",
        "sign-in",
        "admin-status",
        "admin-breakers",
        "admin-nonce-accounts",
        "admin-nonces",
        "admin-nonce-reset-confirmation",
        "admin-audit",
        "admin-webhooks",
        "admin-redemptions",
        "phone-status",
        "phone-alerts",
        "viewer-status",
        "viewer-webhooks",
    ] {
        let file = shots.join(format!("{page}.png"));
        let bytes = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .len();
        assert!(bytes > 5_000, "{page}: a {bytes}-byte screenshot");
        assert!(
            summary["scanned"]
                .as_array()
                .unwrap()
                .contains(&json!(page)),
            "{page} was scanned by axe"
        );
    }
}

/// What the operator's clicks did: the alert reviewed and resolved with notes, the held
/// reward minted once on anvil, the failed transaction re-queued once.
async fn check_operator(stack: &Stack, seeded: &Seeded) {
    let operator = user_id(stack, EMAILS[0].1).await;
    let record = haven_db::PgAlertStore::new(stack.pool.clone())
        .get(seeded.alert)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state.as_str(), "resolved");
    assert_eq!(record.reviewed_by.as_deref(), Some(operator.as_str()));
    let notes: Vec<_> = record.notes.iter().map(|n| n.text.as_str()).collect();
    assert!(notes.contains(&"closed: expected traffic"), "{notes:?}");
    stack
        .eventually(
            "the approved reward is minted",
            Duration::from_secs(60),
            || async { stack.total_supply().await == hnv(24_000) },
        )
        .await;
    let approved = audit_actors(stack, "reward.approved").await;
    assert_eq!(approved.len(), 1, "{approved:?}");
    let retried = audit_actors(stack, "transaction.retry").await;
    assert_eq!(
        retried,
        vec![json!({"actor": operator, "target": format!("transaction:{FAILED_TX}")})],
        "once, as the operator; the viewer's forged retry changed nothing"
    );
}

/// What the admin's clicks did: the breaker reset, the nonce reset after its confirmation,
/// the dead letter replayed once; and every console user logged out.
async fn check_admin(stack: &Stack, seeded: &Seeded) {
    assert_eq!(
        stack.api.breakers.get(BREAKER).unwrap().status().state,
        haven_resilience::BreakerState::Closed
    );
    let admin_id = user_id(stack, EMAILS[1].1).await;
    assert!(
        audit_actors(stack, "breaker.reset")
            .await
            .contains(&json!({"actor": admin_id, "target": format!("breaker:{BREAKER}")})),
        "the reset is audited as the admin's"
    );
    let resets = audit_actors(stack, "nonce.reset").await;
    assert_eq!(resets.len(), 1, "{resets:?}");
    assert_eq!(resets[0]["actor"], admin_id);
    assert_eq!(
        audit_actors(stack, "webhook.dead_letter.replay").await,
        vec![json!({"actor": admin_id, "target": format!("webhook_message:{}", seeded.dead)})]
    );
    let attempts = haven_db::PgWebhookOutbox::new(stack.pool.clone())
        .attempts(&seeded.dead)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1].status, "pending");
    // Logging out (the script checks the access and refresh tokens are refused after) left
    // no session of the console's users.
    for (role, email) in EMAILS {
        let (status, _, body) = stack
            .call(
                reqwest::Method::GET,
                "/api/v1/auth/sessions",
                &stack.user_token(email, db_role(role)).await,
                None,
                None,
            )
            .await;
        assert_eq!(status, 200, "{email}: {body}");
        assert_eq!(body, json!([]), "{role}: sessions left after logging out");
    }
}

/// A1–A4: operators review and close an alert, approve a held reward (minted on anvil),
/// reset a breaker, retry a failed transaction and log out; a viewer sees no action button
/// and a forged action is refused; every page is screenshotted, scanned by axe-core, free of
/// console errors and CSP violations, and makes no request beyond 127.0.0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_work_the_console_in_a_real_browser() {
    let stack = Stack::start().await;
    let admin = stack.admin_token().await;
    let seeded = seed(&stack, &admin).await;
    held_rewards_span_members_but_not_for_a_member_key(
        &stack,
        &admin,
        &seeded.member,
        &seeded.reward,
    )
    .await;
    let summary = browse(&stack, &seeded).await;
    check_summary(&summary);
    check_operator(&stack, &seeded).await;
    check_admin(&stack, &seeded).await;
}

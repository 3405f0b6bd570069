//! Repeated authentication failures back off exponentially, then ban, and feed the fraud
//! auth-burst rules (real Redis and Postgres).

use std::time::Duration;

use haven_api::testing::{TestApi, spawn_api_with};
use haven_auth::Role;
use haven_fraud::{AlertFilter, AlertStore};
use haven_resilience::LockoutPolicy;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Client, PASSWORD, audit_actions, create_user};

/// 2 free failures, then 400 ms, 800 ms (capped), and a 3 s ban from the 5th failure.
fn strict() -> LockoutPolicy {
    LockoutPolicy {
        free_failures: 2,
        base_delay: Duration::from_millis(400),
        max_delay: Duration::from_millis(800),
        ban_after: 5,
        ban_for: Duration::from_secs(3),
        window: Duration::from_secs(60),
    }
}

async fn attempt(api: &TestApi, email: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(api.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}", res.status()))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn assert_blocked(res: reqwest::Response) -> u64 {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let secs = retry_after(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "RATE_LIMITED", "{body}");
    secs
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_back_off_then_ban_and_the_right_password_waits_too() {
    let api = spawn_api_with(|c| c.auth.lockout = strict()).await;
    create_user(&api, "alice@example.com", haven_db::Role::Viewer).await;
    create_user(&api, "bob@example.com", haven_db::Role::Viewer).await;

    for _ in 0..2 {
        let res = attempt(&api, "alice@example.com", "wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // The third failure is still answered 401, and blocks for 400 ms.
    let res = attempt(&api, "alice@example.com", "wrong").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // During the block even the right password is refused unevaluated.
    let res = attempt(&api, "alice@example.com", PASSWORD).await;
    assert_eq!(assert_blocked(res).await, 1);
    // The address is blocked for every account, the account from every address.
    let res = attempt(&api, "bob@example.com", PASSWORD).await;
    assert_blocked(res).await;

    tokio::time::sleep(Duration::from_millis(450)).await;
    let res = attempt(&api, "alice@example.com", "wrong").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the block ended");
    // The 4th failure doubled the block: 800 ms.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let res = attempt(&api, "alice@example.com", PASSWORD).await;
    assert_blocked(res).await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    // The 5th failure bans for 3 s, audited as a HIGH security event.
    let res = attempt(&api, "alice@example.com", "wrong").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = attempt(&api, "alice@example.com", PASSWORD).await;
    let wait = assert_blocked(res).await;
    assert!((2..=3).contains(&wait), "ban Retry-After {wait}");
    let actions = audit_actions(&api).await;
    assert!(
        actions.contains(&("auth.banned".to_owned(), "HIGH".to_owned())),
        "{actions:?}"
    );
    let failed = actions
        .iter()
        .filter(|(a, _)| a == "auth.login_failed")
        .count();
    assert_eq!(failed, 5, "blocked attempts are not evaluated: {actions:?}");

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let res = attempt(&api, "alice@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK, "the ban is over");
    api.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_api_keys_block_the_address_on_authenticated_routes() {
    let api = spawn_api_with(|c| c.auth.lockout = strict()).await;
    let admin = create_user(&api, "admin@example.com", haven_db::Role::Admin).await;
    let (status, created) = Client::for_user(&api, admin, Role::Admin)
        .post(
            "/api/v1/api-keys",
            json!({"name": "ops", "scopes": ["transactions:read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    // A well-formed key that does not exist: its checksum is right, the lookup fails.
    let unknown = haven_auth::ApiKey::generate(haven_auth::KeyEnv::Test).unwrap();
    let whoami = |key: String| {
        let url = api.url("/api/v1/auth/whoami");
        async move {
            reqwest::Client::new()
                .get(url)
                .header("x-api-key", key)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(whoami(key.clone()).await.status(), StatusCode::OK);
    for _ in 0..3 {
        let res = whoami(unknown.expose_secret().to_owned()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Blocked now: the next request from this address waits, whatever it carries.
    let res = whoami(key.clone()).await;
    assert_eq!(assert_blocked(res).await, 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        whoami(key).await.status(),
        StatusCode::OK,
        "the block ended"
    );
    api.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_failed_logins_raises_the_fraud_alerts() {
    // The default (lenient) test lockout: all ten failures reach the fraud rules, whose
    // default thresholds are 10 failures per minute per principal and per address.
    let api = spawn_api_with(|_| {}).await;
    create_user(&api, "carol@example.com", haven_db::Role::Viewer).await;
    for _ in 0..10 {
        let res = attempt(&api, "carol@example.com", "wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let pool = haven_db::connect(api.db.url(), 2).await.unwrap();
    let alerts = haven_db::PgAlertStore::new(pool);
    let filter = AlertFilter {
        event_type: Some("auth_failures".into()),
        ..AlertFilter::default()
    };
    // The feed runs off the request path: wait for its rows.
    let mut rules = Vec::new();
    for _ in 0..100 {
        rules = alerts
            .list(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.alert.rule_id)
            .collect::<Vec<_>>();
        if rules.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rules.sort();
    assert_eq!(rules, ["auth_failures_ip", "auth_failures_principal"]);
    // One more failure inside the cooldown raises nothing new.
    attempt(&api, "carol@example.com", "wrong").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alerts.list(&filter).await.unwrap().len(), 2);
    api.shutdown().await.unwrap();
}

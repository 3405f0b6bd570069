//! The abuse paths of the security review, each reproduced over HTTP against the real api
//! with Postgres and Redis (points 3–9 of the review).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_api::testing::{TestApi, spawn_api_with};
use haven_auth::{ApiKey, KeyEnv, Role};
use haven_fraud::{AlertFilter, AlertStore};
use haven_resilience::LockoutPolicy;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{
    ApiProcess, Client, PASSWORD, create_passwordless_user, create_user, free_port, login, pool,
};

fn per_min(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap()
}

fn loopback_proxy() -> Vec<ipnet::IpNet> {
    haven_api::ratelimit::parse_networks("127.0.0.1").unwrap()
}

/// A login attempt that claims (through the trusted proxy) to come from `from`.
async fn login_from(api: &TestApi, from: &str, email: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(api.url("/api/v1/auth/login"))
        .header("x-forwarded-for", from)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

fn retry_after(res: &reqwest::Response) -> Option<u64> {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Waits (up to 10 s) for the fraud feed to store alerts of `rule_id`; their subjects.
async fn alert_subjects(api: &TestApi, rule_id: &str) -> Vec<String> {
    let alerts = haven_db::PgAlertStore::new(pool(api).await);
    for _ in 0..200 {
        let found: Vec<String> = alerts
            .list(&AlertFilter::default())
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.alert.rule_id == rule_id)
            .map(|r| r.alert.subject)
            .collect();
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Vec::new()
}

async fn sql(api: &TestApi, statement: &str) {
    let mut conn = AsyncPgConnection::establish(api.db.url()).await.unwrap();
    diesel::sql_query(statement)
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Point 3: a request carrying a credential that has not verified is charged to its
/// network's bucket before any lookup. With the database down, every lookup that happens
/// answers 503: exactly the bucket's five do; the other fifteen are refused with 429
/// without one. Credentials that fail their local checks get 401 and then 429.
#[tokio::test(flavor = "multi_thread")]
async fn unverified_credentials_are_limited_per_network_before_any_lookup() {
    let api = spawn_api_with(|c| {
        c.common.database_url = "postgres://haven:haven@127.0.0.1:1/down".to_owned().into();
        c.rate_limits.public_per_min = per_min(5);
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let key = ApiKey::generate(KeyEnv::Test).unwrap();
        statuses.push(Client::api_key(&api, key.expose_secret()).whoami().await.0);
    }
    let lookups = statuses.iter().filter(|s| **s == 503).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((lookups, refused), (5, 15), "{statuses:?}");

    let api = spawn_api_with(|c| c.rate_limits.public_per_min = per_min(5)).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let junk = if i % 2 == 0 {
            Client::bearer(&api, "not.a.jwt")
        } else {
            Client::api_key(&api, "hvn_test_0000000000000000000000000000000000000000")
        };
        statuses.push(junk.whoami().await.0);
    }
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(statuses[5..], [429; 3], "{statuses:?}");
}

/// Point 4: started without `HAVEN_ENV` on a public address with no secrets, the real binary
/// refuses to run (it served `/health` on the repository's JWT secret before); on loopback
/// it starts.
#[tokio::test(flavor = "multi_thread")]
async fn development_secrets_never_serve_a_public_listener() {
    let db = haven_testkit::TestDb::new().await;
    let port = free_port();
    let mut child = ApiProcess::command(&db, port, &[])
        .env_remove("HAVEN_ENV")
        .env("HAVEN_API_ADDR", format!("0.0.0.0:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("haven-api kept running on 0.0.0.0 with the development secrets");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "it must not start");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("HAVEN_JWT_SECRET"), "{stderr}");
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/health"))
            .await
            .is_err(),
        "nothing listens"
    );
    let local = ApiProcess::start(&db, &[]).await;
    let health = reqwest::get(local.url("/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

/// Point 4: a token is honoured only for a user who exists, is not disabled and still has
/// the token's role.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_of_missing_disabled_or_demoted_users_are_refused() {
    let api = spawn_api_with(|_| {}).await;
    let ghost = Client::for_user(&api, Uuid::new_v4(), Role::Admin);
    assert_eq!(ghost.whoami().await.0, StatusCode::UNAUTHORIZED);

    let viewer = create_passwordless_user(&api, haven_db::Role::Viewer).await;
    let inflated = Client::for_user(&api, viewer, Role::Admin);
    let (status, body) = inflated.get("/api/v1/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        Client::for_user(&api, viewer, Role::Viewer)
            .whoami()
            .await
            .0,
        200
    );

    let disabled = create_passwordless_user(&api, haven_db::Role::Operator).await;
    sql(
        &api,
        &format!("UPDATE users SET disabled_at = now() WHERE id = '{disabled}'"),
    )
    .await;
    let (status, _) = Client::for_user(&api, disabled, Role::Operator)
        .whoami()
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Point 5: failed logins from twelve other networks do not lock the owner out of a correct
/// login from a network that has not failed; the attackers' own networks are blocked.
#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_elsewhere_do_not_lock_the_owner_out() {
    let api = spawn_api_with(|c| {
        c.auth.lockout = LockoutPolicy::default();
        c.rate_limits.trusted_proxies = loopback_proxy();
    })
    .await;
    create_user(&api, "root@example.com", haven_db::Role::Admin).await;
    for i in 1..=12 {
        let res = login_from(
            &api,
            &format!("198.51.100.{i}"),
            "root@example.com",
            "wrong",
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = login_from(&api, "198.51.100.13", "root@example.com", PASSWORD).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the owner from a clean network"
    );

    // An attacker's network that keeps failing is blocked, even with the right password.
    for _ in 0..3 {
        login_from(&api, "198.51.100.1", "root@example.com", "wrong").await;
    }
    let res = login_from(&api, "198.51.100.1", "root@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&res).is_some());
}

/// Point 5: the last admin can always log in from a configured trusted network, even after
/// that network failed often enough to be banned anywhere else.
#[tokio::test(flavor = "multi_thread")]
async fn the_last_admin_can_always_log_in_from_a_trusted_network() {
    let api = spawn_api_with(|c| {
        c.auth.lockout = LockoutPolicy::default();
        c.auth.trusted_networks = haven_api::ratelimit::parse_networks("10.20.0.0/16").unwrap();
        c.rate_limits.trusted_proxies = loopback_proxy();
    })
    .await;
    create_user(&api, "root@example.com", haven_db::Role::Admin).await;
    for _ in 0..12 {
        let res = login_from(&api, "10.20.3.4", "root@example.com", "wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "never blocked");
    }
    let res = login_from(&api, "10.20.3.4", "root@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The same failures from an untrusted network ban it.
    for _ in 0..12 {
        login_from(&api, "192.0.2.50", "root@example.com", "wrong").await;
    }
    let res = login_from(&api, "192.0.2.50", "root@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Point 6: 300 concurrent logins from 300 addresses against a separate api process: the
/// password hashes running at once never exceed the cap, the rest are refused with 503 and
/// `Retry-After`, and the process's memory stays bounded (without the cap, 300 argon2 hashes
/// of 19 MiB each would run at once).
#[tokio::test(flavor = "multi_thread")]
async fn password_hashing_is_capped_under_a_burst_of_logins() {
    let db = haven_testkit::TestDb::new().await;
    let cap = 2;
    let api = ApiProcess::start(
        &db,
        &[
            (
                "HAVEN_REDIS_PREFIX",
                format!("haven:test:{}:", Uuid::new_v4()),
            ),
            ("HAVEN_AUTH_HASH_CONCURRENCY", cap.to_string()),
            ("HAVEN_TRUSTED_PROXIES", "127.0.0.1".into()),
            ("HAVEN_RATE_LIMIT_PUBLIC_PER_MIN", "100000".into()),
            ("HAVEN_RATE_LIMIT_SENSITIVE_PER_MIN", "100000".into()),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let attempt = |i: u32| {
        let req = client
            .post(api.url("/api/v1/auth/login"))
            .header(
                "x-forwarded-for",
                format!("10.7.{}.{}", i / 250, i % 250 + 1),
            )
            .json(
                &json!({"email": format!("nobody{i}@example.com"), "password": "wrong password"}),
            );
        async move {
            let res = req.send().await.unwrap();
            (res.status(), retry_after(&res))
        }
    };
    // Warm up, then measure.
    attempt(1000).await;
    let before = api.memory_kib("VmRSS");
    let outcomes = futures::future::join_all((0..300).map(attempt)).await;
    let peak_rss = api.memory_kib("VmHWM");
    let checked = outcomes.iter().filter(|(s, _)| *s == 401).count();
    let busy = outcomes
        .iter()
        .filter(|(s, r)| *s == 503 && r.is_some())
        .count();
    assert_eq!(checked + busy, 300, "{outcomes:?}");
    assert!(checked >= cap, "{checked} checked");
    assert!(busy > 0, "nothing was refused");
    let peak = api.metric("haven_password_hashes_in_flight_peak").await;
    assert!(
        (1.0..=cap as f64).contains(&peak),
        "{peak} hashes ran at once (cap {cap})"
    );
    let grown_mib = peak_rss.saturating_sub(before) / 1024;
    eprintln!(
        "300 logins: {checked} checked, {busy} refused; peak {peak}; rss {} MiB -> peak {} MiB",
        before / 1024,
        peak_rss / 1024
    );
    // Each hashing thread keeps one 19 MiB working memory; the rest is connections.
    let bound = cap as u64 * 20 + 64;
    assert!(
        grown_mib < bound,
        "memory grew by {grown_mib} MiB (bound {bound})"
    );
}

/// Point 7: under the production defaults, an attacker who honours every `Retry-After`
/// until the ban raises both `auth_failures_*` alerts (the rules count over the lockout's
/// window). Takes about a minute: the back-off itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_paced_attacker_raises_the_auth_failure_alerts_under_production_defaults() {
    let api = spawn_api_with(|c| c.auth.lockout = LockoutPolicy::default()).await;
    create_user(&api, "target@example.com", haven_db::Role::Admin).await;
    let started = Instant::now();
    let mut failures = 0;
    loop {
        let res = login_from(&api, "", "target@example.com", "guess").await;
        match res.status() {
            StatusCode::UNAUTHORIZED => failures += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after(&res).expect("Retry-After");
                if wait > 300 {
                    break; // banned
                }
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            other => panic!("{other}"),
        }
        assert!(started.elapsed() < Duration::from_secs(180), "no ban");
    }
    assert_eq!(failures, LockoutPolicy::default().ban_after);
    let by_ip = alert_subjects(&api, "auth_failures_ip").await;
    let by_principal = alert_subjects(&api, "auth_failures_principal").await;
    assert_eq!(by_ip.len(), 1, "{by_ip:?}");
    assert_eq!(by_principal.len(), 1, "{by_principal:?}");
    eprintln!(
        "banned after {failures} failures in {:?}",
        started.elapsed()
    );
}

/// Point 7: IPv6 clients are one network per /56 for rate limits, lockout and fraud: ten
/// addresses of one /56 share a bucket and a back-off, and raise one `auth_failures_ip`
/// alert for the /56.
#[tokio::test(flavor = "multi_thread")]
async fn ipv6_clients_are_grouped_per_56() {
    let api = spawn_api_with(|c| {
        c.rate_limits.trusted_proxies = loopback_proxy();
        c.rate_limits.public_per_min = per_min(5);
    })
    .await;
    let addresses: Vec<String> = (0..10)
        .map(|i| format!("2001:db8:aa:bb{i:02x}:{i}::{}", i + 1))
        .collect();
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for from in &addresses {
        let res = client
            .post(api.url("/api/v1/addresses/validate"))
            .header("x-forwarded-for", from)
            .json(&json!({"chain": "evm", "address": "0x0"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
    let other = client
        .post(api.url("/api/v1/addresses/validate"))
        .header("x-forwarded-for", "2001:db8:aa:cc00::1")
        .json(&json!({"chain": "evm", "address": "0x0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200, "another /56 has its own bucket");

    let api = spawn_api_with(|c| {
        c.rate_limits.trusted_proxies = loopback_proxy();
        c.auth.lockout = LockoutPolicy::default();
    })
    .await;
    let mut statuses = Vec::new();
    for from in &addresses {
        statuses.push(
            login_from(&api, from, "x@example.com", "guess")
                .await
                .status()
                .as_u16(),
        );
    }
    // Three free failures for the /56, the fourth blocks it as one client; the attempts
    // refused while blocked still reach the fraud rules.
    assert_eq!(statuses[..4], [401, 401, 401, 401], "{statuses:?}");
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    let subjects = alert_subjects(&api, "auth_failures_ip").await;
    assert_eq!(subjects, ["ip:2001:db8:aa:bb00::/56"], "{subjects:?}");
}

/// Point 8: an event far in the future is refused with 400 over HTTP and cannot mute the
/// events that follow it.
#[tokio::test(flavor = "multi_thread")]
async fn fraud_events_from_the_future_are_refused_over_http() {
    let api = spawn_api_with(|_| {}).await;
    let operator = create_passwordless_user(&api, haven_db::Role::Operator).await;
    let client = Client::for_user(&api, operator, Role::Operator);
    let purchase = |id: &str, ts: chrono::DateTime<Utc>| {
        json!({"type": "purchase", "event_id": id, "user": "member-7", "amount": "500",
               "currency": "NGN", "ts": ts})
    };
    let (status, body) = client
        .post(
            "/api/v1/fraud/events",
            purchase("future", Utc::now() + chrono::Duration::hours(1)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "VALIDATION_ERROR", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("future"),
        "{body}"
    );

    let mut raised = Vec::new();
    for i in 0..3 {
        let (status, body) = client
            .post(
                "/api/v1/fraud/events",
                purchase(&format!("p{i}"), Utc::now()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        raised.extend(body["alerts"].as_array().unwrap().clone());
    }
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["rule_id"], "rapid_purchase");
}

/// 9: a 403 writes an `auth.forbidden` audit row naming the actor, method and route.
#[tokio::test(flavor = "multi_thread")]
async fn a_forbidden_request_is_audited() {
    let api = spawn_api_with(|_| {}).await;
    let viewer = create_passwordless_user(&api, haven_db::Role::Viewer).await;
    let (status, _) = Client::for_user(&api, viewer, Role::Viewer)
        .get("/api/v1/users")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let rows = haven_db::PgAuditLog::new(pool(&api).await)
        .page(0, 100)
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|r| r.event.action == "auth.forbidden")
        .expect("an auth.forbidden row");
    assert_eq!(row.event.actor, format!("user:{viewer}"));
    assert_eq!(row.event.details["method"], "GET");
    assert_eq!(row.event.details["route"], "/api/v1/users");
}

/// 9: `/metrics` is served to `HAVEN_METRICS_ALLOW` only (loopback by default); a client
/// outside, even through a trusted proxy, gets 403.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_served_to_internal_networks_only() {
    let api = spawn_api_with(|c| c.rate_limits.trusted_proxies = loopback_proxy()).await;
    let client = reqwest::Client::new();
    let direct = client.get(api.url("/metrics")).send().await.unwrap();
    assert_eq!(direct.status(), StatusCode::OK);
    let outside = client
        .get(api.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), StatusCode::FORBIDDEN);
    let body: Value = outside.json().await.unwrap();
    assert_eq!(body["error"], "FORBIDDEN");
}

/// 9: `refresh` ends the session of a user who no longer exists or is disabled, instead of
/// issuing a token with the old claim's role.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_refuses_missing_and_disabled_users() {
    let api = spawn_api_with(|_| {}).await;
    for (email, change) in [
        (
            "gone@example.com",
            "DELETE FROM users WHERE email = 'gone@example.com'",
        ),
        (
            "off@example.com",
            "UPDATE users SET disabled_at = now() WHERE email = 'off@example.com'",
        ),
    ] {
        create_user(&api, email, haven_db::Role::Admin).await;
        let (_, tokens) = login(&api, email).await;
        sql(&api, change).await;
        let (status, body) = crate::support::refresh(&api, &tokens["refresh_token"]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{email}: {body}");
        assert!(body.get("access_token").is_none());
    }
}

/// 9: a failed login is audited with a digest of the e-mail typed, never the text.
#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_are_audited_without_the_typed_email() {
    let api = spawn_api_with(|_| {}).await;
    let typed = "Someone.Private@Example.com";
    let res = login_from(&api, "", typed, "wrong").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let rows = haven_db::PgAuditLog::new(pool(&api).await)
        .page(0, 100)
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|r| r.event.action == "auth.login_failed")
        .unwrap();
    let text = serde_json::to_string(&row.event).unwrap().to_lowercase();
    assert!(!text.contains("someone.private"), "{text}");
    assert_eq!(
        row.event.details["email_digest"],
        haven_api::lockout::email_digest(typed)
    );
}

/// 9: listing custody wallets goes through the audited custody path.
#[tokio::test(flavor = "multi_thread")]
async fn the_wallet_list_is_audited() {
    let api = spawn_api_with(|_| {}).await;
    let admin = create_passwordless_user(&api, haven_db::Role::Admin).await;
    let (status, body) = Client::for_user(&api, admin, Role::Admin)
        .get("/api/v1/admin/wallets?limit=5")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = haven_db::PgAuditLog::new(pool(&api).await)
        .page(0, 100)
        .await
        .unwrap();
    let row = rows
        .iter()
        .find(|r| r.event.action == "wallet.list")
        .expect("a wallet.list row");
    assert_eq!(row.event.actor, format!("user:{admin}"));
    assert_eq!(row.event.details["limit"], 5);
}

#[test]
fn the_ipv6_grouping_is_configurable() {
    let ip: IpAddr = "2001:db8:aa:bb12::1".parse().unwrap();
    assert_eq!(
        haven_api::ratelimit::network(ip, 64).to_string(),
        "2001:db8:aa:bb12::/64"
    );
    assert_eq!(
        haven_api::ratelimit::network(ip, 56).to_string(),
        "2001:db8:aa:bb00::/56"
    );
}

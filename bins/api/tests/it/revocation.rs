//! Access tokens are answered from memory (`HAVEN_AUTH_CACHE_MS`), yet a logout, a "log out
//! everywhere" or a role change made through one api process is refused by another within a
//! second: the revocation travels over Redis pub/sub. Two real `haven-api` processes.

use std::time::{Duration, Instant};

use chrono::Utc;
use haven_auth::Role;
use haven_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::support::{ApiProcess, dev_jwt};

async fn user(db: &TestDb, role: haven_db::Role) -> Uuid {
    let pool = haven_db::connect(db.url(), 1).await.unwrap();
    haven_db::UserRepo::new(pool)
        .create(haven_db::NewUser {
            email: format!("{}@example.com", Uuid::new_v4().simple()),
            password_hash: None,
            role,
        })
        .await
        .unwrap()
        .id
}

fn token(user: Uuid, role: Role) -> String {
    // issued a second ago: a not-before set now covers it
    let at = Utc::now() - chrono::Duration::seconds(1);
    dev_jwt("k1")
        .issue_access(user, role, at)
        .unwrap()
        .as_str()
        .to_owned()
}

async fn whoami(api: &ApiProcess, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(api.url("/api/v1/auth/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// Polls `whoami` on `api` until it answers 401; how long that took (at most `within`).
async fn refused_within(api: &ApiProcess, token: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let status = whoami(api, token).await;
        if status == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            started.elapsed() < within,
            "still accepted after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn post(api: &ApiProcess, path: &str, token: &str, body: serde_json::Value) -> StatusCode {
    reqwest::Client::new()
        .post(api.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

/// A3: a logout on replica A, a "log out everywhere" on A and a role change on A are each
/// refused by replica B within 1 s, though B answered those tokens from memory before.
#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_on_one_replica_is_refused_by_another_within_a_second() {
    let db = TestDb::new().await;
    let prefix = format!("haven:test:{}:", Uuid::new_v4().simple());
    let env = [
        ("HAVEN_REDIS_PREFIX", prefix),
        ("HAVEN_AUTH_CACHE_MS", "1000".to_owned()),
    ];
    let a = ApiProcess::start(&db, &env).await;
    let b = ApiProcess::start(&db, &env).await;
    let second = Duration::from_secs(1);

    // logout: the token's jti is denied
    let alice = user(&db, haven_db::Role::Operator).await;
    let (kept, logged_out) = (token(alice, Role::Operator), token(alice, Role::Operator));
    for t in [&kept, &logged_out, &kept, &logged_out] {
        assert_eq!(whoami(&b, t).await, StatusCode::OK, "B knows both tokens");
    }
    assert_eq!(
        post(&a, "/api/v1/auth/logout", &logged_out, json!({})).await,
        StatusCode::NO_CONTENT
    );
    let took = refused_within(&b, &logged_out, second).await;
    eprintln!("logout on A refused on B after {took:?}");
    assert_eq!(whoami(&b, &kept).await, StatusCode::OK, "only that token");

    // log out everywhere: every token issued so far
    assert_eq!(
        post(
            &a,
            "/api/v1/auth/logout-all",
            &token(alice, Role::Operator),
            json!({})
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let took = refused_within(&b, &kept, second).await;
    eprintln!("logout-all on A refused on B after {took:?}");

    // a role change by an admin on A: the user's old token, and role, are gone on B
    let bob = user(&db, haven_db::Role::Operator).await;
    let admin = user(&db, haven_db::Role::Admin).await;
    let bobs = token(bob, Role::Operator);
    assert_eq!(whoami(&b, &bobs).await, StatusCode::OK);
    let status = reqwest::Client::new()
        .put(a.url(&format!("/api/v1/users/{bob}/role")))
        .bearer_auth(token(admin, Role::Admin))
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let took = refused_within(&b, &bobs, second).await;
    eprintln!("a role change on A refused on B after {took:?}");
    // a token issued later with the new role works on B at once
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = dev_jwt("k1")
        .issue_access(bob, Role::Viewer, Utc::now())
        .unwrap();
    assert_eq!(whoami(&b, fresh.as_str()).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_longer_than_a_second_is_refused_at_start() {
    let db = TestDb::new().await;
    let out = ApiProcess::command(&db, 9, &[("HAVEN_AUTH_CACHE_MS", "5000".to_owned())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("HAVEN_AUTH_CACHE_MS") || stdout.contains("HAVEN_AUTH_CACHE_MS"),
        "{stderr}{stdout}"
    );
}

//! `POST /api/v1/webhooks/{source}` over real Postgres: verification of the raw body, the
//! durable inbox as replay store, conflicts audited as HIGH security events.

use haven_api::config::webhooks::WebhookSources;
use haven_api::testing::{TestApi, spawn_api_with};
use haven_webhooks::{Scheme, Secret, Tolerance, Verifier, sign_header};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::audit_actions;

/// The Standard Webhooks reference vector (the spec libraries' own tests).
const REF_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const REF_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const REF_TS: &str = "1614265330";
const REF_BODY: &str = r#"{"test": 2432232314}"#;
const REF_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const AURORA_SECRET: &str = "aurora_test_secret";

async fn spawn() -> TestApi {
    spawn_api_with(|c| {
        c.webhook_sources = WebhookSources::from_verifiers([
            // The reference vector is from 2021: this source accepts any age.
            Verifier::new(
                "reference",
                Scheme::Standard,
                vec![Secret::standard(REF_SECRET).unwrap()],
            )
            .with_tolerance(Tolerance {
                max_age_secs: i64::MAX,
                max_future_secs: 60,
            }),
            Verifier::new(
                "partner",
                Scheme::Standard,
                vec![Secret::standard(REF_SECRET).unwrap()],
            ),
            Verifier::new(
                "aurora",
                Scheme::Aurora,
                vec![Secret::raw(AURORA_SECRET).unwrap()],
            ),
        ]);
    })
    .await
}

async fn post(
    api: &TestApi,
    source: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(api.url(&format!("/api/v1/webhooks/{source}")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

fn reference_headers(sig: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("webhook-id", REF_ID),
        ("webhook-timestamp", REF_TS),
        ("webhook-signature", sig),
    ]
}

async fn rows(api: &TestApi, source: &str, id: &str) -> i64 {
    let pool = haven_db::connect(api.db.url(), 2).await.unwrap();
    haven_db::PgInbox::new(pool)
        .count(source, id)
        .await
        .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread")]
async fn reference_vector_is_accepted_once_then_duplicate_then_conflict() {
    let api = spawn().await;

    let (status, body) = post(&api, "reference", &reference_headers(REF_SIG), REF_BODY).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "accepted");
    assert!(body["id"].is_i64(), "{body}");
    assert_eq!(rows(&api, "reference", REF_ID).await, 1);

    let (status, body) = post(&api, "reference", &reference_headers(REF_SIG), REF_BODY).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!({"status": "duplicate"}));
    assert_eq!(rows(&api, "reference", REF_ID).await, 1);
    assert!(audit_actions(&api).await.is_empty());

    // The same id, validly signed, over another body.
    let other = r#"{"test": 1}"#;
    let secret = Secret::standard(REF_SECRET).unwrap();
    let sig = sign_header(
        Scheme::Standard,
        &secret,
        Some(REF_ID),
        REF_TS.parse().unwrap(),
        other.as_bytes(),
    )
    .unwrap();
    let (status, body) = post(&api, "reference", &reference_headers(&sig), other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "WEBHOOK_REPLAY_CONFLICT", "{body}");
    assert_eq!(rows(&api, "reference", REF_ID).await, 1);
    assert_eq!(
        audit_actions(&api).await,
        vec![("webhook.replay_conflict".to_owned(), "HIGH".to_owned())]
    );
    api.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_refused_without_side_effects() {
    let api = spawn().await;
    let secret = Secret::standard(REF_SECRET).unwrap();
    let ts = now().to_string();
    let body = r#"{"event":"booking.created"}"#;

    // One body byte changed: bad signature.
    let sig = sign_header(
        Scheme::Standard,
        &secret,
        Some("msg_bad"),
        now(),
        body.as_bytes(),
    )
    .unwrap();
    let headers = [
        ("webhook-id", "msg_bad"),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", sig.as_str()),
    ];
    let (status, err) = post(
        &api,
        "partner",
        &headers,
        &body.replace("created", "cancel"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(err["error"], "INVALID_SIGNATURE", "{err}");
    assert_eq!(rows(&api, "partner", "msg_bad").await, 0);

    // Missing signature header.
    let (status, err) = post(&api, "partner", &headers[..2], body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"], "MALFORMED_WEBHOOK", "{err}");

    // A timestamp 301 s old, correctly signed.
    let old = now() - 301;
    let old_text = old.to_string();
    let sig = sign_header(
        Scheme::Standard,
        &secret,
        Some("msg_old"),
        old,
        body.as_bytes(),
    )
    .unwrap();
    let (status, err) = post(
        &api,
        "partner",
        &[
            ("webhook-id", "msg_old"),
            ("webhook-timestamp", old_text.as_str()),
            ("webhook-signature", sig.as_str()),
        ],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{err}");
    assert_eq!(err["error"], "INVALID_SIGNATURE", "{err}");
    assert_eq!(rows(&api, "partner", "msg_old").await, 0);

    // Unknown source.
    let (status, err) = post(&api, "nobody", &headers, body).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(err["error"], "NOT_FOUND", "{err}");

    assert!(audit_actions(&api).await.is_empty());
    api.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aurora_source_is_verified_and_deduplicated_by_signature() {
    let api = spawn().await;
    let body = r#"{"booking_id":"bk_123","nights":3}"#;
    let ts = now();
    let ts_text = ts.to_string();
    let sig = sign_header(
        Scheme::Aurora,
        &Secret::raw(AURORA_SECRET).unwrap(),
        None,
        ts,
        body.as_bytes(),
    )
    .unwrap();
    let headers = [
        ("x-aurora-timestamp", ts_text.as_str()),
        ("x-aurora-signature", sig.as_str()),
    ];
    let (status, res) = post(&api, "aurora", &headers, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{res}");
    assert_eq!(rows(&api, "aurora", &format!("sig:{sig}")).await, 1);
    let (status, res) = post(&api, "aurora", &headers, body).await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["status"], "duplicate");

    // A repeated signature header is malformed.
    let (status, res) = post(
        &api,
        "aurora",
        &[headers[0], headers[1], ("x-aurora-signature", sig.as_str())],
        body,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(rows(&api, "aurora", &format!("sig:{sig}")).await, 1);
    api.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deliveries_of_one_message_store_it_once() {
    let api = spawn().await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let url = api.url("/api/v1/webhooks/reference");
            tokio::spawn(async move {
                let mut req = reqwest::Client::new().post(url).body(REF_BODY);
                for (name, value) in reference_headers(REF_SIG) {
                    req = req.header(name, value);
                }
                req.send().await.unwrap().status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    let duplicates = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((accepted, duplicates), (1, 11), "{statuses:?}");
    assert_eq!(rows(&api, "reference", REF_ID).await, 1);
    api.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_answers_503_and_stores_nothing() {
    // Nothing listens on port 1: every connection attempt fails at once.
    let api = spawn_api_with(|c| {
        c.common.database_url = "postgres://haven@127.0.0.1:1/haven".to_owned().into();
        c.webhook_sources = WebhookSources::from_verifiers([Verifier::new(
            "reference",
            Scheme::Standard,
            vec![Secret::standard(REF_SECRET).unwrap()],
        )
        .with_tolerance(Tolerance {
            max_age_secs: i64::MAX,
            max_future_secs: 60,
        })]);
    })
    .await;
    let (status, body) = post(&api, "reference", &reference_headers(REF_SIG), REF_BODY).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "SERVICE_UNAVAILABLE", "{body}");
    // The test database was never written to.
    assert_eq!(rows(&api, "reference", REF_ID).await, 0);
    api.shutdown().await.unwrap();
}

/// A signed Aurora delivery of `body`: its headers.
fn aurora_signed(body: &str) -> Vec<(&'static str, String)> {
    let ts = now();
    let sig = sign_header(
        Scheme::Aurora,
        &Secret::raw(AURORA_SECRET).unwrap(),
        None,
        ts,
        body.as_bytes(),
    )
    .unwrap();
    vec![
        ("x-aurora-timestamp", ts.to_string()),
        ("x-aurora-signature", sig),
    ]
}

async fn post_owned(
    api: &TestApi,
    source: &str,
    headers: &[(&'static str, String)],
    body: &str,
) -> (StatusCode, Value) {
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    post(api, source, &borrowed, body).await
}

async fn rate_limited_api(webhook_per_min: u32, public_per_min: u32) -> TestApi {
    spawn_api_with(move |c| {
        c.rate_limits.webhook_per_min = std::num::NonZeroU32::new(webhook_per_min).unwrap();
        c.rate_limits.public_per_min = std::num::NonZeroU32::new(public_per_min).unwrap();
        c.webhook_sources = WebhookSources::from_verifiers(["aurora", "b"].map(|name| {
            Verifier::new(
                name,
                Scheme::Aurora,
                vec![Secret::raw(AURORA_SECRET).unwrap()],
            )
        }));
    })
    .await
}

/// A3 (point 3): the partner's bucket counts only verified deliveries. Reproduced before
/// the fix: with 20 per minute, 20 unsigned posts (400 each) used the bucket up and the
/// partner's signed delivery got 429. Now junk is charged to the sender's network.
#[tokio::test(flavor = "multi_thread")]
async fn unsigned_junk_cannot_use_up_a_partners_bucket() {
    let api = rate_limited_api(20, 10_000).await;
    for _ in 0..20 {
        let (status, body) = post(&api, "aurora", &[], "{}").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    let body = r#"{"booking_id":"bk_after_junk"}"#;
    let (status, res) = post_owned(&api, "aurora", &aurora_signed(body), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{res}");

    // Verified deliveries are what the bucket counts: 19 more pass, the 21st is refused.
    for i in 0..19 {
        let body = format!(r#"{{"booking_id":"bk_{i}"}}"#);
        let (status, res) = post_owned(&api, "aurora", &aurora_signed(&body), &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{i}: {res}");
    }
    let body = r#"{"booking_id":"bk_21"}"#;
    let (status, res) = post_owned(&api, "aurora", &aurora_signed(body), body).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{res}");
    assert_eq!(res["error"], "RATE_LIMITED");
    // Another source has its own bucket.
    let (status, res) = post_owned(&api, "b", &aurora_signed(body), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{res}");
    api.shutdown().await.unwrap();
}

/// Junk is limited per client network, and a flood of it does not delay the partner: 1,000
/// junk posts interleaved with 50 valid deliveries from the same address, all 50 accepted.
#[tokio::test(flavor = "multi_thread")]
async fn a_junk_flood_is_limited_per_network_and_valid_deliveries_pass() {
    let api = rate_limited_api(600, 10).await;
    let client = reqwest::Client::new();
    let junk = |i: usize| {
        let req = client
            .post(api.url(if i.is_multiple_of(2) {
                "/api/v1/webhooks/aurora"
            } else {
                "/api/v1/webhooks/nobody"
            }))
            .header("x-aurora-timestamp", now().to_string())
            .header("x-aurora-signature", "v1=00")
            .body("{}");
        async move { req.send().await.unwrap().status() }
    };
    let tasks: Vec<_> = (0..50)
        .map(|round| {
            let junk: Vec<_> = (0..20).map(|i| junk(round * 20 + i)).collect();
            let body = format!(r#"{{"booking_id":"bk_flood_{round}"}}"#);
            let headers = aurora_signed(&body);
            let api = &api;
            async move {
                let (junk, valid) = tokio::join!(
                    futures::future::join_all(junk),
                    post_owned(api, "aurora", &headers, &body)
                );
                (junk, valid)
            }
        })
        .collect();
    let outcomes = futures::future::join_all(tasks).await;
    let mut junk_statuses = std::collections::BTreeMap::new();
    for (junk, (status, res)) in outcomes {
        assert_eq!(status, StatusCode::ACCEPTED, "a valid delivery: {res}");
        for s in junk {
            *junk_statuses.entry(s.as_u16()).or_insert(0) += 1;
        }
    }
    let limited = junk_statuses.get(&429).copied().unwrap_or(0);
    assert!(
        limited >= 900,
        "junk beyond the network's 10/min is refused: {junk_statuses:?}"
    );
    assert!(
        junk_statuses
            .keys()
            .all(|s| [400, 401, 404, 429].contains(s)),
        "{junk_statuses:?}"
    );
    let pool = haven_db::connect(api.db.url(), 1).await.unwrap();
    let stored = haven_db::row_counts(&pool).await.unwrap()["inbound_webhooks"];
    assert_eq!(stored, 50, "only the valid deliveries were written");
    api.shutdown().await.unwrap();
}

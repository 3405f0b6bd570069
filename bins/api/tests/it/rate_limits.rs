//! A3: 429 with `Retry-After` after the limit (buckets in the real Redis), and
//! `X-Forwarded-For` believed only from a trusted proxy.

use std::num::NonZeroU32;

use haven_api::ratelimit::{self, RateLimitConfig};
use haven_api::testing::spawn_api_with;
use haven_auth::Role;
use haven_testkit::TestRedis;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Client, create_user};

fn per_min(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

async fn validate(
    client: &reqwest::Client,
    url: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut req = client
        .post(url)
        .json(&serde_json::json!({"chain": "evm", "address": "0x0"}));
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", res.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_request_after_the_limit_gets_429_with_retry_after() {
    let prefix = format!("haven:test:{}:rl:", uuid::Uuid::new_v4());
    let key_prefix = prefix.clone();
    let api = spawn_api_with(move |c| {
        c.rate_limits.public_per_min = per_min(3);
        c.rate_limits.key_prefix = key_prefix;
    })
    .await;
    let client = reqwest::Client::new();
    let url = api.url("/api/v1/addresses/validate");

    for expected_remaining in ["2", "1", "0"] {
        let res = validate(&client, &url, None).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-limit"), "3");
        assert_eq!(header(&res, "ratelimit-remaining"), expected_remaining);
        assert!(res.headers().get("retry-after").is_none());
    }

    let res = validate(&client, &url, None).await;
    assert_eq!(res.status(), 429);
    let retry_after: u64 = header(&res, "retry-after").parse().unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&res, "ratelimit-remaining"), "0");
    assert_eq!(header(&res, "ratelimit-limit"), "3");
    let request_id = header(&res, "x-request-id");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "RATE_LIMITED");
    assert_eq!(body["request_id"], request_id.as_str());

    // The bucket lives in Redis, shared by every replica.
    let mut conn = deadpool_redis::Config::from_url(TestRedis::server_url())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
        .get()
        .await
        .unwrap();
    let keys: Vec<String> = deadpool_redis::redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, vec![format!("{prefix}public:net:127.0.0.1/32")]);

    // Probes and scrapes are never limited.
    for _ in 0..5 {
        let res = client.get(api.url("/health")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let api = spawn_api_with(|c| c.rate_limits.public_per_min = per_min(2)).await;
    let client = reqwest::Client::new();
    let url = api.url("/api/v1/addresses/validate");
    // A client rotating forged addresses still spends its own bucket.
    for (i, spoof) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .into_iter()
        .enumerate()
    {
        let res = validate(&client, &url, Some(spoof)).await;
        let expected = if i < 2 { 200 } else { 429 };
        assert_eq!(res.status(), expected, "request {i} as {spoof}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_from_a_trusted_proxy_names_the_client() {
    let api = spawn_api_with(|c| {
        c.rate_limits.public_per_min = per_min(2);
        c.rate_limits.trusted_proxies = ratelimit::parse_trusted_proxies("127.0.0.0/8").unwrap();
    })
    .await;
    let client = reqwest::Client::new();
    let url = api.url("/api/v1/addresses/validate");
    // Two clients behind the proxy have a bucket each; the leftmost (client-written) entry
    // is not believed when a trusted hop follows it.
    for _ in 0..2 {
        let res = validate(&client, &url, Some("203.0.113.1, 198.51.100.7")).await;
        assert_eq!(res.status(), 200);
    }
    let res = validate(&client, &url, Some("203.0.113.99, 198.51.100.7")).await;
    assert_eq!(res.status(), 429, "same client, forged prefix");
    let res = validate(&client, &url, Some("198.51.100.8")).await;
    assert_eq!(res.status(), 200, "another client behind the proxy");
    let res = validate(&client, &url, None).await;
    assert_eq!(res.status(), 200, "the proxy itself");
}

/// Key creation is charged to the principal's sensitive bucket on top of its authenticated
/// one; the stricter is reported, and another principal has buckets of its own.
#[tokio::test(flavor = "multi_thread")]
async fn sensitive_routes_stack_a_stricter_limit_per_principal() {
    let api = spawn_api_with(|c| {
        c.rate_limits.authenticated_per_min = per_min(100);
        c.rate_limits.sensitive_per_min = per_min(2);
    })
    .await;
    let alice = create_user(&api, "alice@example.com", haven_db::Role::Admin).await;
    let bob = create_user(&api, "bob@example.com", haven_db::Role::Admin).await;
    let create = |who: Uuid| {
        let client = Client::for_user(&api, who, Role::Admin);
        async move {
            client
                .request(
                    Method::POST,
                    "/api/v1/api-keys",
                    Some(json!({"name": "k", "scopes": ["transactions:read"]})),
                    None,
                )
                .await
        }
    };
    for remaining in ["1", "0"] {
        let res = create(alice).await;
        assert_eq!(res.status, 201, "{}", res.body);
        assert_eq!(
            res.header("ratelimit-limit"),
            "2",
            "the stricter class is reported"
        );
        assert_eq!(res.header("ratelimit-remaining"), remaining);
    }
    let res = create(alice).await;
    assert_eq!(res.status, 429);
    assert!(!res.header("retry-after").is_empty());
    let res = create(bob).await;
    assert_eq!(res.status, 201, "another principal has its own bucket");
}

/// With the production limits (10/min per client network, 100/min per principal), a
/// logged-in caller is charged to its own bucket, never to the network's: twenty requests
/// from one address pass where an anonymous caller gets 429 after ten.
#[tokio::test(flavor = "multi_thread")]
async fn a_logged_in_request_is_charged_to_its_principal_not_its_network() {
    let api = spawn_api_with(|c| {
        let production = RateLimitConfig::default();
        c.rate_limits.public_per_min = production.public_per_min;
        c.rate_limits.authenticated_per_min = production.authenticated_per_min;
    })
    .await;
    assert_eq!(RateLimitConfig::default().public_per_min.get(), 10);
    let user = create_user(&api, "carol@example.com", haven_db::Role::Viewer).await;
    let carol = Client::for_user(&api, user, Role::Viewer);
    for i in 0..20 {
        let (status, body) = carol.whoami().await;
        assert_eq!(status, 200, "request {i}: {body}");
    }
    let anonymous = Client::anonymous(&api);
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(
            anonymous
                .post(
                    "/api/v1/addresses/validate",
                    json!({"chain": "evm", "address": "0x0"}),
                )
                .await
                .0,
        );
    }
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(statuses[10], 429, "the network's public bucket holds 10");
    // The principal's bucket is untouched by the anonymous traffic of its address.
    let (status, _) = carol.whoami().await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_is_limited_by_the_sensitive_class() {
    let api = spawn_api_with(|c| c.rate_limits.sensitive_per_min = per_min(2)).await;
    let client = reqwest::Client::new();
    let login = || {
        client
            .post(api.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"email": "nobody@example.com", "password": "wrong password"}))
            .send()
    };
    for _ in 0..2 {
        let res = login().await.unwrap();
        assert_ne!(res.status(), 429);
        assert_eq!(
            header(&res, "ratelimit-limit"),
            "2",
            "the stricter class is reported"
        );
    }
    let res = login().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_replica_keeps_limiting_while_redis_is_down() {
    let mut redis = haven_testkit::RedisServer::spawn();
    let url = redis.url();
    let api = spawn_api_with(|c| {
        c.common.redis_url = url.clone().into();
        c.rate_limits.public_per_min = per_min(2);
    })
    .await;
    redis.stop();
    let client = reqwest::Client::new();
    let url = api.url("/api/v1/addresses/validate");
    for _ in 0..2 {
        assert_eq!(validate(&client, &url, None).await.status(), 200);
    }
    let res = validate(&client, &url, None).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
}

//! A3: 429 with `Retry-After` after the limit (buckets in the real Redis), and
//! `X-Forwarded-For` believed only from a trusted proxy.

use std::num::NonZeroU32;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpMessage, HttpResponse, test, web};
use haven_api::idempotency::PrincipalId;
use haven_api::ratelimit::{self, RateLimitConfig, RateLimits};
use haven_testkit::{TestRedis, spawn_api_with};
use serde_json::Value;

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
    assert_eq!(keys, vec![format!("{prefix}public:ip:127.0.0.1/32")]);

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

#[actix_web::test]
async fn sensitive_routes_stack_a_stricter_limit_per_principal() {
    let config = RateLimitConfig {
        public_per_min: per_min(100),
        authenticated_per_min: per_min(100),
        sensitive_per_min: per_min(2),
        key_prefix: format!("haven:test:{}:rl:", uuid::Uuid::new_v4()),
        ..RateLimitConfig::default()
    };
    let redis = deadpool_redis::Config::from_url(TestRedis::server_url())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let limits = RateLimits::new(&config, redis).unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(limits))
            .wrap(from_fn(ratelimit::limit))
            .wrap_fn(|req, srv| {
                use actix_web::dev::Service;
                if let Some(who) = req.headers().get("x-test-principal") {
                    let who = who.to_str().unwrap().to_owned();
                    req.extensions_mut().insert(PrincipalId(who));
                }
                srv.call(req)
            })
            .service(
                web::resource("/api-keys")
                    .wrap(from_fn(ratelimit::sensitive))
                    .post(|| async { HttpResponse::Created().finish() }),
            ),
    )
    .await;
    let create = |who: &str| {
        test::TestRequest::post()
            .uri("/api-keys")
            .peer_addr("192.0.2.1:4000".parse().unwrap())
            .insert_header(("x-test-principal", who))
            .to_request()
    };
    for remaining in ["1", "0"] {
        let res = test::call_service(&app, create("alice")).await;
        assert_eq!(res.status(), 201);
        assert_eq!(
            res.headers().get("ratelimit-limit").unwrap(),
            "2",
            "the stricter class is reported"
        );
        assert_eq!(res.headers().get("ratelimit-remaining").unwrap(), remaining);
    }
    let res = test::call_service(&app, create("alice")).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    // Another principal from the same address has its own bucket.
    let res = test::call_service(&app, create("bob")).await;
    assert_eq!(res.status(), 201);
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

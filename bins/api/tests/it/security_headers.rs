//! A5: security headers on every response, including errors, and the CORS allow-list.

use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, test, web};
use haven_api::error::ApiError;
use haven_api::hardening::{self, HardeningPolicy};
use haven_api::testing::spawn_api_with;
use haven_core::ErrorCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

const EXPECTED: [(&str, &str); 4] = [
    ("content-security-policy", "default-src 'none'"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

fn assert_secure(headers: &HeaderMap, what: &str) {
    for (name, value) in EXPECTED {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name} on {what}: {headers:?}"
        );
    }
    assert!(
        headers.get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP ({what})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_status_carries_the_security_headers() {
    let api = spawn_api_with(|c| {
        c.rate_limits.public_per_min = 3.try_into().unwrap();
    })
    .await;
    let client = reqwest::Client::new();

    let res = client.get(api.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_secure(res.headers(), "200");

    let res = client.get(api.url("/no/such/route")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_secure(res.headers(), "404");

    let url = api.url("/api/v1/addresses/validate");
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_secure(res.headers(), "405");

    let big = format!(
        "{{\"chain\":\"evm\",\"address\":\"{}\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let res = client
        .post(&url)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_secure(res.headers(), "413");

    // The public limit is 3 per minute per IP, partly used by the requests above.
    let mut res = None;
    for _ in 0..4 {
        let r = client
            .post(&url)
            .json(&serde_json::json!({"chain": "evm", "address": "0x0"}))
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            res = Some(r);
            break;
        }
    }
    let res = res.expect("the public limit is reached");
    assert_eq!(res.status(), 429);
    assert_secure(res.headers(), "429");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_prepared_by_the_middleware_carry_the_security_headers() {
    // A zero timeout makes `observe` answer 504 itself, outside every handler.
    let api = spawn_api_with(|c| c.request_timeout_secs = 0).await;
    let res = reqwest::Client::new()
        .get(api.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 504);
    assert_secure(res.headers(), "504 from observe");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "TIMEOUT");
}

#[actix_web::test]
async fn a_500_carries_the_security_headers_and_hsts_under_tls() {
    async fn boom() -> Result<HttpResponse, ApiError> {
        Err(ApiError::new(ErrorCode::InternalError, "boom"))
    }
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(HardeningPolicy {
                hsts: true,
                cors_origins: Vec::new(),
            }))
            .wrap(from_fn(haven_api::middleware::observe))
            .wrap(from_fn(hardening::secure_headers))
            .route("/boom", web::get().to(boom)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;
    assert_eq!(res.status(), 500);
    for (name, value) in EXPECTED {
        assert_eq!(res.headers().get(name).unwrap(), value, "{name}");
    }
    assert_eq!(
        res.headers().get("strict-transport-security").unwrap(),
        hardening::HSTS
    );
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["error"], "INTERNAL_ERROR");
    assert!(body["error_id"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflight_is_refused_for_unlisted_origins_and_answered_for_listed_ones() {
    let api = spawn_api_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let client = reqwest::Client::new();
    let url = api.url("/api/v1/addresses/validate");
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
    };

    let res = preflight("https://evil.example").send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        res.headers()
    );
    assert_secure(res.headers(), "refused preflight");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "FORBIDDEN");
    assert!(body["request_id"].is_string(), "{body}");

    let res = preflight("https://app.example").send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let methods = res.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    assert!(
        res.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("content-type")
    );
    assert_secure(res.headers(), "allowed preflight");

    // Actual requests: the listed origin may read the answer, another origin may not.
    let res = client
        .get(api.url("/health"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let res = client
        .get(api.url("/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

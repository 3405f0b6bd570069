//! `GET /metrics`: requests counted by route pattern and status; the business series of the
//! domain crates described and served from the one process-wide recorder.

use haven_api::testing::spawn_api;

/// The value of the `haven_http_requests_total` series with all of `labels`.
fn requests(text: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with("haven_http_requests_total{"))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_counted_by_route_pattern_and_status() {
    let api = spawn_api().await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(
            client
                .get(api.url("/health"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let raw = format!("/no/such/{}", uuid::Uuid::new_v4().simple());
    assert_eq!(
        client.get(api.url(&raw)).send().await.unwrap().status(),
        404
    );
    let res = client
        .post(api.url("/api/v1/addresses/validate"))
        .json(&serde_json::json!({"chain": "evm", "address": "0x0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Another spelling of the same route is counted under the route's pattern.
    let res = client
        .post(api.url("/api/v1/addresses/%76alidate"))
        .json(&serde_json::json!({"chain": "evm", "address": "0x0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = client.get(api.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
    );
    let text = res.text().await.unwrap();
    let health = requests(
        &text,
        &[r#"method="GET""#, r#"route="/health""#, r#"status="200""#],
    );
    assert!(health.is_some_and(|n| n >= 3.0), "{text}");
    let validate = requests(
        &text,
        &[
            r#"method="POST""#,
            r#"route="/api/v1/addresses/validate""#,
            r#"status="200""#,
        ],
    );
    assert!(validate.is_some_and(|n| n >= 2.0), "{text}");
    assert!(!text.contains("%76"), "the spelling is not a label");
    assert!(
        requests(&text, &[r#"route="unmatched""#, r#"status="404""#]).is_some(),
        "{text}"
    );
    assert!(!text.contains(&raw), "raw paths never become labels");
    assert!(
        text.contains("haven_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    for name in [
        "haven_tokens_minted_total",
        "haven_tokens_burned_total",
        "haven_nonce_leases_outstanding",
    ] {
        assert!(text.contains(&format!("# TYPE {name}")), "{name} in {text}");
        assert!(text.contains(&format!("# HELP {name}")), "{name} in {text}");
    }
}

/// The names the api serves are the domain crates' own constants, and what a component
/// running in the api's process records under them shows on the api's `/metrics`: here a
/// fraud engine raising one alert.
#[tokio::test(flavor = "multi_thread")]
async fn business_series_recorded_in_the_process_are_served() {
    use haven_api::metrics::{
        CHAIN_ALERTS, FRAUD_ALERTS, NONCE_LEASES_OUTSTANDING, TOKENS_BURNED, TOKENS_MINTED,
    };
    assert_eq!(
        [
            TOKENS_MINTED,
            TOKENS_BURNED,
            CHAIN_ALERTS,
            FRAUD_ALERTS,
            NONCE_LEASES_OUTSTANDING
        ],
        [
            "haven_tokens_minted_total",
            "haven_tokens_burned_total",
            "haven_chain_alerts_total",
            "haven_fraud_alerts_total",
            "haven_nonce_leases_outstanding",
        ]
    );
    let api = spawn_api().await;
    // A rule of this test only: other tests in the binary cannot move its series.
    let rule = format!("rule_{}", uuid::Uuid::new_v4().simple());
    let rules = haven_fraud::Rules::from_toml(&format!(
        r#"
[[rule]]
id = "{rule}"
kind = "amount_tiers"
currency = "NGN"
minimum = "100"
high = "1000000"
very_high = "5000000"
"#
    ))
    .unwrap();
    let engine = haven_fraud::Engine::new(
        std::sync::Arc::new(rules),
        std::sync::Arc::new(haven_fraud::MemoryWindowStore::new()),
    );
    let event = haven_fraud::Event::from_json(
        br#"{"type":"purchase","event_id":"e1","user":"u1","amount":"5",
             "currency":"NGN","ts":"2026-01-02T10:00:00Z"}"#,
    )
    .unwrap();
    assert_eq!(engine.evaluate(&event).await.unwrap().len(), 1);
    assert!(
        engine.evaluate(&event).await.unwrap().is_empty(),
        "a replay"
    );

    let text = reqwest::get(api.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!("haven_fraud_alerts_total{{rule=\"{rule}\"}} 1");
    assert!(text.lines().any(|l| l == line), "{line} in {text}");
    assert!(text.contains("# HELP haven_fraud_alerts_total "), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metrics_list_the_breakers() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = haven_testkit::TestDb::new().await;
    let config =
        haven_api::config::ApiConfig::for_tests(db.url(), &haven_testkit::TestRedis::server_url());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app = haven_api::Application::build(config, listener).unwrap();
    let name = format!("price-{}", uuid::Uuid::new_v4().simple());
    let breaker = app.breakers().get_or_create(&name).unwrap();
    breaker.force_open().await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let body: serde_json::Value = reqwest::get(format!("{base}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok");
    let listed = body["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} in {body}"));
    assert_eq!(listed["state"], "FORCED_OPEN", "{body}");

    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!("haven_breaker_state{{breaker=\"{name}\"}} 3");
    assert!(text.contains(&line), "{line} in {text}");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

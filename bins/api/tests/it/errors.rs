use haven_api::testing::spawn_api;
use serde_json::Value;

/// Asserts the JSON error body shape and that nothing internal leaks.
fn assert_error_body(body: &Value, code: &str, request_id: &str) {
    for key in [
        "error",
        "message",
        "user_message",
        "error_id",
        "request_id",
        "timestamp",
        "details",
    ] {
        assert!(body.get(key).is_some(), "missing {key} in {body}");
    }
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["request_id"], request_id, "{body}");
    let text = body.to_string();
    for leak in [
        "actix",
        "serde",
        ".rs",
        "/src/",
        "panicked",
        "SELECT",
        "postgres://",
        "thread '",
    ] {
        assert!(!text.contains(leak), "{leak} leaked in {text}");
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, String, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let request_id = res
        .headers()
        .get("x-request-id")
        .expect("every response carries x-request-id")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        res.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some("application/json".to_owned())
    );
    let body: Value = res.json().await.unwrap();
    (status, request_id, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn framework_errors_are_json_bodies_with_the_request_id() {
    let api = spawn_api().await;
    let client = reqwest::Client::new();
    let url = api.url("/api/v1/addresses/validate");

    let (status, id, body) = send(
        client
            .post(&url)
            .header("content-type", "application/json")
            .body("{\"chain\": \"evm\", \"address\": "),
    )
    .await;
    assert_eq!(status, 400);
    assert_error_body(&body, "INVALID_JSON", &id);

    let (status, id, body) = send(client.get(api.url("/no/such/route"))).await;
    assert_eq!(status, 404);
    assert_error_body(&body, "NOT_FOUND", &id);

    let (status, id, body) = send(client.get(&url)).await;
    assert_eq!(status, 405);
    assert_error_body(&body, "METHOD_NOT_ALLOWED", &id);

    let (status, id, body) = send(
        client
            .post(&url)
            .header("content-type", "text/plain")
            .body("{\"chain\":\"evm\",\"address\":\"0x0\"}"),
    )
    .await;
    assert_eq!(status, 415);
    assert_error_body(&body, "UNSUPPORTED_MEDIA_TYPE", &id);

    let big = format!(
        "{{\"chain\":\"evm\",\"address\":\"{}\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let (status, id, body) = send(
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!(status, 413);
    assert_error_body(&body, "PAYLOAD_TOO_LARGE", &id);

    let (status, id, body) = send(
        client
            .post(&url)
            .json(&serde_json::json!({"chain": "", "address": "x"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_error_body(&body, "VALIDATION_ERROR", &id);
    assert!(body["details"]["fields"]["chain"].is_array(), "{body}");

    let (status, id, body) = send(client.post(&url).json(&serde_json::json!({"chain": 7}))).await;
    assert_eq!(status, 400);
    assert_error_body(&body, "VALIDATION_ERROR", &id);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_are_kept_when_well_formed_and_replaced_otherwise() {
    let api = spawn_api().await;
    let client = reqwest::Client::new();
    let res = client
        .get(api.url("/health"))
        .header("x-request-id", "abc-123_x.y:z")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123_x.y:z");

    for bad in ["has space", "quote\"d", &"x".repeat(200)] {
        let res = client
            .get(api.url("/nope"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let echoed = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(echoed, bad);
        assert!(uuid::Uuid::parse_str(&echoed).is_ok(), "{echoed}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["request_id"], echoed.as_str());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_opaque_and_stored_under_the_clients_error_id() {
    // A zero request timeout turns any request that waits on I/O into a 504.
    let api = haven_api::testing::spawn_api_with(|c| c.request_timeout_secs = 0).await;
    let (status, id, body) = send(reqwest::Client::new().get(api.url("/ready"))).await;
    assert_eq!(status, 504);
    assert_error_body(&body, "TIMEOUT", &id);
    assert_eq!(body["details"], serde_json::json!({}));

    let pool = haven_db::connect(api.db.url(), 1).await.unwrap();
    let error_id: uuid::Uuid = body["error_id"].as_str().unwrap().parse().unwrap();
    let (code, message) = haven_db::ErrorLogRepo::new(pool)
        .find(error_id)
        .await
        .unwrap()
        .expect("the 5xx is in error_logs under the error_id the client saw");
    assert_eq!(code, "TIMEOUT");
    assert!(message.contains("no response within"), "{message}");
}

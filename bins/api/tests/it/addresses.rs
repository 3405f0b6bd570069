use haven_api::testing::spawn_api;
use serde_json::{Value, json};

async fn validate(api: &haven_api::testing::TestApi, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(api.url("/api/v1/addresses/validate"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_and_invalid_addresses_are_both_200_with_the_contract() {
    let api = spawn_api().await;
    let (status, body) = validate(
        &api,
        json!({"chain": "eth", "address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["valid"], true);
    assert_eq!(body["chain"], "evm");
    assert_eq!(
        body["normalized"],
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    );
    let expected = serde_json::to_value(
        haven_address::report("eth", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").unwrap(),
    )
    .unwrap();
    assert_eq!(
        body, expected,
        "the API returns exactly the shared contract"
    );

    let (status, body) = validate(
        &api,
        json!({"chain": "evm", "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"valid": false, "chain": "evm", "error": "BAD_CHECKSUM", "message": "checksum mismatch"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_chain_and_malformed_requests_are_400() {
    let api = spawn_api().await;
    let (status, body) = validate(&api, json!({"chain": "dogecoin", "address": "D123"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "UNSUPPORTED_CHAIN");

    let (status, body) = validate(&api, json!({"chain": "evm"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "VALIDATION_ERROR");

    let (status, body) = validate(&api, json!({"chain": "evm", "address": "0x", "extra": 1})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "VALIDATION_ERROR");
}

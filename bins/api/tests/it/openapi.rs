use haven_api::auth::ROUTE_ACCESS;
use haven_api::testing::spawn_api;
use serde_json::Value;

/// `/sessions/{id}` and `/files/{path:.*}` (actix) → `/sessions/{id}`, `/files/{path}` (OpenAPI).
fn openapi_path(actix: &str) -> String {
    let mut out = String::with_capacity(actix.len());
    let mut in_param = false;
    let mut skipping = false;
    for c in actix.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push(c);
            }
            '}' if in_param => {
                in_param = false;
                skipping = false;
                out.push(c);
            }
            ':' if in_param => skipping = true,
            _ if skipping => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn actix_patterns_translate_to_openapi_templates() {
    assert_eq!(openapi_path("/a/{id}"), "/a/{id}");
    assert_eq!(openapi_path("/f/{path:.*}/x"), "/f/{path}/x");
    assert_eq!(openapi_path("/health"), "/health");
}

fn missing_routes(doc: &Value) -> Vec<String> {
    ROUTE_ACCESS
        .iter()
        .filter(|r| doc["paths"][openapi_path(r.path)][r.method.to_ascii_lowercase()].is_null())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn the_spec_is_openapi_3_1_and_covers_every_route_with_the_error_body() {
    let api = spawn_api().await;
    let res = reqwest::get(api.url("/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let doc: Value = serde_json::from_str(&text).expect("the spec is JSON");

    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "openapi version {version}");

    let missing = missing_routes(&doc);
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );

    // The check itself notices a route that is missing.
    let mut trimmed = doc.clone();
    trimmed["paths"]
        .as_object_mut()
        .unwrap()
        .remove("/api/v1/auth/whoami");
    assert_eq!(missing_routes(&trimmed), ["GET /api/v1/auth/whoami"]);

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer_jwt"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());

    // Every declared error response of every operation carries the error body.
    let mut error_responses = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let Ok(code) = status.parse::<u16>() else {
                    continue;
                };
                if code < 400 || (path == "/ready" && code == 503) {
                    continue;
                }
                error_responses += 1;
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
    assert!(error_responses > 0);

    // Authenticated routes declare their security; public ones declare none.
    for r in ROUTE_ACCESS {
        let op = &doc["paths"][openapi_path(r.path)][r.method.to_ascii_lowercase()];
        let public = r.access == haven_api::auth::Access::Public;
        assert_eq!(
            op["security"].is_null(),
            public,
            "{} {}: security {}",
            r.method,
            r.path,
            op["security"]
        );
    }
    api.shutdown().await.unwrap();
}

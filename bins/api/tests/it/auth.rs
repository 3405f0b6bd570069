use base64::Engine as _;
use chrono::Utc;
use haven_api::auth::{Access, ROUTE_ACCESS};
use haven_api::testing::{spawn_api, spawn_api_with};
use haven_auth::{ApiKey, Claims, Jwt, JwtConfig, KeyEnv, Keyring, Role, SigningKey, TokenType};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use crate::support::{
    Client, PASSWORD, audit_actions, create_passwordless_user, create_user, db_role, dev_jwt,
    login, pool, refresh,
};

#[tokio::test(flavor = "multi_thread")]
async fn login_issues_tokens_and_audits_success_and_failure() {
    let api = spawn_api().await;
    create_user(&api, "ops@example.com", haven_db::Role::Operator).await;
    let anonymous = Client::anonymous(&api);

    let (status, body) = anonymous
        .post(
            "/api/v1/auth/login",
            json!({"email": "ops@example.com", "password": "wrong password!!"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "UNAUTHORIZED");
    let (status, _) = anonymous
        .post(
            "/api/v1/auth/login",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "unknown users look the same"
    );

    let (ops, tokens) = login(&api, "OPS@example.com").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let (status, me) = ops.whoami().await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["role"], "operator");

    let actions = audit_actions(&api).await;
    let failed = actions
        .iter()
        .filter(|(a, _)| a == "auth.login_failed")
        .count();
    assert_eq!(failed, 2, "{actions:?}");
    assert!(
        actions.iter().any(|(a, _)| a == "auth.login"),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_attacks_over_http_are_401() {
    let api = spawn_api().await;
    create_user(&api, "admin@example.com", haven_db::Role::Admin).await;
    let (_, tokens) = login(&api, "admin@example.com").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let jwt = dev_jwt("k1");
    let valid = jwt.verify(&access, TokenType::Access).unwrap();

    let (status, _) = Client::bearer(&api, &access).whoami().await;
    assert_eq!(status, StatusCode::OK, "the control token works");

    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims_part = access.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{claims_part}.",
        b64.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#)
    );
    let now = Utc::now().timestamp();
    let with = |f: &dyn Fn(&mut Claims)| {
        let mut claims = valid.clone();
        claims.jti = Uuid::new_v4();
        f(&mut claims);
        jwt.sign(&claims).unwrap()
    };
    let attacks: Vec<(&str, String, &str)> = vec![
        ("alg none", none, "UNAUTHORIZED"),
        (
            "expired",
            with(&|c| {
                c.iat = now - 3600;
                c.nbf = now - 3600;
                c.exp = now - 600;
            }),
            "TOKEN_EXPIRED",
        ),
        ("future nbf", with(&|c| c.nbf = now + 3600), "UNAUTHORIZED"),
        (
            "wrong aud",
            with(&|c| c.aud = "other-api".into()),
            "UNAUTHORIZED",
        ),
        (
            "wrong iss",
            with(&|c| c.iss = "evil".into()),
            "UNAUTHORIZED",
        ),
        ("refresh as access", refresh.clone(), "UNAUTHORIZED"),
        (
            "unknown kid",
            dev_jwt("k-unknown")
                .issue_access(valid.sub, Role::Admin, Utc::now())
                .unwrap()
                .into_parts()
                .0,
            "UNAUTHORIZED",
        ),
        (
            "foreign key",
            Jwt::new(
                JwtConfig::new("haven", "haven-api"),
                Keyring::new(SigningKey::hs256("k1", &[7u8; 32]).unwrap()),
            )
            .issue_access(valid.sub, Role::Admin, Utc::now())
            .unwrap()
            .into_parts()
            .0,
            "UNAUTHORIZED",
        ),
        ("garbage", "not.a.jwt".into(), "UNAUTHORIZED"),
    ];
    for (name, token, code) in attacks {
        let (status, body) = Client::bearer(&api, &token).whoami().await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert_eq!(body["error"], code, "{name}: {body}");
        assert!(
            body["request_id"].is_string(),
            "{name}: the core error body"
        );
    }
    let (status, _) = Client::anonymous(&api).whoami().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no credentials");
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let api = spawn_api().await;
    create_user(&api, "viewer@example.com", haven_db::Role::Viewer).await;
    let (_, first) = login(&api, "viewer@example.com").await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = refresh(&api, &r1).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    assert_eq!(second["session_id"], first["session_id"]);
    // An access token is not a refresh token.
    let (status, _) = refresh(&api, &second["access_token"]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = refresh(&api, &r1).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "reuse: {body}");
    let (status, _) = refresh(&api, &r2).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the whole family is revoked"
    );

    let actions = audit_actions(&api).await;
    assert!(
        actions
            .iter()
            .any(|(a, s)| a == "auth.refresh_reuse_detected" && s == "HIGH"),
        "{actions:?}"
    );
    let (status, sessions) = Client::bearer(&api, second["access_token"].as_str().unwrap())
        .get("/api/v1/auth/sessions")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sessions,
        json!([]),
        "the revoked session is gone from the list"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_sessions_and_logout_everywhere() {
    let api = spawn_api().await;
    create_user(&api, "a@example.com", haven_db::Role::Viewer).await;
    create_user(&api, "b@example.com", haven_db::Role::Viewer).await;
    let (_, a1) = login(&api, "a@example.com").await;
    let (auth_a2, a2) = login(&api, "a@example.com").await;
    let (auth_b, _) = login(&api, "b@example.com").await;

    let (status, list) = auth_a2.get("/api/v1/auth/sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");

    // Another user's session answers 404.
    let a1_session_path = format!(
        "/api/v1/auth/sessions/{}",
        a1["session_id"].as_str().unwrap()
    );
    let (status, body) = auth_b.delete(&a1_session_path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = auth_a2.delete(&a1_session_path).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = refresh(&api, &a1["refresh_token"]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked session cannot refresh"
    );

    // Logout denies the access token.
    let (status, _) = auth_b.post_empty("/api/v1/auth/logout").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = auth_b.whoami().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "logged-out token");

    // Log out everywhere: the access token and the remaining session end.
    let (status, _) = auth_a2.post_empty("/api/v1/auth/logout-all").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = auth_a2.whoami().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = refresh(&api, &a2["refresh_token"]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_stored_hashed_usable_and_revocable() {
    let api = spawn_api().await;
    let admin = create_user(&api, "admin@example.com", haven_db::Role::Admin).await;
    let other = create_user(&api, "admin2@example.com", haven_db::Role::Admin).await;
    let auth = Client::for_user(&api, admin, Role::Admin);
    let other_auth = Client::for_user(&api, other, Role::Admin);

    let (status, body) = auth
        .post(
            "/api/v1/api-keys",
            json!({"name": "ci", "scopes": ["nope:read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown scope: {body}");

    let (status, created) = auth
        .post(
            "/api/v1/api-keys",
            json!({"name": "ci", "scopes": ["transactions:read", "addresses:read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("hvn_test_"), "{key}");
    ApiKey::check_format(&key).unwrap();
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();

    // The row holds the keyed hash and a short prefix, never the key.
    let rows = haven_db::ApiKeyRepo::new(pool(&api).await)
        .list_by_owner(admin)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.key_hash.len(), 32);
    assert!(
        !row.key_hash
            .windows(8)
            .any(|w| key.as_bytes().windows(8).any(|k| k == w))
    );
    let random = key.split('_').nth(2).unwrap();
    assert!(
        !format!("{row:?}").contains(random),
        "no plaintext in the row"
    );
    assert!(key.starts_with(&row.display_prefix) && row.display_prefix.len() < 20);

    // The list shows no key and no hash.
    let (status, list) = auth.get("/api/v1/api-keys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.to_string().contains(random));
    assert!(list[0].get("key").is_none() && list[0].get("key_hash").is_none());

    // The key works, through its scopes.
    let key_auth = Client::api_key(&api, &key);
    let (status, me) = key_auth.whoami().await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["kind"], "service");
    assert_eq!(me["scopes"], json!(["addresses:read", "transactions:read"]));
    let (status, _) = key_auth.get("/api/v1/api-keys").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a key without api_keys:manage"
    );

    // Another owner's key answers 404.
    let (status, _) = other_auth.delete(&format!("/api/v1/api-keys/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = auth.delete(&format!("/api/v1/api-keys/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = key_auth.whoami().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked: {body}");
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );

    let actions = audit_actions(&api).await;
    assert!(
        actions.iter().any(|(a, _)| a == "api_key.create"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|(a, _)| a == "api_key.revoke"),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_checksum_is_refused_without_touching_the_database() {
    // The database is unreachable: anything that queries it answers 503.
    let api = spawn_api_with(|c| {
        c.common.database_url = "postgres://haven:haven@127.0.0.1:1/unreachable"
            .to_owned()
            .into();
    })
    .await;
    let good = ApiKey::generate(KeyEnv::Test).unwrap();
    let good = good.expose_secret().to_owned();
    let last = good.chars().last().unwrap();
    let typo = format!(
        "{}{}",
        &good[..good.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );

    let (status, body) = Client::api_key(&api, &typo).whoami().await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "UNAUTHORIZED");
    assert!(
        body["message"].as_str().unwrap().contains("checksum"),
        "{body}"
    );

    // The well-formed key does go to the database, which is down.
    let (status, body) = Client::api_key(&api, &good).whoami().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

/// A2: every route of the table, for every role, answers as the permission table says.
#[tokio::test(flavor = "multi_thread")]
async fn role_and_scope_by_route_matrix_covers_every_registered_route() {
    // One inbound webhook source, so that `/webhooks/{source}` names a registered source.
    let api = spawn_api_with(|c| {
        c.webhook_sources = haven_api::config::webhooks::WebhookSources::parse(
            r#"{"matrix":{"scheme":"aurora","secrets":["matrix_secret_of_32_characters!!"]},
                "aurora":{"scheme":"aurora","secrets":["matrix_secret_of_32_characters!!"]},
                "tribe":{"scheme":"tribe","secrets":["matrix_secret_of_32_characters!!"]}}"#,
        )
        .unwrap();
    })
    .await;
    let jwt = dev_jwt("k1");
    let anonymous = Client::anonymous(&api);
    // Service principals: one API key per permission, holding only that scope.
    let owner = create_user(&api, "keys@example.com", haven_db::Role::Admin).await;
    let owner_auth = Client::for_user(&api, owner, Role::Admin);
    let mut keys = std::collections::BTreeMap::new();
    for permission in haven_auth::Permission::ALL {
        let (status, created) = owner_auth
            .post(
                "/api/v1/api-keys",
                json!({"name": permission.as_scope(), "scopes": [permission.as_scope()]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        keys.insert(*permission, created["key"].as_str().unwrap().to_owned());
    }
    for r in ROUTE_ACCESS {
        let path = r
            .path
            .replace("{id}", &Uuid::new_v4().to_string())
            .replace("{tx_id}", "matrix-tx")
            .replace("{source}", "matrix")
            .replace("{event}", "booking-created");
        let method = Method::from_bytes(r.method.as_bytes()).unwrap();
        let body = (r.method != "GET" && r.method != "DELETE").then(|| json!({}));

        let (status, _) = anonymous.send(method.clone(), &path, body.clone()).await;
        assert_ne!(
            status,
            StatusCode::NOT_FOUND,
            "{} {} is registered",
            r.method,
            r.path
        );
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{} {}",
            r.method,
            r.path
        );
        if r.access == Access::Public {
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{} {} is public: {status}",
                r.method,
                r.path
            );
        } else {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {} anonymous",
                r.method,
                r.path
            );
        }

        for role in Role::ALL {
            // A fresh user per request: logout routes must not spoil later requests.
            let user = create_passwordless_user(&api, db_role(role)).await;
            let token = jwt.issue_access(user, role, Utc::now()).unwrap();
            let allowed = match r.access {
                Access::Public | Access::Authenticated | Access::User => true,
                Access::Permission(p) | Access::UserPermission(p) => role.allows(p),
                Access::Guardian => false,
            };
            let (status, body) = Client::bearer(&api, token.as_str())
                .send(method.clone(), &path, body.clone())
                .await;
            if r.access == Access::Guardian {
                // a user token is not of the guardian audience: not authenticated at all
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{role} on {}", r.name());
            } else if allowed {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{role} on {} {}: {status} {body}",
                    r.method,
                    r.path
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} on {} {}",
                    r.method,
                    r.path
                );
                assert_eq!(body["error"], "FORBIDDEN");
            }
        }

        // Each scope against the route: only the route's own permission opens it; a route
        // for logged-in users refuses every key; any key passes an authenticated route.
        for (permission, key) in &keys {
            let allowed = match r.access {
                Access::Public | Access::Authenticated => true,
                Access::User | Access::UserPermission(_) | Access::Guardian => false,
                Access::Permission(p) => p == *permission,
            };
            let (status, body) = Client::api_key(&api, key)
                .send(method.clone(), &path, body.clone())
                .await;
            if r.access == Access::Guardian {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "key on {}", r.name());
            } else if allowed {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "key scoped {permission} on {} {}: {status} {body}",
                    r.method,
                    r.path
                );
            } else {
                assert_eq!(
                    (status, body["error"].as_str()),
                    (StatusCode::FORBIDDEN, Some("FORBIDDEN")),
                    "key scoped {permission} on {} {}: {body}",
                    r.method,
                    r.path
                );
            }
        }
    }
    // A declared path with an undeclared method is 405, never run.
    let (status, _) = anonymous.put("/api/v1/api-keys", json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// A1: with an Ed25519 deployment, an HS256 token "signed" with the public key is refused.
#[tokio::test(flavor = "multi_thread")]
async fn hs256_signed_with_the_public_key_is_401() {
    let pkcs8 =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    let api = spawn_api_with(|c| {
        c.auth.jwt_key = haven_api::config::auth::JwtKeyConfig::Ed25519(encoded.into());
    })
    .await;
    let signing = SigningKey::ed25519_from_pkcs8("k1", pkcs8.as_ref()).unwrap();
    let public = signing.verification_key().public_key().unwrap().to_vec();
    let config = JwtConfig::new("haven", "haven-api");
    let user = create_passwordless_user(&api, haven_db::Role::Admin).await;
    let genuine = Jwt::new(config.clone(), Keyring::new(signing))
        .issue_access(user, Role::Admin, Utc::now())
        .unwrap();
    let forged = Jwt::new(
        config,
        Keyring::new(SigningKey::hs256("k1", &public).unwrap()),
    )
    .issue_access(user, Role::Admin, Utc::now())
    .unwrap();

    for (token, expected) in [
        (genuine.as_str(), StatusCode::OK),
        (forged.as_str(), StatusCode::UNAUTHORIZED),
    ] {
        let (status, body) = Client::bearer(&api, token).whoami().await;
        assert_eq!(status, expected, "{body}");
    }
}

/// A NUL character (which Postgres `TEXT` cannot store) is a field error, never a 500.
#[tokio::test(flavor = "multi_thread")]
async fn a_nul_character_in_stored_text_is_a_400() {
    let api = spawn_api().await;
    for body in [
        json!({"email": "a\u{0}@example.com", "password": "whatever-password"}),
        json!({"email": "a@example.com", "password": "pw\u{0}", "device": "x"}),
        json!({"email": "a@example.com", "password": "pw", "device": "phone\u{0}"}),
    ] {
        let (status, error) = Client::anonymous(&api)
            .post("/api/v1/auth/login", body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["error"], "VALIDATION_ERROR", "{error}");
    }
}

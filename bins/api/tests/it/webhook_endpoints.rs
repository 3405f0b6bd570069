//! The admin routes of outbound webhook endpoints and dead letters over real Postgres: each
//! change audited in its transaction, the signing secret shown once, rotation keeping the old
//! secret signing until the time given, deletes refused while messages are undelivered,
//! replays of what is not dead refused, and every route refused to operators and viewers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use haven_api::testing::{TestApi, spawn_api};
use haven_auth::Role;
use haven_core::audit::Severity;
use haven_db::PgWebhookOutbox;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Client, audit_rows, client_as, pool};

const ENDPOINTS: &str = "/api/v1/admin/webhooks/endpoints";
const DEAD: &str = "/api/v1/admin/webhooks/dead-letters";

async fn create(admin: &Client<'_>, url: &str) -> (String, String) {
    let (status, body) = admin
        .post(ENDPOINTS, json!({"url": url, "description": "partner"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["endpoint"]["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn outbox(api: &TestApi) -> PgWebhookOutbox {
    PgWebhookOutbox::new(pool(api).await)
}

async fn enqueue(api: &TestApi, endpoint: &str) -> String {
    outbox(api)
        .await
        .enqueue(
            endpoint.parse().unwrap(),
            "member.updated",
            &json!({"n": 1}),
        )
        .await
        .unwrap()
}

/// Dead-letters every pending attempt of `message`, as the worker does after the last try.
async fn kill(api: &TestApi, message: &str) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(api.db.url()).await.unwrap();
    diesel::sql_query(
        "UPDATE webhook_deliveries SET status = 'dead', attempted_at = now(), \
         response_status = 500 WHERE message_id = $1 AND status = 'pending'",
    )
    .bind::<diesel::sql_types::Text, _>(message)
    .execute(&mut conn)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_creates_lists_shows_updates_and_deletes_an_endpoint() {
    let api = spawn_api().await;
    let admin = client_as(&api, Role::Admin).await;
    let (id, secret) = create(&admin, "https://hooks.example.com/haven").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let created = audit_rows(&api, "webhook.endpoint.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].event.target,
        Some(format!("webhook_endpoint:{id}"))
    );
    assert_eq!(created[0].event.details["outcome"], "applied");
    assert!(created[0].event.actor.starts_with("user:"));

    let (status, page) = admin.get(&format!("{ENDPOINTS}?limit=10")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(page["endpoints"][0]["id"], id.as_str());
    assert!(page["next"].is_null());
    let (status, one) = admin.get(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["url"], "https://hooks.example.com/haven");
    assert_eq!(one["enabled"], true);
    assert_eq!(one["secrets"].as_array().unwrap().len(), 1);
    assert!(one["secrets"][0]["expires_at"].is_null());
    // the secret is shown once: never in a listing, a read or an audit row
    for text in [page.to_string(), one.to_string()] {
        assert!(!text.contains(&secret));
    }
    let all = haven_db::PgAuditLog::new(pool(&api).await)
        .page(0, 10_000)
        .await
        .unwrap();
    assert!(
        all.iter()
            .all(|r| !r.event.details.to_string().contains(&secret))
    );

    let path = format!("{ENDPOINTS}/{id}");
    let (status, updated) = admin
        .send(
            Method::PATCH,
            &path,
            Some(json!({"url": "https://other.example.com/h", "enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["url"], "https://other.example.com/h");
    assert_eq!(updated["enabled"], false);
    assert!(updated["disabled_at"].is_string());
    let rows = audit_rows(&api, "webhook.endpoint.update").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event.details["changed"]["enabled"]["to"], false);
    assert_eq!(
        rows[0].event.details["changed"]["url"]["from"],
        "https://hooks.example.com/haven"
    );
    let (status, enabled) = admin
        .send(Method::PATCH, &path, Some(json!({"enabled": true})))
        .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["enabled"], true);

    let (status, deleted) = admin.delete(&path).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["messages_deleted"], 0);
    let rows = audit_rows(&api, "webhook.endpoint.delete").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event.severity, Severity::High);
    let (status, _) = admin.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_endpoint_routes_refuse_operators_and_viewers() {
    let api = spawn_api().await;
    let admin = client_as(&api, Role::Admin).await;
    let (id, _) = create(&admin, "https://hooks.example.com/x").await;
    let message = enqueue(&api, &id).await;
    kill(&api, &message).await;
    let requests: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, ENDPOINTS.into(), None),
        (
            Method::POST,
            ENDPOINTS.into(),
            Some(json!({"url": "https://a.example.com"})),
        ),
        (Method::GET, format!("{ENDPOINTS}/{id}"), None),
        (
            Method::PATCH,
            format!("{ENDPOINTS}/{id}"),
            Some(json!({"enabled": false})),
        ),
        (Method::DELETE, format!("{ENDPOINTS}/{id}?force=true"), None),
        (
            Method::POST,
            format!("{ENDPOINTS}/{id}/rotate-secret"),
            Some(json!({"old_secret_valid_until": Utc::now() + chrono::Duration::hours(1)})),
        ),
        (Method::GET, DEAD.into(), None),
        (
            Method::POST,
            format!("{DEAD}/{message}/replay"),
            Some(json!({})),
        ),
    ];
    for role in [Role::Operator, Role::Viewer] {
        let client = client_as(&api, role).await;
        for (method, path, body) in &requests {
            let (status, body) = client.send(method.clone(), path, body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role} {method} {path}");
            assert_eq!(body["error"], "FORBIDDEN");
        }
    }
    // nothing changed
    let (_, one) = admin.get(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(one["enabled"], true);
    assert_eq!(one["dead_letters"], 1);
    assert_eq!(one["secrets"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_endpoint_input_is_validated_with_the_problem_body() {
    let api = spawn_api().await;
    let admin = client_as(&api, Role::Admin).await;
    for (url, reason) in [
        ("http://hooks.example.com/x", "https is required"),
        (
            "https://127.0.0.1/x",
            "address is not public and not allow-listed",
        ),
        (
            "https://user:pw@hooks.example.com/x",
            "URL contains credentials",
        ),
        ("ftp://hooks.example.com/x", "not an absolute http(s) URL"),
    ] {
        let (status, body) = admin.post(ENDPOINTS, json!({"url": url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error"], "VALIDATION_ERROR");
        assert_eq!(body["details"]["field"], "url");
        assert_eq!(body["details"]["reason"], reason, "{url}");
    }
    let (status, body) = admin.post(ENDPOINTS, json!({"description": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(audit_rows(&api, "webhook.endpoint.create").await.is_empty());

    let (id, _) = create(&admin, "https://hooks.example.com/x").await;
    let path = format!("{ENDPOINTS}/{id}");
    let (status, body) = admin.send(Method::PATCH, &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "VALIDATION_ERROR");
    let (status, body) = admin
        .send(
            Method::PATCH,
            &path,
            Some(json!({"url": "http://x.example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(audit_rows(&api, "webhook.endpoint.update").await.is_empty());
    let unknown = format!("{ENDPOINTS}/0191e8a0-0000-7000-8000-000000000001");
    let (status, body) = admin.get(&unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "NOT_FOUND");
    let (status, body) = admin.get(&format!("{ENDPOINTS}/not-a-uuid")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = admin.delete(&unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = admin.get(&format!("{ENDPOINTS}?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "INVALID_QUERY");

    // rotation: the old secret's end must be in the future, at most 7 days ahead
    let rotate = format!("{path}/rotate-secret");
    for (until, reason) in [
        (Utc::now() - chrono::Duration::minutes(1), "not_in_future"),
        (Utc::now() + chrono::Duration::days(8), "too_far"),
    ] {
        let (status, body) = admin
            .post(&rotate, json!({"old_secret_valid_until": until}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"], "INVALID_PAYLOAD");
        assert_eq!(body["details"]["field"], "old_secret_valid_until");
        assert_eq!(body["details"]["reason"], reason);
    }
    let (status, body) = admin
        .post(&rotate, json!({"old_secret_valid_until": "tomorrow"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = admin
        .post(
            &format!("{unknown}/rotate-secret"),
            json!({"old_secret_valid_until": Utc::now() + chrono::Duration::hours(1)}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        audit_rows(&api, "webhook.endpoint.rotate_secret")
            .await
            .is_empty()
    );
    let (_, one) = admin.get(&path).await;
    assert_eq!(one["secrets"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_keeps_the_old_secret_signing_until_the_time_given() {
    use haven_webhooks::{Scheme, Secret, SignedParts, Tolerance, sign_header, verify};
    let api = spawn_api().await;
    let admin = client_as(&api, Role::Admin).await;
    let (id, old_secret) = create(&admin, "https://hooks.example.com/r").await;
    enqueue(&api, &id).await;

    let until = Utc::now() + chrono::Duration::seconds(4);
    let (status, rotated) = admin
        .post(
            &format!("{ENDPOINTS}/{id}/rotate-secret"),
            json!({"old_secret_valid_until": until}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != old_secret);
    assert_eq!(rotated["retired_secrets"], 1);
    let answered: DateTime<Utc> = rotated["old_secret_valid_until"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (answered - until).num_milliseconds().abs() < 1,
        "{answered} {until}"
    );

    let (_, one) = admin.get(&format!("{ENDPOINTS}/{id}")).await;
    let secrets = one["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2, "{one}");
    assert!(secrets[0]["expires_at"].is_null(), "the new one signs on");
    let expires: DateTime<Utc> = secrets[1]["expires_at"].as_str().unwrap().parse().unwrap();
    assert!((expires - until).num_milliseconds().abs() < 1);
    assert!(!one.to_string().contains(&new_secret));

    // the worker signs with both until then: the old secret still verifies
    let claimed = outbox(&api)
        .await
        .claim_due(10, Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let keys = &claimed[0].secrets;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].expiry(), None);
    assert_eq!(keys[1].expiry(), Some(until.timestamp()));
    let now = Utc::now().timestamp();
    let body = b"{}";
    let header = sign_header(Scheme::Standard, &keys[1], Some("msg_1"), now, body).unwrap();
    let old = Secret::standard(&old_secret).unwrap();
    let parts = SignedParts {
        id: Some("msg_1"),
        timestamp: Some(&now.to_string()),
        signature: &header,
    };
    assert!(
        verify(
            Scheme::Standard,
            &[old],
            parts,
            body,
            now,
            Tolerance::default()
        )
        .is_ok()
    );

    // after it, only the new secret signs
    let wait = (until - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(600);
    tokio::time::sleep(wait).await;
    let claimed = outbox(&api)
        .await
        .claim_due(10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "the lease ended");
    assert_eq!(claimed[0].secrets.len(), 1);
    assert_eq!(claimed[0].secrets[0].expiry(), None);

    let rows = audit_rows(&api, "webhook.endpoint.rotate_secret").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event.severity, Severity::High);
    assert_eq!(rows[0].event.details["retired_secrets"], 1);
    assert!(!rows[0].event.details.to_string().contains(&new_secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_is_refused_while_messages_are_undelivered_unless_forced() {
    let api = spawn_api().await;
    let admin = client_as(&api, Role::Admin).await;
    let (id, _) = create(&admin, "https://hooks.example.com/d").await;
    enqueue(&api, &id).await;
    let dead = enqueue(&api, &id).await;
    kill(&api, &dead).await;
    let path = format!("{ENDPOINTS}/{id}");

    let (status, body) = admin.delete(&path).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "CONFLICT");
    assert_eq!(body["details"]["pending"], 1);
    assert_eq!(body["details"]["dead"], 1);
    let rows = audit_rows(&api, "webhook.endpoint.delete").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event.details["outcome"], "refused");
    let (status, still) = admin.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still["pending_deliveries"], 1);
    assert_eq!(still["dead_letters"], 1);

    let (status, body) = admin.delete(&format!("{path}?force=true")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["forced"], true);
    assert_eq!(body["messages_deleted"], 2);
    assert_eq!(body["pending_dropped"], 1);
    assert_eq!(body["dead_dropped"], 1);
    let rows = audit_rows(&api, "webhook.endpoint.delete").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].event.details["outcome"], "applied");
    assert_eq!(rows[1].event.details["forced"], true);
    assert_eq!(rows[1].event.severity, Severity::High);
    let (status, _) = admin.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_by_endpoint_and_replayed_once() {
    let api = spawn_api().await;
    let admin = client_as(&api, Role::Admin).await;
    let (a, _) = create(&admin, "https://a.example.com/h").await;
    let (b, _) = create(&admin, "https://b.example.com/h").await;
    let mut dead = Vec::new();
    for endpoint in [&a, &a, &b] {
        let message = enqueue(&api, endpoint).await;
        kill(&api, &message).await;
        dead.push(message);
    }
    let pending = enqueue(&api, &a).await;

    let (status, page) = admin.get(&format!("{DEAD}?endpoint={a}&limit=1")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["dead_letters"].as_array().unwrap().len(), 1);
    assert_eq!(page["dead_letters"][0]["message_id"], dead[0].as_str());
    assert_eq!(page["dead_letters"][0]["last_status"], 500);
    let next = page["next"].as_i64().unwrap();
    let (_, page) = admin
        .get(&format!("{DEAD}?endpoint={a}&limit=1&after={next}"))
        .await;
    assert_eq!(page["dead_letters"][0]["message_id"], dead[1].as_str());
    let (_, all) = admin.get(DEAD).await;
    assert_eq!(all["dead_letters"].as_array().unwrap().len(), 3);
    assert!(all["next"].is_null());

    let replay = |id: &str| format!("{DEAD}/{id}/replay");
    let (status, body) = admin.post_empty(&replay(&dead[0])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["queued"], true);
    let attempts = outbox(&api).await.attempts(&dead[0]).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1].status, "pending");
    let rows = audit_rows(&api, "webhook.dead_letter.replay").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].event.target,
        Some(format!("webhook_message:{}", dead[0]))
    );

    // replayed already, pending, unknown: not dead
    for id in [dead[0].as_str(), pending.as_str(), "msg_unknown"] {
        let (status, body) = admin.post_empty(&replay(id)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {body}");
        assert_eq!(body["error"], "NOT_FOUND");
    }
    assert_eq!(
        audit_rows(&api, "webhook.dead_letter.replay").await.len(),
        1
    );
    let (_, all) = admin.get(DEAD).await;
    assert_eq!(all["dead_letters"].as_array().unwrap().len(), 2);

    // the delivery history: every attempt, newest first, by endpoint
    let deliveries = "/api/v1/admin/webhooks/deliveries";
    let (status, page) = admin.get(&format!("{deliveries}?endpoint={a}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let rows: Vec<(&str, &str, i64)> = page["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["message_id"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
                d["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (dead[0].as_str(), "pending", 2),
            (pending.as_str(), "pending", 1),
            (dead[1].as_str(), "dead", 1),
            (dead[0].as_str(), "dead", 1),
        ]
    );
    assert_eq!(page["deliveries"][2]["response_status"], 500);
    assert_eq!(page["deliveries"][2]["event_type"], "member.updated");
    let (_, first) = admin.get(&format!("{deliveries}?limit=2")).await;
    assert_eq!(first["deliveries"].as_array().unwrap().len(), 2);
    let next = first["next"].as_i64().unwrap();
    let (_, rest) = admin
        .get(&format!("{deliveries}?limit=10&before={next}"))
        .await;
    assert_eq!(rest["deliveries"].as_array().unwrap().len(), 3, "5 in all");
    assert!(rest["next"].is_null());
}

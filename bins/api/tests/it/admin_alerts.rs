//! `GET /api/v1/admin/alerts` with its filters (event type, severity, state, member, time
//! range, text search): each narrows the list, bad values get an `INVALID_QUERY` problem
//! naming the parameter, and the route keeps to its permission.
//! (`alerts.rs` holds the Prometheus alerting rules' tests.)

use chrono::{DateTime, SecondsFormat, Utc};
use haven_api::testing::{TestApi, spawn_api};
use haven_auth::Role;
use haven_fraud::{Alert, AlertStore, ReviewState, Severity, StateChange};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Client, create_passwordless_user, db_role, pool};

fn alert(user: Option<&str>, event_type: &str, severity: Severity, minutes_ago: i64) -> Alert {
    let at = Utc::now() - chrono::Duration::minutes(minutes_ago);
    let subject = user.unwrap_or("chain:1");
    Alert {
        id: Uuid::now_v7(),
        rule_id: format!("{event_type}_rule"),
        event_type: event_type.into(),
        severity,
        subject: subject.into(),
        user: user.map(str::to_owned),
        description: format!("{event_type} for {subject}"),
        metadata: json!({"count": minutes_ago}),
        event_id: format!("ev-{}", Uuid::new_v4()),
        event_ts: at,
        created_at: at,
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn client_as(api: &TestApi, role: Role) -> Client<'_> {
    let user = create_passwordless_user(api, db_role(role)).await;
    Client::for_user(api, user, role)
}

/// The ids listed for `query`, asserting 200.
async fn listed(client: &Client<'_>, query: &str) -> Vec<String> {
    let (status, body) = client.get(&format!("/api/v1/admin/alerts?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Four alerts, oldest first: alice velocity high (acknowledged), alice amount_tier low,
/// bob velocity critical ("100% of Limit_X"), and a chain gas_spike medium with no member.
async fn seed(api: &TestApi) -> [Alert; 4] {
    let store = haven_db::PgAlertStore::new(pool(api).await);
    let a1 = alert(Some("alice"), "velocity", Severity::High, 50);
    let a2 = alert(Some("alice"), "amount_tier", Severity::Low, 40);
    let mut a3 = alert(Some("bob"), "velocity", Severity::Critical, 30);
    a3.description = "100% of Limit_X reached".into();
    let a4 = alert(None, "gas_spike", Severity::Medium, 20);
    for a in [&a1, &a2, &a3, &a4] {
        assert!(store.insert(a).await.unwrap());
    }
    let change = StateChange {
        alert_id: a1.id,
        from: ReviewState::Open,
        to: ReviewState::Acknowledged,
        reviewer: "user:ops".into(),
        at: Utc::now(),
        note: None,
    };
    store.change_state(&change).await.unwrap();
    [a1, a2, a3, a4]
}

#[tokio::test(flavor = "multi_thread")]
async fn each_alert_filter_narrows_the_list() {
    let api = spawn_api().await;
    let [a1, a2, a3, a4] = seed(&api).await;
    let ids = |alerts: &[&Alert]| alerts.iter().map(|a| a.id.to_string()).collect::<Vec<_>>();
    let client = client_as(&api, Role::Viewer).await;

    let since_a2 = format!("since={}", time(a2.created_at));
    let until_a4 = format!("until={}", time(a4.created_at));
    for (query, expected) in [
        ("", ids(&[&a4, &a3, &a2, &a1])),
        ("event_type=velocity", ids(&[&a3, &a1])),
        ("severity=critical", ids(&[&a3])),
        ("severity=HIGH", ids(&[&a1])),
        ("state=acknowledged", ids(&[&a1])),
        ("state=open", ids(&[&a4, &a3, &a2])),
        ("member=alice", ids(&[&a2, &a1])),
        ("member=nobody", vec![]),
        (&since_a2, ids(&[&a4, &a3, &a2])),
        (&until_a4, ids(&[&a3, &a2, &a1])),
        (&format!("{since_a2}&{until_a4}"), ids(&[&a3, &a2])),
        ("q=LIMIT_x", ids(&[&a3])),
        ("q=%25", ids(&[&a3])),
        ("q=t_x", ids(&[&a3])),
        ("q=l_m", vec![]),
        ("q=ALICE", ids(&[&a2, &a1])),
        ("q=gas_spike_rule", ids(&[&a4])),
        (
            "member=bob&severity=critical&event_type=velocity&q=limit",
            ids(&[&a3]),
        ),
        ("member=bob&severity=low", vec![]),
        ("limit=2", ids(&[&a4, &a3])),
        (
            &format!("limit=2&before={}", time(a3.created_at)),
            ids(&[&a2, &a1]),
        ),
        (
            &format!("{until_a4}&before={}", time(a2.created_at)),
            ids(&[&a1]),
        ),
    ] {
        assert_eq!(listed(&client, query).await, expected, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_alert_filters_get_a_problem_naming_the_parameter() {
    let api = spawn_api().await;
    let client = client_as(&api, Role::Operator).await;
    let long = "x".repeat(201);
    let q_long = format!("q={long}");
    for (query, field) in [
        ("severity=urgent", Some("severity")),
        ("state=closed", Some("state")),
        ("since=yesterday", Some("since")),
        ("until=2026-13-01T00:00:00Z", Some("until")),
        ("before=1700000000", Some("before")),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            Some("until"),
        ),
        (&q_long, Some("q")),
        ("q=a%00b", Some("q")),
        ("limit=0", Some("limit")),
        ("colour=red", None),
    ] {
        let (status, body) = client.get(&format!("/api/v1/admin/alerts?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"], "INVALID_QUERY", "{query}: {body}");
        assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{body}");
        if let Some(field) = field {
            assert_eq!(body["details"]["field"], field, "{query}: {body}");
        }
    }
    let (_, body) = client.get("/api/v1/admin/alerts?severity=urgent").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("low, medium, high or critical"),
        "{body}"
    );
    // 200 characters is the most a search may be
    let (status, body) = client
        .get(&format!("/api/v1/admin/alerts?q={}", "x".repeat(200)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, Value::Array(vec![]));
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_alerts_needs_the_read_scope_and_reviewing_them_a_reviewer() {
    let api = spawn_api().await;
    let [a1, ..] = seed(&api).await;
    let admin = client_as(&api, Role::Admin).await;
    let (status, created) = admin
        .post(
            "/api/v1/api-keys",
            json!({"name": "ops", "scopes": ["transactions:read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = Client::api_key(&api, created["key"].as_str().unwrap());
    let (status, body) = key.get("/api/v1/admin/alerts?severity=high").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no alerts:read: {body}");
    assert_eq!(body["error"], "FORBIDDEN");

    let viewer = client_as(&api, Role::Viewer).await;
    assert_eq!(listed(&viewer, "member=alice").await.len(), 2);
    let (status, body) = viewer
        .post(
            &format!("/api/v1/admin/alerts/{}/transition", a1.id),
            json!({"to": "resolved"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "FORBIDDEN");
}

//! The api side of the operator console: its files and their policy, and the routes its
//! pages read (`whoami`'s permissions, transactions by status, the whole audit log). The
//! pages themselves are driven in a real browser by `bins/worker/tests/it/console.rs`.

use haven_api::hardening::CONSOLE_CSP;
use haven_api::testing::spawn_api;
use haven_auth::Role;
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use reqwest::StatusCode;
use serde_json::Value;

use crate::admin::seed_transactions;
use crate::support::{Client, create_passwordless_user, pool};

async fn fetch(url: String) -> (StatusCode, String, String, String) {
    let res = reqwest::get(url).await.unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (csp, kind) = (header("content-security-policy"), header("content-type"));
    (res.status(), csp, kind, res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_served_with_a_policy_that_allows_this_origin_only() {
    let api = spawn_api().await;
    let (status, csp, kind, html) = fetch(api.url("/console")).await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/html; charset=utf-8");
    assert_eq!(csp, CONSOLE_CSP);
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    // nothing inline for the policy to refuse, nothing from elsewhere
    assert!(html.contains(r#"<script src="/console/console.js" defer></script>"#));
    assert_eq!(html.matches("<script").count(), 1, "one script, by URL");
    assert!(!html.contains(" style="), "no inline style");
    assert!(!html.contains("http://") && !html.contains("https://"));

    for (path, expected) in [
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
    ] {
        let (status, csp, kind, body) = fetch(api.url(path)).await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::OK, expected),
            "{path}"
        );
        assert_eq!(csp, CONSOLE_CSP, "{path}");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}"
        );
    }
    // the api's own answers keep the policy that allows nothing
    let (_, csp, _, _) = fetch(api.url("/health")).await;
    assert_eq!(csp, "default-src 'none'");
    let (status, csp, _, _) = fetch(api.url("/console/other.js")).await;
    assert_eq!(status, 404);
    assert_eq!(csp, "default-src 'none'");
    api.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn whoami_lists_what_the_caller_may_do() {
    let api = spawn_api().await;
    for (role, holds, lacks) in [
        (Role::Viewer, "alerts:read", "alerts:review"),
        (Role::Operator, "alerts:review", "system:operate"),
        (Role::Admin, "system:operate", "nothing"),
    ] {
        let user = create_passwordless_user(&api, crate::support::db_role(role)).await;
        let (status, me) = Client::for_user(&api, user, role).whoami().await;
        assert_eq!(status, StatusCode::OK, "{me}");
        let permissions: Vec<&str> = me["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert!(permissions.contains(&holds), "{role}: {permissions:?}");
        assert!(!permissions.contains(&lacks), "{role}: {permissions:?}");
        let expected: Vec<&str> = haven_auth::Permission::ALL
            .iter()
            .filter(|p| role.allows(**p))
            .map(|p| p.as_scope())
            .collect();
        assert_eq!(permissions, expected, "{role}");
    }
    api.shutdown().await.unwrap();
}

fn ids(list: &Value) -> Vec<(String, bool)> {
    list["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tx_id"].as_str().unwrap().to_owned(),
                t["stuck"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_are_listed_by_status_with_the_stuck_marked() {
    let api = spawn_api().await;
    seed_transactions(&api).await;
    let viewer = create_passwordless_user(&api, haven_db::Role::Viewer).await;
    let viewer = Client::for_user(&api, viewer, Role::Viewer);
    let (status, failed) = viewer.get("/api/v1/admin/transactions?status=failed").await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(ids(&failed), [("f-1".to_owned(), false)]);
    assert_eq!(failed["transactions"][0]["nonce"], 7);
    assert_eq!(failed["transactions"][0]["max_fee_per_gas"], "2000000000");
    let (_, broadcast) = viewer
        .get("/api/v1/admin/transactions?status=broadcast")
        .await;
    assert_eq!(
        ids(&broadcast),
        [("s-1".to_owned(), true), ("b-1".to_owned(), false)],
        "oldest first, the stuck one marked"
    );
    let (_, one) = viewer
        .get("/api/v1/admin/transactions?status=confirmed&limit=1")
        .await;
    assert_eq!(one["limit"], 1);
    assert_eq!(ids(&one).len(), 1);
    for bad in [
        "?status=lost",
        "",
        "?status=failed&limit=0",
        "?status=failed&x=1",
    ] {
        let (status, body) = viewer
            .get(&format!("/api/v1/admin/transactions{bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (_, body) = viewer.get("/api/v1/admin/transactions?status=lost").await;
    assert_eq!(body["error"], "INVALID_QUERY");
    assert_eq!(body["details"]["field"], "status");
    api.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_is_searched_by_action_prefix_target_and_severity() {
    let api = spawn_api().await;
    let log = haven_db::PgAuditLog::new(pool(&api).await);
    for (action, target, severity) in [
        ("fraud.alert.acknowledged", "alert:1", Severity::Low),
        ("fraud.alert.resolved", "alert:1", Severity::Medium),
        ("breaker.reset", "breaker:partner_api", Severity::High),
        ("fraud.alert.acknowledged", "alert:2", Severity::Low),
    ] {
        log.append(AuditEvent::new("user:test", action, severity).target(target))
            .await
            .unwrap();
    }
    let admin = create_passwordless_user(&api, haven_db::Role::Admin).await;
    let admin = Client::for_user(&api, admin, Role::Admin);
    let search = async |query: &str| {
        let (status, page) = admin
            .get(&format!("/api/v1/admin/audit/records{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        let rows: Vec<(String, String)> = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["action"].as_str().unwrap().to_owned(),
                    r["target"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        (rows, page["next"].clone())
    };
    let pair = |a: &str, t: &str| (a.to_owned(), t.to_owned());
    let (rows, _) = search("?prefix=fraud.").await;
    assert_eq!(
        rows,
        [
            pair("fraud.alert.acknowledged", "alert:2"),
            pair("fraud.alert.resolved", "alert:1"),
            pair("fraud.alert.acknowledged", "alert:1"),
        ],
        "newest first"
    );
    let (rows, _) = search("?target=alert:1&action=fraud.alert.resolved").await;
    assert_eq!(rows, [pair("fraud.alert.resolved", "alert:1")]);
    let (rows, _) = search("?severity=medium&prefix=").await;
    assert_eq!(
        rows,
        [
            pair("breaker.reset", "breaker:partner_api"),
            pair("fraud.alert.resolved", "alert:1"),
        ]
    );
    let (first, next) = search("?prefix=fraud.&limit=2").await;
    assert_eq!(first.len(), 2);
    let (rest, last) = search(&format!("?prefix=fraud.&limit=2&before={next}")).await;
    assert_eq!(rest, [pair("fraud.alert.acknowledged", "alert:1")]);
    assert_eq!(last, Value::Null);

    for (bad, field) in [
        ("?severity=loud", "severity"),
        (&*format!("?prefix={}", "x".repeat(101)), "prefix"),
        ("?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
    ] {
        let (status, body) = admin
            .get(&format!("/api/v1/admin/audit/records{bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["details"]["field"], field, "{bad}");
    }
    let operator = create_passwordless_user(&api, haven_db::Role::Operator).await;
    let (status, _) = Client::for_user(&api, operator, Role::Operator)
        .get("/api/v1/admin/audit/records")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "audit:read is the admin's");
    api.shutdown().await.unwrap();
}

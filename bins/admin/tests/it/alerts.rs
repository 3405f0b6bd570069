//! `haven-admin alerts list | show | transition`: the filters as flags, a table or JSON
//! lines, usage refusals, and review steps that go through the audited workflow.

use chrono::{DateTime, SecondsFormat, Utc};
use haven_core::audit::AuditRecord;
use haven_fraud::{Alert, AlertStore, Severity};
use haven_testkit::TestDb;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::admin;

fn alert(user: &str, event_type: &str, severity: Severity, minutes_ago: i64) -> Alert {
    let at = Utc::now() - chrono::Duration::minutes(minutes_ago);
    Alert {
        id: Uuid::now_v7(),
        rule_id: event_type.into(),
        event_type: event_type.into(),
        severity,
        subject: user.into(),
        user: Some(user.into()),
        description: format!("{event_type} for {user}"),
        metadata: json!({"count": 3}),
        event_id: format!("ev-{}", Uuid::new_v4()),
        event_ts: at,
        created_at: at,
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// alice velocity high, alice amount_tier low, bob velocity critical ("100% of Limit_X"),
/// oldest first.
async fn seed(db: &TestDb) -> [Alert; 3] {
    let store = haven_db::PgAlertStore::new(haven_db::connect(db.url(), 2).await.unwrap());
    let a1 = alert("alice", "velocity", Severity::High, 30);
    let a2 = alert("alice", "amount_tier", Severity::Low, 20);
    let mut a3 = alert("bob", "velocity", Severity::Critical, 10);
    a3.description = "100% of Limit_X reached".into();
    for a in [&a1, &a2, &a3] {
        assert!(store.insert(a).await.unwrap());
    }
    [a1, a2, a3]
}

async fn audit_rows(url: &str, action: &str) -> Vec<AuditRecord> {
    let pool = haven_db::connect(url, 2).await.unwrap();
    haven_db::PgAuditLog::new(pool)
        .page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == action)
        .collect()
}

/// The `id`s of JSON lines.
fn ids(out: &str) -> Vec<String> {
    out.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_list_prints_a_table_or_json_lines_narrowed_by_the_flags() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url())];
    let [a1, a2, a3] = seed(&db).await;
    let (code, out, err) = admin(&["alerts", "list"], &env, None);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("SEVERITY"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "a header and three alerts: {out}");
    assert!(
        lines[1].contains(&a3.id.to_string()) && lines[1].contains("critical"),
        "newest first: {out}"
    );

    let since = time(a2.created_at);
    let until = time(a3.created_at);
    let s = |v: &[&Alert]| v.iter().map(|a| a.id.to_string()).collect::<Vec<_>>();
    for (flags, expected) in [
        (vec![], s(&[&a3, &a2, &a1])),
        (vec!["--severity", "critical"], s(&[&a3])),
        (vec!["--event-type", "velocity"], s(&[&a3, &a1])),
        (vec!["--member", "alice"], s(&[&a2, &a1])),
        (vec!["--state", "open", "--limit", "1"], s(&[&a3])),
        (vec!["--since", &since], s(&[&a3, &a2])),
        (vec!["--since", &since, "--until", &until], s(&[&a2])),
        (vec!["--search", "limit_X"], s(&[&a3])),
        (vec!["--search", "%"], s(&[&a3])),
        (vec!["--search", "ALICE", "--severity", "low"], s(&[&a2])),
        (vec!["--state", "resolved"], vec![]),
    ] {
        let args = [&["alerts", "list", "--json"][..], &flags].concat();
        let (code, out, err) = admin(&args, &env, None);
        assert_eq!(code, 0, "{flags:?}: {err}");
        assert_eq!(ids(&out), expected, "{flags:?}");
    }
    let (_, out, _) = admin(&["alerts", "list", "--member", "nobody"], &env, None);
    assert!(out.contains("(no alerts)"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_list_refuses_bad_flags_with_the_usage_code() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url())];
    let long = "x".repeat(201);
    for (flags, says) in [
        (
            vec!["--severity", "urgent"],
            "low, medium, high or critical",
        ),
        (vec!["--state", "closed"], "unknown state"),
        (vec!["--since", "yesterday"], "--since"),
        (
            vec![
                "--since",
                "2026-01-02T00:00:00Z",
                "--until",
                "2026-01-01T00:00:00Z",
            ],
            "--until must not be before --since",
        ),
        (vec!["--search", &long], "at most 200 characters"),
        (vec!["--limit", "0"], "--limit"),
    ] {
        let args = [&["alerts", "list"][..], &flags].concat();
        let (code, out, err) = admin(&args, &env, None);
        assert_eq!(code, 2, "{flags:?}: {out}{err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_show_and_transition_go_through_the_audited_review() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url()), ("USER", "tester")];
    let [a1, ..] = seed(&db).await;
    let id = a1.id.to_string();

    let (code, out, err) = admin(&["alerts", "show", &id], &env, None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("velocity for alice") && out.contains("open"),
        "{out}"
    );
    let (code, out, _) = admin(&["alerts", "show", &id, "--json"], &env, None);
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["state"], "open");
    assert_eq!(shown["severity"], "high");

    // open → resolved skips a step: refused, recorded, nothing changes
    let (code, _, err) = admin(
        &["alerts", "transition", &id, "--to", "resolved", "--yes"],
        &env,
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused") && err.contains("open"), "{err}");
    let refused = audit_rows(db.url(), "fraud.alert.resolved").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.details["outcome"], "refused");
    // not confirmed: nothing changes
    let acknowledge = ["alerts", "transition", &id, "--to", "acknowledged"];
    let (code, _, err) = admin(&acknowledge, &env, Some("no\n"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Type yes") && err.contains("not confirmed"),
        "{err}"
    );
    assert!(
        audit_rows(db.url(), "fraud.alert.acknowledged")
            .await
            .is_empty()
    );

    let (code, out, err) = admin(
        &[&acknowledge[..], &["--note", "looking", "--json"]].concat(),
        &env,
        Some("yes\n"),
    );
    assert_eq!(code, 0, "{err}");
    let moved: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(moved["state"], "acknowledged");
    assert_eq!(moved["reviewed_by"], "haven-admin:tester");
    assert_eq!(moved["notes"][0]["text"], "looking");
    let applied = audit_rows(db.url(), "fraud.alert.acknowledged").await;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].event.actor, "haven-admin:tester");
    assert_eq!(applied[0].event.target.as_deref(), Some(id.as_str()));

    let (code, out, err) = admin(
        &[
            "alerts",
            "transition",
            &id,
            "--to",
            "false_positive",
            "--yes",
        ],
        &env,
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("false_positive") && out.contains("settled 0"),
        "{out}"
    );

    let (code, _, err) = admin(
        &["alerts", "transition", &id, "--to", "open", "--yes"],
        &env,
        None,
    );
    assert_eq!(code, 2, "{err}");
    let unknown = Uuid::now_v7().to_string();
    let (code, _, err) = admin(&["alerts", "show", &unknown], &env, None);
    assert_eq!(code, 1);
    assert!(err.contains("no alert"), "{err}");
    let (code, _, _) = admin(&["alerts", "show", "not-a-uuid"], &env, None);
    assert_eq!(code, 2);
}

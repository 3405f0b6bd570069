//! `haven-admin webhooks endpoints …` and `webhooks dead …` against a real database: the
//! secret printed once, tables and `--json`, confirmations, the audit rows, and the refusals
//! (a refused URL, a rotation too far ahead, a delete with undelivered messages, a replay of
//! what is not dead).

use haven_testkit::TestDb;
use serde_json::{Value, json};

use crate::admin;

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

async fn audit(db: &TestDb) -> Vec<haven_core::audit::AuditRecord> {
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    haven_db::PgAuditLog::new(pool).page(0, 1000).await.unwrap()
}

async fn outbox(db: &TestDb) -> haven_db::PgWebhookOutbox {
    haven_db::PgWebhookOutbox::new(haven_db::connect(db.url(), 2).await.unwrap())
}

async fn enqueue(db: &TestDb, endpoint: &str) -> String {
    outbox(db)
        .await
        .enqueue(endpoint.parse().unwrap(), "member.updated", &json!({}))
        .await
        .unwrap()
}

/// Dead-letters the pending attempt of `message`, as the worker does after the last try.
async fn kill(db: &TestDb, message: &str) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query(
        "UPDATE webhook_deliveries SET status = 'dead', attempted_at = now() \
         WHERE message_id = $1 AND status = 'pending'",
    )
    .bind::<diesel::sql_types::Text, _>(message)
    .execute(&mut conn)
    .await
    .unwrap();
}

fn create(env: &[(&str, &str)], url: &str) -> (String, String) {
    let (code, out, err) = admin(
        &["webhooks", "endpoints", "create", "--url", url, "--json"],
        env,
        None,
    );
    assert_eq!(code, 0, "{out} {err}");
    let created = json(&out);
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_created_listed_changed_rotated_and_deleted_from_the_cli() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url()), ("USER", "ops")];
    let (code, out, err) = admin(
        &[
            "webhooks",
            "endpoints",
            "create",
            "--url",
            "https://hooks.example.com/a",
            "--description",
            "partner",
        ],
        &env,
        None,
    );
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("shown only now"), "{out}");
    let secret = out
        .split_whitespace()
        .find(|w| w.starts_with("whsec_"))
        .unwrap()
        .to_owned();
    assert!(!err.contains(&secret));
    let id = out.split_whitespace().nth(2).unwrap().to_owned();

    let (code, out, _) = admin(&["webhooks", "endpoints", "list"], &env, None);
    assert_eq!(code, 0);
    assert!(out.starts_with("ID"), "{out}");
    assert!(out.contains(&id) && out.contains("https://hooks.example.com/a"));
    assert!(!out.contains(&secret));
    let (code, out, _) = admin(&["webhooks", "endpoints", "list", "--json"], &env, None);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["id"], id.as_str());
    let (code, out, _) = admin(
        &["webhooks", "endpoints", "show", &id, "--json"],
        &env,
        None,
    );
    assert_eq!(code, 0);
    let shown = json(&out);
    assert_eq!(shown["description"], "partner");
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 1);
    assert!(!out.contains(&secret));

    let (code, out, err) = admin(
        &[
            "webhooks",
            "endpoints",
            "update",
            &id,
            "--description",
            "renamed",
            "--json",
        ],
        &env,
        None,
    );
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(json(&out)["description"], "renamed");

    // disable asks first
    let (code, _, err) = admin(
        &["webhooks", "endpoints", "disable", &id],
        &env,
        Some("no\n"),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not confirmed"), "{err}");
    let (code, out, _) = admin(
        &["webhooks", "endpoints", "disable", &id, "--yes", "--json"],
        &env,
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(json(&out)["enabled"], false);
    let (code, out, _) = admin(
        &["webhooks", "endpoints", "enable", &id, "--json"],
        &env,
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(json(&out)["enabled"], true);

    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let (code, out, err) = admin(
        &[
            "webhooks",
            "endpoints",
            "rotate-secret",
            &id,
            "--old-valid-until",
            &until,
            "--json",
        ],
        &env,
        Some("yes\n"),
    );
    assert_eq!(code, 0, "{out} {err}");
    let rotated = json(&out);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert!(!err.contains(new_secret));
    let (_, out, _) = admin(
        &["webhooks", "endpoints", "show", &id, "--json"],
        &env,
        None,
    );
    let secrets = json(&out)["secrets"].as_array().unwrap().clone();
    assert_eq!(secrets.len(), 2);
    let expires: chrono::DateTime<chrono::Utc> =
        secrets[1]["expires_at"].as_str().unwrap().parse().unwrap();
    let until: chrono::DateTime<chrono::Utc> = until.parse().unwrap();
    assert!((expires - until).num_milliseconds().abs() < 1);

    let (code, out, err) = admin(
        &["webhooks", "endpoints", "delete", &id, "--yes"],
        &env,
        None,
    );
    assert_eq!(code, 0, "{out} {err}");
    let (code, _, _) = admin(&["webhooks", "endpoints", "show", &id], &env, None);
    assert_eq!(code, 1);

    let rows = audit(&db).await;
    let actions: Vec<&str> = rows.iter().map(|r| r.event.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "webhook.endpoint.create",
            "webhook.endpoint.update",
            "webhook.endpoint.update",
            "webhook.endpoint.update",
            "webhook.endpoint.rotate_secret",
            "webhook.endpoint.delete",
        ]
    );
    for row in &rows {
        assert_eq!(row.event.actor, "haven-admin:ops");
        assert_eq!(row.event.target, Some(format!("webhook_endpoint:{id}")));
        let details = row.event.details.to_string();
        assert!(!details.contains(&secret) && !details.contains(new_secret));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_refuses_bad_urls_far_rotations_and_deletes_with_undelivered_messages() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url()), ("USER", "ops")];
    for url in ["http://hooks.example.com/a", "https://10.0.0.1/a"] {
        let (code, out, err) = admin(
            &["webhooks", "endpoints", "create", "--url", url],
            &env,
            None,
        );
        assert_eq!(code, 2, "{url}: {out} {err}");
        assert!(err.contains("--url"), "{err}");
    }
    // a development setting allows plain http to loopback
    let mut dev = env.to_vec();
    dev.extend([
        ("HAVEN_WEBHOOK_ALLOW_HTTP", "true"),
        ("HAVEN_WEBHOOK_ALLOW", "127.0.0.1/32"),
    ]);
    let (id, _) = create(&dev, "http://127.0.0.1:9/hook");

    for until in [
        chrono::Utc::now() - chrono::Duration::minutes(5),
        chrono::Utc::now() + chrono::Duration::days(8),
    ] {
        let (code, _, err) = admin(
            &[
                "webhooks",
                "endpoints",
                "rotate-secret",
                &id,
                "--old-valid-until",
                &until.to_rfc3339(),
                "--yes",
            ],
            &env,
            None,
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("--old-valid-until"), "{err}");
    }

    enqueue(&db, &id).await;
    let (code, _, err) = admin(
        &["webhooks", "endpoints", "delete", &id, "--yes"],
        &env,
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused: 1 pending"), "{err}");
    let (code, out, _) = admin(
        &["webhooks", "endpoints", "show", &id, "--json"],
        &env,
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(json(&out)["pending_deliveries"], 1);
    let (code, out, err) = admin(
        &[
            "webhooks",
            "endpoints",
            "delete",
            &id,
            "--force",
            "--yes",
            "--json",
        ],
        &env,
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["pending_dropped"], 1);

    let rows: Vec<Value> = audit(&db)
        .await
        .into_iter()
        .filter(|r| r.event.action == "webhook.endpoint.delete")
        .map(|r| r.event.details)
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["outcome"], "refused");
    assert_eq!(rows[1]["outcome"], "applied");
    assert_eq!(rows[1]["forced"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_and_replayed_from_the_cli() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url()), ("USER", "ops")];
    let (id, _) = create(&env, "https://hooks.example.com/d");
    let message = enqueue(&db, &id).await;
    kill(&db, &message).await;

    let (code, out, _) = admin(&["webhooks", "dead", "list"], &env, None);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("MESSAGE") && out.contains(&message),
        "{out}"
    );
    let (code, out, _) = admin(
        &["webhooks", "dead", "list", "--endpoint", &id, "--json"],
        &env,
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(json(&out)["message_id"], message.as_str());

    let (code, _, err) = admin(&["webhooks", "dead", "replay", &message], &env, Some("\n"));
    assert_eq!(code, 1, "{err}");
    let (code, out, err) = admin(
        &["webhooks", "dead", "replay", &message, "--yes", "--json"],
        &env,
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["queued"], true);
    // replayed already: no longer dead
    let (code, _, err) = admin(
        &["webhooks", "dead", "replay", &message, "--yes"],
        &env,
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("no dead letter"), "{err}");
    let (_, out, _) = admin(&["webhooks", "dead", "list", "--json"], &env, None);
    assert!(out.trim().is_empty(), "{out}");

    let replays: Vec<_> = audit(&db)
        .await
        .into_iter()
        .filter(|r| r.event.action == "webhook.dead_letter.replay")
        .collect();
    assert_eq!(replays.len(), 1);
    assert_eq!(
        replays[0].event.target,
        Some(format!("webhook_message:{message}"))
    );
}

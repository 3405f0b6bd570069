use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_testkit::TestDb;
use serde_json::Value;

use crate::admin;

#[tokio::test(flavor = "multi_thread")]
async fn migrate_verify_and_head_against_a_real_database() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url())];
    let (code, out, err) = admin(&["migrate"], &env, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["applied_now"],
        serde_json::json!([])
    );

    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    let log = haven_db::PgAuditLog::new(pool);
    for i in 0..10 {
        log.append(AuditEvent::new("ops", "user.create", Severity::Medium).target(format!("u{i}")))
            .await
            .unwrap();
    }
    let (code, out, _) = admin(&["audit", "verify"], &env, None);
    assert_eq!(code, 0, "{out}");
    let verified: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified["records"], 10);

    let (code, out, _) = admin(&["audit", "head"], &env, None);
    assert_eq!(code, 0);
    let head: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(head["seq"], 10);
    assert_eq!(head["hash"], verified["head"]);

    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::sql_query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 6")
        .execute(&mut conn)
        .await
        .unwrap();
    let (code, out, _) = admin(&["audit", "verify"], &env, None);
    assert_eq!(code, 1, "{out}");
    let broken: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(broken["valid"], false);
    assert_eq!(broken["first_broken_seq"], 6);
}

#[test]
fn database_down_is_a_clear_failure() {
    let (code, _, err) = admin(
        &["audit", "head"],
        &[("DATABASE_URL", "postgres://haven:haven@127.0.0.1:1/x")],
        None,
    );
    assert_eq!(code, 3);
    assert!(err.contains("DATABASE_URL"), "{err}");
}

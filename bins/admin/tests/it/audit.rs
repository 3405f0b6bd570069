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
    let (code, out, _) = admin(&["audit", "verify", "--json"], &env, None);
    assert_eq!(code, 0, "{out}");
    let verified: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verified["records"], 10);

    let (code, out, _) = admin(&["audit", "head", "--json"], &env, None);
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
    let (code, out, _) = admin(&["audit", "verify", "--json"], &env, None);
    assert_eq!(code, 1, "{out}");
    let broken: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(broken["valid"], false);
    assert_eq!(broken["first_broken_seq"], 6);
}

/// An anchor taken with `audit head` catches what a plain verification cannot: the chain
/// rewritten from some record on with every hash recomputed, and a cut tail.
#[tokio::test(flavor = "multi_thread")]
async fn an_anchor_catches_a_recomputed_chain_and_a_cut_tail() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url())];
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    let log = haven_db::PgAuditLog::new(pool);
    for i in 0..8 {
        log.append(AuditEvent::new("ops", "user.create", Severity::Medium).target(format!("u{i}")))
            .await
            .unwrap();
    }
    let (code, out, _) = admin(&["audit", "head", "--json"], &env, None);
    assert_eq!(code, 0);
    let head: Value = serde_json::from_str(&out).unwrap();
    let anchor = format!("{}:{}", head["seq"], head["hash"].as_str().unwrap());
    let (code, out, _) = admin(
        &["audit", "verify", "--json", "--anchor", &anchor],
        &env,
        None,
    );
    assert_eq!(code, 0, "{out}");
    log.append(AuditEvent::new("ops", "user.create", Severity::Medium))
        .await
        .unwrap();
    let (code, out, _) = admin(
        &["audit", "verify", "--json", "--anchor", &anchor],
        &env,
        None,
    );
    assert_eq!(code, 0, "rows after the anchor are fine: {out}");

    // Rewrite record 3 and recompute every hash after it: the chain alone looks intact.
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut records = log.page(0, 100).await.unwrap();
    records[2].event.actor = "mallory".into();
    let mut prev = haven_core::audit::GENESIS_HASH;
    for r in &mut records {
        *r = haven_core::audit::AuditRecord::chain(r.seq, r.event.clone(), r.created_at, prev);
        prev = r.hash;
        diesel::sql_query(
            "UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
        )
        .bind::<diesel::sql_types::Text, _>(&r.event.actor)
        .bind::<diesel::sql_types::Bytea, _>(r.prev_hash.to_vec())
        .bind::<diesel::sql_types::Bytea, _>(r.hash.to_vec())
        .bind::<diesel::sql_types::BigInt, _>(r.seq)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let (code, out, _) = admin(&["audit", "verify", "--json"], &env, None);
    assert_eq!(code, 0, "without an anchor the rewrite passes: {out}");
    let (code, out, _) = admin(
        &["audit", "verify", "--json", "--anchor", &anchor],
        &env,
        None,
    );
    assert_eq!(code, 1, "{out}");
    let broken: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(broken["first_broken_seq"], 8, "{out}");

    // Cut the tail below the anchor (on a fresh, untouched chain).
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url())];
    let log = haven_db::PgAuditLog::new(haven_db::connect(db.url(), 2).await.unwrap());
    for _ in 0..5 {
        log.append(AuditEvent::new("ops", "user.create", Severity::Medium))
            .await
            .unwrap();
    }
    let (_, out, _) = admin(&["audit", "head", "--json"], &env, None);
    let head: Value = serde_json::from_str(&out).unwrap();
    let anchor = format!("{}:{}", head["seq"], head["hash"].as_str().unwrap());
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::sql_query("DELETE FROM audit_log WHERE seq >= 4")
        .execute(&mut conn)
        .await
        .unwrap();
    let (code, out, _) = admin(&["audit", "verify", "--json"], &env, None);
    assert_eq!(code, 0, "a cut tail alone looks intact: {out}");
    let (code, out, _) = admin(
        &["audit", "verify", "--json", "--anchor", &anchor],
        &env,
        None,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("tail was cut"), "{out}");
    let (code, _, err) = admin(&["audit", "verify", "--anchor", "nonsense"], &env, None);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn database_down_is_a_clear_failure() {
    let (code, _, err) = admin(
        &["audit", "head", "--json"],
        &[("DATABASE_URL", "postgres://haven:haven@127.0.0.1:1/x")],
        None,
    );
    assert_eq!(code, 3);
    assert!(err.contains("DATABASE_URL"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_and_head_print_text_by_default_and_the_head_is_an_anchor() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url())];
    let log = haven_db::PgAuditLog::new(haven_db::connect(db.url(), 2).await.unwrap());
    for i in 0..3 {
        log.append(AuditEvent::new("ops", "user.create", Severity::Medium).target(format!("u{i}")))
            .await
            .unwrap();
    }
    let (code, head, err) = admin(&["audit", "head"], &env, None);
    assert_eq!(code, 0, "{err}");
    let anchor = head.trim().to_owned();
    assert!(
        anchor.starts_with("3:") && anchor.len() == 2 + 64,
        "{anchor}"
    );
    let (code, out, _) = admin(&["audit", "verify", "--anchor", &anchor], &env, None);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.trim(),
        format!("audit chain valid: 3 records; anchor {anchor}")
    );
}

//! `haven-admin users`: bootstrapping the first admin, role changes and disabling against a
//! real database, each audited, and the last admin protected.

use haven_testkit::TestDb;
use secrecy::SecretString;
use serde_json::Value;

use crate::admin;

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

async fn audit(db: &TestDb) -> Vec<(String, String, Value)> {
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    haven_db::PgAuditLog::new(pool)
        .page(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.event.action,
                r.event.target.unwrap_or_default(),
                r.event.details,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_admin_is_created_with_a_generated_password_shown_once() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url()), ("USER", "ops")];
    let (code, out, err) = admin(
        &[
            "users",
            "create",
            "--email",
            "root@example.com",
            "--role",
            "admin",
        ],
        &env,
        None,
    );
    assert_eq!(code, 0, "{out} {err}");
    let created = json(&out);
    assert_eq!(created["role"], "admin");
    let password = created["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 24);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(err.contains("shown once"), "{err}");

    // The stored hash verifies the printed password; the password itself is not stored.
    let pool = haven_db::connect(db.url(), 2).await.unwrap();
    let user = haven_db::UserRepo::new(pool)
        .find_by_email("root@example.com")
        .await
        .unwrap()
        .unwrap();
    let hash = user.password_hash.unwrap();
    assert!(!hash.contains(&password));
    let passwords = haven_auth::Passwords::owasp().unwrap();
    assert!(
        passwords
            .verify(
                &SecretString::from(password),
                &haven_auth::StoredHash::from_phc(hash)
            )
            .unwrap()
    );

    let entries = audit(&db).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, "user.create");
    assert_eq!(entries[0].1, format!("user:{}", user.id));

    // The same e-mail again: refused, nothing written.
    let (code, out, _) = admin(
        &[
            "users",
            "create",
            "--email",
            "ROOT@example.com",
            "--role",
            "viewer",
        ],
        &env,
        None,
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(json(&out)["error"], "EMAIL_TAKEN");
    assert_eq!(audit(&db).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_usage_error_that_writes_nothing() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url())];
    for (args, stdin, expect) in [
        (
            vec!["--email", "a@example.com", "--role", "root"],
            None,
            "unknown role",
        ),
        (
            vec!["--email", "not-an-email", "--role", "viewer"],
            None,
            "e-mail",
        ),
        (
            vec![
                "--email",
                "a@example.com",
                "--role",
                "viewer",
                "--password-stdin",
            ],
            Some("short\n"),
            "12 to 1024",
        ),
    ] {
        let mut full = vec!["users", "create"];
        full.extend(args);
        let (code, out, _) = admin(&full, &env, stdin);
        assert_eq!(code, 2, "{full:?}: {out}");
        assert!(
            json(&out)["error"].as_str().unwrap().contains(expect),
            "{out}"
        );
    }
    assert!(audit(&db).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn role_changes_and_disabling_are_audited_and_the_last_admin_is_kept() {
    let db = TestDb::new().await;
    let env = [("DATABASE_URL", db.url())];
    let create = |email: &str, role: &str| {
        let (code, out, err) = admin(
            &[
                "users",
                "create",
                "--email",
                email,
                "--role",
                role,
                "--password-stdin",
            ],
            &env,
            Some("a long enough password\n"),
        );
        assert_eq!(code, 0, "{out} {err}");
        let created = json(&out);
        assert!(
            created.get("password").is_none(),
            "a given password is not echoed"
        );
        created["id"].as_str().unwrap().to_owned()
    };
    let first = create("first@example.com", "admin");

    let (code, out, _) = admin(
        &[
            "users",
            "set-role",
            "--email",
            "first@example.com",
            "--role",
            "viewer",
        ],
        &env,
        None,
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(json(&out)["error"], "LAST_ADMIN");
    let (code, out, _) = admin(&["users", "disable", "--id", &first], &env, None);
    assert_eq!(
        (code, json(&out)["error"].clone()),
        (1, "LAST_ADMIN".into())
    );

    create("second@example.com", "admin");
    let (code, out, _) = admin(
        &["users", "set-role", "--id", &first, "--role", "operator"],
        &env,
        None,
    );
    assert_eq!(code, 0, "{out}");
    let changed = json(&out);
    assert_eq!(
        (changed["role"].as_str(), changed["previous_role"].as_str()),
        (Some("operator"), Some("admin"))
    );
    let (code, out, _) = admin(
        &["users", "disable", "--email", "first@example.com"],
        &env,
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(json(&out)["disabled"], true);
    let (code, out, _) = admin(
        &["users", "disable", "--email", "nobody@example.com"],
        &env,
        None,
    );
    assert_eq!(
        (code, json(&out)["error"].clone()),
        (1, "USER_NOT_FOUND".into())
    );

    let (code, out, _) = admin(&["users", "list"], &env, None);
    assert_eq!(code, 0);
    let listed: Vec<Value> = out.lines().map(json).collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|u| u.get("password_hash").is_none()));

    let entries = audit(&db).await;
    let actions: Vec<&str> = entries.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.create",
            "user.role_change",
            "user.disable"
        ]
    );
    let role_change = &entries[2];
    assert_eq!(role_change.1, format!("user:{first}"));
    assert_eq!(role_change.2["from"], "admin");
    assert_eq!(role_change.2["to"], "operator");
}

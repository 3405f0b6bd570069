//! `haven-admin config check`: every binary's effective configuration with secrets masked,
//! and every invalid setting named with exit 1.

use serde_json::Value;

use crate::admin;

const JWT_SECRET: &str = "a-jwt-secret-of-more-than-32-bytes-0123456789";
const DB_PASSWORD: &str = "db-password-7f3a9c";
/// A master key entry (`v1:` and 32 bytes of base64) made for this test only.
const MASTER_KEYS: &str = "v1:q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

#[test]
fn a_valid_environment_prints_each_binary_with_secrets_masked() {
    let database_url = format!("postgres://haven:{DB_PASSWORD}@127.0.0.1:5432/haven");
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("HAVEN_JWT_SECRET", JWT_SECRET),
        ("HAVEN_ADMIN_API_KEY", "hv_test_0123456789abcdef"),
        ("HAVEN_WORKER_ADDR", "127.0.0.1:9181"),
        ("HAVEN_MASTER_KEYS", MASTER_KEYS),
        ("HAVEN_FRAUD_SMTP_HOST", "smtp.example.com"),
        ("HAVEN_FRAUD_SMTP_USER", "alerts"),
        ("HAVEN_FRAUD_SMTP_PASSWORD", "smtp-password-42"),
        ("HAVEN_FRAUD_SMTP_FROM", "alerts@example.com"),
        ("HAVEN_FRAUD_SMTP_TO", "security@example.com"),
        ("HAVEN_AURORA_URL", "https://aurora.example.com"),
        ("HAVEN_AURORA_API_KEY", "aurora-api-key-42"),
    ];
    let (code, out, err) = admin(&["config", "check"], &env, None);
    assert_eq!(code, 0, "{out}{err}");
    for binary in [
        "haven-api: valid",
        "haven-worker: valid",
        "haven-admin: valid",
    ] {
        assert!(out.contains(binary), "{binary}: {out}");
    }
    assert!(
        out.contains("127.0.0.1:9181"),
        "the effective values: {out}"
    );
    assert!(out.contains("smtp.example.com"), "{out}");
    for secret in [
        DB_PASSWORD,
        JWT_SECRET,
        "hv_test_0123456789abcdef",
        &MASTER_KEYS[3..],
        "smtp-password-42",
        "aurora-api-key-42",
    ] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} shown"
        );
    }
    let (code, out, _) = admin(&["config", "check", "--json"], &env, None);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["binaries"]["haven-worker"]["valid"], true);
    assert!(!out.contains(DB_PASSWORD));
}

#[test]
fn every_invalid_setting_is_named_and_the_check_fails() {
    let database_url = format!("postgres://ops:{DB_PASSWORD}@db.internal:5432/haven");
    let env = [
        ("HAVEN_ENV", "production"),
        ("DATABASE_URL", database_url.as_str()),
        ("HAVEN_LOG_FORMAT", "pretty"),
        ("HAVEN_DB_POOL_SIZE", "many"),
        ("HAVEN_WORKER_ADDR", "nowhere"),
        ("HAVEN_API_URL", "ftp://api.internal"),
        ("HAVEN_JWT_SECRET", JWT_SECRET),
    ];
    let (code, out, err) = admin(&["config", "check"], &env, None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("haven-api: INVALID"), "{out}");
    for named in [
        "HAVEN_LOG_FORMAT",
        "HAVEN_DB_POOL_SIZE",
        "HAVEN_WORKER_ADDR",
        "HAVEN_API_URL",
        "HAVEN_API_KEY_PEPPER",
    ] {
        assert!(out.contains(&format!("    {named}: ")), "{named}: {out}");
    }
    assert!(!out.contains(DB_PASSWORD) && !out.contains(JWT_SECRET));
    let (code, out, _) = admin(&["config", "check", "--json"], &env, None);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["valid"], false);
    let worker: Vec<&str> = report["binaries"]["haven-worker"]["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["var"].as_str())
        .collect();
    assert!(worker.contains(&"HAVEN_WORKER_ADDR"), "{worker:?}");
    assert!(report["binaries"]["haven-worker"]["effective"].is_null());
}

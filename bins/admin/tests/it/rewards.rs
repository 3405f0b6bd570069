//! `haven-admin rewards quote` through the real binary: every shared public vector, the
//! exit-code contract (0 priced, 1 invalid payload, 2 usage), and the rules override.

use std::path::PathBuf;

use serde_json::Value;

use crate::admin;

/// Blank, so the shipped rules price whatever the caller's environment holds.
const SHIPPED: (&str, &str) = ("HAVEN_REWARDS_RULES", "");

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/rewards_public.json")
}

fn payload_file(body: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body).unwrap();
    file
}

/// Runs `rewards quote` on `payload`; returns the exit code, the single JSON line printed
/// (`Null` when nothing was) and stderr.
fn quote(event: &str, payload: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let file = payload_file(payload);
    let mut args = vec!["rewards", "quote", "--event", event, "--payload-file"];
    args.push(file.path().to_str().unwrap());
    args.extend_from_slice(extra);
    let (code, out, err) = admin(&args, env, None);
    let lines: Vec<&str> = out.lines().collect();
    let value = match lines.as_slice() {
        [] => Value::Null,
        [line] => serde_json::from_str(line).unwrap(),
        _ => panic!("more than one line: {out}"),
    };
    (code, value, err)
}

fn rules_file(from: &str, to: &str) -> tempfile::NamedTempFile {
    let text = haven_rewards::DEFAULT_RULES.replacen(from, to, 1);
    assert_ne!(text, haven_rewards::DEFAULT_RULES);
    payload_file(&text)
}

#[test]
fn rewards_quote_prices_every_public_vector() {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the vectors at {}: {e}", path.display()));
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let event = case["event"].as_str().unwrap();
        let payload = case["payload"].as_str().unwrap();
        let (code, out, err) = quote(event, payload, &[], &[SHIPPED]);
        if case["valid"].as_bool().unwrap() {
            assert_eq!(code, 0, "{case}: {out} {err}");
            let amount = case["amount_hnv"].as_str().unwrap();
            assert_eq!(out["amount_hnv"], amount, "{case}");
            assert_eq!(
                out["amount_base_units"], case["amount_base_units"],
                "{case}"
            );
            assert_eq!(out["reward"], amount != "0", "{case}");
            assert_eq!(
                out["rules_version"],
                haven_rewards::Rules::shipped().version()
            );
            assert!(
                out["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{out}"
            );
        } else {
            assert_eq!(code, 1, "{case}: {out} {err}");
            assert_eq!(out["error"], "INVALID_PAYLOAD", "{case}");
            assert!(out["details"]["field"].is_string(), "{out}");
            assert!(
                out["error_id"].is_string() && out["timestamp"].is_string(),
                "{out}"
            );
        }
    }
}

#[test]
fn rewards_quote_error_body_is_the_apis_422() {
    let (code, out, _) = quote(
        "aurora/booking-created",
        r#"{"booking_id":"b-1","guest_id":"g-1","total_price":-5,"nights":2}"#,
        &[],
        &[SHIPPED],
    );
    assert_eq!(code, 1);
    let body: haven_core::ErrorBody = serde_json::from_value(out.clone()).unwrap();
    assert_eq!(body.error, haven_core::ErrorCode::InvalidPayload);
    assert_eq!(body.status(), 422);
    assert_eq!(body.message, "field `total_price`: must be positive");
    assert_eq!(body.user_message, "The event payload is not valid.");
    assert_eq!(out["details"], serde_json::json!({"field": "total_price"}));
}

#[test]
fn rewards_quote_reads_the_payload_from_stdin() {
    let (code, out, err) = admin(
        &[
            "rewards",
            "quote",
            "--event",
            "tribe/referral-success",
            "--payload-file",
            "-",
        ],
        &[SHIPPED],
        Some(r#"{"referral_id":"r-1","referrer_id":"m-1","tier":"gold"}"#),
    );
    assert_eq!(code, 0, "{err}");
    let out: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(out["amount_hnv"], "500");
    assert_eq!(out["reward"], true);
}

#[test]
fn rewards_quote_refuses_unknown_events_as_usage_errors() {
    for event in [
        "aurora/booking-paid",
        "tribe/booking-created",
        "booking-created",
        "",
    ] {
        let (code, out, err) = quote(event, "{}", &[], &[SHIPPED]);
        assert_eq!(code, 2, "{event}: {out} {err}");
        assert_eq!(out, Value::Null);
        assert!(err.contains("unknown event"), "{err}");
    }
}

#[test]
fn rewards_quote_prices_with_the_rules_given() {
    let payload = r#"{"booking_id":"b-1","guest_id":"g-1","total_price":100,"nights":1}"#;
    let (_, shipped, _) = quote("aurora/booking-created", payload, &[], &[SHIPPED]);
    assert_eq!(shipped["amount_hnv"], "200");

    let triple = rules_file(r#"hnv_per_unit = "2""#, r#"hnv_per_unit = "3""#);
    let triple = triple.path().to_str().unwrap();
    let versioned = rules_file(r#"version = "2026-12-07.1""#, r#"version = "local-2""#);
    let versioned = versioned.path().to_str().unwrap();

    // --rules, the setting, and --rules over the setting.
    let (code, out, err) = quote(
        "aurora/booking-created",
        payload,
        &["--rules", triple],
        &[SHIPPED],
    );
    assert_eq!(
        (code, out["amount_hnv"].as_str()),
        (0, Some("300")),
        "{err}"
    );
    let (_, out, _) = quote(
        "aurora/booking-created",
        payload,
        &[],
        &[("HAVEN_REWARDS_RULES", versioned)],
    );
    assert_eq!(
        (out["amount_hnv"].as_str(), out["rules_version"].as_str()),
        (Some("200"), Some("local-2"))
    );
    let (_, out, _) = quote(
        "aurora/booking-created",
        payload,
        &["--rules", triple],
        &[("HAVEN_REWARDS_RULES", versioned)],
    );
    assert_eq!(
        (out["amount_hnv"].as_str(), out["rules_version"].as_str()),
        (Some("300"), Some("2026-12-07.1"))
    );

    // Unusable rules are a usage error naming the key or the file.
    let negative = rules_file(r#"hnv_per_unit = "2""#, r#"hnv_per_unit = "-2""#);
    let (code, out, err) = quote(
        "aurora/booking-created",
        payload,
        &["--rules", negative.path().to_str().unwrap()],
        &[SHIPPED],
    );
    assert_eq!((code, out), (2, Value::Null));
    assert!(
        err.contains("rules key `booking.hnv_per_unit`: must not be negative"),
        "{err}"
    );
    let (code, _, err) = quote(
        "aurora/booking-created",
        payload,
        &[],
        &[("HAVEN_REWARDS_RULES", "/nonexistent/rules.toml")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/rules.toml"), "{err}");
}

#[test]
fn rewards_quote_fails_on_a_missing_payload_file() {
    let (code, out, err) = admin(
        &[
            "rewards",
            "quote",
            "--event",
            "aurora/booking-created",
            "--payload-file",
            "/nonexistent/payload.json",
        ],
        &[SHIPPED],
        None,
    );
    assert_eq!(code, 3, "{out}");
    assert!(err.contains("/nonexistent/payload.json"), "{err}");
}

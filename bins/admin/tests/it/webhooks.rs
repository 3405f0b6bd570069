//! `haven-admin webhooks sign|verify` against the Standard Webhooks reference vector, Stripe
//! round trips, and the exit-code contract (0 valid, 1 invalid, 2 usage).

use serde_json::Value;

use crate::admin;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: &str = "1614265330";
const BODY: &str = r#"{"test": 2432232314}"#;
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn payload_file(body: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body).unwrap();
    file
}

fn verify(args: &[&str], body: &str) -> (i32, Value, String) {
    verify_with(SECRET, args, body)
}

/// `webhooks verify` with `secret` in `HAVEN_WEBHOOK_SECRET`.
fn verify_with(secret: &str, args: &[&str], body: &str) -> (i32, Value, String) {
    let file = payload_file(body);
    let path = file.path().to_str().unwrap();
    let mut all = vec!["webhooks", "verify", "--payload-file", path];
    all.extend_from_slice(args);
    let (code, out, err) = admin(&all, &[("HAVEN_WEBHOOK_SECRET", secret)], None);
    let value = if out.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(out.trim()).unwrap()
    };
    (code, value, err)
}

#[test]
fn sign_reproduces_the_standard_webhooks_reference_signature() {
    let file = payload_file(BODY);
    let path = file.path().to_str().unwrap();
    let sign = |payload: &str, extra: &[&str]| {
        let mut args = vec![
            "webhooks",
            "sign",
            "--scheme",
            "standard",
            "--id",
            ID,
            "--timestamp",
            TS,
            "--payload-file",
        ];
        args.push(payload);
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let (code, out, err) = admin(
        &refs(&sign(path, &[])),
        &[("HAVEN_WEBHOOK_SECRET", SECRET)],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), SIGNATURE);

    // The payload can come from standard input too, byte for byte.
    let (code, out, _) = admin(
        &refs(&sign("-", &[])),
        &[("HAVEN_WEBHOOK_SECRET", SECRET)],
        Some(BODY),
    );
    assert_eq!((code, out.trim()), (0, SIGNATURE));

    // Or the secret from standard input, the payload from its file.
    let (code, out, err) = admin(
        &refs(&sign(path, &["--secret-stdin"])),
        &[],
        Some(&format!("{SECRET}\n")),
    );
    assert_eq!((code, out.trim()), (0, SIGNATURE), "{err}");
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The secret never goes on the command line: `--secret` is not an option, and without
/// `HAVEN_WEBHOOK_SECRET` or `--secret-stdin` the command says where to put it.
#[test]
fn the_secret_is_not_taken_from_the_command_line() {
    let file = payload_file(BODY);
    let path = file.path().to_str().unwrap();
    let base = [
        "webhooks",
        "sign",
        "--scheme",
        "standard",
        "--id",
        ID,
        "--timestamp",
        TS,
    ];
    let mut with_flag = base.to_vec();
    with_flag.extend_from_slice(&["--secret", SECRET, "--payload-file", path]);
    let (code, out, err) = admin(&with_flag, &[], None);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(!out.contains(SIGNATURE));

    let mut without = base.to_vec();
    without.extend_from_slice(&["--payload-file", path]);
    let (code, _, err) = admin(&without, &[], None);
    assert_eq!(code, 2);
    assert!(err.contains("HAVEN_WEBHOOK_SECRET"), "{err}");

    let mut both_stdin = base.to_vec();
    both_stdin.extend_from_slice(&["--payload-file", "-", "--secret-stdin"]);
    let (code, _, err) = admin(&both_stdin, &[], Some(SECRET));
    assert_eq!(code, 2);
    assert!(err.contains("standard input"), "{err}");
}

#[test]
fn verify_accepts_the_reference_and_names_what_is_wrong_otherwise() {
    let standard = ["--scheme", "standard", "--id", ID, "--timestamp", TS];
    let with = |extra: &[&'static str]| {
        let mut args = standard.to_vec();
        args.extend_from_slice(extra);
        args
    };

    let (code, out, err) = verify(
        &with(&["--signature", SIGNATURE, "--now", "1614265340"]),
        BODY,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, serde_json::json!({"valid": true}));

    // One body byte changed.
    let (code, out, _) = verify(
        &with(&["--signature", SIGNATURE, "--now", "1614265340"]),
        r#"{"test": 2432232315}"#,
    );
    assert_eq!(code, 1);
    assert_eq!(out["valid"], false);
    assert!(
        out["error"].as_str().unwrap().contains("signature"),
        "{out}"
    );

    // 301 s old.
    let (code, out, _) = verify(
        &with(&["--signature", SIGNATURE, "--now", "1614265631"]),
        BODY,
    );
    assert_eq!(code, 1);
    assert!(out["error"].as_str().unwrap().contains("too old"), "{out}");

    // Non-canonical base64 (the last character's spare bits set).
    let (code, out, _) = verify(
        &with(&[
            "--signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=",
            "--now",
            "1614265340",
        ]),
        BODY,
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["valid"], false);
}

#[test]
fn stripe_signatures_round_trip() {
    let file = payload_file(BODY);
    let path = file.path().to_str().unwrap();
    let (code, header, err) = admin(
        &[
            "webhooks",
            "sign",
            "--scheme",
            "stripe",
            "--timestamp",
            TS,
            "--payload-file",
            path,
        ],
        &[("HAVEN_WEBHOOK_SECRET", "sk_test_secret")],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let header = header.trim().to_owned();
    assert!(header.starts_with(&format!("t={TS},v1=")), "{header}");

    let args = [
        "--scheme",
        "stripe",
        "--now",
        "1614265331",
        "--signature",
        &header,
    ];
    let (code, out, _) = verify_with("sk_test_secret", &args, BODY);
    assert_eq!((code, out["valid"].as_bool()), (0, Some(true)));

    let (code, out, _) = verify_with("sk_test_other", &args, BODY);
    assert_eq!((code, out["valid"].as_bool()), (1, Some(false)));
}

#[test]
fn usage_errors_exit_2() {
    let file = payload_file(BODY);
    let path = file.path().to_str().unwrap();
    let cases: [(&str, &str, &[&str], &str); 3] = [
        (
            "standard without an id",
            SECRET,
            &["sign", "--scheme", "standard", "--timestamp", TS],
            "--id",
        ),
        (
            "a secret that is not whsec_<base64>",
            "not-a-secret",
            &[
                "sign",
                "--scheme",
                "standard",
                "--id",
                ID,
                "--timestamp",
                TS,
            ],
            "the secret",
        ),
        (
            "an unknown scheme",
            "s",
            &["verify", "--scheme", "hmac", "--signature", "x"],
            "standard",
        ),
    ];
    for (what, secret, args, named) in cases {
        let mut all = vec!["webhooks"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--payload-file", path]);
        let (code, out, err) = admin(&all, &[("HAVEN_WEBHOOK_SECRET", secret)], None);
        assert_eq!((code, out.as_str()), (2, ""), "{what}: {err}");
        assert!(err.contains(named), "{what}: {err}");
    }
}

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
    let file = payload_file(body);
    let path = file.path().to_str().unwrap();
    let mut all = vec!["webhooks", "verify", "--payload-file", path];
    all.extend_from_slice(args);
    let (code, out, err) = admin(&all, &[], None);
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
    let (code, out, err) = admin(
        &[
            "webhooks",
            "sign",
            "--scheme",
            "standard",
            "--secret",
            SECRET,
            "--id",
            ID,
            "--timestamp",
            TS,
            "--payload-file",
            file.path().to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), SIGNATURE);

    // The payload can come from standard input too, byte for byte.
    let (code, out, _) = admin(
        &[
            "webhooks",
            "sign",
            "--scheme",
            "standard",
            "--secret",
            SECRET,
            "--id",
            ID,
            "--timestamp",
            TS,
            "--payload-file",
            "-",
        ],
        &[],
        Some(BODY),
    );
    assert_eq!((code, out.trim()), (0, SIGNATURE));
}

#[test]
fn verify_accepts_the_reference_and_names_what_is_wrong_otherwise() {
    let standard = [
        "--scheme",
        "standard",
        "--secret",
        SECRET,
        "--id",
        ID,
        "--timestamp",
        TS,
    ];
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
            "--secret",
            "sk_test_secret",
            "--timestamp",
            TS,
            "--payload-file",
            path,
        ],
        &[],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let header = header.trim().to_owned();
    assert!(header.starts_with(&format!("t={TS},v1=")), "{header}");

    let args = [
        "--scheme",
        "stripe",
        "--secret",
        "sk_test_secret",
        "--now",
        "1614265331",
    ];
    let mut ok = args.to_vec();
    ok.extend_from_slice(&["--signature", &header]);
    let (code, out, _) = verify(&ok, BODY);
    assert_eq!((code, out["valid"].as_bool()), (0, Some(true)));

    let mut wrong = [
        "--scheme",
        "stripe",
        "--secret",
        "sk_test_other",
        "--now",
        "1614265331",
    ]
    .to_vec();
    wrong.extend_from_slice(&["--signature", &header]);
    let (code, out, _) = verify(&wrong, BODY);
    assert_eq!((code, out["valid"].as_bool()), (1, Some(false)));
}

#[test]
fn usage_errors_exit_2() {
    let file = payload_file(BODY);
    let path = file.path().to_str().unwrap();
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "standard without an id",
            &[
                "sign",
                "--scheme",
                "standard",
                "--secret",
                SECRET,
                "--timestamp",
                TS,
            ],
            "--id",
        ),
        (
            "a secret that is not whsec_<base64>",
            &[
                "sign",
                "--scheme",
                "standard",
                "--secret",
                "not-a-secret",
                "--id",
                ID,
                "--timestamp",
                TS,
            ],
            "--secret",
        ),
        (
            "an unknown scheme",
            &[
                "verify",
                "--scheme",
                "hmac",
                "--secret",
                "s",
                "--signature",
                "x",
            ],
            "standard",
        ),
    ];
    for (what, args, named) in cases {
        let mut all = vec!["webhooks"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--payload-file", path]);
        let (code, out, err) = admin(&all, &[], None);
        assert_eq!((code, out.as_str()), (2, ""), "{what}: {err}");
        assert!(err.contains(named), "{what}: {err}");
    }
}

use serde_json::{Value, json};

use crate::admin;

#[test]
fn one_address_prints_the_contract_and_exits_by_verdict() {
    let (code, out, _) = admin(
        &[
            "address",
            "validate",
            "--chain",
            "eth",
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        ],
        &[],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["chain"], "evm");
    assert_eq!(
        v["normalized"],
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    );

    let (code, out, _) = admin(
        &[
            "address",
            "validate",
            "--chain",
            "evm",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",
        ],
        &[],
        None,
    );
    assert_eq!(code, 1);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"valid": false, "chain": "evm", "error": "BAD_CHECKSUM", "message": "checksum mismatch"})
    );
}

#[test]
fn usage_errors_exit_2() {
    let (code, out, err) = admin(
        &["address", "validate", "--chain", "dogecoin", "D1"],
        &[],
        None,
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("dogecoin"), "{err}");
    let (code, _, _) = admin(&["address", "validate", "--chain", "evm"], &[], None);
    assert_eq!(code, 2);
    let (code, _, _) = admin(&["address", "validate"], &[], None);
    assert_eq!(code, 2);
}

#[test]
fn stdin_mode_prints_one_line_per_input() {
    let input =
        "eth\t0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\nevm\tnot-an-address\ndogecoin\tD1\n";
    let (code, out, _) = admin(&["address", "validate", "--stdin"], &[], Some(input));
    assert_eq!(code, 0);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[1]["valid"], false);
    assert_eq!(lines[1]["chain"], "evm");
    assert_eq!(lines[2]["error"], "UNSUPPORTED_CHAIN");
}

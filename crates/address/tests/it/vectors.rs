//! A1: every row of the public vector file (a copy kept in `tests/vectors/`).

use haven_address::bech32::{self, Variant};
use serde::Deserialize;

const VECTORS: &str = include_str!("../vectors/address_public.json");

#[derive(Debug, Deserialize)]
struct Row {
    chain: String,
    input: String,
    valid: bool,
    normalized: Option<String>,
    note: String,
}

fn rows() -> Vec<Row> {
    serde_json::from_str(VECTORS).unwrap()
}

/// What the crate says about one row: `Ok(normalized)` or `Err(code)`.
fn outcome(row: &Row) -> Result<String, String> {
    let variant = match row.chain.as_str() {
        "bech32" => Some(Variant::Bech32),
        "bech32m" => Some(Variant::Bech32m),
        _ => None,
    };
    match variant {
        Some(variant) => match bech32::decode(&row.input, bech32::BIP173_MAX_LENGTH) {
            Ok(decoded) if decoded.variant() == variant => Ok(row.input.to_ascii_lowercase()),
            Ok(_) => Err("WRONG_CHECKSUM_VARIANT".into()),
            Err(err) => Err(err.code().into()),
        },
        None => haven_address::validate(&row.chain, &row.input)
            .map(|address| address.into_normalized())
            .map_err(|err| err.code().to_owned()),
    }
}

#[test]
fn every_public_vector_passes() {
    let rows = rows();
    assert!(rows.len() >= 166, "vector file shrank: {}", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let got = outcome(row);
        let ok = match (&got, row.valid) {
            (Ok(normalized), true) => Some(normalized) == row.normalized.as_ref(),
            (Err(_), false) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{} {:?} ({}): expected valid={} normalized={:?}, got {:?}",
                row.chain, row.input, row.note, row.valid, row.normalized, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_family_and_both_bech32_variants_are_covered() {
    let rows = rows();
    for chain in [
        "bech32", "bech32m", "evm", "solana", "near", "ton", "bitcoin", "cosmos", "tron",
    ] {
        for valid in [true, false] {
            assert!(
                rows.iter().any(|r| r.chain == chain && r.valid == valid),
                "no {chain} row with valid={valid}"
            );
        }
    }
}

#[test]
fn invalid_vectors_say_why() {
    // A few rows whose reason is unambiguous, to pin the typed errors to the public file.
    let expected = [
        (
            "evm",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",
            "BAD_CHECKSUM",
        ),
        (
            "evm",
            "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "BAD_PREFIX",
        ),
        (
            "evm",
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea\u{435}d",
            "NON_ASCII",
        ),
        ("near", "alice..near", "BAD_SEPARATOR"),
        ("near", "Abc", "BAD_CHARACTER"),
        (
            "ton",
            "EX8s9VlT6S776tq3unJcP5Ogsj-ELLunLXuOb1EKcOQi4zsL",
            "BAD_WORKCHAIN",
        ),
        (
            "ton",
            "Ef/lZ1T4NCb2mwkme9h2rJfESCE0W34ma9lWp7-_uY3zXDvq",
            "MIXED_ALPHABET",
        ),
        (
            "ton",
            "EQDLbjIcfM6ezt8KjKJJLshZJJSqX7XOA4ff-W72r5gqPrHF",
            "BAD_CHECKSUM",
        ),
        (
            "bitcoin",
            "5JuW2AMDYu4xVwRG9DZW18VbzQrGcd5RCgb99sS6ehJsNQXu5b9",
            "PRIVATE_KEY",
        ),
        (
            "bitcoin",
            "Bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            "MIXED_CASE",
        ),
        (
            "bitcoin",
            "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv",
            "BAD_PADDING",
        ),
        ("bitcoin", "", "EMPTY"),
        (
            "cosmos",
            "cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqp9yku6l",
            "BAD_PADDING",
        ),
        ("tron", "27bVxBttcdFLPJx3JEGTtXwtj4Ebsa9kDKB", "BAD_LENGTH"),
        ("tron", "1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo", "BAD_VERSION"),
        (
            "solana",
            "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5D",
            "BAD_LENGTH",
        ),
    ];
    for (chain, input, code) in expected {
        let err = haven_address::validate(chain, input).unwrap_err();
        assert_eq!(err.code(), code, "{chain} {input:?}: {err}");
    }
}

//! A3 (library side): the exact JSON of the CLI and API contract.

use haven_address::{AddressError, Chain, Report, report};

fn json(chain: &str, input: &str) -> String {
    serde_json::to_string(&report(chain, input).unwrap()).unwrap()
}

#[test]
fn valid_report_is_exactly_the_contract() {
    assert_eq!(
        json("eth", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
        r#"{"valid":true,"chain":"evm","normalized":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","kind":"lowercase","network":"any"}"#
    );
    assert_eq!(
        json("btc", "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"),
        r#"{"valid":true,"chain":"bitcoin","normalized":"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4","kind":"p2wpkh","network":"mainnet"}"#
    );
    assert_eq!(
        json("ton", "0QAs9VlT6S776tq3unJcP5Ogsj-ELLunLXuOb1EKcOQi4-QO"),
        r#"{"valid":true,"chain":"ton","normalized":"0QAs9VlT6S776tq3unJcP5Ogsj-ELLunLXuOb1EKcOQi4-QO","kind":"non-bounceable","network":"testnet"}"#
    );
    assert_eq!(
        json("near", "0xb794f5ea0ba39494ce839613fffba74279579268"),
        r#"{"valid":true,"chain":"near","normalized":"0xb794f5ea0ba39494ce839613fffba74279579268","kind":"eth-implicit","network":"any"}"#
    );
    assert_eq!(
        json("BTC", "BC1SW50QGDZ25J"),
        r#"{"valid":true,"chain":"bitcoin","normalized":"bc1sw50qgdz25j","kind":"witness-v16","network":"mainnet"}"#
    );
}

#[test]
fn invalid_report_is_exactly_the_contract() {
    assert_eq!(
        json("evm", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
        r#"{"valid":false,"chain":"evm","error":"BAD_CHECKSUM","message":"checksum mismatch"}"#
    );
    assert_eq!(
        json("sol", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5D"),
        r#"{"valid":false,"chain":"solana","error":"BAD_LENGTH","message":"decoded payload has length 31, expected exactly 32"}"#
    );
    assert_eq!(
        json("near", "alice.near\u{200b}"),
        r#"{"valid":false,"chain":"near","error":"NON_ASCII","message":"non-ASCII character at position 10"}"#
    );
}

#[test]
fn cosmos_with_a_required_hrp_echoes_it() {
    assert_eq!(
        json(
            "cosmos:REMES",
            "remes1w508d6qejxtdg4y5r3zarvary0c5xw7k9zvx46"
        ),
        r#"{"valid":true,"chain":"cosmos:remes","normalized":"remes1w508d6qejxtdg4y5r3zarvary0c5xw7k9zvx46","kind":"account","network":"remes"}"#
    );
    assert_eq!(
        json(
            "cosmos:remes",
            "cosmos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu"
        ),
        r#"{"valid":false,"chain":"cosmos:remes","error":"WRONG_NETWORK","message":"network \"cosmos\" found where remes is required"}"#
    );
    assert_eq!(
        json("cosmos", "cosmos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu"),
        r#"{"valid":true,"chain":"cosmos","normalized":"cosmos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu","kind":"account","network":"cosmos"}"#
    );
}

#[test]
fn unknown_chain_is_an_error_not_a_report() {
    for chain in ["dogecoin", "", "evm:1", "cosmos:"] {
        let err = report(chain, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap_err();
        assert_eq!(err.disabled_family(), None);
        assert_eq!(
            AddressError::from(err).code(),
            "UNSUPPORTED_CHAIN",
            "{chain:?}"
        );
    }
}

#[test]
fn unknown_chain_can_be_answered_in_a_batch_line() {
    let err = report("dogecoin", "D8vFz4p1L37jdg47HXKtSHA5uYLYxbGgPD").unwrap_err();
    assert_eq!(
        serde_json::to_string(&Report::unsupported_chain(err)).unwrap(),
        r#"{"valid":false,"chain":"dogecoin","error":"UNSUPPORTED_CHAIN","message":"unsupported chain \"dogecoin\""}"#
    );
}

#[test]
fn messages_never_repeat_the_input() {
    let secret = "5JuW2AMDYu4xVwRG9DZW18VbzQrGcd5RCgb99sS6ehJsNQXu5b9";
    let line = json("bitcoin", secret);
    assert_eq!(
        line,
        r#"{"valid":false,"chain":"bitcoin","error":"PRIVATE_KEY","message":"this is a private key (WIF), not an address; treat the key as exposed"}"#
    );
    assert!(!line.contains(secret));
}

#[test]
fn codes_are_unique_screaming_snake() {
    let mut seen = std::collections::HashSet::new();
    for code in AddressError::CODES {
        assert!(seen.insert(code), "duplicate {code}");
        assert!(
            code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
            "{code}"
        );
    }
}

#[test]
fn report_from_a_parsed_chain_matches() {
    let chain: Chain = "trx".parse().unwrap();
    let report = Report::new(&chain, "TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL");
    assert!(report.is_valid());
    assert_eq!(report.chain(), "tron");
}

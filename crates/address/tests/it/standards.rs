//! Cases taken from the standards themselves: ERC-55, BIP-173, BIP-350, TEP-2 and the
//! account-id tests of nearcore's `near-account-id`.

use haven_address::bech32::{self, Variant};
use haven_address::{Chain, Family, Kind, Network};

fn code(chain: &str, input: &str) -> String {
    haven_address::validate(chain, input)
        .map(|a| format!("valid {}", a.normalized()))
        .unwrap_or_else(|e| e.code().to_owned())
}

#[test]
fn erc55_examples() {
    for address in [
        // All caps.
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        // All lower.
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
        // Normal.
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ] {
        let parsed = haven_address::validate("ethereum", address).unwrap();
        assert_eq!(parsed.normalized(), address);
        assert_eq!(parsed.kind(), Kind::Eip55);
        // Flipping the case of any one letter breaks the checksum.
        for (i, c) in address.char_indices().skip(2) {
            if c.is_ascii_alphabetic() {
                let mut flipped = address.to_owned();
                let swapped = if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                };
                flipped.replace_range(i..=i, &swapped.to_string());
                let all_same_case = flipped[2..] == flipped[2..].to_ascii_lowercase()
                    || flipped[2..] == flipped[2..].to_ascii_uppercase();
                let expected = if all_same_case {
                    format!("valid {address}")
                } else {
                    "BAD_CHECKSUM".to_owned()
                };
                assert_eq!(code("evm", &flipped), expected, "{flipped}");
            }
        }
    }
}

#[test]
fn bip173_and_bip350_checksum_strings() {
    let valid = [
        ("A12UEL5L", Variant::Bech32),
        ("a12uel5l", Variant::Bech32),
        (
            "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
            Variant::Bech32,
        ),
        (
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
            Variant::Bech32,
        ),
        (
            "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
            Variant::Bech32,
        ),
        (
            "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
            Variant::Bech32,
        ),
        ("?1ezyfcl", Variant::Bech32),
        ("A1LQFN3A", Variant::Bech32m),
        ("a1lqfn3a", Variant::Bech32m),
        (
            "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
            Variant::Bech32m,
        ),
        (
            "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
            Variant::Bech32m,
        ),
        (
            "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
            Variant::Bech32m,
        ),
        (
            "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
            Variant::Bech32m,
        ),
        ("?1v759aa", Variant::Bech32m),
    ];
    for (input, variant) in valid {
        let decoded = bech32::decode(input, bech32::BIP173_MAX_LENGTH).unwrap();
        assert_eq!(decoded.variant(), variant, "{input}");
    }
    let invalid = [
        ("x1b4n0q5v", "BAD_CHARACTER"),
        ("li1dgmt3", "BAD_LENGTH"),
        ("de1lg7wt\u{ff}", "NON_ASCII"),
        ("A1G7SGD8", "BAD_CHECKSUM"),
        ("10a06t8", "BAD_LENGTH"),
        ("1qzzfhee", "BAD_LENGTH"),
        ("qyrz8wqd2c9m", "MISSING_SEPARATOR"),
        ("1qyrz8wqd2c9m", "BAD_LENGTH"),
        ("y1b0jsk6g", "BAD_CHARACTER"),
        ("lt1igcx5c0", "BAD_CHARACTER"),
        ("in1muywd", "BAD_LENGTH"),
        ("mm1crxm3i", "BAD_CHARACTER"),
        ("au1s5cgom", "BAD_CHARACTER"),
        ("M1VUXWEZ", "BAD_CHECKSUM"),
        ("16plkw9", "BAD_LENGTH"),
        ("1p2gdwpf", "BAD_LENGTH"),
    ];
    for (input, expected) in invalid {
        let err = bech32::decode(input, bech32::BIP173_MAX_LENGTH).unwrap_err();
        assert_eq!(err.code(), expected, "{input:?}: {err}");
    }
}

#[test]
fn bip350_segwit_addresses() {
    let valid = [
        ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", Kind::P2wpkh),
        (
            "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
            Kind::P2wsh,
        ),
        (
            "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
            Kind::Witness { version: 1 },
        ),
        ("BC1SW50QGDZ25J", Kind::Witness { version: 16 }),
        (
            "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs",
            Kind::Witness { version: 2 },
        ),
        (
            "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
            Kind::P2wsh,
        ),
        (
            "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
            Kind::P2tr,
        ),
        (
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
            Kind::P2tr,
        ),
    ];
    for (input, kind) in valid {
        let address = haven_address::validate("btc", input).unwrap();
        assert_eq!(address.kind(), kind, "{input}");
        assert_eq!(address.normalized(), input.to_ascii_lowercase());
    }
    let invalid = [
        (
            "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",
            "WRONG_NETWORK",
        ),
        (
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
            "WRONG_CHECKSUM_VARIANT",
        ),
        (
            "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
            "WRONG_CHECKSUM_VARIANT",
        ),
        (
            "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
            "WRONG_CHECKSUM_VARIANT",
        ),
        (
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
            "WRONG_CHECKSUM_VARIANT",
        ),
        (
            "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
            "WRONG_CHECKSUM_VARIANT",
        ),
        (
            "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
            "BAD_CHARACTER",
        ),
        (
            "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
            "BAD_VERSION",
        ),
        ("bc1pw5dgrnzv", "BAD_LENGTH"),
        (
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
            "BAD_LENGTH",
        ),
        ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "BAD_LENGTH"),
        (
            "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
            "MIXED_CASE",
        ),
        (
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
            "BAD_PADDING",
        ),
        (
            "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
            "BAD_PADDING",
        ),
        ("bc1gmk9yu", "BAD_LENGTH"),
    ];
    for (input, expected) in invalid {
        assert_eq!(code("bitcoin", input), expected, "{input}");
    }
}

#[test]
fn tep2_examples() {
    // The masterchain address of TEP-2, in its raw form and in both alphabets of its
    // bounceable, test-only user-friendly form.
    let raw = "-1:fcb91a3a3816d0f7b8c2c76108b8a9bc5a6b7a55bd79f8ab101c52db29232260";
    let raw_address = haven_address::validate("ton", raw).unwrap();
    assert_eq!(raw_address.kind(), Kind::Raw);
    assert_eq!(raw_address.network(), &Network::Any);
    let url = "kf_8uRo6OBbQ97jCx2EIuKm8Wmt6Vb15-KsQHFLbKSMiYIny";
    for input in ["kf/8uRo6OBbQ97jCx2EIuKm8Wmt6Vb15+KsQHFLbKSMiYIny", url] {
        let address = haven_address::validate("ton", input).unwrap();
        assert_eq!(address.normalized(), url);
        assert_eq!(address.kind(), Kind::Bounceable);
        assert_eq!(address.network(), &Network::Testnet);
    }
    assert_eq!(
        code("ton", &raw.to_ascii_uppercase()),
        format!("valid {raw}")
    );
    assert_eq!(code("ton", &raw.replace("-1:", "1:")), "BAD_WORKCHAIN");
    assert_eq!(code("ton", &raw.replace("-1:", "+0:")), "BAD_PREFIX");
    assert_eq!(code("ton", &raw.replace("-1:", ":")), "BAD_PREFIX");
    assert_eq!(code("ton", &url[..47]), "BAD_LENGTH");
}

#[test]
fn near_account_id_cases() {
    // The OK and BAD lists of nearcore's `near-account-id` tests.
    let ok = [
        "aa",
        "a-a",
        "a-aa",
        "100",
        "0o",
        "com",
        "near",
        "bowen",
        "b-o_w_e-n",
        "b.owen",
        "bro.wen",
        "a.ha",
        "a.b-a.ra",
        "system",
        "over.9000",
        "google.com",
        "illia.cheapaccounts.near",
        "0o0ooo00oo00o",
        "alex-skidanov",
        "10-4.8-2",
        "no_lols",
        "0123456789012345678901234567890123456789012345678901234567890123",
        "near.a",
        "a.a",
    ];
    for input in ok {
        assert_eq!(code("near", input), format!("valid {input}"));
    }
    let bad = [
        "a",
        "A",
        "Abc",
        "-near",
        "near-",
        "-near-",
        "near.",
        ".near",
        "near@",
        "@near",
        "\u{43d}\u{435}\u{430}\u{440}",
        "@@@@@",
        "0__0",
        "0_-_0",
        "..",
        "a..near",
        "nEar",
        "_bowen",
        "hello world",
        "abcdefghijklmnopqrstuvwxyz.abcdefghijklmnopqrstuvwxyz.abcdefghijklmnopqrstuvwxyz",
        "01234567890123456789012345678901234567890123456789012345678901234",
        "some-complex-address@gmail.com",
        "sub.buy_d1gitz@atata@b0-rg.c_0_m",
    ];
    for input in bad {
        assert!(
            haven_address::validate("near", input).is_err(),
            "{input:?} accepted"
        );
    }
}

#[test]
fn detect_lists_every_matching_family() {
    let cases: [(&str, &[Family]); 7] = [
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", &[Family::Evm]),
        (
            "So11111111111111111111111111111111111111112",
            &[Family::Solana],
        ),
        ("alice.near", &[Family::Near]),
        (
            "EQAs9VlT6S776tq3unJcP5Ogsj-ELLunLXuOb1EKcOQi4wJB",
            &[Family::Ton],
        ),
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", &[Family::Bitcoin]),
        (
            "remes1w508d6qejxtdg4y5r3zarvary0c5xw7k9zvx46",
            &[Family::Near, Family::Cosmos],
        ),
        ("TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL", &[Family::Tron]),
    ];
    for (input, families) in cases {
        assert_eq!(haven_address::detect(input), families, "{input}");
    }
    assert!(haven_address::detect("").is_empty());
    assert!(haven_address::detect("not an address").is_empty());
}

#[test]
fn unknown_chains_are_distinct_from_invalid_addresses() {
    let err =
        haven_address::validate("dogecoin", "D8vFz4p1L37jdg47HXKtSHA5uYLYxbGgPD").unwrap_err();
    assert!(err.is_unsupported_chain());
    assert_eq!(err.code(), "UNSUPPORTED_CHAIN");
    assert!("dogecoin".parse::<Chain>().is_err());
}

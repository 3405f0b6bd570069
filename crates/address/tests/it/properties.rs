//! A2: normalization is idempotent and a normalized valid address validates to itself; the
//! bech32 layer agrees with the `bech32` crate; no input panics.

use base64::Engine;
use bech32::{Bech32, Bech32m, Fe32, Hrp, primitives::decode::CheckedHrpstring};
use haven_address::bech32::{self as layer, Variant};
use haven_address::{Chain, Family};
use proptest::prelude::*;

/// The A2 invariant for one input of one chain.
fn assert_normal_form(chain: &str, input: &str) -> Result<(), TestCaseError> {
    let first = haven_address::validate(chain, input)
        .map_err(|e| TestCaseError::fail(format!("{chain} {input:?} rejected: {e}")))?;
    let again = haven_address::validate(chain, first.normalized())
        .map_err(|e| TestCaseError::fail(format!("normalized {first} rejected: {e}")))?;
    prop_assert_eq!(again.normalized(), first.normalized());
    prop_assert_eq!(again.family(), first.family());
    prop_assert_eq!(again.network(), first.network());
    prop_assert_eq!(
        haven_address::normalize(chain, first.normalized()).unwrap(),
        first.normalized()
    );
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ton_friendly(tag: u8, workchain: u8, hash: &[u8; 32], url_safe: bool) -> String {
    let mut raw = Vec::with_capacity(36);
    raw.push(tag);
    raw.push(workchain);
    raw.extend_from_slice(hash);
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM).checksum(&raw);
    raw.extend_from_slice(&crc.to_be_bytes());
    if url_safe {
        base64::engine::general_purpose::URL_SAFE.encode(&raw)
    } else {
        base64::engine::general_purpose::STANDARD.encode(&raw)
    }
}

fn near_named() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}([-_.][a-z0-9]{1,8}){0,5}"
        .prop_filter("2-64 characters", |s| (2..=64).contains(&s.len()))
}

proptest! {
    #[test]
    fn evm_in_any_case_normalizes_to_a_fixed_point(bytes in any::<[u8; 20]>(), upper in any::<bool>()) {
        let body = hex(&bytes);
        let body = if upper { body.to_ascii_uppercase() } else { body };
        let input = format!("0x{body}");
        assert_normal_form("evm", &input)?;
        let normalized = haven_address::normalize("evm", &input).unwrap();
        prop_assert_eq!(normalized.to_ascii_lowercase(), input.to_ascii_lowercase());
    }

    #[test]
    fn solana_keys_are_unchanged(bytes in any::<[u8; 32]>()) {
        let input = bs58::encode(bytes).into_string();
        assert_normal_form("solana", &input)?;
        prop_assert_eq!(haven_address::normalize("sol", &input).unwrap(), input);
    }

    #[test]
    fn near_accounts_are_unchanged(named in near_named(), implicit in any::<[u8; 32]>(), eth in any::<[u8; 20]>()) {
        for input in [named, hex(&implicit), format!("0x{}", hex(&eth))] {
            assert_normal_form("near", &input)?;
            prop_assert_eq!(haven_address::normalize("near", &input).unwrap(), input);
        }
    }

    #[test]
    fn ton_addresses_normalize_to_url_safe_with_flags_kept(
        bounceable in any::<bool>(),
        test_only in any::<bool>(),
        masterchain in any::<bool>(),
        hash in any::<[u8; 32]>(),
        url_safe in any::<bool>(),
    ) {
        let tag = if bounceable { 0x11 } else { 0x51 } | if test_only { 0x80 } else { 0 };
        let workchain = if masterchain { 0xff } else { 0x00 };
        let input = ton_friendly(tag, workchain, &hash, url_safe);
        assert_normal_form("ton", &input)?;
        let expected = ton_friendly(tag, workchain, &hash, true);
        prop_assert_eq!(haven_address::normalize("ton", &input).unwrap(), expected);

        let raw = format!("{}:{}", if masterchain { "-1" } else { "0" }, hex(&hash).to_ascii_uppercase());
        assert_normal_form("ton", &raw)?;
        prop_assert_eq!(haven_address::normalize("ton", &raw).unwrap(), raw.to_ascii_lowercase());
    }

    #[test]
    fn bitcoin_base58_addresses_are_unchanged(
        version in prop::sample::select(vec![0x00u8, 0x05, 0x6f, 0xc4]),
        hash in any::<[u8; 20]>(),
    ) {
        let mut payload = vec![version];
        payload.extend_from_slice(&hash);
        let input = bs58::encode(payload).with_check().into_string();
        assert_normal_form("bitcoin", &input)?;
        prop_assert_eq!(haven_address::normalize("btc", &input).unwrap(), input);
    }

    #[test]
    fn segwit_addresses_normalize_to_lower_case(
        testnet in any::<bool>(),
        version in 0u8..=16,
        program in prop::collection::vec(any::<u8>(), 2..=40),
        upper in any::<bool>(),
    ) {
        let length_ok = if version == 0 { matches!(program.len(), 20 | 32) } else { true };
        prop_assume!(length_ok);
        let hrp = Hrp::parse(if testnet { "tb" } else { "bc" }).unwrap();
        let encoded = bech32::segwit::encode(hrp, Fe32::try_from(version).unwrap(), &program).unwrap();
        let input = if upper { encoded.to_ascii_uppercase() } else { encoded.clone() };
        assert_normal_form("bitcoin", &input)?;
        prop_assert_eq!(haven_address::normalize("bitcoin", &input).unwrap(), encoded);
    }

    #[test]
    fn cosmos_addresses_normalize_to_lower_case(
        hrp in "[a-z]{1,12}",
        payload in prop::collection::vec(any::<u8>(), 1..=64),
        upper in any::<bool>(),
    ) {
        let encoded = bech32::encode::<Bech32>(Hrp::parse(&hrp).unwrap(), &payload).unwrap();
        let input = if upper { encoded.to_ascii_uppercase() } else { encoded.clone() };
        assert_normal_form("cosmos", &input)?;
        let required = format!("cosmos:{hrp}");
        assert_normal_form(&required, &input)?;
        prop_assert_eq!(haven_address::normalize(&required, &input).unwrap(), encoded);
    }

    #[test]
    fn tron_addresses_are_unchanged(hash in any::<[u8; 20]>()) {
        let mut payload = vec![0x41u8];
        payload.extend_from_slice(&hash);
        let input = bs58::encode(payload).with_check().into_string();
        assert_normal_form("tron", &input)?;
        prop_assert_eq!(haven_address::normalize("trx", &input).unwrap(), input);
    }

    /// Valid strings from the `bech32` crate, optionally upper-cased or with one character
    /// replaced: both implementations agree on validity, variant, HRP and data.
    #[test]
    fn bech32_layer_agrees_with_the_bech32_crate(
        hrp in "[a-z0-9!?~]{1,10}",
        data in prop::collection::vec(any::<u8>(), 0..40),
        modern in any::<bool>(),
        upper in any::<bool>(),
        mutation in prop::option::of((any::<prop::sample::Index>(), "[a-z0-9]")),
    ) {
        let hrp = Hrp::parse(&hrp).unwrap();
        let mut input = if modern {
            bech32::encode::<Bech32m>(hrp, &data).unwrap()
        } else {
            bech32::encode::<Bech32>(hrp, &data).unwrap()
        };
        if let Some((index, replacement)) = &mutation {
            let i = index.index(input.len());
            input.replace_range(i..=i, replacement);
        }
        if upper {
            input = input.to_ascii_uppercase();
        }
        let ours = layer::decode(&input, layer::BIP173_MAX_LENGTH);
        let theirs = [
            (Variant::Bech32, CheckedHrpstring::new::<Bech32>(&input).ok()),
            (Variant::Bech32m, CheckedHrpstring::new::<Bech32m>(&input).ok()),
        ]
        .into_iter()
        .find_map(|(variant, checked)| checked.map(|c| (variant, c)));
        match (ours, theirs) {
            (Ok(decoded), Some((variant, checked))) => {
                prop_assert_eq!(decoded.variant(), variant);
                prop_assert_eq!(decoded.hrp(), checked.hrp().to_lowercase());
                let charset = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
                let values: Vec<u8> = checked
                    .data_part_ascii_no_checksum()
                    .iter()
                    .map(|c| charset.iter().position(|x| *x == c.to_ascii_lowercase()).unwrap() as u8)
                    .collect();
                prop_assert_eq!(decoded.data(), values.as_slice());
            }
            (Err(_), None) => {}
            (ours, theirs) => {
                prop_assert!(false, "{input:?}: ours {ours:?}, bech32 crate accepts: {}", theirs.is_some());
            }
        }
        if mutation.is_none() {
            let bytes = layer::to_bytes(layer::decode(&input, 90).unwrap().data()).unwrap();
            prop_assert_eq!(bytes, data);
        }
    }

    /// Any text: no panic, and whatever validates is already a fixed point once normalized.
    #[test]
    fn arbitrary_text_never_panics_and_valid_results_are_fixed_points(
        input in prop_oneof![
            any::<String>(),
            "[ -~]{0,80}",
            "(0x|0X|bc1|tb1|cosmos1|EQ|UQ|-1:|0:|T)[0-9A-Za-z+/_-]{0,70}",
        ],
    ) {
        let families = haven_address::detect(&input);
        for family in Family::ALL {
            let chain = Chain::new(family);
            let result = chain.validate(&input);
            prop_assert_eq!(result.is_ok(), families.contains(&family));
            if result.is_ok() {
                assert_normal_form(family.name(), &input)?;
            }
        }
    }
}

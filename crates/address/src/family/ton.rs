//! TON addresses (TEP-2): raw `workchain:hex` and the 48-character user-friendly form.

use crate::error::{AddressError, Expected, Part, Result};
use crate::{Address, Family, Kind, Network};

const FRIENDLY_LENGTH: usize = 48;
const HASH_HEX_LENGTH: usize = 64;
const TAG_BOUNCEABLE: u8 = 0x11;
const TAG_NON_BOUNCEABLE: u8 = 0x51;
const TAG_TEST_ONLY: u8 = 0x80;
const XMODEM: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

pub(crate) fn validate(input: &str) -> Result<Address> {
    match input.split_once(':') {
        Some((workchain, hash)) => validate_raw(workchain, hash),
        None => validate_friendly(input),
    }
}

fn validate_raw(workchain: &str, hash: &str) -> Result<Address> {
    match workchain {
        "0" | "-1" => {}
        other => {
            return Err(match other.parse::<i32>() {
                // `+0` or `-0` spell a valid workchain in a non-canonical way: a prefix error.
                Ok(found) if found != 0 && found != -1 => AddressError::BadWorkchain { found },
                _ => AddressError::BadPrefix {
                    expected: "0: or -1:",
                },
            });
        }
    }
    if hash.len() != HASH_HEX_LENGTH {
        return Err(AddressError::BadLength {
            part: Part::Hash,
            expected: Expected::Exactly(HASH_HEX_LENGTH),
            found: hash.len(),
        });
    }
    if let Some(i) = hash.bytes().position(|b| !b.is_ascii_hexdigit()) {
        return Err(AddressError::BadCharacter {
            position: workchain.len() + 1 + i,
            character: char::from(hash.as_bytes()[i]),
        });
    }
    let normalized = format!("{workchain}:{}", hash.to_ascii_lowercase());
    Ok(Address::new(
        Family::Ton,
        normalized,
        Kind::Raw,
        Network::Any,
    ))
}

fn validate_friendly(input: &str) -> Result<Address> {
    let bytes = input.as_bytes();
    if bytes.len() != FRIENDLY_LENGTH {
        return Err(AddressError::BadLength {
            part: Part::Input,
            expected: Expected::Exactly(FRIENDLY_LENGTH),
            found: bytes.len(),
        });
    }
    let (mut standard, mut url_safe) = (false, false);
    let mut decoded = [0u8; 36];
    let mut accumulator = 0u32;
    let mut filled = 0;
    for (position, &b) in bytes.iter().enumerate() {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'/' => {
                standard = true;
                if b == b'+' { 62 } else { 63 }
            }
            b'-' | b'_' => {
                url_safe = true;
                if b == b'-' { 62 } else { 63 }
            }
            _ => {
                return Err(AddressError::BadCharacter {
                    position,
                    character: char::from(b),
                });
            }
        };
        accumulator = (accumulator << 6) | u32::from(value);
        // 48 characters are 12 whole groups of 4, so every group yields exactly 3 bytes.
        if position % 4 == 3 {
            decoded[filled..filled + 3].copy_from_slice(&accumulator.to_be_bytes()[1..]);
            filled += 3;
            accumulator = 0;
        }
    }
    if standard && url_safe {
        return Err(AddressError::MixedAlphabet);
    }
    let crc = XMODEM.checksum(&decoded[..34]);
    if crc.to_be_bytes() != decoded[34..] {
        return Err(AddressError::BadChecksum);
    }
    let tag = decoded[0];
    let kind = match tag & !TAG_TEST_ONLY {
        TAG_BOUNCEABLE => Kind::Bounceable,
        TAG_NON_BOUNCEABLE => Kind::NonBounceable,
        _ => return Err(AddressError::BadVersion { found: tag }),
    };
    match decoded[1] {
        0x00 | 0xff => {}
        other => {
            return Err(AddressError::BadWorkchain {
                found: i32::from(other as i8),
            });
        }
    }
    let network = if tag & TAG_TEST_ONLY != 0 {
        Network::Testnet
    } else {
        Network::Mainnet
    };
    let normalized = input
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    Ok(Address::new(Family::Ton, normalized, kind, network))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_xmodem_check_value() {
        assert_eq!(XMODEM.checksum(b"123456789"), 0x31c3);
    }

    #[test]
    fn standard_alphabet_normalizes_to_url_safe() {
        let address = validate("Ef/lZ1T4NCb2mwkme9h2rJfESCE0W34ma9lWp7+/uY3zXDvq").unwrap();
        assert_eq!(
            address.normalized(),
            "Ef_lZ1T4NCb2mwkme9h2rJfESCE0W34ma9lWp7-_uY3zXDvq"
        );
        assert_eq!(address.kind(), Kind::Bounceable);
        assert_eq!(address.network(), &Network::Mainnet);
    }

    #[test]
    fn flags_are_reported() {
        let address = validate("0QAs9VlT6S776tq3unJcP5Ogsj-ELLunLXuOb1EKcOQi4-QO").unwrap();
        assert_eq!(address.kind(), Kind::NonBounceable);
        assert_eq!(address.network(), &Network::Testnet);
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            validate("EX8s9VlT6S776tq3unJcP5Ogsj-ELLunLXuOb1EKcOQi4zsL"),
            Err(AddressError::BadWorkchain { found: 127 })
        );
        assert_eq!(
            validate("Ef/lZ1T4NCb2mwkme9h2rJfESCE0W34ma9lWp7-_uY3zXDvq"),
            Err(AddressError::MixedAlphabet)
        );
        assert_eq!(
            validate("EQDKbjIcfM6ezt8KjKJJLshZJJSqX7XOA4ff-W72r5gqPrHE"),
            Err(AddressError::BadChecksum)
        );
        assert_eq!(
            validate(&format!("1:{}", "0".repeat(64))),
            Err(AddressError::BadWorkchain { found: 1 })
        );
        assert_eq!(
            validate(&format!("0:{}", "0".repeat(63)))
                .unwrap_err()
                .code(),
            "BAD_LENGTH"
        );
        assert_eq!(
            validate("-1:E56754F83426F69B09267BD876AC97C44821345B7E266BD956A7BFBFB98DF35C")
                .unwrap()
                .normalized(),
            "-1:e56754f83426f69b09267bd876ac97c44821345b7e266bd956a7bfbfb98df35c"
        );
    }
}

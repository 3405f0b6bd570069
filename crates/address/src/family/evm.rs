//! ERC-55: `0x` + 40 hex digits; a mixed-case body must carry the EIP-55 checksum.

use sha3::{Digest, Keccak256};

use crate::error::{AddressError, Expected, Part, Result};
use crate::{Address, Family, Kind, Network};

const LENGTH: usize = 42;

pub(crate) fn validate(input: &str) -> Result<Address> {
    let bytes = input.as_bytes();
    // `0X` is refused: ERC-55 and every wallet write the prefix in lower case.
    if !bytes.starts_with(b"0x") {
        return Err(AddressError::BadPrefix { expected: "0x" });
    }
    if bytes.len() != LENGTH {
        return Err(AddressError::BadLength {
            part: Part::Input,
            expected: Expected::Exactly(LENGTH),
            found: bytes.len(),
        });
    }
    let body = &bytes[2..];
    let mut lower = [0u8; 40];
    let (mut has_lower, mut has_upper) = (false, false);
    for (i, (&b, slot)) in body.iter().zip(lower.iter_mut()).enumerate() {
        *slot = match b {
            b'0'..=b'9' => b,
            b'a'..=b'f' => {
                has_lower = true;
                b
            }
            b'A'..=b'F' => {
                has_upper = true;
                b.to_ascii_lowercase()
            }
            _ => {
                return Err(AddressError::BadCharacter {
                    position: i + 2,
                    character: char::from(b),
                });
            }
        };
    }
    let checksummed = checksum_body(&lower);
    let kind = if body == checksummed.as_slice() {
        Kind::Eip55
    } else if has_lower && has_upper {
        return Err(AddressError::BadChecksum);
    } else if has_upper {
        Kind::UpperCase
    } else {
        Kind::LowerCase
    };
    let mut normalized = String::with_capacity(LENGTH);
    normalized.push_str("0x");
    normalized.extend(checksummed.iter().map(|&b| char::from(b)));
    Ok(Address::new(Family::Evm, normalized, kind, Network::Any))
}

/// The EIP-55 form of a lower-case hex body: a letter is upper-cased when the matching nibble
/// of keccak256(body) is 8 or more.
fn checksum_body(lower: &[u8; 40]) -> [u8; 40] {
    let hash = Keccak256::digest(lower);
    let mut out = *lower;
    for (i, b) in out.iter_mut().enumerate() {
        let nibble = if i % 2 == 0 {
            hash[i / 2] >> 4
        } else {
            hash[i / 2] & 0x0f
        };
        if nibble >= 8 {
            b.make_ascii_uppercase();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of the ERC-55 specification.
    #[test]
    fn erc55_examples_verify() {
        for address in [
            "0x52908400098527886E0F7030069857D2E4169EE7",
            "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
            "0xde709f2102306220921060314715629080e2fb77",
            "0x27b1fdb04752bbc536007a920d24acb045561c26",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let parsed = validate(address).unwrap();
            assert_eq!(parsed.normalized(), address);
            assert_eq!(parsed.kind(), Kind::Eip55);
        }
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            validate("0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            Err(AddressError::BadPrefix { expected: "0x" })
        );
        assert_eq!(
            validate("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe"),
            Err(AddressError::BadLength {
                part: Part::Input,
                expected: Expected::Exactly(42),
                found: 41
            })
        );
        assert_eq!(
            validate("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg"),
            Err(AddressError::BadCharacter {
                position: 41,
                character: 'g'
            })
        );
        assert_eq!(
            validate("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
            Err(AddressError::BadChecksum)
        );
    }

    #[test]
    fn case_uniform_bodies_are_accepted_and_checksummed() {
        let upper = validate("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED").unwrap();
        assert_eq!(upper.kind(), Kind::UpperCase);
        assert_eq!(
            upper.normalized(),
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        );
        let lower = validate("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").unwrap();
        assert_eq!(lower.kind(), Kind::LowerCase);
        assert_eq!(lower.normalized(), upper.normalized());
    }
}

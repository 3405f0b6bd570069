//! Bitcoin: base58check P2PKH/P2SH and segwit (BIP-173 bech32 for v0, BIP-350 bech32m for
//! v1–v16). WIF private keys are recognised and refused.

use crate::bech32::{self, Variant};
use crate::error::{AddressError, Expected, Part, Result};
use crate::family::base58;
use crate::{Address, Family, Kind, Network};

const BASE58_ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// Longest base58 input decoded; WIF keys (51–52 characters) must still be recognised.
const MAX_BASE58_LENGTH: usize = 60;
const PAYLOAD_LENGTH: usize = 21;

pub(crate) fn validate(input: &str) -> Result<Address> {
    if looks_like_segwit(input) {
        validate_segwit(input)
    } else {
        validate_base58(input)
    }
}

/// A known segwit prefix, or a bech32 separator together with a character base58 never uses.
fn looks_like_segwit(input: &str) -> bool {
    let prefix = input.get(..3).map(str::to_ascii_lowercase);
    if matches!(prefix.as_deref(), Some("bc1" | "tb1")) {
        return true;
    }
    input.contains('1') && input.bytes().any(|b| !BASE58_ALPHABET.contains(&b))
}

fn validate_segwit(input: &str) -> Result<Address> {
    let decoded = bech32::decode(input, bech32::BIP173_MAX_LENGTH)?;
    let network = match decoded.hrp() {
        "bc" => Network::Mainnet,
        "tb" => Network::Testnet,
        other => {
            return Err(AddressError::WrongNetwork {
                expected: "bc or tb".to_owned(),
                found: other.to_owned(),
            });
        }
    };
    let Some((&version, program)) = decoded.data().split_first() else {
        return Err(AddressError::BadLength {
            part: Part::Data,
            expected: Expected::AtLeast(7),
            found: 6,
        });
    };
    if version > 16 {
        return Err(AddressError::BadVersion { found: version });
    }
    let expected = if version == 0 {
        Variant::Bech32
    } else {
        Variant::Bech32m
    };
    if decoded.variant() != expected {
        return Err(AddressError::WrongChecksumVariant {
            expected,
            found: decoded.variant(),
        });
    }
    let program = bech32::to_bytes(program)?;
    if !(2..=40).contains(&program.len()) {
        return Err(AddressError::BadLength {
            part: Part::Program,
            expected: Expected::Between(2, 40),
            found: program.len(),
        });
    }
    let kind = match (version, program.len()) {
        (0, 20) => Kind::P2wpkh,
        (0, 32) => Kind::P2wsh,
        (0, found) => {
            return Err(AddressError::BadLength {
                part: Part::Program,
                expected: Expected::OneOf(&[20, 32]),
                found,
            });
        }
        (1, 32) => Kind::P2tr,
        (version, _) => Kind::Witness { version },
    };
    Ok(Address::new(
        Family::Bitcoin,
        input.to_ascii_lowercase(),
        kind,
        network,
    ))
}

fn validate_base58(input: &str) -> Result<Address> {
    if input.len() > MAX_BASE58_LENGTH {
        return Err(AddressError::BadLength {
            part: Part::Input,
            expected: Expected::Between(26, 35),
            found: input.len(),
        });
    }
    let payload = base58::decode_check(input)?;
    let (kind, network) = match (payload.first().copied(), payload.len()) {
        // 0x80 mainnet / 0xef testnet, 32-byte key, optional 0x01 compression flag.
        (Some(0x80 | 0xef), 33 | 34) => return Err(AddressError::PrivateKey),
        (Some(version), PAYLOAD_LENGTH) => match version {
            0x00 => (Kind::P2pkh, Network::Mainnet),
            0x05 => (Kind::P2sh, Network::Mainnet),
            0x6f => (Kind::P2pkh, Network::Testnet),
            0xc4 => (Kind::P2sh, Network::Testnet),
            found => return Err(AddressError::BadVersion { found }),
        },
        (_, found) => {
            return Err(AddressError::BadLength {
                part: Part::Payload,
                expected: Expected::Exactly(PAYLOAD_LENGTH),
                found,
            });
        }
    };
    Ok(Address::new(
        Family::Bitcoin,
        input.to_owned(),
        kind,
        network,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_networks() {
        let cases = [
            (
                "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
                Kind::P2pkh,
                Network::Mainnet,
            ),
            (
                "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
                Kind::P2sh,
                Network::Mainnet,
            ),
            (
                "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",
                Kind::P2pkh,
                Network::Testnet,
            ),
            (
                "2NC2hEhe28ULKAJkW5MjZ3jtTMJdvXmByvK",
                Kind::P2sh,
                Network::Testnet,
            ),
            (
                "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
                Kind::P2wpkh,
                Network::Mainnet,
            ),
            (
                "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
                Kind::P2wsh,
                Network::Testnet,
            ),
            (
                "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
                Kind::P2tr,
                Network::Mainnet,
            ),
            (
                "BC1SW50QGDZ25J",
                Kind::Witness { version: 16 },
                Network::Mainnet,
            ),
        ];
        for (input, kind, network) in cases {
            let address = validate(input).unwrap();
            assert_eq!(
                (address.kind(), address.network()),
                (kind, &network),
                "{input}"
            );
        }
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            validate("5JuW2AMDYu4xVwRG9DZW18VbzQrGcd5RCgb99sS6ehJsNQXu5b9"),
            Err(AddressError::PrivateKey)
        );
        assert_eq!(
            validate("L5nJeqKmpHp4P7F8ZYyjwc5a7P4d8EabuGAzfGJk7yC1BJyzNaEd"),
            Err(AddressError::PrivateKey)
        );
        assert_eq!(
            validate("2UVPFpGYnLHJezFzjUo42our6PMEoozzRdM"),
            Err(AddressError::BadVersion { found: 0xd4 })
        );
        assert_eq!(
            validate("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd"),
            Err(AddressError::WrongChecksumVariant {
                expected: Variant::Bech32m,
                found: Variant::Bech32
            })
        );
        assert_eq!(
            validate("tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty"),
            Err(AddressError::WrongNetwork {
                expected: "bc or tb".into(),
                found: "tc".into()
            })
        );
        assert_eq!(
            validate("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R"),
            Err(AddressError::BadVersion { found: 17 })
        );
        assert_eq!(
            validate("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P"),
            Err(AddressError::BadLength {
                part: Part::Program,
                expected: Expected::OneOf(&[20, 32]),
                found: 16
            })
        );
        assert_eq!(
            validate("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf"),
            Err(AddressError::BadPadding)
        );
    }
}

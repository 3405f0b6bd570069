//! Solana: base58 (Bitcoin alphabet) of exactly 32 bytes. Program-derived addresses are off the
//! ed25519 curve and still valid, so the curve is not checked.

use crate::error::{AddressError, Expected, Part, Result};
use crate::family::base58;
use crate::{Address, Family, Kind, Network};

const MIN_LENGTH: usize = 32;
const MAX_LENGTH: usize = 44;

pub(crate) fn validate(input: &str) -> Result<Address> {
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&input.len()) {
        return Err(AddressError::BadLength {
            part: Part::Input,
            expected: Expected::Between(MIN_LENGTH, MAX_LENGTH),
            found: input.len(),
        });
    }
    // Every leading `1` decodes to a zero byte, so 44 characters can never need more room.
    let mut buffer = [0u8; MAX_LENGTH];
    let decoded = bs58::decode(input)
        .onto(&mut buffer[..])
        .map_err(base58::error)?;
    if decoded != 32 {
        return Err(AddressError::BadLength {
            part: Part::Payload,
            expected: Expected::Exactly(32),
            found: decoded,
        });
    }
    Ok(Address::new(
        Family::Solana,
        input.to_owned(),
        Kind::Account,
        Network::Any,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            validate("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5D"),
            Err(AddressError::BadLength {
                part: Part::Payload,
                expected: Expected::Exactly(32),
                found: 31
            })
        );
        assert_eq!(
            validate("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5lA"),
            Err(AddressError::BadCharacter {
                position: 41,
                character: 'l'
            })
        );
        assert_eq!(
            validate("1JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFG")
                .unwrap_err()
                .code(),
            "BAD_LENGTH"
        );
        assert_eq!(
            validate(&"1".repeat(44)).unwrap_err(),
            AddressError::BadLength {
                part: Part::Payload,
                expected: Expected::Exactly(32),
                found: 44
            }
        );
    }
}

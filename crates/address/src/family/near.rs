//! NEAR account ids (nearcore `AccountId` rules): 2–64 characters of `[a-z0-9]` separated by
//! single `-`, `_` or `.`. Upper case is invalid and never lower-cased.

use crate::error::{AddressError, Expected, Part, Result};
use crate::{Address, Family, Kind, Network};

const MIN_LENGTH: usize = 2;
const MAX_LENGTH: usize = 64;

pub(crate) fn validate(input: &str) -> Result<Address> {
    let bytes = input.as_bytes();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&bytes.len()) {
        return Err(AddressError::BadLength {
            part: Part::Input,
            expected: Expected::Between(MIN_LENGTH, MAX_LENGTH),
            found: bytes.len(),
        });
    }
    let last = bytes.len() - 1;
    let mut previous_was_separator = false;
    for (position, &b) in bytes.iter().enumerate() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => previous_was_separator = false,
            b'-' | b'_' | b'.' => {
                if position == 0 || position == last || previous_was_separator {
                    return Err(AddressError::BadSeparator { position });
                }
                previous_was_separator = true;
            }
            _ => {
                return Err(AddressError::BadCharacter {
                    position,
                    character: char::from(b),
                });
            }
        }
    }
    Ok(Address::new(
        Family::Near,
        input.to_owned(),
        kind(bytes),
        Network::Any,
    ))
}

fn kind(bytes: &[u8]) -> Kind {
    let lower_hex = |s: &[u8]| s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match bytes {
        _ if bytes.len() == 64 && lower_hex(bytes) => Kind::Implicit,
        [b'0', b'x', rest @ ..] if rest.len() == 40 && lower_hex(rest) => Kind::EthImplicit,
        [b'0', b's', rest @ ..] if rest.len() == 40 && lower_hex(rest) => Kind::Deterministic,
        _ => Kind::Named,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(validate("alice.near").unwrap().kind(), Kind::Named);
        assert_eq!(validate(&"a".repeat(64)).unwrap().kind(), Kind::Implicit);
        assert_eq!(validate(&"g".repeat(64)).unwrap().kind(), Kind::Named);
        let eth = format!("0x{}", "ab".repeat(20));
        assert_eq!(validate(&eth).unwrap().kind(), Kind::EthImplicit);
        let deterministic = format!("0s{}", "0f".repeat(20));
        assert_eq!(
            validate(&deterministic).unwrap().kind(),
            Kind::Deterministic
        );
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            validate("alice..near"),
            Err(AddressError::BadSeparator { position: 6 })
        );
        assert_eq!(
            validate("-near"),
            Err(AddressError::BadSeparator { position: 0 })
        );
        assert_eq!(
            validate("near."),
            Err(AddressError::BadSeparator { position: 4 })
        );
        assert_eq!(
            validate("Abc"),
            Err(AddressError::BadCharacter {
                position: 0,
                character: 'A'
            })
        );
        assert_eq!(validate("a").unwrap_err().code(), "BAD_LENGTH");
    }
}

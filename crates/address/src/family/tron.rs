//! Tron: base58check of a 21-byte payload whose first byte is 0x41 (34 characters, `T…`).

use crate::error::{AddressError, Expected, Part, Result};
use crate::family::base58;
use crate::{Address, Family, Kind, Network};

const LENGTH: usize = 34;
const PAYLOAD_LENGTH: usize = 21;
const VERSION: u8 = 0x41;

pub(crate) fn validate(input: &str) -> Result<Address> {
    if input.len() != LENGTH {
        return Err(AddressError::BadLength {
            part: Part::Input,
            expected: Expected::Exactly(LENGTH),
            found: input.len(),
        });
    }
    let payload = base58::decode_check(input)?;
    if payload.len() != PAYLOAD_LENGTH {
        return Err(AddressError::BadLength {
            part: Part::Payload,
            expected: Expected::Exactly(PAYLOAD_LENGTH),
            found: payload.len(),
        });
    }
    if payload[0] != VERSION {
        return Err(AddressError::BadVersion { found: payload[0] });
    }
    Ok(Address::new(
        Family::Tron,
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
            validate("1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo"),
            Err(AddressError::BadVersion { found: 0 })
        );
        assert_eq!(
            validate("TNDzfERDpxLDS2w1q6yaFC7pzqaSQ3Bg31"),
            Err(AddressError::BadChecksum)
        );
        assert_eq!(
            validate("TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYOeL"),
            Err(AddressError::BadCharacter {
                position: 31,
                character: 'O'
            })
        );
    }
}

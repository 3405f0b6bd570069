//! Cosmos-SDK addresses: bech32 (never bech32m) with any or a required human-readable part,
//! up to 1023 characters, a 1–255-byte payload and strict padding.

use crate::bech32::{self, Variant};
use crate::error::{AddressError, Expected, Part, Result};
use crate::{Address, Family, Kind, Network};

const MAX_PAYLOAD: usize = 255;

pub(crate) fn validate(input: &str, required_hrp: Option<&str>) -> Result<Address> {
    let decoded = bech32::decode(input, bech32::COSMOS_MAX_LENGTH)?;
    if decoded.variant() != Variant::Bech32 {
        return Err(AddressError::WrongChecksumVariant {
            expected: Variant::Bech32,
            found: decoded.variant(),
        });
    }
    if let Some(required) = required_hrp
        && decoded.hrp() != required
    {
        return Err(AddressError::WrongNetwork {
            expected: required.to_owned(),
            found: decoded.hrp().to_owned(),
        });
    }
    let payload = bech32::to_bytes(decoded.data())?;
    if !(1..=MAX_PAYLOAD).contains(&payload.len()) {
        return Err(AddressError::BadLength {
            part: Part::Payload,
            expected: Expected::Between(1, MAX_PAYLOAD),
            found: payload.len(),
        });
    }
    let network = Network::Hrp(decoded.hrp().to_owned());
    Ok(Address::new(
        Family::Cosmos,
        input.to_ascii_lowercase(),
        Kind::Account,
        network,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMES: &str = "remes1w508d6qejxtdg4y5r3zarvary0c5xw7k9zvx46";

    #[test]
    fn required_hrp_is_enforced() {
        let address = validate(REMES, Some("remes")).unwrap();
        assert_eq!(address.network(), &Network::Hrp("remes".into()));
        assert_eq!(
            validate(REMES, Some("cosmos")),
            Err(AddressError::WrongNetwork {
                expected: "cosmos".into(),
                found: "remes".into()
            })
        );
    }

    #[test]
    fn upper_case_normalizes_to_lower_case() {
        let upper = REMES.to_ascii_uppercase();
        assert_eq!(validate(&upper, None).unwrap().normalized(), REMES);
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            validate(
                "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
                None
            ),
            Err(AddressError::WrongChecksumVariant {
                expected: Variant::Bech32,
                found: Variant::Bech32m
            })
        );
        assert_eq!(
            validate("cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqp9yku6l", None),
            Err(AddressError::BadPadding)
        );
    }
}

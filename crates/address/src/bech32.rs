//! The bech32 / bech32m layer (BIP-173, BIP-350) under the Bitcoin segwit and Cosmos rules.
//!
//! Hand-written rather than taken from the `bech32` crate so that every failure carries the
//! typed reason and position [`AddressError`] promises; the test suite checks it against the
//! BIP vectors and, by property tests, against the `bech32` crate.
//!
//! ```
//! use haven_address::bech32::{self, Variant};
//!
//! let decoded = bech32::decode("A12UEL5L", bech32::BIP173_MAX_LENGTH)?;
//! assert_eq!(decoded.hrp(), "a");
//! assert_eq!(decoded.variant(), Variant::Bech32);
//! assert!(decoded.data().is_empty());
//! # Ok::<(), haven_address::AddressError>(())
//! ```

use std::fmt;

use crate::error::{AddressError, Expected, Part, Result};

/// Longest string BIP-173 allows (Bitcoin segwit).
pub const BIP173_MAX_LENGTH: usize = 90;
/// Longest string the Cosmos SDK decodes.
pub const COSMOS_MAX_LENGTH: usize = 1023;
/// Longest human-readable part.
pub const MAX_HRP_LENGTH: usize = 83;
/// Checksum length in characters.
const CHECKSUM_LENGTH: usize = 6;

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Value of each lower-case ASCII character in the data alphabet, or -1.
const REVERSE: [i8; 128] = {
    let mut table = [-1i8; 128];
    let mut i = 0;
    while i < CHARSET.len() {
        table[CHARSET[i] as usize] = i as i8;
        i += 1;
    }
    table
};

const GENERATOR: [u32; 5] = [
    0x3b6a_57b2,
    0x2650_8e6d,
    0x1ea1_19fa,
    0x3d42_33dd,
    0x2a14_62b3,
];

/// The checksum variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// BIP-173 bech32 (segwit v0, Cosmos).
    Bech32,
    /// BIP-350 bech32m (segwit v1 and later).
    Bech32m,
}

impl Variant {
    const fn residue(self) -> u32 {
        match self {
            Variant::Bech32 => 1,
            Variant::Bech32m => 0x2bc8_30a3,
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variant::Bech32 => "bech32",
            Variant::Bech32m => "bech32m",
        })
    }
}

/// A checksum-verified bech32 string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    hrp: String,
    data: Vec<u8>,
    variant: Variant,
}

impl Decoded {
    /// The human-readable part, in lower case.
    pub fn hrp(&self) -> &str {
        &self.hrp
    }

    /// The data part as 5-bit values, without the checksum.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The variant the checksum verifies with.
    pub const fn variant(&self) -> Variant {
        self.variant
    }
}

fn polymod_step(checksum: u32, value: u8) -> u32 {
    let top = checksum >> 25;
    let mut next = ((checksum & 0x01ff_ffff) << 5) ^ u32::from(value);
    for (i, generator) in GENERATOR.iter().enumerate() {
        if (top >> i) & 1 == 1 {
            next ^= generator;
        }
    }
    next
}

/// Decodes `input` and verifies its checksum with either variant.
///
/// Rules (BIP-173): at most `max_length` characters; no mixed case; the separator is the last
/// `1`; a human-readable part of 1–83 characters in `!`..=`~`; at least 6 data characters, all
/// from the bech32 alphabet. The caller decides which [`Variant`] it requires.
pub fn decode(input: &str, max_length: usize) -> Result<Decoded> {
    let bytes = input.as_bytes();
    if let Some(position) = bytes.iter().position(|b| !b.is_ascii()) {
        return Err(AddressError::NonAscii { position });
    }
    if bytes.len() > max_length {
        return Err(AddressError::BadLength {
            part: Part::Input,
            expected: Expected::Between(8, max_length),
            found: bytes.len(),
        });
    }
    let has_lower = bytes.iter().any(u8::is_ascii_lowercase);
    let has_upper = bytes.iter().any(u8::is_ascii_uppercase);
    if has_lower && has_upper {
        return Err(AddressError::MixedCase);
    }
    let separator = bytes
        .iter()
        .rposition(|&b| b == b'1')
        .ok_or(AddressError::MissingSeparator)?;
    let (hrp, data) = (&bytes[..separator], &bytes[separator + 1..]);
    if hrp.is_empty() || hrp.len() > MAX_HRP_LENGTH {
        return Err(AddressError::BadLength {
            part: Part::Hrp,
            expected: Expected::Between(1, MAX_HRP_LENGTH),
            found: hrp.len(),
        });
    }
    if let Some(position) = hrp.iter().position(|b| !(33..=126).contains(b)) {
        return Err(AddressError::BadCharacter {
            position,
            character: char::from(hrp[position]),
        });
    }
    if data.len() < CHECKSUM_LENGTH {
        return Err(AddressError::BadLength {
            part: Part::Data,
            expected: Expected::AtLeast(CHECKSUM_LENGTH),
            found: data.len(),
        });
    }

    let hrp: String = hrp
        .iter()
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect();
    let mut checksum = 1u32;
    for b in hrp.bytes() {
        checksum = polymod_step(checksum, b >> 5);
    }
    checksum = polymod_step(checksum, 0);
    for b in hrp.bytes() {
        checksum = polymod_step(checksum, b & 0x1f);
    }
    let mut values = Vec::with_capacity(data.len());
    for (i, &b) in data.iter().enumerate() {
        let value = REVERSE
            .get(usize::from(b.to_ascii_lowercase()))
            .copied()
            .unwrap_or(-1);
        let Ok(value) = u8::try_from(value) else {
            return Err(AddressError::BadCharacter {
                position: separator + 1 + i,
                character: char::from(b),
            });
        };
        checksum = polymod_step(checksum, value);
        values.push(value);
    }
    let variant = if checksum == Variant::Bech32.residue() {
        Variant::Bech32
    } else if checksum == Variant::Bech32m.residue() {
        Variant::Bech32m
    } else {
        return Err(AddressError::BadChecksum);
    };
    values.truncate(values.len() - CHECKSUM_LENGTH);
    Ok(Decoded {
        hrp,
        data: values,
        variant,
    })
}

/// Regroups 5-bit values into bytes, refusing more than 4 padding bits or non-zero padding.
pub fn to_bytes(values: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(values.len() * 5 / 8);
    let mut accumulator = 0u32;
    let mut bits = 0u32;
    for &value in values {
        accumulator = (accumulator << 5) | u32::from(value & 0x1f);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((accumulator >> bits) & 0xff) as u8);
        }
    }
    if bits >= 5 || (accumulator & ((1 << bits) - 1)) != 0 {
        return Err(AddressError::BadPadding);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip173_and_bip350_examples_decode_with_their_variant() {
        for (input, variant) in [
            ("A12UEL5L", Variant::Bech32),
            (
                "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
                Variant::Bech32,
            ),
            ("?1ezyfcl", Variant::Bech32),
            ("a1lqfn3a", Variant::Bech32m),
            ("?1v759aa", Variant::Bech32m),
        ] {
            let decoded = decode(input, BIP173_MAX_LENGTH).unwrap();
            assert_eq!(decoded.variant(), variant, "{input}");
        }
    }

    #[test]
    fn failures_are_typed() {
        assert_eq!(
            decode("pzry9x0s0muk", 90),
            Err(AddressError::MissingSeparator)
        );
        assert_eq!(
            decode("1pzry9x0s0muk", 90).unwrap_err().code(),
            "BAD_LENGTH"
        );
        assert_eq!(
            decode("x1b4n0q5v", 90),
            Err(AddressError::BadCharacter {
                position: 2,
                character: 'b'
            })
        );
        assert_eq!(decode("li1dgmt3", 90).unwrap_err().code(), "BAD_LENGTH");
        assert_eq!(decode("A1G7SGD8", 90), Err(AddressError::BadChecksum));
        assert_eq!(decode("aB12uel5l", 90), Err(AddressError::MixedCase));
    }

    #[test]
    fn padding_is_strict() {
        assert_eq!(to_bytes(&[0x1f, 0x1c]), Ok(vec![0xff]));
        assert_eq!(to_bytes(&[0x1f, 0x1d]), Err(AddressError::BadPadding));
        assert_eq!(to_bytes(&[0x1f, 0x1c, 0]), Err(AddressError::BadPadding));
        assert_eq!(to_bytes(&[]), Ok(vec![]));
    }
}

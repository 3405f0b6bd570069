//! A fixed-point decimal amount with 18 fractional digits, parsed strictly.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of fractional digits an [`Amount`] keeps.
pub const DECIMALS: u32 = 18;

const SCALE: u128 = 1_000_000_000_000_000_000;

/// The longest input [`Amount::parse`] looks at; anything longer is refused before parsing
/// (39 integer digits, a point and 18 decimals already exceed `u128`).
pub const MAX_INPUT_LEN: usize = 64;

/// A non-negative decimal amount with exactly 18 fractional digits, stored as an integer
/// number of `10^-18` units.
///
/// Parsing is deliberately strict, because amounts come from untrusted requests: only ASCII
/// digits with an optional `.` followed by 1–18 digits. No sign, no exponent, no whitespace,
/// no separators, no leading zeros (`0` and `0.5` are fine, `007` is not), no `.5` or `5.`.
/// Values beyond `u128` units are an overflow error.
///
/// ```
/// use haven_fraud::Amount;
///
/// let a: Amount = "1000000.25".parse().unwrap();
/// assert_eq!(a.to_string(), "1000000.25");
/// assert!("1e3".parse::<Amount>().is_err());
/// assert!("-5".parse::<Amount>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u128);

/// Why a decimal string is not an [`Amount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// The string is empty.
    #[error("amount is empty")]
    Empty,
    /// The string is longer than [`MAX_INPUT_LEN`].
    #[error("amount is longer than {MAX_INPUT_LEN} characters")]
    TooLong,
    /// A `+` or `-` sign.
    #[error("amount must not carry a sign")]
    Signed,
    /// An exponent (`1e3`).
    #[error("amount must not use an exponent")]
    Exponent,
    /// A character that is not a digit or the decimal point, at this byte offset.
    #[error("amount has an invalid character at position {position}")]
    InvalidCharacter {
        /// Byte offset of the first bad character.
        position: usize,
    },
    /// Missing digits before or after the point, or more than one point.
    #[error("amount is not a plain decimal number")]
    Malformed,
    /// A leading zero before other integer digits (`007`).
    #[error("amount has leading zeros")]
    LeadingZero,
    /// More than 18 fractional digits.
    #[error("amount has {found} decimals; at most {DECIMALS} are allowed")]
    TooManyDecimals {
        /// How many fractional digits were given.
        found: usize,
    },
    /// The value does not fit.
    #[error("amount is too large")]
    Overflow,
    /// Zero where a positive amount is required.
    #[error("amount must be greater than zero")]
    Zero,
}

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);
    /// The largest representable amount.
    pub const MAX: Amount = Amount(u128::MAX);

    /// Parses a decimal string (see the type docs for the grammar). Zero is allowed.
    pub fn parse(raw: &str) -> Result<Self, AmountError> {
        if raw.is_empty() {
            return Err(AmountError::Empty);
        }
        if raw.len() > MAX_INPUT_LEN {
            return Err(AmountError::TooLong);
        }
        let bytes = raw.as_bytes();
        if let Some(position) = bytes.iter().position(|b| !b.is_ascii_digit() && *b != b'.') {
            return Err(match bytes[position] {
                b'+' | b'-' => AmountError::Signed,
                b'e' | b'E' => AmountError::Exponent,
                _ => AmountError::InvalidCharacter { position },
            });
        }
        let (int, frac) = match raw.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (raw, None),
        };
        if int.is_empty() || frac.is_some_and(|f| f.is_empty() || f.contains('.')) {
            return Err(AmountError::Malformed);
        }
        if int.len() > 1 && int.starts_with('0') {
            return Err(AmountError::LeadingZero);
        }
        let frac = frac.unwrap_or("");
        if frac.len() > DECIMALS as usize {
            return Err(AmountError::TooManyDecimals { found: frac.len() });
        }
        let mut units: u128 = 0;
        for digit in int.bytes().chain(frac.bytes()) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(u128::from(digit - b'0')))
                .ok_or(AmountError::Overflow)?;
        }
        let pad = DECIMALS - frac.len() as u32;
        units = units
            .checked_mul(10u128.pow(pad))
            .ok_or(AmountError::Overflow)?;
        Ok(Amount(units))
    }

    /// Parses like [`Amount::parse`] and refuses zero.
    pub fn parse_positive(raw: &str) -> Result<Self, AmountError> {
        let amount = Self::parse(raw)?;
        if amount.is_zero() {
            return Err(AmountError::Zero);
        }
        Ok(amount)
    }

    /// An amount from raw `10^-18` units.
    pub const fn from_units(units: u128) -> Self {
        Amount(units)
    }

    /// A whole amount (`whole` × 10^18 units).
    pub const fn from_whole(whole: u64) -> Self {
        // u64::MAX * 10^18 < u128::MAX, so this cannot overflow.
        Amount(whole as u128 * SCALE)
    }

    /// The raw `10^-18` units.
    pub const fn units(self) -> u128 {
        self.0
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, `None` on overflow.
    pub const fn checked_add(self, other: Amount) -> Option<Amount> {
        match self.0.checked_add(other.0) {
            Some(v) => Some(Amount(v)),
            None => None,
        }
    }

    /// `self + other`, clamped at [`Amount::MAX`].
    pub const fn saturating_add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Amount {
    /// The canonical form: no trailing fractional zeros, no point for whole amounts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.0 / SCALE;
        let frac = self.0 % SCALE;
        if frac == 0 {
            return write!(f, "{int}");
        }
        let digits = format!("{frac:018}");
        write!(f, "{int}.{}", digits.trim_end_matches('0'))
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse(s)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    /// Only from a string: JSON and TOML numbers are floats in many parsers and lose digits.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Amount::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_plain_decimals() {
        assert_eq!(Amount::parse("0").unwrap(), Amount::ZERO);
        assert_eq!(Amount::parse("1").unwrap().units(), SCALE);
        assert_eq!(Amount::parse("0.000000000000000001").unwrap().units(), 1);
        assert_eq!(Amount::parse("100.50").unwrap().to_string(), "100.5");
        assert_eq!(
            Amount::parse("5000000").unwrap(),
            Amount::from_whole(5_000_000)
        );
    }

    #[test]
    fn refuses_everything_else() {
        let cases: &[(&str, AmountError)] = &[
            ("", AmountError::Empty),
            ("-1", AmountError::Signed),
            ("+1", AmountError::Signed),
            ("1e3", AmountError::Exponent),
            ("1E3", AmountError::Exponent),
            (" 1", AmountError::InvalidCharacter { position: 0 }),
            ("1,000", AmountError::InvalidCharacter { position: 1 }),
            ("0x10", AmountError::InvalidCharacter { position: 1 }),
            ("NaN", AmountError::InvalidCharacter { position: 0 }),
            ("١٢", AmountError::InvalidCharacter { position: 0 }),
            (".5", AmountError::Malformed),
            ("5.", AmountError::Malformed),
            ("1.2.3", AmountError::Malformed),
            (".", AmountError::Malformed),
            ("007", AmountError::LeadingZero),
            (
                "1.0000000000000000001",
                AmountError::TooManyDecimals { found: 19 },
            ),
            ("340282366920938463464", AmountError::Overflow),
        ];
        for (raw, want) in cases {
            assert_eq!(Amount::parse(raw), Err(*want), "{raw:?}");
        }
        assert_eq!(Amount::parse_positive("0.0"), Err(AmountError::Zero));
        assert_eq!(Amount::parse(&"9".repeat(65)), Err(AmountError::TooLong));
    }

    #[test]
    fn largest_value_parses_and_one_more_overflows() {
        let max = Amount::MAX.to_string();
        assert_eq!(Amount::parse(&max).unwrap(), Amount::MAX);
        assert_eq!(
            Amount::parse("340282366920938463463.374607431768211456"),
            Err(AmountError::Overflow)
        );
    }

    proptest! {
        #[test]
        fn display_round_trips(units in any::<u128>()) {
            let a = Amount::from_units(units);
            prop_assert_eq!(Amount::parse(&a.to_string()), Ok(a));
        }

        #[test]
        fn never_panics(raw in "\\PC{0,80}") {
            let _ = Amount::parse(&raw);
        }

        #[test]
        fn numeric_looking_strings_never_panic(raw in "[-+0-9.eE]{0,45}") {
            if let Ok(a) = Amount::parse(&raw) {
                prop_assert_eq!(Amount::parse(&a.to_string()), Ok(a));
            }
        }
    }
}

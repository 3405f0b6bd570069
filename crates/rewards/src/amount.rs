//! Exact amounts: [`Hnv`] (the token's base units) and [`Decimal`] (a signed decimal with up
//! to 18 fraction digits), parsed from text and multiplied through a 512-bit intermediate.
//! No floating point anywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Fraction digits of both [`Hnv`] and [`Decimal`].
const DIGITS: u32 = 18;

/// `10^18`: base units per HNV, and the fixed scale of a [`Decimal`].
pub(crate) const SCALE: u128 = 1_000_000_000_000_000_000;

/// The longest text [`Hnv::parse`] and [`Decimal::parse`] look at; anything longer is refused
/// before parsing (39 integer digits, a point and 18 fraction digits fit well below it).
pub const MAX_INPUT_LEN: usize = 100;

/// Why a text is not an [`Hnv`] amount or a [`Decimal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// The text is empty.
    #[error("the amount is empty")]
    Empty,
    /// The text is longer than [`MAX_INPUT_LEN`].
    #[error("the amount is longer than {MAX_INPUT_LEN} characters")]
    TooLong,
    /// A sign where none is allowed (`+` anywhere, `-` in an HNV amount).
    #[error("the amount must not carry a sign")]
    Signed,
    /// A negative value where only zero or more is allowed.
    #[error("the amount must not be negative")]
    Negative,
    /// An exponent (`1e3`) where none is allowed.
    #[error("the amount must not use an exponent")]
    Exponent,
    /// A character that belongs to no number, at this byte offset (`NaN`, `Infinity`, `1,5`).
    #[error("the amount has an invalid character at position {position}")]
    InvalidCharacter {
        /// Byte offset of the first bad character.
        position: usize,
    },
    /// Digits missing before or after the point or in the exponent (`.5`, `5.`, `1e`).
    #[error("the amount is not a plain decimal number")]
    Malformed,
    /// A leading zero before other integer digits (`007`).
    #[error("the amount has leading zeros")]
    LeadingZero,
    /// More than 18 digits after the point (once an exponent is applied).
    #[error("the amount has {found} fraction digits; at most {DIGITS} are allowed")]
    TooManyDecimals {
        /// How many fraction digits the value would need.
        found: u64,
    },
    /// The value does not fit.
    #[error("the amount is too large")]
    Overflow,
}

/// An amount of HAVEN tokens in base units: `10^18` base units make one HNV.
///
/// Its text form ([`Display`](fmt::Display), [`Hnv::parse`], serde) is the exact decimal in
/// HNV with no trailing zeros: `"480"`, `"239.976"`, `"0"`, `"0.000000000000000001"`.
///
/// ```
/// use haven_rewards::Hnv;
///
/// let amount = Hnv::parse("239.976")?;
/// assert_eq!(amount.base_units(), 239_976_000_000_000_000_000);
/// assert_eq!(amount.to_string(), "239.976");
/// assert!(Hnv::parse("1e3").is_err() && Hnv::parse("-5").is_err());
/// # Ok::<(), haven_rewards::AmountError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hnv(u128);

impl Hnv {
    /// No tokens.
    pub const ZERO: Hnv = Hnv(0);
    /// The largest amount.
    pub const MAX: Hnv = Hnv(u128::MAX);
    /// Fraction digits of the token (ERC-20 `decimals`).
    pub const DECIMALS: u32 = DIGITS;

    /// The amount of `units` base units.
    pub const fn from_base_units(units: u128) -> Self {
        Hnv(units)
    }

    /// The amount in base units.
    pub const fn base_units(self) -> u128 {
        self.0
    }

    /// `whole` HNV.
    pub const fn from_whole(whole: u64) -> Self {
        // u64::MAX × 10^18 < u128::MAX.
        Hnv(whole as u128 * SCALE)
    }

    /// Parses exact decimal text in HNV: ASCII digits, optionally a point and 1 to 18
    /// digits. No sign, no exponent, no whitespace, no leading zeros (`0.5` is fine, `007`
    /// is not).
    pub fn parse(text: &str) -> Result<Hnv, AmountError> {
        let number = Number::parse(text, Grammar::Plain)?;
        Ok(Hnv(number.units))
    }

    /// `self + other`, `None` on overflow.
    pub const fn checked_add(self, other: Hnv) -> Option<Hnv> {
        match self.0.checked_add(other.0) {
            Some(units) => Some(Hnv(units)),
            None => None,
        }
    }

    /// `self - other`, `None` below zero.
    pub const fn checked_sub(self, other: Hnv) -> Option<Hnv> {
        match self.0.checked_sub(other.0) {
            Some(units) => Some(Hnv(units)),
            None => None,
        }
    }

    /// `self - other`, zero below zero.
    pub const fn saturating_sub(self, other: Hnv) -> Hnv {
        Hnv(self.0.saturating_sub(other.0))
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The same value as a [`Decimal`], `None` above [`Decimal::MAX`].
    pub fn to_decimal(self) -> Option<Decimal> {
        i128::try_from(self.0).ok().map(Decimal)
    }
}

impl fmt::Display for Hnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_scaled(f, self.0)
    }
}

impl FromStr for Hnv {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hnv::parse(s)
    }
}

impl Serialize for Hnv {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hnv {
    /// Only from the decimal string: a number would be ambiguous (HNV or base units?) and
    /// many parsers read numbers as floats.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Hnv;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an HNV amount as a decimal string such as \"239.976\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Hnv, E> {
                Hnv::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// An exact signed decimal with up to 18 fraction digits (prices, multipliers, rates),
/// stored as an integer count of `10^-18`.
///
/// Its text grammar is the JSON number grammar, whether the text was a JSON number or a
/// string: an optional `-`, integer digits without leading zeros, optionally a point and
/// digits, optionally an exponent (`e`/`E`, sign, digits) — as long as the value needs at
/// most 18 fraction digits and fits ([`Decimal::MAX`] is about 1.7 × 10^20).
///
/// ```
/// use haven_rewards::Decimal;
///
/// let price = Decimal::parse("99.99")?;
/// let rate = Decimal::parse("2.4")?;
/// assert_eq!(price.checked_mul(rate).unwrap().to_string(), "239.976");
/// assert_eq!(Decimal::parse("0.1")?.checked_add(Decimal::parse("0.2")?), Some(Decimal::parse("0.3")?));
/// assert_eq!(Decimal::parse("15e-1")?.to_string(), "1.5");
/// assert!(Decimal::parse("1e-19").is_err() && Decimal::parse("NaN").is_err());
/// # Ok::<(), haven_rewards::AmountError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Decimal(i128);

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal(0);
    /// One.
    pub const ONE: Decimal = Decimal(SCALE as i128);
    /// The largest value, about 1.7 × 10^20.
    pub const MAX: Decimal = Decimal(i128::MAX);
    /// Fraction digits kept.
    pub const SCALE: u32 = DIGITS;

    /// Parses the JSON number grammar (see the type docs).
    pub fn parse(text: &str) -> Result<Decimal, AmountError> {
        let number = Number::parse(text, Grammar::Json)?;
        let magnitude = i128::try_from(number.units).map_err(|_| AmountError::Overflow)?;
        Ok(Decimal(if number.negative {
            -magnitude
        } else {
            magnitude
        }))
    }

    /// The value `scaled × 10^-18`.
    pub const fn from_scaled(scaled: i128) -> Self {
        Decimal(scaled)
    }

    /// The value in units of `10^-18`.
    pub const fn scaled(self) -> i128 {
        self.0
    }

    /// The integer `value`.
    pub const fn from_int(value: i64) -> Self {
        // |i64| × 10^18 < i128::MAX.
        Decimal(value as i128 * SCALE as i128)
    }

    /// Whether the value is above zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Whether the value is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Whether the value is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Whether the value has no fraction digits.
    pub const fn is_integer(self) -> bool {
        self.0 % SCALE as i128 == 0
    }

    /// The integer part (rounded toward zero).
    pub const fn trunc_int(self) -> i128 {
        self.0 / SCALE as i128
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        self.0.checked_add(other.0).map(Decimal)
    }

    /// `self - other`, `None` on overflow.
    pub fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        self.0.checked_sub(other.0).map(Decimal)
    }

    /// `self × other`, truncated toward zero to 18 fraction digits; `None` on overflow.
    pub fn checked_mul(self, other: Decimal) -> Option<Decimal> {
        let negative = self.is_negative() != other.is_negative();
        let units = product_units(&[self.0.unsigned_abs(), other.0.unsigned_abs()])?;
        let magnitude = i128::try_from(units).ok()?;
        Some(Decimal(if negative { -magnitude } else { magnitude }))
    }

    /// The same value as an [`Hnv`] amount, `None` when negative.
    pub fn to_hnv(self) -> Option<Hnv> {
        u128::try_from(self.0).ok().map(Hnv)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            f.write_str("-")?;
        }
        write_scaled(f, self.0.unsigned_abs())
    }
}

impl FromStr for Decimal {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::parse(s)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    /// From a string or an integer; a float is refused because it is not exact.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal as a string such as \"0.10\", or an integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                Decimal::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                Ok(Decimal::from_int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                // u64::MAX × 10^18 < i128::MAX.
                Ok(Decimal(i128::from(v) * SCALE as i128))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Decimal, E> {
                Err(E::custom(
                    "a fractional number is not exact here; write the decimal as a string",
                ))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `∏ factors`, each a count of `10^-18`, as a count of `10^-18` truncated toward zero:
/// the product is exact in 512 bits (up to four factors), then divided by `10^18` once per
/// extra factor. `None` when the result does not fit `u128`.
pub(crate) fn product_units(factors: &[u128]) -> Option<u128> {
    let (first, rest) = factors.split_first()?;
    let mut acc = U512::from_u128(*first);
    for factor in rest {
        acc = acc.checked_mul(*factor)?;
    }
    for _ in rest {
        acc = acc.div_small(SCALE as u64);
    }
    acc.to_u128()
}

/// `⌊∏ factors / ∏ divisors⌋`, exact whatever the size of the intermediate product;
/// `None` when a divisor is zero or the result does not fit.
pub(crate) fn mul_div_floor(factors: &[u128], divisors: &[u64]) -> Option<u128> {
    let (first, rest) = factors.split_first()?;
    let mut acc = U512::from_u128(*first);
    for factor in rest {
        acc = acc.checked_mul(*factor)?;
    }
    for &d in divisors {
        if d == 0 {
            return None;
        }
        acc = acc.div_small(d);
    }
    acc.to_u128()
}

/// `∏ factors` as an [`Hnv`] amount, truncated toward zero to whole base units (never more
/// than earned); `None` when a factor is negative or the result does not fit.
pub(crate) fn product_hnv(factors: &[Decimal]) -> Option<Hnv> {
    let mut magnitudes = Vec::with_capacity(factors.len());
    for factor in factors {
        magnitudes.push(u128::try_from(factor.0).ok()?);
    }
    product_units(&magnitudes).map(Hnv)
}

/// An unsigned 512-bit integer in little-endian 64-bit limbs, just enough for exact
/// products of a few 128-bit factors.
#[derive(Debug, Clone, Copy)]
struct U512([u64; 8]);

impl U512 {
    fn from_u128(v: u128) -> Self {
        let mut limbs = [0; 8];
        limbs[0] = v as u64;
        limbs[1] = (v >> 64) as u64;
        U512(limbs)
    }

    fn checked_mul(self, v: u128) -> Option<Self> {
        let b = [v as u64, (v >> 64) as u64];
        let mut out = [0u64; 10];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u128;
            for (j, &bj) in b.iter().enumerate() {
                // (2^64-1)^2 + 2 (2^64-1) = 2^128 - 1: never overflows.
                let t = u128::from(a) * u128::from(bj) + u128::from(out[i + j]) + carry;
                out[i + j] = t as u64;
                carry = t >> 64;
            }
            out[i + 2] = carry as u64;
        }
        if out[8] != 0 || out[9] != 0 {
            return None;
        }
        let mut limbs = [0; 8];
        limbs.copy_from_slice(&out[..8]);
        Some(U512(limbs))
    }

    /// `self / d`, rounded down; `d` is not zero.
    fn div_small(self, d: u64) -> Self {
        let d = u128::from(d);
        let mut limbs = [0; 8];
        let mut rem = 0u128;
        for (q, &limb) in limbs.iter_mut().zip(self.0.iter()).rev() {
            let cur = (rem << 64) | u128::from(limb);
            *q = (cur / d) as u64;
            rem = cur % d;
        }
        U512(limbs)
    }

    fn to_u128(self) -> Option<u128> {
        if self.0[2..].iter().any(|&l| l != 0) {
            return None;
        }
        Some(u128::from(self.0[0]) | (u128::from(self.0[1]) << 64))
    }
}

/// Writes a count of `10^-18` as minimal decimal text.
fn write_scaled(f: &mut fmt::Formatter<'_>, units: u128) -> fmt::Result {
    let int = units / SCALE;
    let frac = units % SCALE;
    if frac == 0 {
        return write!(f, "{int}");
    }
    let digits = format!("{frac:018}");
    write!(f, "{int}.{}", digits.trim_end_matches('0'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grammar {
    /// `digits[.digits]`, no sign, no exponent ([`Hnv`]).
    Plain,
    /// The JSON number grammar ([`Decimal`]).
    Json,
}

/// A parsed number: sign and magnitude in `10^-18`.
struct Number {
    negative: bool,
    units: u128,
}

impl Number {
    fn parse(text: &str, grammar: Grammar) -> Result<Number, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.len() > MAX_INPUT_LEN {
            return Err(AmountError::TooLong);
        }
        let bytes = text.as_bytes();
        let digits_from = |start: usize| {
            bytes[start..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(bytes.len(), |n| start + n)
        };
        let mut at = 0;
        let negative = match bytes[0] {
            b'-' if grammar == Grammar::Json => {
                at = 1;
                true
            }
            b'-' | b'+' => return Err(AmountError::Signed),
            _ => false,
        };
        let int_end = digits_from(at);
        let int = &text[at..int_end];
        if int.is_empty() {
            return Err(match bytes.get(at) {
                None | Some(b'.') => AmountError::Malformed,
                Some(_) => AmountError::InvalidCharacter { position: at },
            });
        }
        if int.len() > 1 && int.starts_with('0') {
            return Err(AmountError::LeadingZero);
        }
        at = int_end;
        let mut frac = "";
        if bytes.get(at) == Some(&b'.') {
            let end = digits_from(at + 1);
            frac = &text[at + 1..end];
            if frac.is_empty() {
                return Err(AmountError::Malformed);
            }
            at = end;
        }
        let mut exponent: i64 = 0;
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            if grammar == Grammar::Plain {
                return Err(AmountError::Exponent);
            }
            at += 1;
            let exp_negative = match bytes.get(at) {
                Some(b'-') => {
                    at += 1;
                    true
                }
                Some(b'+') => {
                    at += 1;
                    false
                }
                _ => false,
            };
            let end = digits_from(at);
            if end == at {
                return Err(AmountError::Malformed);
            }
            for digit in &bytes[at..end] {
                // Far beyond any representable value either way; saturate.
                exponent = (exponent * 10 + i64::from(digit - b'0')).min(1_000_000);
            }
            if exp_negative {
                exponent = -exponent;
            }
            at = end;
        }
        if let Some(&byte) = bytes.get(at) {
            return Err(match byte {
                b'.' => AmountError::Malformed,
                b'+' | b'-' => AmountError::Signed,
                b'e' | b'E' if grammar == Grammar::Plain => AmountError::Exponent,
                _ => AmountError::InvalidCharacter { position: at },
            });
        }
        // The value is digits × 10^-scale.
        let scale = frac.len() as i64 - exponent;
        if scale > i64::from(DIGITS) {
            return Err(AmountError::TooManyDecimals {
                found: scale.unsigned_abs(),
            });
        }
        let significant = format!("{int}{frac}");
        let significant = significant.trim_start_matches('0');
        let mantissa = significant.trim_end_matches('0');
        if mantissa.is_empty() {
            return Ok(Number { negative, units: 0 });
        }
        let trailing_zeros = (significant.len() - mantissa.len()) as i64;
        if mantissa.len() > 39 {
            return Err(AmountError::Overflow);
        }
        let mut value: u128 = 0;
        for digit in mantissa.bytes() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(digit - b'0')))
                .ok_or(AmountError::Overflow)?;
        }
        // units = mantissa × 10^(trailing zeros − scale + 18), a power of at least zero.
        let power = trailing_zeros - scale + i64::from(DIGITS);
        let factor = u32::try_from(power)
            .ok()
            .and_then(|p| 10u128.checked_pow(p))
            .ok_or(AmountError::Overflow)?;
        let units = value.checked_mul(factor).ok_or(AmountError::Overflow)?;
        Ok(Number { negative, units })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_products_match_u128_where_it_fits() {
        let cases: [(u128, u128); 5] = [
            (0, 5),
            (1, u128::MAX),
            (u64::MAX as u128, u64::MAX as u128),
            (123_456_789_012_345_678_901, 98_765),
            (SCALE, SCALE),
        ];
        for (a, b) in cases {
            let wide = U512::from_u128(a).checked_mul(b).unwrap();
            match a.checked_mul(b) {
                Some(p) => assert_eq!(wide.to_u128(), Some(p)),
                None => assert_eq!(wide.to_u128(), None),
            }
        }
    }

    #[test]
    fn wide_division_by_the_scale_undoes_the_multiplication() {
        let big = U512::from_u128(u128::MAX)
            .checked_mul(u128::MAX)
            .unwrap()
            .checked_mul(SCALE)
            .unwrap();
        let back = big.div_small(SCALE as u64);
        let again = back.checked_mul(SCALE).unwrap();
        assert_eq!(again.0, big.0);
        // u128::MAX^2 needs 256 bits; divided by u128::MAX (in two steps) it is u128::MAX.
        assert_eq!(
            U512::from_u128(u128::MAX)
                .checked_mul(u128::MAX)
                .unwrap()
                .to_u128(),
            None
        );
    }

    #[test]
    fn five_maximal_factors_overflow_512_bits() {
        let acc = U512::from_u128(u128::MAX)
            .checked_mul(u128::MAX)
            .and_then(|a| a.checked_mul(u128::MAX))
            .and_then(|a| a.checked_mul(u128::MAX));
        assert!(acc.is_some());
        assert!(acc.and_then(|a| a.checked_mul(u128::MAX)).is_none());
    }

    #[test]
    fn products_truncate_toward_zero() {
        // 1e-18 × 0.5 = 5e-19 → 0.
        assert_eq!(product_units(&[1, SCALE / 2]), Some(0));
        // 0.3 × 0.333333333333333333 = 0.0999999999999999999 → 0.099999999999999999.
        assert_eq!(
            product_units(&[SCALE * 3 / 10, 333_333_333_333_333_333]),
            Some(99_999_999_999_999_999)
        );
        assert_eq!(product_units(&[u128::MAX, SCALE]), Some(u128::MAX));
        assert_eq!(product_units(&[u128::MAX, SCALE + 1]), None);
    }
}

use std::fmt::{self, Debug};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// A trading pair, e.g. `ETH/USD`. Symbols are kept upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pair {
    /// The asset priced, e.g. `ETH`.
    pub base: String,
    /// The currency of the price, e.g. `USD`.
    pub quote: String,
}

impl Pair {
    /// `base/quote`, upper-cased.
    pub fn new(base: &str, quote: &str) -> Self {
        Self {
            base: base.to_ascii_uppercase(),
            quote: quote.to_ascii_uppercase(),
        }
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.quote)
    }
}

/// An exact, strictly positive decimal price, as the upstream wrote it — never through a
/// binary float, so `0.1` is one tenth and a redemption priced with it is exact.
///
/// Kept in a canonical plain form: no sign, no exponent, no leading zeros before the point
/// (`0.5`), no trailing zeros after it (`12.5`, `3000`).
///
/// ```
/// use haven_resilience::Price;
///
/// assert_eq!(Price::parse("3001.250")?.as_str(), "3001.25");
/// assert_eq!(Price::parse("1.2e-5")?.as_str(), "0.000012");
/// assert_eq!(Price::parse("12E2")?.as_str(), "1200");
/// assert!(Price::parse("0").is_err() && Price::parse("-1").is_err() && Price::parse("NaN").is_err());
/// # Ok::<(), haven_resilience::InvalidPrice>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Price(String);

/// Text that is not a positive decimal number (or has more than
/// [`Price::MAX_DIGITS`] significant digits, or an exponent beyond ±[`Price::MAX_EXPONENT`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a positive decimal price")]
pub struct InvalidPrice;

impl Price {
    /// The most significant digits kept (more is refused, not rounded).
    pub const MAX_DIGITS: usize = 38;
    /// The largest exponent magnitude accepted (`1e-30` … `1e30`).
    pub const MAX_EXPONENT: i32 = 30;

    /// Parses the JSON number grammar (`3001.25`, `1.2e-5`); zero and negatives are refused.
    pub fn parse(text: &str) -> std::result::Result<Price, InvalidPrice> {
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => {
                let exp: i32 = text[at + 1..].parse().map_err(|_| InvalidPrice)?;
                (&text[..at], exp)
            }
            None => (text, 0),
        };
        if !(-Self::MAX_EXPONENT..=Self::MAX_EXPONENT).contains(&exponent) {
            return Err(InvalidPrice);
        }
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !digits_only(int)
            || !digits_only(frac)
            || (mantissa.contains('.') && frac.is_empty())
            || (int.len() > 1 && int.starts_with('0'))
        {
            return Err(InvalidPrice);
        }
        // All digits, and where the point goes counted from their start.
        let digits = format!("{int}{frac}");
        let point = int.len() as i64 + i64::from(exponent);
        let first = digits.find(|c| c != '0').ok_or(InvalidPrice)?;
        let last = digits.rfind(|c| c != '0').unwrap_or(first);
        if last - first + 1 > Self::MAX_DIGITS {
            return Err(InvalidPrice);
        }
        let significant = &digits[first..=last];
        // The point's position relative to the first significant digit.
        let point = point - first as i64;
        let text = if point <= 0 {
            format!(
                "0.{}{significant}",
                "0".repeat(point.unsigned_abs() as usize)
            )
        } else if point as usize >= significant.len() {
            format!(
                "{significant}{}",
                "0".repeat(point as usize - significant.len())
            )
        } else {
            let (whole, fraction) = significant.split_at(point as usize);
            format!("{whole}.{fraction}")
        };
        Ok(Price(text))
    }

    /// The canonical decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Price {
    type Err = InvalidPrice;

    fn from_str(text: &str) -> std::result::Result<Self, InvalidPrice> {
        Price::parse(text)
    }
}

impl TryFrom<String> for Price {
    type Error = InvalidPrice;

    fn try_from(text: String) -> std::result::Result<Self, InvalidPrice> {
        Price::parse(&text)
    }
}

impl From<Price> for String {
    fn from(price: Price) -> String {
        price.0
    }
}

/// Somewhere a spot price can be fetched from.
///
/// **Invariant:** a returned price is exact and strictly positive ([`Price`]).
#[async_trait]
pub trait PriceSource: Send + Sync + Debug {
    /// Upstream name for breakers, logs and interval gates, e.g. `coingecko`.
    fn name(&self) -> &'static str;
    /// The current price of one `pair.base` in `pair.quote`.
    async fn price(&self, pair: &Pair) -> Result<Price>;
}

/// The most bytes read from a price source's answer; a price is a few hundred.
pub const MAX_PRICE_RESPONSE_BYTES: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::Price;

    #[test]
    fn the_json_number_grammar_becomes_canonical_text() {
        for (text, canonical) in [
            ("3001.25", "3001.25"),
            ("3001.250000", "3001.25"),
            ("0.5", "0.5"),
            ("10", "10"),
            ("1000", "1000"),
            ("5e3", "5000"),
            ("5.25E+1", "52.5"),
            ("1.5e-3", "0.0015"),
            ("0.00012e2", "0.012"),
            ("0.000", "x"),
        ] {
            match Price::parse(text) {
                Ok(p) => assert_eq!(p.as_str(), canonical, "{text}"),
                Err(_) => assert_eq!(canonical, "x", "{text}"),
            }
        }
        for bad in [
            "", "-1", "+1", "01", ".5", "5.", "1e", "e5", "1.2.3", "NaN", "inf", "1e31", "1e-31",
            " 1", "1 ", "0x10",
        ] {
            assert!(Price::parse(bad).is_err(), "{bad:?}");
        }
        let long = "1".repeat(Price::MAX_DIGITS + 1);
        assert!(Price::parse(&long).is_err());
        assert!(Price::parse(&"1".repeat(Price::MAX_DIGITS)).is_ok());
    }

    #[test]
    fn serde_round_trips_as_a_string() {
        let p: Price = serde_json::from_str("\"12.50\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"12.5\"");
        assert!(serde_json::from_str::<Price>("\"-1\"").is_err());
    }
}

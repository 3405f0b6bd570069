//! Finding a scheme's headers in a request and reading their values: ids, timestamps.

use super::*;

/// A pre-parsed header name: looking up by `&str` would parse and lower-case it per call.
pub(super) fn header_name(name: &'static str) -> HeaderName {
    match name {
        WEBHOOK_ID => const { HeaderName::from_static(WEBHOOK_ID) },
        WEBHOOK_TIMESTAMP => const { HeaderName::from_static(WEBHOOK_TIMESTAMP) },
        WEBHOOK_SIGNATURE => const { HeaderName::from_static(WEBHOOK_SIGNATURE) },
        STRIPE_SIGNATURE => const { HeaderName::from_static(STRIPE_SIGNATURE) },
        AURORA_SIGNATURE => const { HeaderName::from_static(AURORA_SIGNATURE) },
        AURORA_TIMESTAMP => const { HeaderName::from_static(AURORA_TIMESTAMP) },
        TRIBE_SIGNATURE => const { HeaderName::from_static(TRIBE_SIGNATURE) },
        TRIBE_TIMESTAMP => const { HeaderName::from_static(TRIBE_TIMESTAMP) },
        other => HeaderName::from_static(other),
    }
}

/// Header maps up to this many values are scanned once instead of looked up by name:
/// `HeaderMap` hashes a custom header name byte by byte on every look-up, which costs more
/// than comparing the names of a request's few dozen headers. Larger maps are looked up.
pub(super) const SCAN_LIMIT: usize = 32;

/// One header a scheme requires, as found in a request.
#[derive(Clone, Copy)]
pub(super) struct Found<'a> {
    pub(super) name: &'static str,
    pub(super) value: Option<&'a HeaderValue>,
    pub(super) repeated: bool,
}

impl<'a> Found<'a> {
    pub(super) fn wanted(name: Option<&'static str>) -> Option<Self> {
        name.map(|name| Self {
            name,
            value: None,
            repeated: false,
        })
    }

    /// The value; the header must appear exactly once and be visible ASCII.
    pub(super) fn value(self) -> Result<&'a [u8], VerifyError> {
        let name = self.name;
        let value = self
            .value
            .ok_or_else(|| VerifyError::MissingHeader { name })?;
        if self.repeated {
            return Err(VerifyError::DuplicateHeader { name });
        }
        let bytes = value.as_bytes();
        // What `HeaderValue::to_str` accepts: a `HeaderValue` never holds control characters
        // other than tab, nor DEL, so visible ASCII is ASCII here, which is checked a word
        // at a time.
        if !bytes.is_ascii() {
            return Err(malformed(name, Malformed::NotAscii));
        }
        Ok(bytes)
    }
}

/// The id, timestamp and signature headers of `scheme`, each required exactly once.
pub(super) fn scheme_headers(
    scheme: Scheme,
    headers: &HeaderMap,
) -> Result<RawParts<'_>, VerifyError> {
    let mut wanted = [
        Found::wanted(scheme.id_header()),
        Found::wanted(scheme.timestamp_header()),
        Found::wanted(Some(scheme.signature_header())),
    ];
    if headers.len() <= SCAN_LIMIT {
        for (name, value) in headers {
            let name = name.as_str();
            for found in wanted.iter_mut().flatten() {
                if same_name(found.name, name) {
                    found.repeated |= found.value.is_some();
                    found.value = Some(value);
                }
            }
        }
    } else {
        for found in wanted.iter_mut().flatten() {
            let mut values = headers.get_all(header_name(found.name)).iter();
            found.value = values.next();
            found.repeated = values.next().is_some();
        }
    }
    let [id, timestamp, signature] = wanted;
    let id = id.map(Found::value).transpose()?;
    let timestamp = timestamp.map(Found::value).transpose()?;
    let signature =
        signature
            .map(Found::value)
            .transpose()?
            .ok_or_else(|| VerifyError::MissingHeader {
                name: scheme.signature_header(),
            })?;
    Ok(RawParts {
        id,
        timestamp,
        signature,
    })
}

/// `a == b`, with the last bytes compared first: the names a scheme looks for have equal
/// lengths and differ at the end (`…-signature`, `…-timestamp`), which spares most calls
/// to `memcmp`.
pub(super) fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().last() == b.as_bytes().last() && a == b
}

pub(super) fn malformed(name: &'static str, reason: Malformed) -> VerifyError {
    VerifyError::MalformedHeader { name, reason }
}

pub(super) fn check_id<'a>(
    name: &'static str,
    id: Option<&'a [u8]>,
) -> Result<&'a str, VerifyError> {
    let id = id.ok_or_else(|| VerifyError::MissingHeader { name })?;
    if id.is_empty() {
        return Err(malformed(name, Malformed::Empty));
    }
    if id.len() > MAX_ID_LEN {
        return Err(malformed(name, Malformed::TooLong));
    }
    if !id.iter().fold(true, |ok, b| ok & b.is_ascii_graphic()) {
        return Err(malformed(name, Malformed::NotAscii));
    }
    std::str::from_utf8(id).map_err(|_| malformed(name, Malformed::NotAscii))
}

/// Parses a canonical decimal `i64`: optional `-`, no `+`, no leading zeros, no `-0`.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    parse_timestamp_bytes(text.as_bytes())
}

pub(super) fn parse_timestamp_bytes(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!negative).then_some(0),
        [b'0', ..] => return None,
        // 19 digits always fit in a u64; `i64` needs at most 19.
        _ if digits.len() > 19 => return None,
        _ => {}
    }
    // At most 19 digits: the magnitude stays below 10^19 < 2^64 throughout.
    let (head, octets) = digits.split_at(digits.len() % 8);
    let mut magnitude = 0u64;
    for &b in head {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        magnitude = magnitude * 10 + u64::from(digit);
    }
    for octet in octets.as_chunks::<8>().0 {
        magnitude = magnitude * 100_000_000 + eight_digits(*octet)?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// The value of eight ASCII decimal digits, the first most significant, computed at once
/// rather than digit by digit; `None` unless all eight are digits.
pub(super) fn eight_digits(octet: [u8; 8]) -> Option<u64> {
    const EACH_BYTE: u64 = 0x0101_0101_0101_0101;
    const HIGH_NIBBLES: u64 = 0xF0 * EACH_BYTE;
    let x = u64::from_le_bytes(octet);
    // A digit byte is 0x30..=0x39: its high nibble is 3, and stays 3 when 6 is added (no
    // byte carries into the next: each is at most 0x3F + 6 when the first test holds).
    if x & HIGH_NIBBLES != 0x30 * EACH_BYTE
        || x.wrapping_add(6 * EACH_BYTE) & HIGH_NIBBLES != 0x30 * EACH_BYTE
    {
        return None;
    }
    // Little-endian: the first digit is the lowest byte. Combine neighbours pairwise: two
    // digits per 16-bit lane, four per 32-bit lane, then all eight; no lane overflows.
    let d = x - 0x30 * EACH_BYTE;
    let d = (d * 10 + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d * 100 + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((d * 10_000 + (d >> 32)) & 0xFFFF_FFFF)
}

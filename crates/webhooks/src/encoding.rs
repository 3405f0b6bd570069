//! Strict decoders and constant-time comparison.
//!
//! Accepting only canonical encodings means one signature has exactly one spelling, so a
//! replay cannot slip past an id or signature comparison by re-encoding.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Decodes canonical, padded standard base64 into exactly `N` bytes.
///
/// The `STANDARD` engine already rejects missing or extra padding and non-zero trailing
/// bits; the length check rejects everything else.
pub(crate) fn base64_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N.div_ceil(3) * 4 {
        return None;
    }
    let mut out = [0u8; N];
    let mut buf = [0u8; 96];
    let written = STANDARD.decode_slice(text.as_bytes(), &mut buf).ok()?;
    if written != N {
        return None;
    }
    out.copy_from_slice(buf.get(..N)?);
    Some(out)
}

/// Decodes canonical, padded standard base64 of any length (secrets).
pub(crate) fn base64_any(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.as_bytes()).ok()
}

/// Encodes standard padded base64.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes exactly 64 lower-case hex digits into 32 bytes.
pub(crate) fn hex32_lower(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(bytes, &mut out).ok()?;
    Some(out)
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rejects_non_canonical_spellings() {
        let good = STANDARD.encode([7u8; 32]);
        assert_eq!(base64_exact::<32>(&good), Some([7u8; 32]));
        // Unpadded.
        assert_eq!(base64_exact::<32>(good.trim_end_matches('=')), None);
        // Non-zero trailing bits: the last data character `c` (011100) carries two unused
        // low bits; `d` (011101) sets one of them.
        assert_eq!(&good[42..43], "c");
        let mut bits = good.clone();
        bits.replace_range(42..43, "d");
        assert_eq!(base64_exact::<32>(&bits), None);
        // URL-safe alphabet.
        let url = base64::engine::general_purpose::URL_SAFE.encode([0xfbu8; 32]);
        assert_eq!(base64_exact::<32>(&url), None);
        // Whitespace.
        assert_eq!(base64_exact::<32>(&format!(" {}", &good[1..])), None);
        // Wrong length.
        assert_eq!(base64_exact::<32>(&STANDARD.encode([1u8; 31])), None);
    }

    #[test]
    fn hex_accepts_only_lower_case_of_exact_length() {
        let lower = "ab".repeat(32);
        assert_eq!(hex32_lower(&lower), Some([0xab; 32]));
        assert_eq!(hex32_lower(&"AB".repeat(32)), None);
        assert_eq!(hex32_lower(&"ab".repeat(31)), None);
        assert_eq!(hex32_lower(&format!("{}g", &lower[1..])), None);
    }

    #[test]
    fn ct_eq_is_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}

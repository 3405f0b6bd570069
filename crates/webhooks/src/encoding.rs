//! Strict decoders, canonical encoders and constant-time comparison.
//!
//! Accepting only canonical encodings means one signature has exactly one spelling, so a
//! replay cannot slip past an id or signature comparison by re-encoding. Signatures are
//! checked and decoded in the same pass, then compared with the computed tag as bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Value of each standard base64 digit; `INVALID` for every other byte.
const BASE64_VALUES: [u8; 256] = {
    let mut values = [INVALID; 256];
    let mut i = 0;
    while i < BASE64_ALPHABET.len() {
        values[BASE64_ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    values
};
const INVALID: u8 = 0x80;

/// Decodes `text` if it is the canonical, padded standard base64 spelling of exactly `N`
/// bytes: the right length, the standard alphabet, exactly the padding the length requires
/// and zero bits past the last encoded byte, the one string a standard encoder produces for
/// those bytes. Every digit is checked and decoded in one pass, without early exit.
pub(crate) fn base64_canonical<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let digits = (N * 8).div_ceil(6);
    if text.len() != N.div_ceil(3) * 4 {
        return None;
    }
    let (data, padding) = text.split_at(digits);
    let value = |c: u8| BASE64_VALUES[usize::from(c)];
    let mut out = [0u8; N];
    let mut invalid = 0u8;
    let (quads, tail) = data.as_chunks::<4>();
    let (triples, rest) = out.as_chunks_mut::<3>();
    for (quad, triple) in quads.iter().zip(triples) {
        let [a, b, c, d] = quad.map(value);
        invalid |= a | b | c | d;
        let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        *triple = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    }
    // N % 3 bytes remain, in 2 or 3 digits whose low bits past the last byte must be zero.
    let mut n = 0u32;
    let mut last = 0u8;
    for (i, &c) in tail.iter().enumerate() {
        last = value(c);
        invalid |= last;
        n |= u32::from(last) << (18 - 6 * i);
    }
    for (i, byte) in rest.iter_mut().enumerate() {
        *byte = (n >> (16 - 8 * i)) as u8;
    }
    let unused_bits = digits * 6 - N * 8;
    let unused_mask = (1u8 << unused_bits) - 1;
    let canonical = invalid & INVALID == 0
        && last & unused_mask == 0
        && padding.iter().fold(true, |ok, &b| ok & (b == b'='));
    canonical.then_some(out)
}

/// Decodes `text` if it is exactly 64 lower-case hex digits, the one canonical spelling of
/// 32 bytes. Eight digits are checked and decoded at a time, without early exit.
pub(crate) fn hex_canonical_32(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let (octets, _) = text.as_chunks::<8>();
    let mut out = [0u8; 32];
    let mut valid = true;
    for (octet, quad) in octets.iter().zip(out.as_chunks_mut::<4>().0) {
        let (value, ok) = hex_octet(u64::from_be_bytes(*octet));
        valid &= ok;
        *quad = value.to_be_bytes();
    }
    valid.then_some(out)
}

/// The four bytes eight hex digits (the bytes of `digits`, big-endian) spell, and whether
/// all eight are lower-case hex digits.
fn hex_octet(digits: u64) -> (u32, bool) {
    const EACH_BYTE: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte: whether it is at least `n`. With the high bit set first no
    // byte borrows from its neighbour; bytes of 0x80 and above are rejected separately.
    let at_least = |n: u64| ((digits | HIGH_BITS) - n * EACH_BYTE) & HIGH_BITS;
    let digit = at_least(u64::from(b'0')) & !at_least(u64::from(b'9') + 1);
    let letter = at_least(u64::from(b'a')) & !at_least(u64::from(b'f') + 1);
    let ok = digits & HIGH_BITS == 0 && digit | letter == HIGH_BITS;
    // '0'–'9' have their value in the low nibble; 'a'–'f' have 1–6 there, 9 short.
    let nibbles = (digits & (0x0F * EACH_BYTE)) + (letter >> 7) * 9;
    // Each pair of nibbles into the low byte of its 16-bit lane, then the four bytes together.
    let pairs = (nibbles | nibbles >> 4) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs | pairs >> 8) & 0x0000_FFFF_0000_FFFF;
    ((quads | quads >> 16) as u32, ok)
}

/// Decodes canonical, padded standard base64 of any length (secrets).
pub(crate) fn base64_any(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.as_bytes()).ok()
}

/// Encodes standard padded base64.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
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

    /// The reference: the `base64` crate's strict decoder, held to exactly `N` bytes.
    ///
    /// The `STANDARD` engine already rejects missing or extra padding and non-zero trailing
    /// bits; the length check rejects everything else.
    fn base64_exact<const N: usize>(text: impl AsRef<[u8]>) -> Option<[u8; N]> {
        let text = text.as_ref();
        if text.len() != N.div_ceil(3) * 4 {
            return None;
        }
        let mut out = [0u8; N];
        let mut buf = [0u8; 96];
        let written = STANDARD.decode_slice(text, &mut buf).ok()?;
        if written != N {
            return None;
        }
        out.copy_from_slice(buf.get(..N)?);
        Some(out)
    }

    #[test]
    fn base64_rejects_non_canonical_spellings() {
        let good = STANDARD.encode([7u8; 32]);
        assert_eq!(base64_canonical::<32>(good.as_bytes()), Some([7u8; 32]));
        // Unpadded.
        assert_eq!(
            base64_canonical::<32>(good.trim_end_matches('=').as_bytes()),
            None
        );
        // Non-zero trailing bits: the last data character `c` (011100) carries two unused
        // low bits; `d` (011101) sets one of them.
        assert_eq!(&good[42..43], "c");
        let mut bits = good.clone();
        bits.replace_range(42..43, "d");
        assert_eq!(base64_canonical::<32>(bits.as_bytes()), None);
        // URL-safe alphabet.
        let url = base64::engine::general_purpose::URL_SAFE.encode([0xfbu8; 32]);
        assert_eq!(base64_canonical::<32>(url.as_bytes()), None);
        // Whitespace.
        assert_eq!(
            base64_canonical::<32>(format!(" {}", &good[1..]).as_bytes()),
            None
        );
        // Wrong length.
        assert_eq!(
            base64_canonical::<32>(STANDARD.encode([1u8; 31]).as_bytes()),
            None
        );
    }

    #[test]
    fn canonical_base64_decoder_agrees_with_the_strict_decoder() {
        let good = STANDARD.encode([7u8; 32]);
        assert_eq!(base64_canonical::<32>(good.as_bytes()), Some([7u8; 32]));
        let mut spellings = vec![
            good.trim_end_matches('=').to_owned(),
            format!("{good}="),
            format!(" {}", &good[1..]),
            base64::engine::general_purpose::URL_SAFE.encode([0xfbu8; 32]),
            STANDARD.encode([1u8; 31]),
            STANDARD.encode([1u8; 33]),
            String::new(),
        ];
        // Every value of the last data digit: only those with zero unused bits are canonical.
        for &c in BASE64_ALPHABET.iter().chain(b"=-_.") {
            let mut s = good.clone().into_bytes();
            s[42] = c;
            spellings.push(String::from_utf8(s).unwrap());
        }
        // Every byte at every position of a valid signature.
        for at in 0..44 {
            for c in 0u8..=127 {
                let mut s = good.clone().into_bytes();
                s[at] = c;
                spellings.push(String::from_utf8(s).unwrap());
            }
        }
        for s in &spellings {
            assert_eq!(
                base64_canonical::<32>(s.as_bytes()),
                base64_exact::<32>(s),
                "{s:?}"
            );
        }
        let ed = STANDARD.encode([9u8; 64]);
        assert_eq!(base64_canonical::<64>(ed.as_bytes()), Some([9u8; 64]));
        for c in BASE64_ALPHABET {
            let mut s = ed.clone().into_bytes();
            s[85] = *c;
            let s = String::from_utf8(s).unwrap();
            assert_eq!(
                base64_canonical::<64>(s.as_bytes()),
                base64_exact::<64>(&s),
                "{s:?}"
            );
        }
        assert_eq!(
            base64_canonical::<64>(ed.trim_end_matches('=').as_bytes()),
            None
        );
    }

    #[test]
    fn codecs_match_the_reference_codecs() {
        let check = |bytes: [u8; 32]| {
            assert_eq!(
                base64_canonical::<32>(STANDARD.encode(bytes).as_bytes()),
                Some(bytes)
            );
            let mut wide = [0u8; 64];
            wide[..32].copy_from_slice(&bytes);
            wide[32..].copy_from_slice(&bytes.map(|b| !b));
            assert_eq!(
                base64_canonical::<64>(STANDARD.encode(wide).as_bytes()),
                Some(wide)
            );
            assert_eq!(hex_canonical_32(hex::encode(bytes).as_bytes()), Some(bytes));
        };
        for seed in 0u8..=255 {
            let mut bytes = [0u8; 32];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = seed
                    .wrapping_mul(31)
                    .wrapping_add((i as u8).wrapping_mul(seed | 1));
            }
            check(bytes);
        }
        // Every byte value at every position: each digit value in each digit position.
        for at in 0..32 {
            for value in 0u8..=255 {
                let mut bytes = [0u8; 32];
                bytes[at] = value;
                check(bytes);
            }
        }
    }

    #[test]
    fn hex_decoder_accepts_exactly_64_lower_case_digits() {
        // The reference: the `hex` crate's decoder, held to lower case.
        let reference = |text: &[u8]| {
            let lower = text.iter().all(|b| !b.is_ascii_uppercase());
            let mut out = [0u8; 32];
            (lower && hex::decode_to_slice(text, &mut out).is_ok()).then_some(out)
        };
        let good = "0123456789abcdef".repeat(4);
        assert_eq!(
            hex_canonical_32(good.as_bytes()),
            Some(
                [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
                    .repeat(4)
                    .try_into()
                    .unwrap()
            )
        );
        let mut spellings = vec![
            good.to_uppercase().into_bytes(),
            good.as_bytes()[1..].to_vec(),
            format!("{good}0").into_bytes(),
            good.as_bytes()[8..].to_vec(),
            Vec::new(),
        ];
        // Every byte at every position of a valid signature.
        for at in 0..64 {
            for c in 0u8..=255 {
                let mut s = good.clone().into_bytes();
                s[at] = c;
                spellings.push(s);
            }
        }
        for s in &spellings {
            assert_eq!(hex_canonical_32(s), reference(s), "{s:?}");
        }
    }

    #[test]
    fn ct_eq_is_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}

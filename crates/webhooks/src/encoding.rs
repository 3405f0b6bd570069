//! Strict decoders, canonical encoders and constant-time comparison.
//!
//! Accepting only canonical encodings means one signature has exactly one spelling, so a
//! replay cannot slip past an id or signature comparison by re-encoding. It also lets the
//! verifier compare signatures in their encoded form: the computed tag is encoded once,
//! canonically, and compared with each received signature after that signature has been
//! checked to be canonical; two canonical spellings are equal exactly when the bytes they
//! encode are.

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

/// Whether `text` is the canonical, padded standard base64 spelling of exactly `N` bytes:
/// the right length, the standard alphabet, exactly the padding the length requires and
/// zero bits past the last encoded byte. It is the one string [`base64_encode`] produces
/// for those bytes, and [`base64_exact`] accepts exactly these strings.
pub(crate) fn is_canonical_base64<const N: usize>(text: &[u8]) -> bool {
    let digits = (N * 8).div_ceil(6);
    if text.len() != N.div_ceil(3) * 4 {
        return false;
    }
    let (data, padding) = text.split_at(digits);
    let mut invalid = 0u8;
    let mut last = 0u8;
    for &c in data {
        last = BASE64_VALUES[usize::from(c)];
        invalid |= last;
    }
    let unused_bits = digits * 6 - N * 8;
    let unused_mask = (1u8 << unused_bits) - 1;
    invalid & INVALID == 0
        && last & unused_mask == 0
        && padding.iter().fold(true, |ok, &b| ok & (b == b'='))
}

/// Encodes a 32-byte tag as padded standard base64: the canonical spelling.
pub(crate) fn base64_encode_32(bytes: &[u8; 32]) -> [u8; 44] {
    let mut out = [b'='; 44];
    let digit = |n: u32, shift: u32| BASE64_ALPHABET[((n >> shift) & 63) as usize];
    let (groups, rest) = bytes.as_chunks::<3>();
    for (group, dst) in groups.iter().zip(out.chunks_exact_mut(4)) {
        let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        dst.copy_from_slice(&[digit(n, 18), digit(n, 12), digit(n, 6), digit(n, 0)]);
    }
    // 32 = 10 * 3 + 2: the last group has two bytes, three digits and one `=`.
    if let [a, b] = *rest {
        let n = u32::from(a) << 16 | u32::from(b) << 8;
        out[40..43].copy_from_slice(&[digit(n, 18), digit(n, 12), digit(n, 6)]);
    }
    out
}

/// Whether `text` is exactly `len` lower-case hex digits.
pub(crate) fn is_lower_hex(text: &[u8], len: usize) -> bool {
    text.len() == len
        && text
            .iter()
            .fold(true, |ok, &b| ok & matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Encodes a 32-byte tag as lower-case hex: the canonical spelling.
pub(crate) fn hex_encode_32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    let (quads, _) = bytes.as_chunks::<4>();
    let (octets, _) = out.as_chunks_mut::<8>();
    for (quad, octet) in quads.iter().zip(octets) {
        *octet = hex_digits(u32::from_be_bytes(*quad)).to_be_bytes();
    }
    out
}

/// The eight lower-case hex digits of `v`, most significant first, as the bytes of a
/// big-endian `u64`: every digit computed at once instead of one table look-up each.
const fn hex_digits(v: u32) -> u64 {
    const LOW_NIBBLES: u64 = 0x000F_000F_000F_000F;
    const HIGH_NIBBLES: u64 = 0x0F00_0F00_0F00_0F00;
    const EACH_BYTE: u64 = 0x0101_0101_0101_0101;
    // Spread the four bytes to the low halves of four 16-bit lanes…
    let mut x = v as u64;
    x = (x | x << 16) & 0x0000_FFFF_0000_FFFF;
    x = (x | x << 8) & 0x00FF_00FF_00FF_00FF;
    // …then each byte's high nibble to its lane's upper byte: one nibble per byte.
    x = (x << 4 & HIGH_NIBBLES) | (x & LOW_NIBBLES);
    // A nibble n becomes '0' + n, plus the 39 that separate '9' + 1 from 'a' when n > 9
    // (n + 6 carries into bit 4 exactly then; no byte overflows into the next).
    let letters = ((x + 6 * EACH_BYTE) >> 4) & EACH_BYTE;
    x + 0x30 * EACH_BYTE + letters * 39
}

/// Decodes canonical, padded standard base64 into exactly `N` bytes.
///
/// The `STANDARD` engine already rejects missing or extra padding and non-zero trailing
/// bits; the length check rejects everything else.
pub(crate) fn base64_exact<const N: usize>(text: impl AsRef<[u8]>) -> Option<[u8; N]> {
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
    fn canonical_base64_check_agrees_with_the_strict_decoder() {
        let good = STANDARD.encode([7u8; 32]);
        assert!(is_canonical_base64::<32>(good.as_bytes()));
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
                is_canonical_base64::<32>(s.as_bytes()),
                base64_exact::<32>(s).is_some(),
                "{s:?}"
            );
        }
        let ed = STANDARD.encode([9u8; 64]);
        assert!(is_canonical_base64::<64>(ed.as_bytes()));
        for c in BASE64_ALPHABET {
            let mut s = ed.clone().into_bytes();
            s[85] = *c;
            let s = String::from_utf8(s).unwrap();
            assert_eq!(
                is_canonical_base64::<64>(s.as_bytes()),
                base64_exact::<64>(&s).is_some(),
                "{s:?}"
            );
        }
        assert!(!is_canonical_base64::<64>(
            ed.trim_end_matches('=').as_bytes()
        ));
    }

    #[test]
    fn encoders_match_the_reference_encoders() {
        let check = |bytes: [u8; 32]| {
            assert_eq!(
                base64_encode_32(&bytes).as_slice(),
                STANDARD.encode(bytes).as_bytes()
            );
            assert_eq!(
                hex_encode_32(&bytes).as_slice(),
                hex::encode(bytes).as_bytes()
            );
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
    fn hex_accepts_only_lower_case_of_exact_length() {
        let lower = "ab".repeat(32);
        assert!(is_lower_hex(lower.as_bytes(), 64));
        assert!(is_lower_hex(b"0123456789abcdef", 16));
        assert!(!is_lower_hex("AB".repeat(32).as_bytes(), 64));
        assert!(!is_lower_hex("ab".repeat(31).as_bytes(), 64));
        assert!(!is_lower_hex(format!("{}g", &lower[1..]).as_bytes(), 64));
        assert!(!is_lower_hex(format!("{}:", &lower[1..]).as_bytes(), 64));
    }

    #[test]
    fn ct_eq_is_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}

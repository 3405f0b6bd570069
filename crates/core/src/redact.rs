//! Redaction of secrets and personal data from free text.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// The markers [`redact`] writes in place of what it removes.
pub const REDACTION_MARKERS: &[&str] = &[
    "[REDACTED]",
    "[REDACTED_JWT]",
    "[REDACTED_API_KEY]",
    "[REDACTED_MNEMONIC]",
    "[REDACTED_ADDRESS]",
    "[REDACTED_KEY]",
    "[REDACTED_HEX]",
    "[REDACTED_NUMBER]",
];

struct Patterns {
    url_credentials: Regex,
    bearer: Regex,
    jwt: Regex,
    api_key: Regex,
    key_value: Regex,
    word_run: Regex,
    prefixed_hex: Regex,
    bare_hex: Regex,
    digits: Regex,
    bip39: HashSet<&'static str>,
}

#[allow(clippy::expect_used)] // the patterns are constants; a typo must fail every test at once
static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let re = |p: &str| Regex::new(p).expect("redaction pattern compiles");
    Patterns {
        url_credentials: re(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/@:]*:[^\s/]*@"),
        bearer: re(r"(?i)\bbearer(\s+)[A-Za-z0-9._~+/=\-]+"),
        jwt: re(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),
        api_key: re(r"hvn_(?:live|test)_[A-Za-z0-9_]+"),
        key_value: re(r#"(?i)(password|passwd|secret|token)(["']?\s*[=:]\s*["']?)([^\s&,;"'<>]+)"#),
        word_run: re(r"\b[a-z]{3,8}(?:\s+[a-z]{3,8}){11,}\b"),
        prefixed_hex: re(r"0[xX][0-9a-fA-F]{40,}"),
        bare_hex: re(r"[0-9a-fA-F]{64,}"),
        digits: re(r"[0-9]{10,}"),
        bip39: include_str!("bip39_english.txt").lines().collect(),
    }
});

/// Removes secrets and identifying data from `text`, for logs and outward messages.
///
/// Replaced, in this order: credentials in `scheme://user:password@host` URLs,
/// `Bearer …` tokens, JWTs, haven API keys (`hvn_live_…`, `hvn_test_…`), the values of
/// `password=`, `secret=`, `token=` (also `:` and quoted JSON forms), runs of 12 or more
/// BIP-39 English words (mnemonics), `0x`-prefixed hex of 40 characters or more (EVM
/// addresses, keys, hashes), bare hex of 64 characters or more (private keys) and digit
/// runs of 10 or more.
///
/// The function is idempotent: `redact(&redact(s)) == redact(s)`. Transaction hashes are
/// redacted too (they look exactly like private keys): log them as structured fields
/// deliberately, never inside free text that passes through here.
pub fn redact(text: &str) -> String {
    let p = &*PATTERNS;
    let out = p.url_credentials.replace_all(text, "${1}[REDACTED]@");
    let out = p.bearer.replace_all(&out, "Bearer${1}[REDACTED]");
    let out = p.jwt.replace_all(&out, "[REDACTED_JWT]");
    let out = p.api_key.replace_all(&out, "[REDACTED_API_KEY]");
    let out = p.key_value.replace_all(&out, |c: &Captures<'_>| {
        if c[3].starts_with("[REDACTED") {
            c[0].to_owned()
        } else {
            format!("{}{}[REDACTED]", &c[1], &c[2])
        }
    });
    let out = redact_mnemonics(&out, p);
    let out = p.prefixed_hex.replace_all(&out, |c: &Captures<'_>| {
        match c[0].len() - 2 {
            40 => "[REDACTED_ADDRESS]",
            n if n >= 64 => "[REDACTED_KEY]",
            _ => "[REDACTED_HEX]",
        }
        .to_owned()
    });
    let out = p.bare_hex.replace_all(&out, "[REDACTED_KEY]");
    let out = p.digits.replace_all(&out, "[REDACTED_NUMBER]");
    out.into_owned()
}

/// Whether `text` still contains something [`redact`] would remove.
pub fn contains_secret(text: &str) -> bool {
    redact(text) != text
}

fn redact_mnemonics(text: &str, p: &Patterns) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for run in p.word_run.find_iter(text) {
        let words = word_spans(run.as_str(), run.start());
        let mut i = 0;
        while i < words.len() {
            let start = i;
            while i < words.len() && p.bip39.contains(&text[words[i].0..words[i].1]) {
                i += 1;
            }
            if i - start >= 12 {
                out.push_str(&text[last..words[start].0]);
                out.push_str("[REDACTED_MNEMONIC]");
                last = words[i - 1].1;
            }
            if i == start {
                i += 1;
            }
        }
    }
    out.push_str(&text[last..]);
    out
}

fn word_spans(run: &str, offset: usize) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, ch) in run.char_indices() {
        match (ch.is_ascii_lowercase(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((offset + s, offset + i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((offset + s, offset + run.len()));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MNEMONIC: &str =
        "abandon ability able about above absent absorb abstract absurd abuse access accident";

    #[test]
    fn seed_example() {
        assert_eq!(
            redact(
                "Failed to send to 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed with private_key abc123"
            ),
            "Failed to send to [REDACTED_ADDRESS] with private_key abc123"
        );
    }

    #[test]
    fn each_pattern() {
        let cases = [
            (
                "postgres://haven:s3cr3t@db:5432/app",
                "postgres://[REDACTED]@db:5432/app",
            ),
            ("redis://:pw@localhost", "redis://[REDACTED]@localhost"),
            (
                "Authorization: Bearer abc.def-ghi",
                "Authorization: Bearer [REDACTED]",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature",
                "jwt [REDACTED_JWT]",
            ),
            (
                "key hvn_live_AbCdEfGhIjKlMnOpQrStUvWxYz0123_1a2B3c",
                "key [REDACTED_API_KEY]",
            ),
            ("password=hunter2&x=1", "password=[REDACTED]&x=1"),
            (r#"{"secret": "abc"}"#, r#"{"secret": "[REDACTED]"}"#),
            ("access_token: zzz", "access_token: [REDACTED]"),
            (
                "key 4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318 end",
                "key [REDACTED_KEY] end",
            ),
            (
                "pk 0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
                "pk [REDACTED_KEY]",
            ),
            ("phone 08012345678 ok", "phone [REDACTED_NUMBER] ok"),
            ("short 123456789 ok", "short 123456789 ok"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "input: {input}");
        }
    }

    #[test]
    fn mnemonics_of_12_and_24_words() {
        assert_eq!(redact(MNEMONIC), "[REDACTED_MNEMONIC]");
        let words24 = format!("seed: {MNEMONIC} {MNEMONIC} done");
        assert_eq!(redact(&words24), "seed: [REDACTED_MNEMONIC] done");
        // eleven words, or a run broken by a word outside the list, stay.
        let eleven: Vec<&str> = MNEMONIC.split(' ').take(11).collect();
        assert_eq!(redact(&eleven.join(" ")), eleven.join(" "));
        let plain = "the quick brown fox jumps over the lazy dog and runs far away";
        assert_eq!(redact(plain), plain);
    }

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ a-zA-Z0-9.,:=@/_-]{0,12}",
            "0x[0-9a-fA-F]{40}",
            "(0x)?[0-9a-f]{64}",
            "[0-9]{10,16}",
            "eyJ[A-Za-z0-9]{4,10}\\.[A-Za-z0-9_-]{4,10}\\.[A-Za-z0-9_-]{0,10}",
            "hvn_(live|test)_[A-Za-z0-9]{30}_[A-Za-z0-9]{6}",
            "(Bearer|bearer|BEARER) [A-Za-z0-9._-]{1,20}",
            "(password|secret|token)(=|: |\":\")[A-Za-z0-9!$%]{1,12}",
            "[a-z]{2,6}://[a-z]{1,6}:[a-z0-9]{0,8}@[a-z]{1,6}",
            Just(MNEMONIC.to_owned()),
        ]
    }

    fn assert_clean(s: &str) {
        let leftovers = [
            r"0[xX][0-9a-fA-F]{40}",
            r"[0-9a-fA-F]{64}",
            r"[0-9]{10}",
            r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.",
            r"hvn_(live|test)_[A-Za-z0-9]",
            r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]",
            r"://[^\s/@:\[]*:[^\s/]*@",
            r#"(?i)(password|secret|token)["']?\s*[=:]\s*["']?[^\s&,;"'<>\[]"#,
        ];
        for pat in leftovers {
            assert!(!Regex::new(pat).unwrap().is_match(s), "{pat} left in {s:?}");
        }
        assert!(!s.contains(MNEMONIC), "mnemonic left in {s:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn idempotent_and_clean(parts in prop::collection::vec(fragment(), 0..8), seps in prop::collection::vec("[ ,;\n]", 8)) {
            let mut text = String::new();
            for (i, part) in parts.iter().enumerate() {
                text.push_str(part);
                text.push_str(&seps[i]);
            }
            let once = redact(&text);
            prop_assert_eq!(&redact(&once), &once);
            assert_clean(&once);
        }

        #[test]
        fn arbitrary_text_never_panics_and_is_idempotent(text in "\\PC{0,200}") {
            let once = redact(&text);
            prop_assert_eq!(redact(&once), once);
        }
    }
}

//! The signature headers' grammars: Standard Webhooks' space-separated list, Stripe's
//! comma-separated entries and the partners' single signature, parsed and checked for
//! canonical encodings before any key is used.

use super::*;

/// A signature header whose syntax and encodings have been checked: every signature in it
/// is canonical. Checking a signature decodes it, so the first HMAC signature is kept
/// decoded from the parse; the others (rare: a sender mid-rotation) are decoded again when
/// the first does not match.
#[derive(Clone, Copy)]
pub(super) struct Signatures<'a> {
    /// The header, or for Stripe its part from the first `v1` entry on.
    pub(super) text: &'a [u8],
    pub(super) grammar: Grammar,
    /// The first HMAC signature, as sent and decoded.
    first_v1: Option<(&'a [u8], [u8; 32])>,
}

/// How a scheme spells its signatures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Grammar {
    /// Standard Webhooks: space-separated `version,base64` entries.
    Standard,
    /// Stripe: comma-separated `key=value` entries, signatures as `v1=<hex>`.
    Stripe,
    /// The partner schemes: the whole header is one hex signature.
    Single,
}

impl Grammar {
    /// Length of an encoded HMAC-SHA256 tag.
    const fn v1_len(self) -> usize {
        match self {
            Grammar::Standard => 44,
            Grammar::Stripe | Grammar::Single => 64,
        }
    }

    /// Decodes a canonical HMAC-SHA256 signature.
    pub(super) fn decode_v1(self, text: &[u8]) -> Option<[u8; 32]> {
        match self {
            Grammar::Standard => base64_canonical::<32>(text),
            Grammar::Stripe | Grammar::Single => hex_canonical_32(text),
        }
    }

    /// Entry separator and key/value separator of a list header.
    const fn separators(self) -> (u8, u8) {
        match self {
            Grammar::Standard => (b' ', b','),
            Grammar::Stripe | Grammar::Single => (b',', b'='),
        }
    }

    /// The length a well-formed value of `key` has, when it is fixed.
    pub(super) fn value_len(self, key: &[u8]) -> Option<usize> {
        match (self, key) {
            (Grammar::Standard, b"v1") | (Grammar::Stripe, b"v1") => Some(self.v1_len()),
            (Grammar::Standard, b"v1a") => Some(88),
            _ => None,
        }
    }
}

impl<'a> Signatures<'a> {
    /// The first HMAC-SHA256 signature equal to `tag`, each decoded and compared with the
    /// tag in constant time.
    pub(super) fn find_hmac(self, tag: &[u8; 32]) -> Option<&'a [u8]> {
        if let Some((sig, decoded)) = self.first_v1
            && ct_eq(&decoded, tag)
        {
            return Some(sig);
        }
        if self.grammar == Grammar::Single {
            return None;
        }
        self.values(b"v1").skip(1).find(|sig| {
            self.grammar
                .decode_v1(sig)
                .is_some_and(|decoded| ct_eq(&decoded, tag))
        })
    }

    /// The ed25519 signatures (Standard Webhooks `v1a` entries), base64 encoded.
    pub(super) fn ed25519(self) -> impl Iterator<Item = &'a [u8]> {
        let standard = (self.grammar == Grammar::Standard).then_some(self);
        standard.into_iter().flat_map(|s| s.values(b"v1a"))
    }

    /// The values of the entries named `key`, in header order.
    pub(super) fn values(self, key: &'static [u8]) -> impl Iterator<Item = &'a [u8]> {
        Entries::new(self.text, self.grammar)
            .flatten()
            .filter(move |entry| entry.key == key)
            .map(|entry| entry.value)
    }
}

/// One `key<separator>value` entry of a list header.
#[derive(Clone, Copy)]
pub(super) struct Entry<'a> {
    /// Where the entry starts in the header.
    pub(super) start: usize,
    pub(super) key: &'a [u8],
    pub(super) value: &'a [u8],
}

/// The entries of a list header, in one pass: each `Some(Err(()))` is an entry without a
/// key/value separator. Values of a known fixed length are taken without being scanned for
/// the entry separator when the byte after them is one (or the header ends there): if the
/// separator also occurs inside, the value fails its encoding check, as the shorter value
/// a scan would have found does.
pub(super) struct Entries<'a> {
    pub(super) text: &'a [u8],
    pub(super) grammar: Grammar,
    /// Start of the next entry; `None` once the last one was returned.
    pub(super) next: Option<usize>,
}

impl<'a> Entries<'a> {
    pub(super) fn new(text: &'a [u8], grammar: Grammar) -> Self {
        Self {
            text,
            grammar,
            next: Some(0),
        }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.next?;
        let rest = self.text.get(start..)?;
        let (between, inside) = self.grammar.separators();
        let Some(split) = rest.iter().position(|&b| b == inside || b == between) else {
            self.next = None;
            return Some(Err(()));
        };
        let (key, after) = rest.split_at(split);
        let after = after.get(1..).unwrap_or_default();
        if rest.get(split) == Some(&between) {
            self.next = Some(start + split + 1);
            return Some(Err(()));
        }
        let len = match self.grammar.value_len(key) {
            Some(n) if after.len() == n || after.get(n) == Some(&between) => n,
            _ => after
                .iter()
                .position(|&b| b == between)
                .unwrap_or(after.len()),
        };
        self.next = (len < after.len()).then_some(start + split + 1 + len + 1);
        Some(Ok(Entry {
            start,
            key,
            value: after.get(..len).unwrap_or_default(),
        }))
    }
}

pub(super) struct Parsed<'a> {
    pub(super) timestamp_text: &'a [u8],
    pub(super) timestamp: i64,
    pub(super) signatures: Signatures<'a>,
}

pub(super) fn parse<'a>(
    scheme: Scheme,
    timestamp: Option<&'a [u8]>,
    signature: &'a [u8],
) -> Result<Parsed<'a>, VerifyError> {
    let sig_name = scheme.signature_header();
    if signature.is_empty() {
        return Err(malformed(sig_name, Malformed::Empty));
    }
    if signature.len() > MAX_SIGNATURE_HEADER {
        return Err(malformed(sig_name, Malformed::TooLong));
    }
    if scheme == Scheme::Stripe {
        return parse_stripe(timestamp, signature);
    }
    let ts_name = scheme.timestamp_header().unwrap_or(WEBHOOK_TIMESTAMP);
    let timestamp_text = timestamp.ok_or_else(|| VerifyError::MissingHeader { name: ts_name })?;
    let ts = parse_timestamp_bytes(timestamp_text)
        .ok_or_else(|| malformed(ts_name, Malformed::Timestamp))?;
    let signatures = match scheme {
        Scheme::Standard => parse_standard_list(signature)?,
        _ => match hex_canonical_32(signature) {
            Some(decoded) => Signatures {
                text: signature,
                grammar: Grammar::Single,
                first_v1: Some((signature, decoded)),
            },
            None => return Err(malformed(sig_name, Malformed::SignatureEncoding)),
        },
    };
    Ok(Parsed {
        timestamp_text,
        timestamp: ts,
        signatures,
    })
}

/// Checks every entry of a Standard Webhooks list: syntax errors anywhere are reported, and
/// `v1` / `v1a` values must be canonical base64 of 32 / 64 bytes.
pub(super) fn parse_standard_list(signature: &[u8]) -> Result<Signatures<'_>, VerifyError> {
    let name = WEBHOOK_SIGNATURE;
    let mut first_v1 = None;
    for (n, entry) in Entries::new(signature, Grammar::Standard).enumerate() {
        if n >= MAX_SIGNATURES {
            return Err(malformed(name, Malformed::TooManySignatures));
        }
        let entry = entry.map_err(|()| malformed(name, Malformed::SignatureSyntax))?;
        let version = entry.key;
        if version.is_empty() || !version.iter().all(u8::is_ascii_alphanumeric) {
            return Err(malformed(name, Malformed::SignatureSyntax));
        }
        let canonical = match version {
            b"v1" => base64_canonical::<32>(entry.value).map(|decoded| {
                first_v1.get_or_insert((entry.value, decoded));
            }),
            b"v1a" => base64_canonical::<64>(entry.value).map(drop),
            // Versions this verifier does not know are skipped, as the specification asks.
            _ => Some(()),
        };
        if canonical.is_none() {
            return Err(malformed(name, Malformed::SignatureEncoding));
        }
    }
    Ok(Signatures {
        text: signature,
        grammar: Grammar::Standard,
        first_v1,
    })
}

pub(super) fn parse_stripe<'a>(
    timestamp: Option<&'a [u8]>,
    signature: &'a [u8],
) -> Result<Parsed<'a>, VerifyError> {
    let name = STRIPE_SIGNATURE;
    let mut t: Option<&[u8]> = None;
    let mut first_v1 = None;
    for (n, entry) in Entries::new(signature, Grammar::Stripe).enumerate() {
        if n > MAX_SIGNATURES {
            return Err(malformed(name, Malformed::TooManySignatures));
        }
        let entry = entry.map_err(|()| malformed(name, Malformed::SignatureSyntax))?;
        match entry.key {
            b"t" if t.is_some() => return Err(malformed(name, Malformed::TimestampField)),
            b"t" => t = Some(entry.value),
            b"v1" => match hex_canonical_32(entry.value) {
                Some(decoded) => _ = first_v1.get_or_insert((entry.start, entry.value, decoded)),
                None => return Err(malformed(name, Malformed::SignatureEncoding)),
            },
            // `v0` and future schemes are ignored, as Stripe's own libraries do.
            _ => {}
        }
    }
    let timestamp_text = t.ok_or_else(|| malformed(name, Malformed::TimestampField))?;
    if timestamp.is_some_and(|given| given != timestamp_text) {
        return Err(malformed(name, Malformed::TimestampField));
    }
    let ts = parse_timestamp_bytes(timestamp_text)
        .ok_or_else(|| malformed(name, Malformed::Timestamp))?;
    Ok(Parsed {
        timestamp_text,
        timestamp: ts,
        signatures: Signatures {
            // The signatures are looked for from the first one on: no need to walk past
            // the timestamp again.
            text: first_v1
                .and_then(|(start, _, _)| signature.get(start..))
                .unwrap_or_default(),
            grammar: Grammar::Stripe,
            first_v1: first_v1.map(|(_, sig, decoded)| (sig, decoded)),
        },
    })
}

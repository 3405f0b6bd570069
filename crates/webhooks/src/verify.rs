//! Inbound signature verification for Standard Webhooks (v1 HMAC and v1a ed25519), Stripe
//! style and the Aurora/Tribe partner headers.

use std::fmt;
use std::str::FromStr;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::encoding::{base64_canonical, base64_encode, ct_eq, hex_canonical_32};
use crate::error::{Malformed, SecretError, VerifyError};
use crate::fingerprint::Fingerprint;
use crate::mac::HmacKey;
use crate::replay::{ReplayOutcome, ReplayStore};
use crate::secret::{Key, Secret};

/// `webhook-id` (Standard Webhooks).
pub const WEBHOOK_ID: &str = "webhook-id";
/// `webhook-timestamp` (Standard Webhooks).
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// `webhook-signature` (Standard Webhooks).
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// `Stripe-Signature`.
pub const STRIPE_SIGNATURE: &str = "stripe-signature";
/// `X-Aurora-Signature`.
pub const AURORA_SIGNATURE: &str = "x-aurora-signature";
/// `X-Aurora-Timestamp`.
pub const AURORA_TIMESTAMP: &str = "x-aurora-timestamp";
/// `X-Tribe-Signature`.
pub const TRIBE_SIGNATURE: &str = "x-tribe-signature";
/// `X-Tribe-Timestamp`.
pub const TRIBE_TIMESTAMP: &str = "x-tribe-timestamp";

/// Most signature entries one header may carry; more is treated as malformed.
pub const MAX_SIGNATURES: usize = 16;
/// Longest accepted signature header value, in bytes.
pub const MAX_SIGNATURE_HEADER: usize = 4096;
/// Longest accepted message id, in bytes.
pub const MAX_ID_LEN: usize = 256;

/// A webhook signing scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` with
    /// `v1,<base64 HMAC-SHA256>` and `v1a,<base64 ed25519>` entries over `id.timestamp.body`.
    Standard,
    /// Stripe: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>…]` over `ts.body`, keyed by the
    /// secret string's bytes.
    Stripe,
    /// Aurora PMS: `X-Aurora-Signature` (hex HMAC-SHA256 over `timestamp.body`) and
    /// `X-Aurora-Timestamp`.
    Aurora,
    /// Tribe: `X-Tribe-Signature` and `X-Tribe-Timestamp`, as Aurora.
    Tribe,
}

impl Scheme {
    /// Every scheme.
    pub const ALL: [Scheme; 4] = [
        Scheme::Standard,
        Scheme::Stripe,
        Scheme::Aurora,
        Scheme::Tribe,
    ];

    /// The name used in configuration and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Standard => "standard",
            Scheme::Stripe => "stripe",
            Scheme::Aurora => "aurora",
            Scheme::Tribe => "tribe",
        }
    }

    /// The header carrying the signature.
    pub const fn signature_header(self) -> &'static str {
        match self {
            Scheme::Standard => WEBHOOK_SIGNATURE,
            Scheme::Stripe => STRIPE_SIGNATURE,
            Scheme::Aurora => AURORA_SIGNATURE,
            Scheme::Tribe => TRIBE_SIGNATURE,
        }
    }

    /// The header carrying the timestamp, when it is a separate header.
    pub const fn timestamp_header(self) -> Option<&'static str> {
        match self {
            Scheme::Standard => Some(WEBHOOK_TIMESTAMP),
            Scheme::Stripe => None,
            Scheme::Aurora => Some(AURORA_TIMESTAMP),
            Scheme::Tribe => Some(TRIBE_TIMESTAMP),
        }
    }

    /// The header carrying the message id, when the scheme has one.
    pub const fn id_header(self) -> Option<&'static str> {
        match self {
            Scheme::Standard => Some(WEBHOOK_ID),
            Scheme::Stripe | Scheme::Aurora | Scheme::Tribe => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown scheme name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown webhook scheme {0:?} (expected standard, stripe, aurora or tribe)")]
pub struct UnknownScheme(pub String);

impl FromStr for Scheme {
    type Err = UnknownScheme;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.as_str() == s)
            .ok_or_else(|| UnknownScheme(s.to_owned()))
    }
}

/// How far a timestamp may be from the verifier's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerance {
    /// Oldest accepted age in seconds (default 300).
    pub max_age_secs: i64,
    /// Furthest accepted clock skew into the future in seconds (default 60).
    pub max_future_secs: i64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self {
            max_age_secs: 300,
            max_future_secs: 60,
        }
    }
}

impl Tolerance {
    /// Checks `timestamp` against `now` without overflowing for any pair of `i64`s.
    pub fn check(&self, timestamp: i64, now: i64) -> Result<(), VerifyError> {
        let too_old = || VerifyError::TimestampTooOld {
            timestamp,
            now,
            max_age_secs: self.max_age_secs,
        };
        let too_new = || VerifyError::TimestampTooNew {
            timestamp,
            now,
            max_future_secs: self.max_future_secs,
        };
        match now.checked_sub(timestamp) {
            Some(age) if age > self.max_age_secs => Err(too_old()),
            Some(age) if age < 0 && age.checked_neg().is_none_or(|a| a > self.max_future_secs) => {
                Err(too_new())
            }
            Some(_) => Ok(()),
            // The difference does not fit in an i64: the timestamp is absurdly far away.
            None if timestamp < now => Err(too_old()),
            None => Err(too_new()),
        }
    }

    /// How long a message stays acceptable after it is first seen (age plus skew): the
    /// shortest safe TTL for a replay record.
    pub fn window_secs(&self) -> i64 {
        self.max_age_secs.saturating_add(self.max_future_secs)
    }
}

/// The signed parts of a webhook as strings, for callers that do not have a `HeaderMap`
/// (the `haven-admin webhooks verify` command).
#[derive(Debug, Clone, Copy)]
pub struct SignedParts<'a> {
    /// The message id (Standard Webhooks only).
    pub id: Option<&'a str>,
    /// The timestamp header value. For Stripe it may be omitted (it is inside the signature
    /// header); if given it must equal the `t=` field.
    pub timestamp: Option<&'a str>,
    /// The signature header value.
    pub signature: &'a str,
}

/// A verified webhook. It borrows from the headers it was verified from: verifying copies
/// and allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The scheme it was verified with.
    pub scheme: Scheme,
    /// The id replays are detected by.
    pub replay_id: ReplayId<'a>,
    /// The signed timestamp (Unix seconds).
    pub timestamp: i64,
    /// Index of the secret that matched, in the order given.
    pub secret_index: usize,
}

/// What identifies one webhook for replay detection: the `webhook-id` for Standard
/// Webhooks; for the schemes without a message id, the matching signature, which is unique
/// per timestamp and body. Displayed as the id itself, or as `sig:` and the hex signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplayId<'a> {
    /// The message id header.
    Message(&'a str),
    /// The matching signature, lower-case hex.
    Signature(&'a str),
}

/// Prefix of the displayed form of [`ReplayId::Signature`].
const SIGNATURE_ID_PREFIX: &str = "sig:";

impl ReplayId<'_> {
    fn from_signature(hex: &[u8]) -> ReplayId<'_> {
        // Checked to be lower-case hex while parsing, so always UTF-8.
        ReplayId::Signature(std::str::from_utf8(hex).unwrap_or_default())
    }
}

impl fmt::Display for ReplayId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayId::Message(id) => f.write_str(id),
            ReplayId::Signature(hex) => {
                f.write_str(SIGNATURE_ID_PREFIX)?;
                f.write_str(hex)
            }
        }
    }
}

impl PartialEq<str> for ReplayId<'_> {
    fn eq(&self, other: &str) -> bool {
        match self {
            ReplayId::Message(id) => *id == other,
            ReplayId::Signature(hex) => other
                .strip_prefix(SIGNATURE_ID_PREFIX)
                .is_some_and(|rest| rest == *hex),
        }
    }
}

impl PartialEq<&str> for ReplayId<'_> {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl PartialEq<String> for ReplayId<'_> {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

/// A signature header whose syntax and encodings have been checked: every signature in it
/// is canonical. Checking a signature decodes it, so the first HMAC signature is kept
/// decoded from the parse; the others (rare: a sender mid-rotation) are decoded again when
/// the first does not match.
#[derive(Clone, Copy)]
struct Signatures<'a> {
    /// The header, or for Stripe its part from the first `v1` entry on.
    text: &'a [u8],
    grammar: Grammar,
    /// The first HMAC signature, as sent and decoded.
    first_v1: Option<(&'a [u8], [u8; 32])>,
}

/// How a scheme spells its signatures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grammar {
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
    fn decode_v1(self, text: &[u8]) -> Option<[u8; 32]> {
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
    fn value_len(self, key: &[u8]) -> Option<usize> {
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
    fn find_hmac(self, tag: &[u8; 32]) -> Option<&'a [u8]> {
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
    fn ed25519(self) -> impl Iterator<Item = &'a [u8]> {
        let standard = (self.grammar == Grammar::Standard).then_some(self);
        standard.into_iter().flat_map(|s| s.values(b"v1a"))
    }

    /// The values of the entries named `key`, in header order.
    fn values(self, key: &'static [u8]) -> impl Iterator<Item = &'a [u8]> {
        Entries::new(self.text, self.grammar)
            .flatten()
            .filter(move |entry| entry.key == key)
            .map(|entry| entry.value)
    }
}

/// One `key<separator>value` entry of a list header.
#[derive(Clone, Copy)]
struct Entry<'a> {
    /// Where the entry starts in the header.
    start: usize,
    key: &'a [u8],
    value: &'a [u8],
}

/// The entries of a list header, in one pass: each `Some(Err(()))` is an entry without a
/// key/value separator. Values of a known fixed length are taken without being scanned for
/// the entry separator when the byte after them is one (or the header ends there): if the
/// separator also occurs inside, the value fails its encoding check, as the shorter value
/// a scan would have found does.
struct Entries<'a> {
    text: &'a [u8],
    grammar: Grammar,
    /// Start of the next entry; `None` once the last one was returned.
    next: Option<usize>,
}

impl<'a> Entries<'a> {
    fn new(text: &'a [u8], grammar: Grammar) -> Self {
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

struct Parsed<'a> {
    timestamp_text: &'a [u8],
    timestamp: i64,
    signatures: Signatures<'a>,
}

/// Verifies one webhook given as strings. `secrets` are tried in order; expired ones are
/// skipped. The raw `body` bytes are verified as received.
pub fn verify<'a>(
    scheme: Scheme,
    secrets: &[Secret],
    parts: SignedParts<'a>,
    body: &[u8],
    now: i64,
    tolerance: Tolerance,
) -> Result<Verified<'a>, VerifyError> {
    let parts = RawParts {
        id: parts.id.map(str::as_bytes),
        timestamp: parts.timestamp.map(str::as_bytes),
        signature: parts.signature.as_bytes(),
    };
    verify_raw(scheme, secrets, parts, body, now, tolerance)
}

/// [`SignedParts`] as bytes: header values need not be turned into `str`s first, since
/// every grammar here is ASCII and checked byte by byte.
#[derive(Clone, Copy)]
struct RawParts<'a> {
    id: Option<&'a [u8]>,
    timestamp: Option<&'a [u8]>,
    signature: &'a [u8],
}

fn verify_raw<'a>(
    scheme: Scheme,
    secrets: &[Secret],
    parts: RawParts<'a>,
    body: &[u8],
    now: i64,
    tolerance: Tolerance,
) -> Result<Verified<'a>, VerifyError> {
    let id = match scheme.id_header() {
        Some(name) => Some(check_id(name, parts.id)?),
        None => None,
    };
    let parsed = parse(scheme, parts.timestamp, parts.signature)?;
    tolerance.check(parsed.timestamp, now)?;
    let mut ed25519_message: Option<Vec<u8>> = None;
    for (index, secret) in secrets.iter().enumerate() {
        if !secret.is_active(now) {
            continue;
        }
        let verified = |replay_id| Verified {
            scheme,
            replay_id,
            timestamp: parsed.timestamp,
            secret_index: index,
        };
        match &secret.key {
            Key::Hmac(key) => {
                let tag = hmac_sha256(key, id, parsed.timestamp_text, body);
                if let Some(sig) = parsed.signatures.find_hmac(&tag) {
                    let replay_id = match id {
                        Some(id) => ReplayId::Message(id),
                        None => ReplayId::from_signature(sig),
                    };
                    return Ok(verified(replay_id));
                }
            }
            Key::Ed25519Public(_) | Key::Ed25519Private(_) => {
                for encoded in parsed.signatures.ed25519() {
                    // Checked to be canonical base64 of 64 bytes while parsing.
                    let Some(sig) = base64_canonical::<64>(encoded) else {
                        continue;
                    };
                    let message = ed25519_message
                        .get_or_insert_with(|| signed_content(id, parsed.timestamp_text, body));
                    if secret.verify_ed25519(message, &sig) {
                        return Ok(verified(ReplayId::Message(id.unwrap_or_default())));
                    }
                }
            }
        }
    }
    Err(VerifyError::BadSignature)
}

/// Produces the signature header value for one secret: `v1,<base64>` or `v1a,<base64>`
/// (Standard Webhooks, `id` required), `t=<ts>,v1=<hex>` (Stripe) or `<hex>` (partners).
pub fn sign_header(
    scheme: Scheme,
    secret: &Secret,
    id: Option<&str>,
    timestamp: i64,
    payload: &[u8],
) -> Result<String, SecretError> {
    let ts = timestamp.to_string();
    let ts = ts.as_bytes();
    match scheme {
        Scheme::Standard => {
            let id = id.ok_or(SecretError::MissingId)?;
            match &secret.key {
                Key::Hmac(key) => Ok(format!(
                    "v1,{}",
                    base64_encode(&hmac_sha256(key, Some(id), ts, payload))
                )),
                Key::Ed25519Private(pair) => {
                    let sig = pair.sign(&signed_content(Some(id), ts, payload));
                    Ok(format!("v1a,{}", base64_encode(sig.as_ref())))
                }
                Key::Ed25519Public(_) => Err(SecretError::CannotSign),
            }
        }
        Scheme::Stripe | Scheme::Aurora | Scheme::Tribe => {
            let Key::Hmac(key) = &secret.key else {
                return Err(SecretError::WrongScheme);
            };
            let tag = hex::encode(hmac_sha256(key, None, ts, payload));
            Ok(if scheme == Scheme::Stripe {
                format!("t={timestamp},v1={tag}")
            } else {
                tag
            })
        }
    }
}

/// Signs with every active secret and joins the results the way the scheme allows several
/// signatures (space-separated for Standard Webhooks, `,v1=` for Stripe). Partner schemes
/// carry one signature: the first active secret is used.
pub fn sign_header_rotating(
    scheme: Scheme,
    secrets: &[Secret],
    id: Option<&str>,
    timestamp: i64,
    payload: &[u8],
    now: i64,
) -> Result<String, SecretError> {
    let mut active = secrets.iter().filter(|s| s.is_active(now));
    let first = active.next().ok_or(SecretError::Empty)?;
    let mut header = sign_header(scheme, first, id, timestamp, payload)?;
    match scheme {
        Scheme::Standard => {
            for secret in active {
                header.push(' ');
                header.push_str(&sign_header(scheme, secret, id, timestamp, payload)?);
            }
        }
        Scheme::Stripe => {
            for secret in active {
                let next = sign_header(scheme, secret, id, timestamp, payload)?;
                if let Some((_, v1)) = next.split_once(',') {
                    header.push(',');
                    header.push_str(v1);
                }
            }
        }
        Scheme::Aurora | Scheme::Tribe => {}
    }
    Ok(header)
}

/// Verifies webhooks of one source: a scheme, its secrets (rotation) and a tolerance.
#[derive(Debug)]
pub struct Verifier {
    source: String,
    scheme: Scheme,
    secrets: Vec<Secret>,
    tolerance: Tolerance,
}

impl Verifier {
    /// A verifier for `source` (a short name such as `aurora`, used to scope replay ids).
    pub fn new(source: impl Into<String>, scheme: Scheme, secrets: Vec<Secret>) -> Self {
        Self {
            source: source.into(),
            scheme,
            secrets,
            tolerance: Tolerance::default(),
        }
    }

    /// Replaces the default tolerance (300 s old, 60 s ahead).
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Tolerance) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The source name.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The tolerance.
    pub fn tolerance(&self) -> Tolerance {
        self.tolerance
    }

    /// Verifies the headers and raw body at `now` (Unix seconds). Each header must appear
    /// at most once. Has no side effects.
    pub fn verify<'h>(
        &self,
        headers: &'h HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Verified<'h>, VerifyError> {
        verify_raw(
            self.scheme,
            &self.secrets,
            scheme_headers(self.scheme, headers)?,
            body,
            now,
            self.tolerance,
        )
    }

    /// Verifies, then records the message in `store` so that a redelivery is reported as
    /// [`VerifyError::Duplicate`] and a reused id with another body as
    /// [`VerifyError::Conflict`] (also logged on the `security` target). The record lives
    /// for the tolerance window, after which the timestamp check rejects the message anyway.
    pub async fn verify_and_record<'h>(
        &self,
        headers: &'h HeaderMap,
        body: &[u8],
        now: i64,
        store: &dyn ReplayStore,
    ) -> Result<Verified<'h>, VerifyError> {
        let verified = self.verify(headers, body, now)?;
        let ttl_secs = u64::try_from(self.tolerance.window_secs())
            .unwrap_or(0)
            .max(1);
        let replay_id = verified.replay_id.to_string();
        let outcome = store
            .record(
                &self.source,
                &replay_id,
                &Fingerprint::of(body),
                std::time::Duration::from_secs(ttl_secs),
            )
            .await
            .map_err(VerifyError::Store)?;
        match outcome {
            ReplayOutcome::First => Ok(verified),
            ReplayOutcome::Duplicate => Err(VerifyError::Duplicate { id: replay_id }),
            ReplayOutcome::Conflict => {
                tracing::warn!(
                    target: "security",
                    source = %self.source,
                    webhook_id = %replay_id,
                    "webhook id replayed with a different body"
                );
                Err(VerifyError::Conflict { id: replay_id })
            }
        }
    }
}

/// HMAC-SHA256 over `id.timestamp.body` (or `timestamp.body`), streamed: the body is
/// hashed where it lies, never copied whole.
fn hmac_sha256(key: &HmacKey, id: Option<&str>, timestamp: &[u8], body: &[u8]) -> [u8; 32] {
    match id {
        Some(id) => key.sign(&[id.as_bytes(), b".", timestamp, b".", body]),
        None => key.sign(&[timestamp, b".", body]),
    }
}

fn signed_content(id: Option<&str>, timestamp: &[u8], body: &[u8]) -> Vec<u8> {
    let id_len = id.map_or(0, |i| i.len() + 1);
    let mut out = Vec::with_capacity(id_len + timestamp.len() + 1 + body.len());
    if let Some(id) = id {
        out.extend_from_slice(id.as_bytes());
        out.push(b'.');
    }
    out.extend_from_slice(timestamp);
    out.push(b'.');
    out.extend_from_slice(body);
    out
}

/// A pre-parsed header name: looking up by `&str` would parse and lower-case it per call.
fn header_name(name: &'static str) -> HeaderName {
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
const SCAN_LIMIT: usize = 32;

/// One header a scheme requires, as found in a request.
#[derive(Clone, Copy)]
struct Found<'a> {
    name: &'static str,
    value: Option<&'a HeaderValue>,
    repeated: bool,
}

impl<'a> Found<'a> {
    fn wanted(name: Option<&'static str>) -> Option<Self> {
        name.map(|name| Self {
            name,
            value: None,
            repeated: false,
        })
    }

    /// The value; the header must appear exactly once and be visible ASCII.
    fn value(self) -> Result<&'a [u8], VerifyError> {
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
fn scheme_headers(scheme: Scheme, headers: &HeaderMap) -> Result<RawParts<'_>, VerifyError> {
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
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().last() == b.as_bytes().last() && a == b
}

fn malformed(name: &'static str, reason: Malformed) -> VerifyError {
    VerifyError::MalformedHeader { name, reason }
}

fn check_id<'a>(name: &'static str, id: Option<&'a [u8]>) -> Result<&'a str, VerifyError> {
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

fn parse_timestamp_bytes(text: &[u8]) -> Option<i64> {
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
fn eight_digits(octet: [u8; 8]) -> Option<u64> {
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

fn parse<'a>(
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
fn parse_standard_list(signature: &[u8]) -> Result<Signatures<'_>, VerifyError> {
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

fn parse_stripe<'a>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_grammar() {
        assert_eq!(parse_timestamp("0"), Some(0));
        assert_eq!(parse_timestamp("1614265330"), Some(1_614_265_330));
        assert_eq!(parse_timestamp("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_timestamp("9223372036854775807"), Some(i64::MAX));
        for bad in [
            "",
            "-",
            "+1",
            "01",
            "-0",
            "1.5",
            " 1",
            "1e9",
            "9223372036854775808",
            "hello",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tolerance_never_overflows() {
        let t = Tolerance::default();
        assert!(t.check(100, 100).is_ok());
        assert!(t.check(100 - 300, 100).is_ok());
        assert!(matches!(
            t.check(100 - 301, 100),
            Err(VerifyError::TimestampTooOld { .. })
        ));
        assert!(t.check(160, 100).is_ok());
        assert!(matches!(
            t.check(161, 100),
            Err(VerifyError::TimestampTooNew { .. })
        ));
        assert!(matches!(
            t.check(i64::MIN, 1_700_000_000),
            Err(VerifyError::TimestampTooOld { .. })
        ));
        assert!(matches!(
            t.check(i64::MAX, -1_700_000_000),
            Err(VerifyError::TimestampTooNew { .. })
        ));
        assert!(matches!(
            t.check(i64::MAX, i64::MIN),
            Err(VerifyError::TimestampTooNew { .. })
        ));
        assert!(matches!(
            t.check(i64::MIN, i64::MAX),
            Err(VerifyError::TimestampTooOld { .. })
        ));
    }

    #[test]
    fn scheme_names_round_trip() {
        for s in Scheme::ALL {
            assert_eq!(s.as_str().parse::<Scheme>().unwrap(), s);
        }
        assert!("STANDARD".parse::<Scheme>().is_err());
    }
}

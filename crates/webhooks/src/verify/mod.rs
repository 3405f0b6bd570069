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

mod headers;
mod signatures;

pub use headers::parse_timestamp;
use headers::*;
use signatures::*;

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

//! Inbound signature verification for Standard Webhooks (v1 HMAC and v1a ed25519), Stripe
//! style and the Aurora/Tribe partner headers.

use std::fmt;
use std::str::FromStr;

use http::{HeaderMap, HeaderName};
use ring::hmac;

use crate::encoding::{base64_encode, base64_exact, ct_eq, hex32_lower};
use crate::error::{Malformed, SecretError, VerifyError};
use crate::fingerprint::Fingerprint;
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

/// A verified webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The scheme it was verified with.
    pub scheme: Scheme,
    /// The id replays are detected by: the `webhook-id` for Standard Webhooks, otherwise
    /// `sig:` and the hex of the matching signature (those schemes carry no id, and the
    /// signature is unique per timestamp and body).
    pub replay_id: String,
    /// The signed timestamp (Unix seconds).
    pub timestamp: i64,
    /// Index of the secret that matched, in the order given.
    pub secret_index: usize,
}

enum Candidate {
    Hmac([u8; 32]),
    Ed25519([u8; 64]),
}

struct Parsed<'a> {
    timestamp_text: &'a str,
    timestamp: i64,
    candidates: Vec<Candidate>,
}

/// Verifies one webhook given as strings. `secrets` are tried in order; expired ones are
/// skipped. The raw `body` bytes are verified as received.
pub fn verify(
    scheme: Scheme,
    secrets: &[Secret],
    parts: SignedParts<'_>,
    body: &[u8],
    now: i64,
    tolerance: Tolerance,
) -> Result<Verified, VerifyError> {
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
        match &secret.key {
            Key::Hmac(key) => {
                let tag = hmac_tag(key, id, parsed.timestamp_text, body);
                let expected = tag.as_ref();
                for candidate in &parsed.candidates {
                    if let Candidate::Hmac(sig) = candidate
                        && ct_eq(sig, expected)
                    {
                        let replay_id = match id {
                            Some(id) => id.to_owned(),
                            None => format!("sig:{}", hex::encode(sig)),
                        };
                        return Ok(Verified {
                            scheme,
                            replay_id,
                            timestamp: parsed.timestamp,
                            secret_index: index,
                        });
                    }
                }
            }
            Key::Ed25519Public(_) | Key::Ed25519Private(_) => {
                for candidate in &parsed.candidates {
                    if let Candidate::Ed25519(sig) = candidate {
                        let message = ed25519_message
                            .get_or_insert_with(|| signed_content(id, parsed.timestamp_text, body));
                        if secret.verify_ed25519(message, sig) {
                            return Ok(Verified {
                                scheme,
                                replay_id: id.unwrap_or_default().to_owned(),
                                timestamp: parsed.timestamp,
                                secret_index: index,
                            });
                        }
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
    match scheme {
        Scheme::Standard => {
            let id = id.ok_or(SecretError::MissingId)?;
            match &secret.key {
                Key::Hmac(key) => Ok(format!(
                    "v1,{}",
                    base64_encode(hmac_tag(key, Some(id), &ts, payload).as_ref())
                )),
                Key::Ed25519Private(pair) => {
                    let sig = pair.sign(&signed_content(Some(id), &ts, payload));
                    Ok(format!("v1a,{}", base64_encode(sig.as_ref())))
                }
                Key::Ed25519Public(_) => Err(SecretError::CannotSign),
            }
        }
        Scheme::Stripe | Scheme::Aurora | Scheme::Tribe => {
            let Key::Hmac(key) = &secret.key else {
                return Err(SecretError::WrongScheme);
            };
            let tag = hex::encode(hmac_tag(key, None, &ts, payload));
            Ok(if scheme == Scheme::Stripe {
                format!("t={ts},v1={tag}")
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
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, VerifyError> {
        let id = match self.scheme.id_header() {
            Some(name) => Some(required_header(headers, name)?),
            None => None,
        };
        let timestamp = match self.scheme.timestamp_header() {
            Some(name) => Some(required_header(headers, name)?),
            None => None,
        };
        let signature = required_header(headers, self.scheme.signature_header())?;
        verify(
            self.scheme,
            &self.secrets,
            SignedParts {
                id,
                timestamp,
                signature,
            },
            body,
            now,
            self.tolerance,
        )
    }

    /// Verifies, then records the message in `store` so that a redelivery is reported as
    /// [`VerifyError::Duplicate`] and a reused id with another body as
    /// [`VerifyError::Conflict`] (also logged on the `security` target). The record lives
    /// for the tolerance window, after which the timestamp check rejects the message anyway.
    pub async fn verify_and_record(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
        store: &dyn ReplayStore,
    ) -> Result<Verified, VerifyError> {
        let verified = self.verify(headers, body, now)?;
        let ttl_secs = u64::try_from(self.tolerance.window_secs())
            .unwrap_or(0)
            .max(1);
        let outcome = store
            .record(
                &self.source,
                &verified.replay_id,
                &Fingerprint::of(body),
                std::time::Duration::from_secs(ttl_secs),
            )
            .await
            .map_err(VerifyError::Store)?;
        match outcome {
            ReplayOutcome::First => Ok(verified),
            ReplayOutcome::Duplicate => Err(VerifyError::Duplicate {
                id: verified.replay_id,
            }),
            ReplayOutcome::Conflict => {
                tracing::warn!(
                    target: "security",
                    source = %self.source,
                    webhook_id = %verified.replay_id,
                    "webhook id replayed with a different body"
                );
                Err(VerifyError::Conflict {
                    id: verified.replay_id,
                })
            }
        }
    }
}

fn hmac_tag(key: &hmac::Key, id: Option<&str>, timestamp: &str, body: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    if let Some(id) = id {
        ctx.update(id.as_bytes());
        ctx.update(b".");
    }
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    ctx.sign()
}

fn signed_content(id: Option<&str>, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let id_len = id.map_or(0, |i| i.len() + 1);
    let mut out = Vec::with_capacity(id_len + timestamp.len() + 1 + body.len());
    if let Some(id) = id {
        out.extend_from_slice(id.as_bytes());
        out.push(b'.');
    }
    out.extend_from_slice(timestamp.as_bytes());
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

fn required_header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, VerifyError> {
    let mut values = headers.get_all(header_name(name)).iter();
    let value = values.next().ok_or(VerifyError::MissingHeader { name })?;
    if values.next().is_some() {
        return Err(VerifyError::DuplicateHeader { name });
    }
    value.to_str().map_err(|_| VerifyError::MalformedHeader {
        name,
        reason: Malformed::NotAscii,
    })
}

fn malformed(name: &'static str, reason: Malformed) -> VerifyError {
    VerifyError::MalformedHeader { name, reason }
}

fn check_id<'a>(name: &'static str, id: Option<&'a str>) -> Result<&'a str, VerifyError> {
    let id = id.ok_or(VerifyError::MissingHeader { name })?;
    if id.is_empty() {
        return Err(malformed(name, Malformed::Empty));
    }
    if id.len() > MAX_ID_LEN {
        return Err(malformed(name, Malformed::TooLong));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed(name, Malformed::NotAscii));
    }
    Ok(id)
}

/// Parses a canonical decimal `i64`: optional `-`, no `+`, no leading zeros, no `-0`.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && !(text.starts_with('-') && digits == "0");
    if !canonical {
        return None;
    }
    text.parse::<i64>().ok()
}

fn parse<'a>(
    scheme: Scheme,
    timestamp: Option<&'a str>,
    signature: &'a str,
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
    let timestamp_text = timestamp.ok_or(VerifyError::MissingHeader { name: ts_name })?;
    let ts = parse_timestamp(timestamp_text).ok_or(malformed(ts_name, Malformed::Timestamp))?;
    let candidates = match scheme {
        Scheme::Standard => parse_standard_list(signature)?,
        _ => vec![Candidate::Hmac(
            hex32_lower(signature).ok_or(malformed(sig_name, Malformed::SignatureEncoding))?,
        )],
    };
    Ok(Parsed {
        timestamp_text,
        timestamp: ts,
        candidates,
    })
}

fn parse_standard_list(signature: &str) -> Result<Vec<Candidate>, VerifyError> {
    let name = WEBHOOK_SIGNATURE;
    let mut candidates = Vec::with_capacity(2);
    for (n, entry) in signature.split(' ').enumerate() {
        if n >= MAX_SIGNATURES {
            return Err(malformed(name, Malformed::TooManySignatures));
        }
        let (version, value) = entry
            .split_once(',')
            .ok_or(malformed(name, Malformed::SignatureSyntax))?;
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(malformed(name, Malformed::SignatureSyntax));
        }
        match version {
            "v1" => candidates.push(Candidate::Hmac(
                base64_exact::<32>(value).ok_or(malformed(name, Malformed::SignatureEncoding))?,
            )),
            "v1a" => candidates.push(Candidate::Ed25519(
                base64_exact::<64>(value).ok_or(malformed(name, Malformed::SignatureEncoding))?,
            )),
            // Versions this verifier does not know are skipped, as the specification asks.
            _ => {}
        }
    }
    Ok(candidates)
}

fn parse_stripe<'a>(
    timestamp: Option<&'a str>,
    signature: &'a str,
) -> Result<Parsed<'a>, VerifyError> {
    let name = STRIPE_SIGNATURE;
    let mut t: Option<&str> = None;
    let mut candidates = Vec::with_capacity(2);
    for (n, entry) in signature.split(',').enumerate() {
        if n > MAX_SIGNATURES {
            return Err(malformed(name, Malformed::TooManySignatures));
        }
        let (key, value) = entry
            .split_once('=')
            .ok_or(malformed(name, Malformed::SignatureSyntax))?;
        match key {
            "t" if t.is_some() => return Err(malformed(name, Malformed::TimestampField)),
            "t" => t = Some(value),
            "v1" => candidates.push(Candidate::Hmac(
                hex32_lower(value).ok_or(malformed(name, Malformed::SignatureEncoding))?,
            )),
            // `v0` and future schemes are ignored, as Stripe's own libraries do.
            _ => {}
        }
    }
    let timestamp_text = t.ok_or(malformed(name, Malformed::TimestampField))?;
    if timestamp.is_some_and(|given| given != timestamp_text) {
        return Err(malformed(name, Malformed::TimestampField));
    }
    let ts = parse_timestamp(timestamp_text).ok_or(malformed(name, Malformed::Timestamp))?;
    Ok(Parsed {
        timestamp_text,
        timestamp: ts,
        candidates,
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

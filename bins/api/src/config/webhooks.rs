//! Inbound webhook sources (`HAVEN_WEBHOOK_SOURCES`): who may call
//! `POST /api/v1/webhooks/{source}`, with which scheme and secrets.
//!
//! The variable is a JSON object keyed by source name:
//!
//! ```json
//! {"aurora":  {"scheme": "aurora", "secrets": ["aurora_secret"]},
//!  "partner": {"scheme": "standard",
//!              "secrets": ["whsec_new…", {"secret": "whsec_old…", "expires_at": 1767225600}],
//!              "max_age_secs": 300, "max_future_secs": 60}}
//! ```
//!
//! A secret is a string or `{"secret": …, "expires_at": <unix seconds>}` (rotation: an
//! expired secret no longer verifies). An HMAC secret shorter than
//! [`MIN_HMAC_KEY_LEN`] bytes (16: decoded for `whsec_`, the string itself for the other
//! schemes) is refused at start-up. The tolerance defaults to 300 s old, 60 s ahead.

use std::collections::BTreeMap;
use std::sync::Arc;

use haven_service::config::ConfigError;
use haven_webhooks::{MIN_HMAC_KEY_LEN, Scheme, Secret, Tolerance, Verifier};
use serde::Deserialize;

const VAR: &str = "HAVEN_WEBHOOK_SOURCES";

/// The configured inbound webhook sources, by name (cheap to clone).
#[derive(Clone, Default)]
pub struct WebhookSources(Arc<BTreeMap<String, Arc<Verifier>>>);

impl std::fmt::Debug for WebhookSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names and schemes only: secrets never reach logs.
        f.debug_map()
            .entries(self.0.iter().map(|(name, v)| (name, v.scheme().as_str())))
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceOwn {
    scheme: String,
    secrets: Vec<SecretOwn>,
    max_age_secs: Option<i64>,
    max_future_secs: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SecretOwn {
    Plain(String),
    Expiring { secret: String, expires_at: i64 },
}

impl WebhookSources {
    /// Sources from already built verifiers (tests, embedding).
    pub fn from_verifiers(verifiers: impl IntoIterator<Item = Verifier>) -> Self {
        Self(Arc::new(
            verifiers
                .into_iter()
                .map(|v| (v.source().to_owned(), Arc::new(v)))
                .collect(),
        ))
    }

    /// Parses the JSON value of `HAVEN_WEBHOOK_SOURCES`; blank means no sources.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { var: VAR, reason };
        if raw.trim().is_empty() {
            return Ok(Self::default());
        }
        let sources: BTreeMap<String, SourceOwn> = serde_json::from_str(raw)
            .map_err(|e| invalid(format!("not a JSON object of sources ({e})")))?;
        let mut verifiers = Vec::with_capacity(sources.len());
        for (name, source) in sources {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(invalid(format!(
                    "source name {name:?} must be [A-Za-z0-9_-]+"
                )));
            }
            let scheme: Scheme = source
                .scheme
                .parse()
                .map_err(|e| invalid(format!("source {name:?}: {e}")))?;
            if source.secrets.is_empty() {
                return Err(invalid(format!("source {name:?} has no secrets")));
            }
            let secrets = source
                .secrets
                .into_iter()
                .map(|s| {
                    let (text, expiry) = match s {
                        SecretOwn::Plain(text) => (text, None),
                        SecretOwn::Expiring { secret, expires_at } => (secret, Some(expires_at)),
                    };
                    let secret = Secret::for_scheme(scheme, &text).map_err(|e| {
                        invalid(format!("source {name:?}: a secret is invalid ({e})"))
                    })?;
                    if let Some(len) = secret.hmac_key_len().filter(|l| *l < MIN_HMAC_KEY_LEN) {
                        return Err(invalid(format!(
                            "source {name:?}: an HMAC secret of {len} bytes is too short; at least {MIN_HMAC_KEY_LEN} are required"
                        )));
                    }
                    Ok(match expiry {
                        Some(at) => secret.expires_at(at),
                        None => secret,
                    })
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            let defaults = Tolerance::default();
            let tolerance = Tolerance {
                max_age_secs: source.max_age_secs.unwrap_or(defaults.max_age_secs),
                max_future_secs: source.max_future_secs.unwrap_or(defaults.max_future_secs),
            };
            if tolerance.max_age_secs < 0 || tolerance.max_future_secs < 0 {
                return Err(invalid(format!(
                    "source {name:?}: max_age_secs and max_future_secs must not be negative"
                )));
            }
            verifiers.push(Verifier::new(name, scheme, secrets).with_tolerance(tolerance));
        }
        Ok(Self::from_verifiers(verifiers))
    }

    /// The verifier of `source`, if it is configured.
    pub fn get(&self, source: &str) -> Option<&Arc<Verifier>> {
        self.0.get(source)
    }

    /// Whether `source` is configured.
    pub fn contains(&self, source: &str) -> bool {
        self.0.contains_key(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_with_rotation_and_tolerance() {
        let sources = WebhookSources::parse(
            r#"{"aurora":{"scheme":"aurora","secrets":["aurora-secret-of-32-characters!!"]},
                "partner":{"scheme":"standard","secrets":[
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    {"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","expires_at":1}],
                    "max_age_secs":120,"max_future_secs":5}}"#,
        )
        .unwrap();
        assert_eq!(sources.get("aurora").unwrap().scheme(), Scheme::Aurora);
        let partner = sources.get("partner").unwrap();
        assert_eq!(partner.tolerance().max_age_secs, 120);
        assert_eq!(partner.tolerance().max_future_secs, 5);
        assert!(WebhookSources::parse("").unwrap().get("aurora").is_none());
    }

    #[test]
    fn bad_sources_name_the_variable() {
        for raw in [
            "[]",
            r#"{"a":{"scheme":"nope","secrets":["x"]}}"#,
            r#"{"a":{"scheme":"aurora","secrets":[]}}"#,
            r#"{"a b":{"scheme":"aurora","secrets":["x"]}}"#,
            r#"{"a":{"scheme":"standard","secrets":["not-whsec"]}}"#,
            // HMAC secrets below 16 bytes, raw and decoded.
            r#"{"a":{"scheme":"aurora","secrets":["fifteen-bytes!!"]}}"#,
            r#"{"a":{"scheme":"tribe","secrets":["aurora-secret-of-32-characters!!",{"secret":"short","expires_at":1}]}}"#,
            r#"{"a":{"scheme":"standard","secrets":["whsec_c2hvcnQ="]}}"#,
        ] {
            let err = WebhookSources::parse(raw).unwrap_err().to_string();
            assert!(err.contains(VAR), "{raw}: {err}");
        }
        let ok =
            WebhookSources::parse(r#"{"a":{"scheme":"stripe","secrets":["sixteen-bytes!!!"]}}"#);
        assert!(ok.is_ok(), "16 bytes is enough");
    }
}

//! Alert delivery: the [`AlertSink`] trait, SMTP, signed webhook and log sinks, and a
//! [`Dispatcher`] that keeps delivery off the detection path.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use haven_core::redact;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::alert::Alert;

#[cfg(feature = "smtp")]
mod smtp;
#[cfg(feature = "http")]
mod webhook;

#[cfg(feature = "smtp")]
pub use smtp::SmtpSink;
#[cfg(feature = "http")]
pub use webhook::WebhookSink;

/// The transport's own error (lettre's, reqwest's), boxed so the error type does not depend
/// on which transports are compiled in.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// A sink setting is invalid (an address that does not parse, a bad secret, …).
    #[error("invalid sink setting `{field}`")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
    },
    /// The message could not be built.
    #[error("email could not be built")]
    Email(#[source] BoxError),
    /// The SMTP server refused or could not be reached.
    #[error("SMTP delivery failed")]
    Smtp(#[source] BoxError),
    /// The webhook endpoint could not be reached.
    #[error("webhook request failed")]
    Http(#[source] BoxError),
    /// The webhook endpoint answered with a non-2xx status.
    #[error("webhook endpoint answered {status}")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// The sink was not tried: the circuit breaker guarding it is open (its dependency has
    /// been failing), so the alert waits for its next attempt.
    #[error("{sink} not tried: its circuit breaker is open")]
    CircuitOpen {
        /// The sink's name.
        sink: &'static str,
    },
}

/// The outward form of an alert: every text field passed through [`haven_core::redact`],
/// header-safe subject (no control characters).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertMessage {
    /// One line, e.g. `[HIGH] rapid_purchase: 3 payment events within 300 s …`.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// The JSON payload for machines (alert fields, redacted).
    pub payload: Value,
}

impl AlertMessage {
    /// Renders and redacts `alert`.
    pub fn from_alert(alert: &Alert) -> Self {
        let description = redact(&alert.description);
        let subject = single_line(&format!(
            "[{}] {}: {}",
            alert.severity.as_str().to_ascii_uppercase(),
            alert.rule_id,
            description
        ));
        let mut payload = serde_json::to_value(alert).unwrap_or(Value::Null);
        redact_json(&mut payload);
        // The alert id is generated here and carries nothing secret; redaction would mangle
        // UUIDs with long digit runs and receivers could no longer correlate the alert.
        if let Value::Object(fields) = &mut payload {
            fields.insert("id".to_owned(), Value::String(alert.id.to_string()));
        }
        let body = format!(
            "Alert {id}\nRule: {rule}\nType: {kind}\nSeverity: {sev}\nSubject: {subject}\nEvent: {event} at {ts}\n\n{description}\n",
            id = alert.id,
            rule = redact(&alert.rule_id),
            kind = redact(&alert.event_type),
            sev = alert.severity.as_str(),
            subject = redact(&alert.subject),
            event = redact(&alert.event_id),
            ts = alert.event_ts.to_rfc3339(),
        );
        Self {
            subject,
            body,
            payload,
        }
    }
}

/// Replaces every control character (CR, LF, TAB, …) with a space, so a value can never
/// start a new header line.
pub fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn redact_json(value: &mut Value) {
    match value {
        Value::String(s) => *s = redact(s),
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Object(map) => map.values_mut().for_each(redact_json),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Somewhere alerts go.
///
/// **Invariant:** a sink only ever sends the redacted [`AlertMessage`] of an alert.
#[async_trait]
pub trait AlertSink: Send + Sync {
    /// A short name for logs, e.g. `smtp`.
    fn name(&self) -> &'static str;
    /// Delivers one alert.
    async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError>;
}

/// Writes alerts to the `tracing` log at WARN level, target `haven_fraud::alert`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogSink;

#[async_trait]
impl AlertSink for LogSink {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let message = AlertMessage::from_alert(alert);
        tracing::warn!(
            target: "haven_fraud::alert",
            alert_id = %alert.id,
            rule_id = %alert.rule_id,
            severity = alert.severity.as_str(),
            "{}",
            message.subject
        );
        Ok(())
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text; only for a relay on this machine: [`SmtpSink::new`] refuses it for any
    /// host that is not `localhost` or a loopback address.
    None,
    /// STARTTLS upgrade (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Whether `host` names this machine: `localhost` (or a name under it) or a loopback
/// address. Plain-text SMTP is allowed to such hosts only.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// SMTP settings.
#[derive(Clone)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Connection security.
    pub security: SmtpSecurity,
    /// User name and password, when the server wants them.
    pub credentials: Option<(String, SecretString)>,
    /// The sender, e.g. `Alerts <alerts@example.com>`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// Connection and command timeout.
    pub timeout: Duration,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// Signs webhook requests. This is the adapter point for `haven-webhooks`: its signer can
/// implement this trait; [`StandardWebhookSigner`] is a minimal built-in implementation.
pub trait WebhookSigner: Send + Sync {
    /// The headers to add for a message with this id, unix timestamp and body.
    fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)>;
}

/// Standard Webhooks v1 signing: `webhook-id`, `webhook-timestamp` and
/// `webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`.
pub struct StandardWebhookSigner {
    key: ring::hmac::Key,
}

impl fmt::Debug for StandardWebhookSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StandardWebhookSigner { .. }")
    }
}

impl StandardWebhookSigner {
    /// From a `whsec_<base64>` secret (the prefix is optional).
    pub fn from_secret(secret: &SecretString) -> Result<Self, DeliveryError> {
        let raw = secret.expose_secret();
        let encoded = raw.strip_prefix("whsec_").unwrap_or(raw);
        let key = BASE64
            .decode(encoded)
            .map_err(|_| DeliveryError::InvalidConfig { field: "secret" })?;
        if key.len() < 16 {
            return Err(DeliveryError::InvalidConfig { field: "secret" });
        }
        Ok(Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        })
    }

    /// The `v1,<base64>` signature of one message.
    pub fn signature(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut ctx = ring::hmac::Context::with_key(&self.key);
        ctx.update(msg_id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", BASE64.encode(ctx.sign().as_ref()))
    }
}

impl WebhookSigner for StandardWebhookSigner {
    fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
        vec![
            ("webhook-id", msg_id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", self.signature(msg_id, timestamp, body)),
        ]
    }
}

/// Hands alerts to sinks on a background task through a bounded queue, so that detection
/// never waits for an SMTP server or a webhook endpoint.
///
/// **Invariant:** [`Dispatcher::enqueue`] never blocks; when the queue is full the alert is
/// counted in [`Dispatcher::dropped`] (it is still in the alert store).
#[derive(Debug, Clone)]
pub struct Dispatcher {
    tx: mpsc::Sender<Alert>,
    dropped: Arc<AtomicU64>,
}

impl Dispatcher {
    /// Starts the delivery task with a queue of `capacity` alerts. The task ends when every
    /// clone of the dispatcher is dropped and the queue is drained.
    pub fn spawn(sinks: Vec<Arc<dyn AlertSink>>, capacity: usize) -> (Self, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Alert>(capacity.max(1));
        let handle = tokio::spawn(async move {
            while let Some(alert) = rx.recv().await {
                for sink in &sinks {
                    if let Err(error) = sink.deliver(&alert).await {
                        tracing::warn!(
                            alert_id = %alert.id,
                            sink = sink.name(),
                            error = %redact(&haven_core::error_chain(&error)),
                            "alert delivery failed"
                        );
                    }
                }
            }
        });
        (
            Self {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            handle,
        )
    }

    /// Queues `alert` for delivery; `false` (and counted) if the queue is full or closed.
    pub fn enqueue(&self, alert: Alert) -> bool {
        match self.tx.try_send(alert) {
            Ok(()) => true,
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// How many alerts could not be queued.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification.
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
        let signer = StandardWebhookSigner::from_secret(&secret).unwrap();
        let sig = signer.signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn the_payload_keeps_the_alert_id_intact() {
        // A UUID whose last group is all digits looks like a long number to the redactor.
        let id = uuid::Uuid::parse_str("01a22056-88e8-7768-b106-c67768687761").unwrap();
        let alert = Alert {
            id,
            rule_id: "velocity".into(),
            event_type: "velocity".into(),
            severity: crate::Severity::High,
            subject: "u".into(),
            user: Some("u".into()),
            description: "card 4111111111111111".into(),
            metadata: serde_json::json!({}),
            event_id: "e".into(),
            event_ts: chrono::Utc::now(),
            created_at: chrono::Utc::now(),
        };
        let message = AlertMessage::from_alert(&alert);
        assert_eq!(message.payload["id"], id.to_string());
        assert!(
            !message.payload["description"]
                .as_str()
                .unwrap()
                .contains("4111111111111111")
        );
    }

    #[test]
    fn single_line_removes_every_control_character() {
        assert_eq!(single_line("a\r\nBcc: x\tb"), "a  Bcc: x b");
    }
}

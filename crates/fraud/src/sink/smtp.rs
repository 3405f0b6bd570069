//! The SMTP sink (feature `smtp`): lettre over rustls.

use std::fmt;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{
    AlertMessage, AlertSink, DeliveryError, SmtpConfig, SmtpSecurity, is_loopback_host, single_line,
};
use crate::alert::Alert;

/// Emails alerts through SMTP (lettre, rustls).
pub struct SmtpSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Mailboxes,
}

impl fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSink")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpSink {
    /// Builds the transport and parses the addresses (an address with CR/LF does not parse).
    pub fn new(config: &SmtpConfig) -> Result<Self, DeliveryError> {
        if config.security == SmtpSecurity::None && !is_loopback_host(&config.host) {
            return Err(DeliveryError::InvalidConfig { field: "security" });
        }
        let builder = match config.security {
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            }
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                    .map_err(|e| DeliveryError::Smtp(e.into()))?
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|e| DeliveryError::Smtp(e.into()))?,
        };
        let mut builder = builder.port(config.port).timeout(Some(config.timeout));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| DeliveryError::InvalidConfig { field: "from" })?;
        if config.to.is_empty() {
            return Err(DeliveryError::InvalidConfig { field: "to" });
        }
        let mut to = Mailboxes::new();
        for raw in &config.to {
            let mailbox: Mailbox = raw
                .parse()
                .map_err(|_| DeliveryError::InvalidConfig { field: "to" })?;
            to.push(mailbox);
        }
        Ok(Self {
            transport: builder.build(),
            from,
            to,
        })
    }

    /// The email an alert becomes (exposed so tests can inspect the exact bytes).
    pub fn message(&self, alert: &Alert) -> Result<Message, DeliveryError> {
        let rendered = AlertMessage::from_alert(alert);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(single_line(&rendered.subject))
            .header(ContentType::TEXT_PLAIN);
        for mailbox in self.to.iter() {
            builder = builder.to(mailbox.clone());
        }
        builder
            .body(rendered.body)
            .map_err(|e| DeliveryError::Email(e.into()))
    }
}

#[async_trait]
impl AlertSink for SmtpSink {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let message = self.message(alert)?;
        self.transport
            .send(message)
            .await
            .map_err(|e| DeliveryError::Smtp(e.into()))?;
        Ok(())
    }
}

//! The signed webhook sink (feature `http`): reqwest.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{AlertMessage, AlertSink, DeliveryError, WebhookSigner};
use crate::alert::Alert;
use haven_core::redact;

/// POSTs alerts as signed JSON: `{"type":"fraud.alert","timestamp":…,"data":{…}}`. The
/// message id is the alert id, so a receiver can drop redeliveries.
pub struct WebhookSink {
    client: reqwest::Client,
    url: reqwest::Url,
    signer: Arc<dyn WebhookSigner>,
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("url", &redact(self.url.as_str()))
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink posting to `url`, with its own HTTP client: 10 s timeout, no redirects (a
    /// 3xx is a failed delivery: the alert must not be sent somewhere the configuration
    /// does not name). The response body is never read.
    ///
    /// # Panics
    /// When the process has no rustls crypto provider installed: the library does not choose
    /// one (the binaries install ring at start-up); or pass a configured client to
    /// [`with_client`](Self::with_client).
    pub fn new(url: &str, signer: Arc<dyn WebhookSigner>) -> Result<Self, DeliveryError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| DeliveryError::Http(e.into()))?;
        Self::with_client(url, signer, client)
    }

    /// A sink using an existing client (configure it without redirects, as
    /// [`WebhookSink::new`] does).
    pub fn with_client(
        url: &str,
        signer: Arc<dyn WebhookSigner>,
        client: reqwest::Client,
    ) -> Result<Self, DeliveryError> {
        let url =
            reqwest::Url::parse(url).map_err(|_| DeliveryError::InvalidConfig { field: "url" })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DeliveryError::InvalidConfig { field: "url" });
        }
        Ok(Self {
            client,
            url,
            signer,
        })
    }
}

#[async_trait]
impl AlertSink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let message = AlertMessage::from_alert(alert);
        let timestamp = chrono::Utc::now().timestamp();
        let body = serde_json::json!({
            "type": "fraud.alert",
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "data": message.payload,
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let msg_id = format!("msg_{}", alert.id.simple());
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in self.signer.sign(&msg_id, timestamp, &body) {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| DeliveryError::Http(e.into()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(DeliveryError::Status {
                status: status.as_u16(),
            });
        }
        Ok(())
    }
}

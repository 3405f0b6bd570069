//! Delivers fraud alerts from the `transaction_monitoring` outbox through the configured
//! [`AlertSink`]s: log always, webhook and SMTP when configured, each of those two behind a
//! circuit breaker (`alerts_webhook`, `smtp`; shared between replicas, listed on `/health`).
//!
//! Detection only inserts the alert row (which queues it); this job does the slow part, so a
//! slow or failing sink never delays detection.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use haven_db::{ClaimedDelivery, DeliveryOutcome, PgAlertStore, PgPool};
use haven_fraud::{
    Alert, AlertSink, DeliveryError, LogSink, SmtpSink, StandardWebhookSigner, WebhookSink,
};
use haven_resilience::{Breaker, BreakerRegistry, Outcome};

use crate::Job;
use crate::config::FraudDeliveryConfig;

/// How the job claims, retries and gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Alerts claimed per step.
    pub batch: usize,
    /// Alerts delivered at the same time within a step.
    pub concurrency: usize,
    /// Attempts before an alert is given up (it stays undelivered, with its last error).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled after each failed attempt.
    pub backoff: Duration,
    /// The longest delay between two attempts.
    pub max_backoff: Duration,
    /// How long a claim is exclusive; longer than the slowest delivery of a batch.
    pub lease: Duration,
}

impl DeliveryPolicy {
    /// The delay after failed attempt number `attempt` (1-based): `backoff · 2^(attempt-1)`,
    /// at most `max_backoff`.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// The outbox-draining job.
///
/// **Invariants:** an alert whose delivery was recorded is never claimed again, so it is
/// never delivered twice after success; concurrent jobs (threads or processes) claim
/// disjoint alerts (`FOR UPDATE SKIP LOCKED` plus a lease); a sink that accepted an alert is
/// skipped when a retry is needed for another sink. A worker that dies between sending and
/// recording the result may send once more after the lease (at-least-once).
pub struct FraudDelivery {
    store: PgAlertStore,
    sinks: Vec<Arc<dyn AlertSink>>,
    policy: DeliveryPolicy,
    interval: Option<Duration>,
}

impl std::fmt::Debug for FraudDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FraudDelivery")
            .field(
                "sinks",
                &self.sinks.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl FraudDelivery {
    /// A job delivering through `sinks` (in order) with `policy`.
    pub fn new(
        store: PgAlertStore,
        sinks: Vec<Arc<dyn AlertSink>>,
        policy: DeliveryPolicy,
    ) -> Self {
        Self {
            store,
            sinks,
            policy,
            interval: None,
        }
    }

    /// Runs the job every `interval` instead of every worker tick.
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// The job as configured: the log sink, then the webhook and SMTP sinks when set, each
    /// behind its breaker in `breakers` (`alerts_webhook`, `smtp`).
    pub fn from_config(
        config: &FraudDeliveryConfig,
        pool: PgPool,
        breakers: &BreakerRegistry,
    ) -> anyhow::Result<Self> {
        let mut sinks: Vec<Arc<dyn AlertSink>> = vec![Arc::new(LogSink)];
        if let Some(webhook) = &config.webhook {
            let signer = StandardWebhookSigner::from_secret(&webhook.secret)
                .context("HAVEN_FRAUD_WEBHOOK_SECRET")?;
            let sink = WebhookSink::new(&webhook.url, Arc::new(signer))
                .context("HAVEN_FRAUD_WEBHOOK_URL")?;
            let breaker = breakers.get_or_create("alerts_webhook")?;
            sinks.push(Arc::new(Guarded::new(Arc::new(sink), breaker)));
        }
        if let Some(smtp) = &config.smtp {
            let sink = SmtpSink::new(smtp).context("HAVEN_FRAUD_SMTP_*")?;
            let breaker = breakers.get_or_create("smtp")?;
            sinks.push(Arc::new(Guarded::new(Arc::new(sink), breaker)));
        }
        Ok(Self::new(PgAlertStore::new(pool), sinks, config.policy.clone()).every(config.interval))
    }

    /// Claims one batch and delivers it; returns how many alerts were claimed.
    pub async fn deliver_batch(&self) -> anyhow::Result<usize> {
        let claims = self
            .store
            .claim_deliveries(
                self.policy.batch,
                self.policy.max_attempts,
                self.policy.lease,
            )
            .await
            .context("claiming alert deliveries")?;
        let count = claims.len();
        let concurrency = self.policy.concurrency.max(1);
        let mut results = Vec::with_capacity(count);
        let mut pending = claims.into_iter();
        loop {
            let wave: Vec<ClaimedDelivery> = pending.by_ref().take(concurrency).collect();
            if wave.is_empty() {
                break;
            }
            results.extend(
                futures::future::join_all(wave.iter().map(|claim| self.deliver_one(claim))).await,
            );
        }
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
        Ok(count)
    }

    async fn deliver_one(&self, claim: &ClaimedDelivery) -> anyhow::Result<()> {
        let alert = &claim.alert;
        let mut accepted = claim.delivered_sinks.clone();
        let mut errors = Vec::new();
        for sink in &self.sinks {
            if accepted.iter().any(|name| name == sink.name()) {
                continue;
            }
            match sink.deliver(alert).await {
                Ok(()) => accepted.push(sink.name().to_owned()),
                Err(e) => errors.push(format!(
                    "{}: {}",
                    sink.name(),
                    haven_core::redact(&haven_core::error_chain(&e))
                )),
            }
        }
        let outcome = if errors.is_empty() {
            DeliveryOutcome::Delivered { sinks: accepted }
        } else {
            let error = errors.join("; ");
            let retry_at = (claim.attempt < self.policy.max_attempts).then(|| {
                let delay = chrono::Duration::from_std(self.policy.retry_delay(claim.attempt))
                    .unwrap_or(chrono::Duration::MAX);
                let now = chrono::Utc::now();
                now.checked_add_signed(delay)
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
            });
            match retry_at {
                Some(at) => tracing::warn!(
                    alert_id = %alert.id,
                    attempt = claim.attempt,
                    retry_at = %at,
                    error = %error,
                    "alert delivery failed, will retry"
                ),
                None => tracing::error!(
                    alert_id = %alert.id,
                    attempt = claim.attempt,
                    error = %error,
                    "alert delivery failed, giving up"
                ),
            }
            DeliveryOutcome::Failed {
                sinks: accepted,
                error,
                retry_at,
            }
        };
        let recorded = self
            .store
            .finish_delivery(claim, &outcome)
            .await
            .with_context(|| format!("recording the delivery of alert {}", alert.id))?;
        if !recorded {
            tracing::warn!(alert_id = %alert.id, attempt = claim.attempt, "alert delivery claim was lost (lease expired)");
        }
        Ok(())
    }
}

impl Job for FraudDelivery {
    fn name(&self) -> &'static str {
        "fraud_delivery"
    }

    fn interval(&self) -> Option<Duration> {
        self.interval
    }

    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            // Drain what is due, a batch at a time, so a burst is not spread over many ticks.
            while self.deliver_batch().await? == self.policy.batch {}
            Ok(())
        })
    }
}

/// A sink behind a circuit breaker: while the breaker is open the sink is not tried and the
/// delivery fails with [`DeliveryError::CircuitOpen`] (the alert keeps its next attempt);
/// otherwise the sink's result is recorded on the breaker.
pub struct Guarded {
    sink: Arc<dyn AlertSink>,
    breaker: Arc<dyn Breaker>,
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("sink", &self.sink.name())
            .field("breaker", &self.breaker.name())
            .finish()
    }
}

impl Guarded {
    /// `sink` guarded by `breaker`.
    pub fn new(sink: Arc<dyn AlertSink>, breaker: Arc<dyn Breaker>) -> Self {
        Self { sink, breaker }
    }
}

#[async_trait::async_trait]
impl AlertSink for Guarded {
    fn name(&self) -> &'static str {
        self.sink.name()
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let Ok(permit) = self.breaker.acquire().await else {
            return Err(DeliveryError::CircuitOpen {
                sink: self.sink.name(),
            });
        };
        let result = self.sink.deliver(alert).await;
        permit.record(match &result {
            // a bad setting is ours, not the dependency's
            Ok(()) | Err(DeliveryError::InvalidConfig { .. } | DeliveryError::Email(_)) => {
                Outcome::Success
            }
            Err(_) => Outcome::Failure,
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        let policy = DeliveryPolicy {
            batch: 10,
            concurrency: 4,
            max_attempts: 8,
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(600),
            lease: Duration::from_secs(300),
        };
        let delays: Vec<u64> = (1..=7).map(|a| policy.retry_delay(a).as_secs()).collect();
        assert_eq!(delays, vec![30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(policy.retry_delay(u32::MAX).as_secs(), 600);
    }
}

//! Delivers outbound webhooks from the Postgres outbox (`webhook_deliveries`).
//!
//! Each step claims due attempts, signs each message as Standard Webhooks v1 with every
//! active `whsec_` secret of its endpoint, sends it through haven-webhooks' [`HttpSender`]
//! (which refuses non-public destinations unless allow-listed) and records the outcome; the
//! outbox then schedules the next attempt from the [`RetryPolicy`], dead-letters after the
//! last one, or disables an endpoint that has failed without a success for 5 days.
//! Each recorded outcome counts once in `haven_webhook_deliveries_total{outcome}`
//! ([`WEBHOOK_DELIVERIES`](crate::metrics::WEBHOOK_DELIVERIES)).
//!
//! With a breaker registry ([`WebhookDelivery::with_breakers`]) every endpoint has its own
//! circuit breaker, `webhook_endpoint:<id>` (shared between replicas through Redis, listed on
//! `/health` and the breaker admin routes). A receiver that answers 5xx, 408 or 429, or does
//! not answer, counts as a failure; any other answer as a success. While an endpoint's breaker
//! is open its attempts are not sent and not recorded: they stay leased and come due again
//! when the lease ends, so an outage spends none of a message's attempts.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures::future::BoxFuture;
use haven_db::{AttemptOutcome, ClaimedWebhook, PgPool, PgWebhookOutbox, RecordedAttempt};
use haven_resilience::{BreakerRegistry, Outcome};
use haven_webhooks::{
    DISABLE_AFTER, Decision, DestinationPolicy, HttpSender, RetryPolicy, SenderConfig,
    signed_headers,
};

use crate::Job;
use crate::config::WebhookDeliveryConfig;

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Attempts claimed.
    pub claimed: usize,
    /// Messages the receiver accepted (2xx).
    pub delivered: usize,
    /// Failed attempts with another attempt scheduled.
    pub retried: usize,
    /// Messages dead-lettered after their last attempt.
    pub dead: usize,
    /// Attempts whose lease ran out before the outcome was recorded (another worker owns
    /// them now).
    pub lost: usize,
    /// Attempts not sent because their endpoint's breaker is open (due again at lease end).
    pub deferred: usize,
}

/// What happened to one claimed attempt.
enum Sent {
    /// Sent (or failed) and recorded; `None` when the lease was lost first.
    Recorded(Option<RecordedAttempt>),
    /// Held back by the endpoint's open breaker.
    Deferred,
}

/// The breaker name of an outbound endpoint.
pub fn endpoint_breaker(endpoint: uuid::Uuid) -> String {
    format!("webhook_endpoint:{endpoint}")
}

/// How a breaker reads an attempt: the receiver is failing when it answers 5xx, 408 or 429,
/// or not at all.
fn breaker_outcome(outcome: &AttemptOutcome) -> Outcome {
    match outcome {
        AttemptOutcome::Answered { status, .. }
            if *status >= 500 || matches!(status, 408 | 429) =>
        {
            Outcome::Failure
        }
        AttemptOutcome::Answered { .. } => Outcome::Success,
        AttemptOutcome::NoAnswer { .. } => Outcome::Failure,
    }
}

/// The outbound webhook delivery job.
///
/// **Invariants:** a message is sent only while its attempt is leased to this job, and an
/// attempt whose outcome was recorded is never claimed again, so a receiver that answered
/// 2xx gets no further copy. A job that dies after claiming leaves the attempt to be claimed
/// again when the lease ends (a crash between commit and send still delivers); one that dies
/// after sending but before recording may send that attempt once more (at-least-once, the
/// `webhook-id` lets receivers drop the copy).
#[derive(Debug)]
pub struct WebhookDelivery {
    outbox: PgWebhookOutbox,
    sender: HttpSender,
    policy: RetryPolicy,
    disable_after: Duration,
    batch: usize,
    concurrency: usize,
    lease: Duration,
    interval: Option<Duration>,
    breakers: Option<Arc<BreakerRegistry>>,
}

impl WebhookDelivery {
    /// A job on `outbox` sending through `sender` on `policy`'s schedule; 50 attempts a step,
    /// 8 at a time, each leased for 2 minutes (longer than the sender's timeout).
    pub fn new(outbox: PgWebhookOutbox, sender: HttpSender, policy: RetryPolicy) -> Self {
        Self {
            outbox,
            sender,
            policy,
            disable_after: DISABLE_AFTER,
            batch: 50,
            concurrency: 8,
            lease: Duration::from_secs(120),
            interval: None,
            breakers: None,
        }
    }

    /// Sends each endpoint's attempts through its breaker in `breakers`
    /// (`webhook_endpoint:<id>`, created on first use).
    #[must_use]
    pub fn with_breakers(mut self, breakers: Arc<BreakerRegistry>) -> Self {
        self.breakers = Some(breakers);
        self
    }

    /// The job as configured: the destination allow-list and schedule from `config`.
    pub fn from_config(config: &WebhookDeliveryConfig, pool: PgPool) -> anyhow::Result<Self> {
        let sender = HttpSender::new(Self::destinations(config), SenderConfig::default())
            .context("building the webhook HTTP client")?;
        Ok(
            Self::new(PgWebhookOutbox::new(pool), sender, RetryPolicy::default())
                .every(config.interval),
        )
    }

    /// Where deliveries may go: public `https` addresses, plus the configured ranges (and
    /// plain `http` when allowed).
    pub fn destinations(config: &WebhookDeliveryConfig) -> DestinationPolicy {
        DestinationPolicy {
            allow: config.allow.clone(),
            require_https: !config.allow_http,
        }
    }

    /// Runs the job every `interval` instead of every worker tick.
    #[must_use]
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Attempts claimed per step, and how many are sent at the same time.
    #[must_use]
    pub fn with_batch(mut self, batch: usize, concurrency: usize) -> Self {
        self.batch = batch.max(1);
        self.concurrency = concurrency.max(1);
        self
    }

    /// How long a claimed attempt is exclusive (must exceed one send's timeout).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long an endpoint may fail without a success before it is disabled (5 days).
    #[must_use]
    pub fn with_disable_after(mut self, disable_after: Duration) -> Self {
        self.disable_after = disable_after;
        self
    }

    /// The outbox.
    pub fn outbox(&self) -> &PgWebhookOutbox {
        &self.outbox
    }

    /// Claims due attempts (up to the batch, `concurrency` at a time, so each lease only has
    /// to cover one send), sends them and records the outcomes.
    pub async fn deliver_due(&self) -> anyhow::Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        while report.claimed < self.batch {
            let wave = self
                .concurrency
                .min(self.batch.saturating_sub(report.claimed));
            let claims = self
                .outbox
                .claim_due(wave, self.lease)
                .await
                .context("claiming due webhook deliveries")?;
            report.claimed += claims.len();
            let results =
                futures::future::join_all(claims.iter().map(|claim| self.deliver(claim))).await;
            for result in results {
                let recorded = match result? {
                    Sent::Deferred => {
                        report.deferred += 1;
                        continue;
                    }
                    Sent::Recorded(recorded) => recorded,
                };
                let outcome = match recorded {
                    None => {
                        report.lost += 1;
                        continue;
                    }
                    Some(recorded) => match recorded.decision {
                        Decision::Delivered => {
                            report.delivered += 1;
                            "delivered"
                        }
                        Decision::RetryAt { .. } => {
                            report.retried += 1;
                            "failed"
                        }
                        Decision::DeadLetter => {
                            report.dead += 1;
                            "dead"
                        }
                    },
                };
                metrics::counter!(crate::metrics::WEBHOOK_DELIVERIES, "outcome" => outcome)
                    .increment(1);
            }
            if claims.len() < wave {
                break;
            }
        }
        Ok(report)
    }

    /// Sends one claimed attempt through its endpoint's breaker and records its outcome.
    async fn deliver(&self, claim: &ClaimedWebhook) -> anyhow::Result<Sent> {
        let permit = match &self.breakers {
            None => None,
            Some(breakers) => {
                let breaker = breakers
                    .get_or_create(&endpoint_breaker(claim.endpoint_id))
                    .context("creating an endpoint's breaker")?;
                match breaker.acquire().await {
                    Ok(permit) => Some(permit),
                    Err(e) => {
                        tracing::debug!(
                            message_id = %claim.message_id,
                            endpoint = %claim.endpoint_id,
                            error = %e,
                            "webhook attempt held back until its lease ends"
                        );
                        return Ok(Sent::Deferred);
                    }
                }
            }
        };
        let outcome = self.attempt(claim).await;
        if let Some(permit) = permit {
            permit.record(breaker_outcome(&outcome));
        }
        self.record(claim, outcome).await.map(Sent::Recorded)
    }

    /// Records an attempt's outcome and logs what the outbox decided.
    async fn record(
        &self,
        claim: &ClaimedWebhook,
        outcome: AttemptOutcome,
    ) -> anyhow::Result<Option<RecordedAttempt>> {
        let recorded = self
            .outbox
            .record_attempt(claim, &outcome, &self.policy, self.disable_after)
            .await
            .with_context(|| format!("recording an attempt of webhook {}", claim.message_id))?;
        let Some(recorded) = recorded else {
            tracing::warn!(
                message_id = %claim.message_id,
                attempt = claim.attempt,
                "webhook attempt outlived its lease; its outcome was not recorded"
            );
            return Ok(None);
        };
        match recorded.decision {
            Decision::Delivered => tracing::info!(
                message_id = %claim.message_id,
                attempt = claim.attempt,
                "webhook delivered"
            ),
            Decision::RetryAt { at, .. } => tracing::warn!(
                message_id = %claim.message_id,
                attempt = claim.attempt,
                outcome = ?outcome,
                retry_at = %at,
                "webhook attempt failed, will retry"
            ),
            Decision::DeadLetter => tracing::error!(
                message_id = %claim.message_id,
                endpoint = %claim.endpoint_id,
                attempt = claim.attempt,
                outcome = ?outcome,
                "webhook dead-lettered after its last attempt"
            ),
        }
        if recorded.disabled_endpoint {
            tracing::error!(
                target: "haven_webhooks::alert",
                endpoint = %claim.endpoint_id,
                "webhook endpoint disabled: it failed without a success for the disable period"
            );
        }
        Ok(Some(recorded))
    }

    async fn attempt(&self, claim: &ClaimedWebhook) -> AttemptOutcome {
        let now = Utc::now().timestamp();
        let headers =
            match signed_headers(&claim.secrets, &claim.message_id, now, &claim.payload, now) {
                Ok(headers) => headers,
                Err(e) => {
                    return AttemptOutcome::NoAnswer {
                        error: format!("cannot sign: {e}"),
                    };
                }
            };
        match self
            .sender
            .send(&claim.url, headers, claim.payload.clone())
            .await
        {
            Ok(result) => match result.status {
                Some(status) => AttemptOutcome::Answered {
                    status,
                    retry_after: result.retry_after,
                },
                None => AttemptOutcome::NoAnswer {
                    error: result
                        .transport_error
                        .unwrap_or_else(|| "transport error".to_owned()),
                },
            },
            // A refused destination is the endpoint's fault: it fails like an unreachable
            // one, so it is retried, dead-lettered and eventually disabled.
            Err(e) => AttemptOutcome::NoAnswer {
                error: haven_core::redact(&e.to_string()),
            },
        }
    }
}

impl Job for WebhookDelivery {
    fn name(&self) -> &'static str {
        "webhook_delivery"
    }

    fn interval(&self) -> Option<Duration> {
        self.interval
    }

    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let report = self.deliver_due().await?;
            if report.claimed > 0 {
                tracing::debug!(?report, "webhook delivery step");
            }
            Ok(())
        })
    }
}

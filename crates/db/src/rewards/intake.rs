//! The one path every partner event takes into the ledger, whether it came as a webhook or
//! from a partner sync: parse, price, resolve the member, check the reward against the fraud
//! rules, record.

use std::sync::Arc;

use haven_fraud::{Alert, Engine, Event, PaymentEvent, Severity};
use haven_rewards::{Decision, EventName, PayloadError, Rules};
use uuid::Uuid;

use super::{InboxEntry, Ingest, IngestOutcome, PgRewards, RewardRecord};

/// Why an event could not be taken in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntakeError {
    /// The payload is not a valid event of its kind (answer 422, write nothing).
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The fraud rules could not be evaluated (their store is down): the event is not taken
    /// in rather than minted unchecked; the sender retries.
    #[error("the fraud rules could not be evaluated")]
    Fraud(#[source] haven_fraud::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] crate::Error),
}

impl IntakeError {
    /// The wire code.
    pub fn code(&self) -> haven_core::ErrorCode {
        match self {
            IntakeError::Payload(e) => e.code(),
            IntakeError::Fraud(_) => haven_core::ErrorCode::ServiceUnavailable,
            IntakeError::Db(e) => e.code(),
        }
    }
}

/// What [`Intake::accept`] did.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The member the event is about.
    pub member_id: Uuid,
    /// How the rules priced it.
    pub decision: Decision,
    /// The fraud alerts its reward raised.
    pub alerts: Vec<Alert>,
    /// What the ledger recorded.
    pub outcome: IngestOutcome,
}

/// Parses, prices, fraud-checks and records partner events.
#[derive(Clone)]
pub struct Intake {
    rewards: PgRewards,
    fraud: Arc<Engine>,
    rules: Arc<Rules>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("rules_version", &self.rules.version())
            .finish_non_exhaustive()
    }
}

impl Intake {
    /// An intake recording into `rewards`, checking rewards with `fraud`, pricing with
    /// `rules`.
    pub fn new(rewards: PgRewards, fraud: Arc<Engine>, rules: Arc<Rules>) -> Self {
        Self {
            rewards,
            fraud,
            rules,
        }
    }

    /// The fraud rules every reward is checked against.
    pub fn fraud(&self) -> &Arc<Engine> {
        &self.fraud
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The ledger.
    pub fn rewards(&self) -> &PgRewards {
        &self.rewards
    }

    /// Takes one event in. `origin` is unique per source (`webhook:<message id>`,
    /// `sync:<item id>`); `inbox` stores the webhook in the same transaction. Nothing is
    /// written when the payload is invalid.
    ///
    /// A new reward is checked against the fraud rules as a `mint` of `HNV` for the member
    /// (a business key already rewarded is not checked again); an alert of HIGH severity or
    /// more holds it until an operator reviews the alert.
    pub async fn accept(
        &self,
        name: EventName,
        payload: &[u8],
        origin: &str,
        inbox: Option<InboxEntry<'_>>,
    ) -> Result<Accepted, IntakeError> {
        let event = haven_rewards::parse_event(name, payload)?;
        let decision = haven_rewards::try_decide(&self.rules, &event)?;
        let member_id = self.rewards.resolve_member(&event.member).await?;
        let alerts = self.check(&decision, member_id).await?;
        let hold = alerts.iter().any(|a| a.severity >= Severity::High);
        let outcome = self
            .rewards
            .ingest(Ingest {
                origin,
                inbox,
                member_id,
                event: &event,
                payload,
                decision: &decision,
                alerts: &alerts,
                hold,
            })
            .await?;
        let mut alerts = alerts;
        if let IngestOutcome::Accepted { reversals, .. } = &outcome {
            alerts.extend(self.check_reversals(reversals).await);
        }
        Ok(Accepted {
            member_id,
            decision,
            alerts,
            outcome,
        })
    }

    /// Each reward a cancellation takes back is a `reversal` event for the fraud rules
    /// (a member booking and cancelling again and again). Evaluated after the cancellation
    /// is recorded: the reversal stands whatever the rules say, the alerts are stored on
    /// their own, and a failure to evaluate or store is logged, never a reason to refuse a
    /// cancellation.
    async fn check_reversals(&self, reversals: &[RewardRecord]) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for reward in reversals {
            let Ok(amount) = haven_fraud::Amount::parse_positive(&reward.amount.to_string()) else {
                continue;
            };
            let event = Event::Reversal(PaymentEvent {
                event_id: format!("reversal:{}", reward.id.simple()),
                user: reward.member_id.to_string(),
                amount,
                currency: "HNV".to_owned(),
                destination: None,
                ts: chrono::Utc::now(),
            });
            match self.fraud.evaluate(&event).await {
                Ok(raised) => {
                    let store = crate::PgAlertStore::new(self.rewards.pool.clone());
                    for alert in raised {
                        if let Err(e) = haven_fraud::AlertStore::insert(&store, &alert).await {
                            tracing::warn!(
                                alert = %alert.id,
                                rule = %alert.rule_id,
                                error = %e,
                                "a reversal's fraud alert could not be stored"
                            );
                            continue;
                        }
                        alerts.push(alert);
                    }
                }
                Err(e) => tracing::warn!(
                    reward = %reward.id,
                    error = %e,
                    "the fraud rules could not evaluate a reversal"
                ),
            }
        }
        alerts
    }

    /// The fraud alerts a new reward raises (none for no reward or a known business key).
    async fn check(&self, decision: &Decision, member: Uuid) -> Result<Vec<Alert>, IntakeError> {
        let Some(key) = decision.business_key.as_ref().filter(|_| decision.reward) else {
            return Ok(Vec::new());
        };
        if self
            .rewards
            .reward_by_key(&key.as_string())
            .await?
            .is_some()
        {
            return Ok(Vec::new());
        }
        let amount = haven_fraud::Amount::parse(&decision.amount.to_string()).map_err(|e| {
            IntakeError::Fraud(haven_fraud::Error::Event(haven_fraud::EventError::Amount(
                e,
            )))
        })?;
        // A fresh id per evaluation: a retry after a failed write is evaluated again (it may
        // count twice in a velocity window, never zero times).
        let event = Event::Mint(PaymentEvent {
            event_id: format!("reward:{}:{}", key.tx_id(), Uuid::now_v7().simple()),
            user: member.to_string(),
            amount,
            currency: "HNV".to_owned(),
            destination: None,
            ts: chrono::Utc::now(),
        });
        self.fraud
            .evaluate(&event)
            .await
            .map_err(IntakeError::Fraud)
    }
}

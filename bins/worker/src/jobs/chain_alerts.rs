//! Chain alerts (stuck, failed, gas spike, reorg, replacements exhausted) go where fraud alerts
//! go: a row in `transaction_monitoring`, which puts them in the review workflow and, through
//! its outbox columns, in the `fraud_delivery` job's hands (log, signed webhook, e-mail).

use async_trait::async_trait;
use chrono::Utc;
use haven_chain::{ChainAlert, ChainAlertSink};
use haven_fraud::{Alert, AlertStore, Severity};
use serde_json::json;

/// Stores every chain alert as a fraud alert (and logs it), so operators review and receive
/// chain and fraud alerts the same way.
#[derive(Debug, Clone)]
pub struct StoredChainAlerts {
    store: haven_db::PgAlertStore,
}

impl StoredChainAlerts {
    /// Alerts into the `transaction_monitoring` table behind `pool`.
    pub fn new(pool: haven_db::PgPool) -> Self {
        Self {
            store: haven_db::PgAlertStore::new(pool),
        }
    }
}

/// The alert row for a chain alert: rule id, event type, severity, subject, description.
pub fn to_fraud_alert(alert: &ChainAlert) -> Alert {
    let (rule_id, event_type, severity, subject, description) = match alert {
        ChainAlert::Stuck {
            tx_id,
            pending_for,
            nonce,
            ..
        } => (
            "chain.tx_pending",
            "transaction_pending",
            Severity::Medium,
            format!("tx:{tx_id}"),
            format!(
                "transaction {tx_id} (nonce {nonce}) pending for {} s; replaced with bumped fees",
                pending_for.as_secs()
            ),
        ),
        ChainAlert::Failed {
            tx_id,
            hash,
            block_number,
            ..
        } => (
            "chain.tx_failed",
            "transaction_failed",
            Severity::High,
            format!("tx:{tx_id}"),
            format!("transaction {tx_id} reverted ({hash} in block {block_number})"),
        ),
        ChainAlert::GasSpike {
            gas_price,
            baseline,
            ..
        } => (
            "chain.gas_spike",
            "gas_spike",
            Severity::Medium,
            "chain".to_owned(),
            format!("gas price {gas_price} wei against a baseline of {baseline} wei"),
        ),
        ChainAlert::GasDataQuality {
            gas_price,
            max_plausible,
            ..
        } => (
            "chain.gas_data_quality",
            "gas_data_quality",
            Severity::Low,
            "chain".to_owned(),
            match gas_price {
                Some(price) => format!(
                    "the node reported a gas price of {price} wei, outside 1..={max_plausible}: a broken feed, not a spike"
                ),
                None => "the node reported no gas price".to_owned(),
            },
        ),
        ChainAlert::Reorged {
            tx_id,
            block_number,
            ..
        } => (
            "chain.reorg",
            "transaction_reorged",
            Severity::High,
            format!("tx:{tx_id}"),
            format!(
                "block {block_number} holding transaction {tx_id} left the chain; rebroadcasting"
            ),
        ),
        ChainAlert::ReplacementExhausted {
            tx_id,
            replacements,
            ..
        } => (
            "chain.replacements_exhausted",
            "transaction_stuck",
            Severity::High,
            format!("tx:{tx_id}"),
            format!(
                "transaction {tx_id} still pending after {replacements} replacements: needs an operator"
            ),
        ),
        other => (
            "chain.other",
            "chain_alert",
            Severity::Medium,
            "chain".to_owned(),
            format!("{other:?}"),
        ),
    };
    let now = Utc::now();
    let id = uuid::Uuid::now_v7();
    Alert {
        id,
        rule_id: rule_id.to_owned(),
        event_type: event_type.to_owned(),
        severity,
        subject,
        user: None,
        description,
        metadata: json!({ "chain_alert": alert }),
        event_id: format!("chain-alert:{id}"),
        event_ts: now,
        created_at: now,
    }
}

#[async_trait]
impl ChainAlertSink for StoredChainAlerts {
    async fn alert(&self, alert: ChainAlert) {
        tracing::warn!(?alert, "chain alert");
        let row = to_fraud_alert(&alert);
        if let Err(error) = self.store.insert(&row).await {
            // The monitoring cycle must go on; the log line above still carries the alert.
            tracing::error!(
                alert_id = %row.id,
                error = %haven_core::redact(&haven_core::error_chain(&error)),
                "could not store a chain alert for review and delivery"
            );
        }
    }
}

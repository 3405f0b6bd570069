//! Alerts the monitoring cycle raises, and where they go.

use std::sync::Mutex;
use std::time::Duration;

use alloy::primitives::B256;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Something an operator should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChainAlert {
    /// A transaction has been pending longer than the threshold (raised once, at its first
    /// fee-bumped replacement).
    Stuck {
        /// The transaction's id.
        tx_id: String,
        /// Its nonce.
        nonce: u64,
        /// How long since it was broadcast.
        pending_for: Duration,
    },
    /// A transaction was mined with receipt status 0.
    Failed {
        /// The transaction's id.
        tx_id: String,
        /// The mined hash.
        hash: B256,
        /// The block it was mined in.
        block_number: u64,
    },
    /// The gas price reached the spike ratio times the baseline.
    GasSpike {
        /// The current gas price (wei).
        gas_price: u128,
        /// The baseline it is compared with (wei).
        baseline: u128,
    },
    /// The node reported no gas price, zero, or one above the plausible maximum
    /// ([`ChainConfig::max_plausible_gas_price`](crate::ChainConfig)): a broken feed, not a
    /// market move. The baseline is left as it was.
    GasDataQuality {
        /// The price reported (wei), `None` when the node gave none.
        gas_price: Option<u128>,
        /// The plausible maximum (wei).
        max_plausible: u128,
    },
    /// A confirmed transaction's block is no longer in the chain.
    Reorged {
        /// The transaction's id.
        tx_id: String,
        /// The block number it had been confirmed in.
        block_number: u64,
    },
    /// Replacements are exhausted or the fee cap leaves no room: the transaction is still
    /// rebroadcast but needs an operator.
    ReplacementExhausted {
        /// The transaction's id.
        tx_id: String,
        /// Replacements made.
        replacements: u32,
    },
}

impl ChainAlert {
    /// The alert's kind as serialized (`stuck`, `failed`, `gas_spike`, `reorged`,
    /// `replacement_exhausted`), also the `kind` label of
    /// [`metrics::ALERTS`](crate::metrics::ALERTS).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stuck { .. } => "stuck",
            Self::Failed { .. } => "failed",
            Self::GasSpike { .. } => "gas_spike",
            Self::GasDataQuality { .. } => "gas_data_quality",
            Self::Reorged { .. } => "reorged",
            Self::ReplacementExhausted { .. } => "replacement_exhausted",
        }
    }
}

/// Where alerts go (the fraud crate's delivery, a log, a test vector).
///
/// Delivery must not fail the monitoring cycle: implementations swallow and log their own
/// errors.
#[async_trait]
pub trait ChainAlertSink: Send + Sync + std::fmt::Debug {
    /// Delivers one alert.
    async fn alert(&self, alert: ChainAlert);
}

/// Logs alerts with `tracing` at `warn`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogAlertSink;

#[async_trait]
impl ChainAlertSink for LogAlertSink {
    async fn alert(&self, alert: ChainAlert) {
        tracing::warn!(?alert, "chain alert");
    }
}

/// Keeps alerts in memory, for tests and the admin view of a single process.
#[derive(Debug, Default)]
pub struct MemoryAlertSink {
    alerts: Mutex<Vec<ChainAlert>>,
}

impl MemoryAlertSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every alert so far, oldest first.
    pub fn alerts(&self) -> Vec<ChainAlert> {
        self.alerts.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ChainAlertSink for MemoryAlertSink {
    async fn alert(&self, alert: ChainAlert) {
        if let Ok(mut alerts) = self.alerts.lock() {
            alerts.push(alert);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_is_the_serialized_tag() {
        let alerts = [
            ChainAlert::Stuck {
                tx_id: "t".into(),
                nonce: 1,
                pending_for: Duration::from_secs(1),
            },
            ChainAlert::Failed {
                tx_id: "t".into(),
                hash: B256::ZERO,
                block_number: 1,
            },
            ChainAlert::GasSpike {
                gas_price: 2,
                baseline: 1,
            },
            ChainAlert::GasDataQuality {
                gas_price: Some(0),
                max_plausible: 1,
            },
            ChainAlert::Reorged {
                tx_id: "t".into(),
                block_number: 1,
            },
            ChainAlert::ReplacementExhausted {
                tx_id: "t".into(),
                replacements: 3,
            },
        ];
        for alert in alerts {
            let json = serde_json::to_value(&alert).unwrap();
            assert_eq!(json["kind"], alert.kind(), "{json}");
        }
    }
}

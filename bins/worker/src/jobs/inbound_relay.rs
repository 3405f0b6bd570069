//! Relays verified inbound webhooks (the api's durable inbox, `inbound_webhooks`) to the
//! outbound webhook endpoints configured for their source (`HAVEN_INBOUND_RELAY`).
//!
//! Each step hands the oldest unprocessed events of the routed sources to
//! [`PgInbox::relay_due`], which queues one `inbound.<source>` message per endpoint in the
//! outbound outbox and marks the event processed in the same transaction; the
//! `webhook_delivery` job then signs and sends them. An event is relayed exactly once, also
//! with several workers and across crashes. Events of sources without a route stay in the
//! inbox; the job says so in its first step, with their counts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use haven_db::{PgInbox, PgPool, PgWebhookOutbox, RelayReport, RelayRoutes};
use tokio::sync::OnceCell;

use crate::Job;
use crate::config::InboundRelayConfig;

/// Events relayed per transaction.
const BATCH: usize = 100;
/// Transactions per step at most, so one step stays short when a backlog is drained.
const BATCHES_PER_STEP: usize = 20;

/// The inbound relay job.
#[derive(Debug)]
pub struct InboundRelay {
    inbox: PgInbox,
    outbox: PgWebhookOutbox,
    configured: RelayRoutes,
    routes: OnceCell<RelayRoutes>,
    reported_waiting: AtomicBool,
    interval: Duration,
}

impl InboundRelay {
    /// The job relaying per `config` over `pool`.
    pub fn new(config: &InboundRelayConfig, pool: PgPool) -> Self {
        Self {
            inbox: PgInbox::new(pool.clone()),
            outbox: PgWebhookOutbox::new(pool),
            configured: config.routes.clone(),
            routes: OnceCell::new(),
            reported_waiting: AtomicBool::new(false),
            interval: config.interval,
        }
    }

    /// The configured routes without endpoints that do not exist (each one logged as an
    /// error once): a route to a deleted endpoint would otherwise fail every transaction of
    /// its source.
    async fn routes(&self) -> anyhow::Result<&RelayRoutes> {
        self.routes
            .get_or_try_init(|| async {
                let mut checked = RelayRoutes::new();
                for (source, endpoints) in &self.configured {
                    let mut kept = Vec::new();
                    for id in endpoints {
                        match self.outbox.endpoint(*id).await? {
                            Some(_) => kept.push(*id),
                            None => tracing::error!(
                                %source,
                                endpoint = %id,
                                "HAVEN_INBOUND_RELAY names an endpoint that does not exist; \
                                 create it or fix the setting and restart the worker"
                            ),
                        }
                    }
                    checked.insert(source.clone(), kept);
                }
                Ok::<_, anyhow::Error>(checked)
            })
            .await
    }

    /// Relays what is due (up to 20 transactions of 100 events); returns the totals.
    pub async fn relay_due(&self) -> anyhow::Result<RelayReport> {
        let routes = self.routes().await?;
        if !self.reported_waiting.swap(true, Ordering::Relaxed) {
            for (source, waiting) in self.inbox.waiting_by_source().await? {
                if routes.get(&source).is_none_or(Vec::is_empty) {
                    tracing::warn!(
                        %source,
                        waiting,
                        "inbound events wait in the inbox: no relay route for their source \
                         (HAVEN_INBOUND_RELAY)"
                    );
                }
            }
        }
        let mut total = RelayReport::default();
        for _ in 0..BATCHES_PER_STEP {
            let report = self.inbox.relay_due(routes, BATCH).await?;
            total.events += report.events;
            total.messages += report.messages;
            if report.events < BATCH {
                break;
            }
        }
        Ok(total)
    }
}

impl Job for InboundRelay {
    fn name(&self) -> &'static str {
        "inbound_relay"
    }

    fn interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let report = self.relay_due().await?;
            if report.events > 0 {
                tracing::info!(
                    events = report.events,
                    messages = report.messages,
                    "inbound events relayed"
                );
            }
            Ok(())
        })
    }
}

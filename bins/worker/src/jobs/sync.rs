//! The partner syncs (Aurora daily 02:00, Tribe daily 04:00): the partner's recent events
//! fed through the same intake as its webhooks, so an event both synced and delivered by
//! webhook rewards once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use haven_db::rewards::{Intake, feed};
use haven_partners::{AuroraClient, SyncItem, TribeClient};

use crate::Job;

/// Which partner a sync reads.
#[derive(Debug, Clone)]
pub enum Partner {
    /// Aurora PMS bookings.
    Aurora(Arc<dyn AuroraClient>),
    /// Tribe attendances.
    Tribe(Arc<dyn TribeClient>),
}

/// One partner's sync over the last `window` (longer than the schedule's period, so a
/// missed day is covered by the next run).
#[derive(Debug)]
pub struct PartnerSyncJob {
    partner: Partner,
    intake: Intake,
    window: Duration,
}

impl PartnerSyncJob {
    /// Syncs `partner` into `intake`, looking back `window` each run.
    pub fn new(partner: Partner, intake: Intake, window: Duration) -> Self {
        Self {
            partner,
            intake,
            window,
        }
    }

    async fn items(&self, since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Vec<SyncItem>> {
        Ok(match &self.partner {
            Partner::Aurora(client) => client
                .recent(since)
                .await
                .context("listing Aurora bookings")?,
            Partner::Tribe(client) => client
                .recent(since)
                .await
                .context("listing Tribe attendances")?,
        })
    }
}

impl Job for PartnerSyncJob {
    fn name(&self) -> &'static str {
        match self.partner {
            Partner::Aurora(_) => "aurora_sync",
            Partner::Tribe(_) => "tribe_sync",
        }
    }

    fn step(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let since = chrono::Utc::now()
                - chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::days(2));
            let items = self.items(since).await?;
            let report = feed(&self.intake, &items).await;
            tracing::info!(
                job = self.name(),
                items = items.len(),
                new_events = report.new_events,
                rewarded = report.rewarded,
                already_rewarded = report.already_rewarded,
                duplicates = report.duplicates,
                failed = report.failures.len(),
                "partner sync"
            );
            if let Some(first) = report.failures.first() {
                anyhow::bail!(
                    "{} of {} items could not be taken in (first: {first})",
                    report.failures.len(),
                    items.len()
                );
            }
            Ok(())
        })
    }
}

//! A partner sync's items fed through the same [`Intake`] as the partner's webhooks: a sync
//! plus the webhook — or two syncs over one window — reward once.

use haven_partners::SyncItem;

use super::{IngestOutcome, Intake};

/// What feeding a sync's items did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Items not seen before.
    pub new_events: usize,
    /// New rewards recorded.
    pub rewarded: usize,
    /// Items whose reward was recorded before (by a webhook or an earlier sync).
    pub already_rewarded: usize,
    /// Items this sync had taken in before.
    pub duplicates: usize,
    /// Items that could not be taken in, each named with its error.
    pub failures: Vec<String>,
}

/// Feeds `items` through `intake`, one at a time; a failing item is named in the report and
/// the others still go in.
pub async fn feed(intake: &Intake, items: &[SyncItem]) -> SyncReport {
    let mut report = SyncReport::default();
    for item in items {
        let Some(name) = haven_rewards::EventName::parse(item.source, item.event) else {
            report
                .failures
                .push(format!("{} {}: unknown event", item.source, item.event));
            continue;
        };
        match intake
            .accept(name, &item.payload, &item.origin(), None)
            .await
        {
            Ok(accepted) => match accepted.outcome {
                IngestOutcome::Accepted {
                    reward,
                    already_rewarded,
                    ..
                } => {
                    report.new_events += 1;
                    report.rewarded += usize::from(reward.is_some());
                    report.already_rewarded += usize::from(already_rewarded.is_some());
                }
                IngestOutcome::Duplicate | IngestOutcome::Conflict { .. } => {
                    report.duplicates += 1;
                }
            },
            Err(e) => report.failures.push(format!(
                "{} {} {}: {e}",
                item.source, item.event, item.record
            )),
        }
    }
    report
}

//! Where occurrences come from: an apalis-cron schedule, a dispatcher's pulse, and the runs
//! queued in `job_runs` (retries, and runs given back or abandoned by another worker).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use apalis_cron::CronScheduler;
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::sync::watch;

use super::{Occurrence, Schedule};

/// Queued runs: `(id, job)`, as last read by the runtime's queue watcher.
pub type QueuedRuns = Arc<Vec<(i64, String)>>;

/// Every occurrence of `job`: its schedule (with the catch-up occurrence first, when one
/// was missed) merged with its queued runs.
pub fn occurrences(
    job: &'static str,
    schedule: &Schedule,
    catch_up: Option<DateTime<Utc>>,
    queued: watch::Receiver<QueuedRuns>,
) -> BoxStream<'static, Result<Occurrence, Infallible>> {
    let own = match schedule {
        Schedule::Every(every) => pulses(job, *every),
        Schedule::Cron { expr, timezone } => {
            let ticks = cron_ticks(job, expr.schedule().clone(), *timezone);
            stream::iter(catch_up.map(|at| Occurrence::scheduled(job, at)))
                .chain(ticks)
                .boxed()
        }
    };
    stream::select(own, queued_runs(job, queued))
        .map(Ok)
        .boxed()
}

/// The schedule's ticks from apalis-cron. The scheduler computes its next tick when one
/// fires; when the run takes past that next tick, the scheduler reports it out of range on
/// every later poll, so a fresh scheduler (counting from now) replaces it: a tick missed
/// while the job ran is skipped, like a busy dispatcher's pulse.
fn cron_ticks(
    job: &'static str,
    schedule: cron::Schedule,
    timezone: chrono_tz::Tz,
) -> BoxStream<'static, Occurrence> {
    let fresh = move || {
        CronScheduler::new(schedule.clone())
            .with_timezone(timezone)
            .into_stream()
            .boxed()
    };
    stream::unfold(fresh(), move |mut ticks| {
        let fresh = fresh.clone();
        async move {
            loop {
                match ticks.next().await? {
                    Ok(tick) => {
                        let at = i64::try_from(tick.get_timestamp())
                            .ok()
                            .and_then(|secs| Utc.timestamp_opt(secs, 0).single())?;
                        return Some((Occurrence::scheduled(job, at), ticks));
                    }
                    Err(e) => {
                        tracing::debug!(job, error = %e, "a tick passed while the job ran; counting from now");
                        ticks = fresh();
                    }
                }
            }
        }
    })
    .boxed()
}

/// A pulse now, then every `every` (a pulse missed while the job was busy is skipped).
fn pulses(job: &'static str, every: Duration) -> BoxStream<'static, Occurrence> {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    stream::unfold(interval, move |mut interval| async move {
        interval.tick().await;
        Some((Occurrence::pulse(job, Utc::now(), every), interval))
    })
    .boxed()
}

fn queued_runs(
    job: &'static str,
    queued: watch::Receiver<QueuedRuns>,
) -> BoxStream<'static, Occurrence> {
    stream::unfold(queued, move |mut rx| async move {
        rx.changed().await.ok()?;
        let mine: Vec<Occurrence> = rx
            .borrow_and_update()
            .iter()
            .filter(|(_, name)| name == job)
            .map(|(id, _)| Occurrence::queued(job, *id))
            .collect();
        Some((stream::iter(mine), rx))
    })
    .flatten()
    .boxed()
}

/// The last time at or before `now` that `schedule` names, in `timezone`.
pub fn previous(
    schedule: &cron::Schedule,
    timezone: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // one second on, so an occurrence exactly at `now` counts
    let after = (now + chrono::Duration::seconds(1)).with_timezone(&timezone);
    schedule
        .after(&after)
        .next_back()
        .map(|at| at.with_timezone(&Utc))
}

/// The next time after `now` that `schedule` names.
pub fn next(
    schedule: &cron::Schedule,
    timezone: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedule
        .after(&now.with_timezone(&timezone))
        .next()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn previous_and_next_occurrences() {
        let daily = cron::Schedule::from_str("0 0 2 * * *").unwrap();
        let now = DateTime::parse_from_rfc3339("2026-12-07T09:15:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            previous(&daily, chrono_tz::UTC, now).unwrap().to_rfc3339(),
            "2026-12-07T02:00:00+00:00"
        );
        assert_eq!(
            next(&daily, chrono_tz::UTC, now).unwrap().to_rfc3339(),
            "2026-12-08T02:00:00+00:00"
        );
        let exactly = DateTime::parse_from_rfc3339("2026-12-07T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(previous(&daily, chrono_tz::UTC, exactly), Some(exactly));
    }
}

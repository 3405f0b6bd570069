//! The outermost layer of every job's stack: it decides whether this replica runs an
//! occurrence (the claim in `job_runs`), opens the run's slot for the retry policy, and
//! closes the run — succeeded, or dead after its last attempt.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use apalis::prelude::{BoxDynError, Task};
use chrono::Utc;
use futures::future::BoxFuture;
use tower::{Layer, Service};

use super::retry::Attempts;
use super::{Occurrence, Origin, Shared};

/// Adds [`LedgerService`].
#[derive(Clone)]
pub struct LedgerLayer {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for LedgerLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LedgerLayer")
    }
}

impl<S> Layer<S> for LedgerLayer {
    type Service = LedgerService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LedgerService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct LedgerService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for LedgerService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LedgerService")
    }
}

impl<S> Service<Task<Occurrence>> for LedgerService<S>
where
    S: Service<Task<Occurrence>, Response = (), Error = BoxDynError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<(), BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut task: Task<Occurrence>) -> Self::Future {
        // the ready clone is the one called; the fresh clone waits for the next poll_ready
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let occurrence = task.args.clone();
            let job = occurrence.job;
            let Some(run_id) = open(&shared, &occurrence).await? else {
                return Ok(());
            };
            let slot = Arc::new(Mutex::new(Attempts {
                run_id,
                ..Attempts::default()
            }));
            task.args.slot = Some(slot.clone());
            shared.board.started(job);
            if let Some(id) = run_id {
                shared.in_flight(id, true);
            }
            let result = inner.call(task).await;
            let (failures, last_error) = slot
                .lock()
                .map(|a| (a.failures, a.last_error.clone()))
                .unwrap_or((1, Some("the attempts' record was poisoned".into())));
            if let Some(id) = run_id {
                shared.in_flight(id, false);
            }
            close(
                &shared,
                &occurrence,
                run_id,
                failures,
                result.is_ok(),
                last_error,
            )
            .await;
            result
        })
    }
}

/// Claims the occurrence: `Ok(None)` when this replica must not run it; `Ok(Some(None))`
/// for a dispatcher pulse (no row); `Ok(Some(Some(id)))` for a claimed run.
async fn open(
    shared: &Shared,
    occurrence: &Occurrence,
) -> Result<Option<Option<i64>>, BoxDynError> {
    let settings = &shared.settings;
    match occurrence.origin {
        Origin::Pulse => {
            // a pulse that waited behind a long step is stale: the next one is due anyway
            let age = Utc::now() - occurrence.at;
            let every = chrono::Duration::from_std(occurrence.every).unwrap_or_default();
            if shared.stopping() || age > every + chrono::Duration::seconds(1) {
                return Ok(None);
            }
            Ok(Some(None))
        }
        Origin::Scheduled => {
            if shared.stopping() {
                return Ok(None);
            }
            let claimed = shared
                .runs
                .claim(
                    occurrence.job,
                    occurrence.at,
                    &settings.owner,
                    settings.lease(),
                )
                .await?;
            if claimed.is_none() {
                tracing::debug!(job = occurrence.job, at = %occurrence.at, "occurrence run by another replica");
            }
            Ok(claimed.map(Some))
        }
        Origin::Queued(id) => {
            if shared.stopping() {
                return Ok(None);
            }
            let claimed = shared
                .runs
                .claim_queued(id, &settings.owner, settings.lease())
                .await?;
            Ok(claimed.then_some(Some(id)))
        }
    }
}

async fn close(
    shared: &Shared,
    occurrence: &Occurrence,
    run_id: Option<i64>,
    failures: u32,
    succeeded: bool,
    last_error: Option<String>,
) {
    let job = occurrence.job;
    let owner = &shared.settings.owner;
    let attempts = i32::try_from(failures + u32::from(succeeded)).unwrap_or(i32::MAX);
    if succeeded {
        shared.board.succeeded(job);
        if let Some(id) = run_id
            && let Err(e) = shared.runs.finish(id, owner, attempts, None).await
        {
            tracing::warn!(job, run = id, error = %e, "could not record the run's success");
        }
        return;
    }
    let error = last_error.unwrap_or_else(|| "failed".to_owned());
    if shared.stopping() && failures < shared.settings.attempts {
        // shutting down before the attempts were spent: not dead, given back
        if let Some(id) = run_id
            && let Err(e) = shared.runs.give_back(id, owner).await
        {
            tracing::warn!(job, run = id, error = %e, "could not give the run back");
        }
        return;
    }
    let recorded = match run_id {
        Some(id) => shared
            .runs
            .finish(id, owner, attempts, Some(&error))
            .await
            .map(|()| id),
        None => {
            shared
                .runs
                .record_dead_pulse(job, occurrence.at, owner, attempts, &error)
                .await
        }
    };
    shared.board.dead(job);
    match recorded {
        Ok(id) => {
            tracing::error!(job, run = id, attempts, error = %error, "job run dead-lettered after its last attempt (haven-admin jobs retry {id})")
        }
        Err(e) => {
            tracing::error!(job, attempts, error = %error, record_error = %e, "job run failed every attempt and could not be recorded")
        }
    }
}

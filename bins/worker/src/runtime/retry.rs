//! What an attempt's failure leads to: the retry policy (record, back off, try again until
//! the attempts are spent) and the panic handler that turns a panic into a retryable error.

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis::prelude::{BoxDynError, Task};
use futures::future::BoxFuture;

use super::{Occurrence, Shared};

/// A job's panic, as an error the retry policy retries (apalis' default panic handler
/// aborts instead).
#[derive(Debug, thiserror::Error)]
#[error("the job panicked: {0}")]
pub struct JobPanicked(pub String);

/// The catch-panic layer's handler.
pub fn on_panic(panic: &Box<dyn Any + Send>) -> JobPanicked {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned());
    JobPanicked(haven_core::redact(&message))
}

/// What the attempts of one run have come to, shared by the ledger (which opened the run
/// and closes it) and the retry policy (which sees each failure).
#[derive(Debug, Default)]
pub struct Attempts {
    /// Failed attempts so far.
    pub failures: u32,
    /// The last failure, redacted.
    pub last_error: Option<String>,
    /// The `job_runs` row, when the run has one.
    pub run_id: Option<i64>,
    /// Whether the last failure was a panic.
    pub panicked: bool,
}

/// The per-run slot carried by the task (cloned with it on each retry).
pub type Slot = Arc<Mutex<Attempts>>;

/// Retries a failed attempt after `backoff × 2^(n-1)` until `attempts` attempts have
/// failed, recording each failure on the run's row. Not while the worker shuts down.
#[derive(Clone)]
pub struct AttemptPolicy {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for AttemptPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptPolicy")
            .field("attempts", &self.shared.settings.attempts)
            .finish()
    }
}

impl tower::retry::Policy<Task<Occurrence>, (), BoxDynError> for AttemptPolicy {
    type Future = BoxFuture<'static, ()>;

    fn retry(
        &mut self,
        task: &mut Task<Occurrence>,
        result: &mut Result<(), BoxDynError>,
    ) -> Option<Self::Future> {
        let Err(error) = result else { return None };
        let slot = task.args.slot.clone()?;
        let text = haven_core::redact(&format!("{error:#}"));
        let panicked = error.downcast_ref::<JobPanicked>().is_some();
        let (failures, run_id) = {
            let mut attempts = slot.lock().ok()?;
            attempts.failures += 1;
            attempts.last_error = Some(text.clone());
            attempts.panicked = panicked;
            (attempts.failures, attempts.run_id)
        };
        let job = task.args.job;
        self.shared.board.failed(job, &text, panicked);
        tracing::warn!(job, attempt = failures, panicked, error = %text, "job attempt failed");
        if failures >= self.shared.settings.attempts || self.shared.stopping() {
            return None;
        }
        let shared = self.shared.clone();
        let wait = backoff(self.shared.settings.backoff, failures);
        Some(Box::pin(async move {
            if let Some(id) = run_id {
                let attempts = i32::try_from(failures).unwrap_or(i32::MAX);
                if let Err(e) = shared
                    .runs
                    .record_failure(id, &shared.settings.owner, attempts, &text)
                    .await
                {
                    tracing::warn!(job, error = %e, "could not record the failed attempt");
                }
            }
            tokio::time::sleep(wait).await;
        }))
    }

    fn clone_request(&mut self, task: &Task<Occurrence>) -> Option<Task<Occurrence>> {
        Some(task.clone())
    }
}

/// `base × 2^(failures-1)`, at most an hour.
pub fn backoff(base: Duration, failures: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 1), Duration::from_millis(100));
        assert_eq!(backoff(base, 2), Duration::from_millis(200));
        assert_eq!(backoff(base, 4), Duration::from_millis(800));
        assert_eq!(backoff(base, 60), Duration::from_secs(3600));
    }

    #[test]
    fn a_panic_message_is_kept_and_redacted() {
        let text: Box<dyn Any + Send> = Box::new("boom");
        assert_eq!(on_panic(&text).0, "boom");
        let owned: Box<dyn Any + Send> = Box::new(String::from("token=abc123 failed"));
        assert!(!on_panic(&owned).0.contains("abc123"));
        let other: Box<dyn Any + Send> = Box::new(42u8);
        assert_eq!(on_panic(&other).0, "a non-text panic payload");
    }
}

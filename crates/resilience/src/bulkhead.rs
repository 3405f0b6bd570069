//! Timeout and bulkhead wrappers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::{CallError, Error, Result};

/// Runs `operation`, abandoning it with [`Error::Timeout`] after `limit`. The operation's
/// future is dropped at the deadline, so it must be cancel-safe.
pub async fn with_timeout<T, E, Fut>(limit: Duration, operation: Fut) -> Result<T, CallError<E>>
where
    Fut: Future<Output = Result<T, E>>,
{
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => result.map_err(CallError::Operation),
        Err(_) => Err(CallError::Resilience(Error::Timeout { after: limit })),
    }
}

/// Caps the number of concurrent calls to one dependency so a slow dependency cannot take
/// every task of the service with it.
///
/// **Invariant:** at most `max_concurrent` operations run inside the bulkhead at any time.
#[derive(Debug, Clone)]
pub struct Bulkhead {
    name: Arc<str>,
    max_concurrent: usize,
    max_wait: Duration,
    slots: Arc<Semaphore>,
}

impl Bulkhead {
    /// A bulkhead admitting `max_concurrent` calls; further calls wait up to `max_wait` for a
    /// slot (zero: rejected at once) and then fail with [`Error::BulkheadFull`].
    pub fn new(name: impl Into<String>, max_concurrent: usize, max_wait: Duration) -> Result<Self> {
        if max_concurrent == 0 || max_concurrent > Semaphore::MAX_PERMITS {
            return Err(Error::InvalidConfig {
                field: "max_concurrent",
                reason: "must be at least 1 and within the semaphore limit",
            });
        }
        Ok(Self {
            name: Arc::from(name.into()),
            max_concurrent,
            max_wait,
            slots: Arc::new(Semaphore::new(max_concurrent)),
        })
    }

    /// Free slots right now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Runs `operation` inside the bulkhead.
    pub async fn call<T, E, F, Fut>(&self, operation: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let full = || Error::BulkheadFull {
            name: self.name.to_string(),
            max_concurrent: self.max_concurrent,
        };
        let _slot = match self.slots.try_acquire() {
            Ok(slot) => slot,
            Err(_) if self.max_wait.is_zero() => return Err(full().into()),
            Err(_) => match tokio::time::timeout(self.max_wait, self.slots.acquire()).await {
                Ok(Ok(slot)) => slot,
                _ => return Err(full().into()),
            },
        };
        operation().await.map_err(CallError::Operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn timeout_fires_and_passes_through() {
        let slow = with_timeout(Duration::from_millis(10), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, ()>(1)
        })
        .await;
        assert!(matches!(
            slow,
            Err(CallError::Resilience(Error::Timeout { .. }))
        ));
        let fast = with_timeout(Duration::from_secs(1), async { Ok::<_, ()>(2) }).await;
        assert_eq!(fast.ok(), Some(2));
    }

    #[tokio::test]
    async fn bulkhead_rejects_beyond_limit() {
        let bulkhead = Bulkhead::new("db", 2, Duration::ZERO).unwrap();
        let (release, wait) = tokio::sync::watch::channel(false);
        let mut running = Vec::new();
        for _ in 0..2 {
            let b = bulkhead.clone();
            let mut wait = wait.clone();
            running.push(tokio::spawn(async move {
                b.call(|| async move {
                    let _ = wait.wait_for(|v| *v).await;
                    Ok::<_, ()>(())
                })
                .await
            }));
        }
        while bulkhead.available() > 0 {
            tokio::task::yield_now().await;
        }
        let third = bulkhead.call(|| async { Ok::<_, ()>(()) }).await;
        assert!(matches!(
            third,
            Err(CallError::Resilience(Error::BulkheadFull {
                max_concurrent: 2,
                ..
            }))
        ));
        release.send(true).unwrap();
        for r in running {
            assert!(r.await.unwrap().is_ok());
        }
        assert_eq!(bulkhead.available(), 2);
    }
}

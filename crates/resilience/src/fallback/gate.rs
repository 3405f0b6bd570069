use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock};
use crate::{Error, Result};

/// Enforces a minimum interval between calls to one upstream (e.g. CoinGecko's 4 s),
/// for everyone sharing the gate.
///
/// **Invariant:** two successful claims for the same upstream are at least
/// `min_interval` apart, across every process sharing the backing store.
#[async_trait]
pub trait IntervalGate: Send + Sync + Debug {
    /// Claims the right to call `upstream` now, or fails with
    /// [`Error::IntervalNotElapsed`] saying how long to wait.
    async fn try_claim(&self, upstream: &str, min_interval: Duration) -> Result<()>;
}

/// An [`IntervalGate`] for one process.
#[derive(Debug)]
pub struct InMemoryIntervalGate {
    clock: Arc<dyn Clock>,
    last: Mutex<HashMap<String, Instant>>,
}

impl Default for InMemoryIntervalGate {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

impl InMemoryIntervalGate {
    /// A gate on an injected clock.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            last: Mutex::default(),
        }
    }
}

#[async_trait]
impl IntervalGate for InMemoryIntervalGate {
    async fn try_claim(&self, upstream: &str, min_interval: Duration) -> Result<()> {
        let now = self.clock.now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = last.get(upstream) {
            let since = now.saturating_duration_since(*at);
            if since < min_interval {
                return Err(Error::IntervalNotElapsed {
                    upstream: upstream.to_owned(),
                    wait: min_interval - since,
                });
            }
        }
        last.insert(upstream.to_owned(), now);
        Ok(())
    }
}

#[cfg(feature = "redis")]
pub use redis_gate::RedisIntervalGate;

#[cfg(feature = "redis")]
mod redis_gate {
    use super::*;
    use deadpool_redis::Pool;
    use redis::Script;

    /// `SET NX PX` claims (answering [`CLAIMED`], a value PTTL never returns); a refusal
    /// answers the key's PTTL, in the same round trip.
    const CLAIM: &str = r#"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return -10 end
return redis.call('PTTL', KEYS[1])
"#;

    /// The script's answer for a successful claim.
    const CLAIMED: i64 = -10;

    /// An [`IntervalGate`] shared by every process using the same Redis and prefix.
    #[derive(Clone)]
    pub struct RedisIntervalGate {
        pool: Pool,
        prefix: String,
        timeout: Duration,
        script: Script,
    }

    impl Debug for RedisIntervalGate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisIntervalGate")
                .field("prefix", &self.prefix)
                .finish_non_exhaustive()
        }
    }

    impl RedisIntervalGate {
        /// A gate keeping one key per upstream under `prefix`.
        pub fn new(pool: Pool, prefix: impl Into<String>, timeout: Duration) -> Self {
            Self {
                pool,
                prefix: prefix.into(),
                timeout,
                script: Script::new(CLAIM),
            }
        }
    }

    #[async_trait]
    impl IntervalGate for RedisIntervalGate {
        async fn try_claim(&self, upstream: &str, min_interval: Duration) -> Result<()> {
            let ms = u64::try_from(min_interval.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            let call = async {
                let mut conn = self.pool.get().await?;
                let ttl: i64 = self
                    .script
                    .key(format!("{}{upstream}", self.prefix))
                    .arg(ms)
                    .invoke_async(&mut conn)
                    .await?;
                Ok::<_, Error>(ttl)
            };
            let ttl = tokio::time::timeout(self.timeout, call)
                .await
                .map_err(|_| Error::RedisTimeout {
                    after: self.timeout,
                })??;
            if ttl == CLAIMED {
                return Ok(());
            }
            Err(Error::IntervalNotElapsed {
                upstream: upstream.to_owned(),
                wait: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[tokio::test]
    async fn in_memory_gate_spaces_claims() {
        let clock = Arc::new(ManualClock::new());
        let gate = InMemoryIntervalGate::with_clock(clock.clone());
        let i = Duration::from_secs(4);
        gate.try_claim("cg", i).await.unwrap();
        clock.advance(Duration::from_secs(3));
        let e = gate.try_claim("cg", i).await.unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
        gate.try_claim("binance", i).await.unwrap();
        clock.advance(Duration::from_secs(1));
        gate.try_claim("cg", i).await.unwrap();
    }
}

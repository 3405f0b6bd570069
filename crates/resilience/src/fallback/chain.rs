use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cache::TtlCache;
use super::gate::IntervalGate;
use super::price::{Pair, Price, PriceSource};
use crate::breaker::{Breaker, BreakerExt, Outcome};
use crate::bulkhead::with_timeout;
use crate::retry::{Idempotency, Retry, RetryDecision};
use crate::{CallError, Error, Result};

/// One source of a [`FallbackChain`] with its own protection.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The source.
    pub source: Arc<dyn PriceSource>,
    /// Its breaker.
    pub breaker: Arc<dyn Breaker>,
    /// Limit per attempt.
    pub timeout: Duration,
    /// Its retry policy.
    pub retry: Arc<Retry>,
    /// Minimum interval between calls to this upstream, shared through the chain's gate.
    pub min_interval: Option<Duration>,
}

/// A price answered by a [`FallbackChain`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// The pair.
    pub pair: Pair,
    /// Price of one base unit in the quote currency, exact.
    pub price: Price,
    /// Which upstream produced it.
    pub source: String,
    /// Age of the value (zero when just fetched).
    pub age: Duration,
    /// True when served from cache past `fresh_ttl` because every source failed.
    pub stale: bool,
}

/// Whether an upstream error is worth retrying, with the upstream's `Retry-After`.
pub fn classify_retry(error: &Error) -> RetryDecision {
    match error {
        Error::Http { .. } | Error::Timeout { .. } => RetryDecision::RETRY,
        Error::UpstreamStatus {
            status,
            retry_after,
            ..
        } if *status == 429 || *status >= 500 => RetryDecision::Retry {
            after: *retry_after,
        },
        _ => RetryDecision::Stop,
    }
}

/// Whether an upstream error says the upstream is unhealthy: a 4xx other than 429 is
/// caused by the request and does not count against the breaker.
pub fn classify_breaker(result: &Result<Price>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(Error::UpstreamStatus { status, .. })
            if (400..500).contains(status) && *status != 429 =>
        {
            Outcome::Ignored
        }
        Err(Error::MissingPrice { .. }) => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    }
}

fn flatten(e: CallError<Error>) -> Error {
    match e {
        CallError::Resilience(e) | CallError::Operation(e) => e,
    }
}

/// Tries price sources in order (each behind its breaker, timeout, retry and interval
/// gate), caching answers; when every source fails it serves a cached value within the
/// stale bound, marked stale, and otherwise [`Error::Unavailable`].
#[derive(Debug)]
pub struct FallbackChain {
    stages: Vec<Stage>,
    cache: TtlCache<Pair, (Price, String)>,
    gate: Arc<dyn IntervalGate>,
}

impl FallbackChain {
    /// A chain over `stages` in order.
    pub fn new(
        stages: Vec<Stage>,
        cache: TtlCache<Pair, (Price, String)>,
        gate: Arc<dyn IntervalGate>,
    ) -> Self {
        Self {
            stages,
            cache,
            gate,
        }
    }

    /// A fresh cached price, else the first source that answers, else a stale cached price.
    pub async fn quote(&self, pair: &Pair) -> Result<Quote> {
        if let Some(hit) = self.cache.get_fresh(pair) {
            return Ok(Quote {
                pair: pair.clone(),
                price: hit.value.0,
                source: hit.value.1,
                age: hit.age,
                stale: false,
            });
        }
        for stage in &self.stages {
            match self.fetch(stage, pair).await {
                Ok(price) => {
                    let source = stage.source.name().to_owned();
                    self.cache
                        .insert(pair.clone(), (price.clone(), source.clone()));
                    return Ok(Quote {
                        pair: pair.clone(),
                        price,
                        source,
                        age: Duration::ZERO,
                        stale: false,
                    });
                }
                Err(error) => {
                    tracing::warn!(source = stage.source.name(), %pair, error = %error, "price source failed; trying the next");
                }
            }
        }
        match self.cache.get(pair) {
            Some(hit) => Ok(Quote {
                pair: pair.clone(),
                price: hit.value.0,
                source: hit.value.1,
                age: hit.age,
                stale: hit.stale,
            }),
            None => Err(Error::Unavailable {
                resource: format!("price:{pair}"),
            }),
        }
    }

    async fn fetch(&self, stage: &Stage, pair: &Pair) -> Result<Price> {
        let attempt = |_| async {
            if let Some(interval) = stage.min_interval {
                self.gate.try_claim(stage.source.name(), interval).await?;
            }
            stage
                .breaker
                .call_classified(classify_breaker_call, || async {
                    with_timeout(stage.timeout, stage.source.price(pair))
                        .await
                        .map_err(flatten)
                })
                .await
                .map_err(flatten)
        };
        stage
            .retry
            .run(Idempotency::Idempotent, classify_retry, attempt)
            .await
            .map_err(|e| e.last)
    }
}

fn classify_breaker_call(result: &Result<Price>) -> Outcome {
    classify_breaker(result)
}

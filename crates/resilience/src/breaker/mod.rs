//! Circuit breakers: the in-process [`CircuitBreaker`], the Redis-backed
//! [`SharedBreaker`](crate::SharedBreaker) (feature `redis`), the [`Breaker`] trait both
//! implement and a [`BreakerRegistry`] by name.

mod config;
mod core;
mod local;
mod registry;
#[cfg(feature = "redis")]
pub(crate) mod shared;
#[cfg(feature = "redis")]
mod shared_lua;
mod state;

use std::fmt::Debug;

use async_trait::async_trait;
use tokio::sync::broadcast;

pub use config::{BreakerConfig, SlidingWindow, SlowCallConfig};
pub use local::{CircuitBreaker, Permit};
pub use registry::BreakerRegistry;
pub use state::{BreakerState, BreakerStatus, Outcome, StateChange};

use crate::{CallError, Result};

/// A circuit breaker, local or shared; object-safe so registries and `/health` can hold
/// any kind. Use [`BreakerExt::call`] to run an operation through one.
///
/// **Invariant:** an implementation never admits a call while OPEN or FORCED_OPEN, and
/// never has more than `half_open_permits` HALF_OPEN probes admitted at once.
#[async_trait]
pub trait Breaker: Send + Sync + Debug {
    /// The breaker's name.
    fn name(&self) -> &str;
    /// Admits one call or fails with [`Error::CircuitOpen`](crate::Error::CircuitOpen).
    async fn acquire(&self) -> Result<BreakerPermit>;
    /// A serializable snapshot.
    fn status(&self) -> BreakerStatus;
    /// State changes from now on.
    fn subscribe(&self) -> broadcast::Receiver<StateChange>;
    /// Operator action: reject all calls.
    async fn force_open(&self) -> Result<()>;
    /// Operator action: admit all calls and record nothing.
    async fn disable(&self) -> Result<()>;
    /// Operator action: back to CLOSED.
    async fn reset(&self) -> Result<()>;
}

/// Admission granted by any [`Breaker`]; complete it with [`BreakerPermit::record`].
/// Dropping it unrecorded releases a probe slot without counting an outcome.
#[derive(Debug)]
pub struct BreakerPermit(PermitKind);

#[derive(Debug)]
enum PermitKind {
    Local(Permit),
    #[cfg(feature = "redis")]
    Shared(shared::SharedPermit),
}

impl From<Permit> for BreakerPermit {
    fn from(p: Permit) -> Self {
        BreakerPermit(PermitKind::Local(p))
    }
}

#[cfg(feature = "redis")]
impl From<shared::SharedPermit> for BreakerPermit {
    fn from(p: shared::SharedPermit) -> Self {
        BreakerPermit(PermitKind::Shared(p))
    }
}

impl BreakerPermit {
    /// Records the call's outcome.
    pub fn record(self, outcome: Outcome) {
        match self.0 {
            PermitKind::Local(p) => p.record(outcome),
            #[cfg(feature = "redis")]
            PermitKind::Shared(p) => p.record(outcome),
        }
    }
}

/// `Ok` is a success, `Err` a failure.
pub fn classify_by_result<T, E>(result: &Result<T, E>) -> Outcome {
    if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

/// Running operations through any [`Breaker`], including `dyn Breaker`.
pub trait BreakerExt: Breaker {
    /// Runs `operation` if admitted; `Err` counts as a failure.
    fn call<T, E, F, Fut>(
        &self,
        operation: F,
    ) -> impl Future<Output = Result<T, CallError<E>>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send,
        T: Send,
        E: Send,
    {
        self.call_classified(classify_by_result, operation)
    }

    /// Runs `operation` if admitted and records what `classify` makes of the result.
    fn call_classified<T, E, F, Fut, C>(
        &self,
        classify: C,
        operation: F,
    ) -> impl Future<Output = Result<T, CallError<E>>> + Send
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send,
        C: FnOnce(&Result<T, E>) -> Outcome + Send,
        T: Send,
        E: Send,
    {
        async move {
            let permit = self.acquire().await?;
            let result = operation().await;
            permit.record(classify(&result));
            result.map_err(CallError::Operation)
        }
    }
}

impl<B: Breaker + ?Sized> BreakerExt for B {}

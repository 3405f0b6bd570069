use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::{Breaker, BreakerConfig, BreakerStatus, CircuitBreaker};
use crate::Result;

/// Breakers by name, so `/health` and admin endpoints can list and reset them.
///
/// A registry made with [`BreakerRegistry::shared`] creates [`SharedBreaker`](crate::SharedBreaker)s
/// in [`BreakerRegistry::get_or_create`], so every replica using the same Redis and key
/// prefix sees one state per name; otherwise it creates in-process breakers.
#[derive(Debug, Default)]
pub struct BreakerRegistry {
    default_config: BreakerConfig,
    breakers: RwLock<BTreeMap<String, Arc<dyn Breaker>>>,
    #[cfg(feature = "redis")]
    redis: Option<(crate::SharedBreakerConfig, deadpool_redis::Pool)>,
}

impl BreakerRegistry {
    /// A registry whose [`BreakerRegistry::get_or_create`] uses `default_config`.
    pub fn new(default_config: BreakerConfig) -> Result<Self> {
        default_config.validate()?;
        Ok(Self {
            default_config,
            breakers: RwLock::default(),
            #[cfg(feature = "redis")]
            redis: None,
        })
    }

    /// A registry whose [`BreakerRegistry::get_or_create`] makes breakers shared through
    /// `pool` (degrading to local state while Redis is unreachable). Must be used inside a
    /// Tokio runtime.
    #[cfg(feature = "redis")]
    pub fn shared(
        default_config: BreakerConfig,
        shared: crate::SharedBreakerConfig,
        pool: deadpool_redis::Pool,
    ) -> Result<Self> {
        shared.validate()?;
        Ok(Self {
            redis: Some((shared, pool)),
            ..Self::new(default_config)?
        })
    }

    /// The breaker called `name`, creating a local one with the default config if absent.
    pub fn get_or_create(&self, name: &str) -> Result<Arc<dyn Breaker>> {
        if let Some(b) = self.get(name) {
            return Ok(b);
        }
        let mut map = self
            .breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = map.get(name) {
            return Ok(Arc::clone(b));
        }
        let breaker = self.create(name)?;
        map.insert(name.to_owned(), Arc::clone(&breaker));
        Ok(breaker)
    }

    fn create(&self, name: &str) -> Result<Arc<dyn Breaker>> {
        #[cfg(feature = "redis")]
        if let Some((shared, pool)) = &self.redis {
            return Ok(Arc::new(crate::SharedBreaker::start(
                name,
                self.default_config.clone(),
                shared.clone(),
                pool.clone(),
            )?));
        }
        Ok(Arc::new(CircuitBreaker::new(
            name,
            self.default_config.clone(),
        )?))
    }

    /// Adds a breaker under its own name; an existing one of that name is kept and returned.
    pub fn register(&self, breaker: Arc<dyn Breaker>) -> Arc<dyn Breaker> {
        let mut map = self
            .breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            map.entry(breaker.name().to_owned())
                .or_insert_with(|| breaker),
        )
    }

    /// The breaker called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Breaker>> {
        self.breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every breaker, sorted by name (e.g. to [`subscribe`](Breaker::subscribe) to each).
    pub fn breakers(&self) -> Vec<Arc<dyn Breaker>> {
        self.breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Every breaker's status, sorted by name.
    pub fn statuses(&self) -> Vec<BreakerStatus> {
        self.breakers().iter().map(|b| b.status()).collect()
    }
}

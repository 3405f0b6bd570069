use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::{Breaker, BreakerConfig, BreakerStatus, CircuitBreaker};
use crate::Result;

/// Breakers by name, so `/health` and admin endpoints can list and reset them.
#[derive(Debug, Default)]
pub struct BreakerRegistry {
    default_config: BreakerConfig,
    breakers: RwLock<BTreeMap<String, Arc<dyn Breaker>>>,
}

impl BreakerRegistry {
    /// A registry whose [`BreakerRegistry::get_or_create`] uses `default_config`.
    pub fn new(default_config: BreakerConfig) -> Result<Self> {
        default_config.validate()?;
        Ok(Self {
            default_config,
            breakers: RwLock::default(),
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
        let breaker: Arc<dyn Breaker> =
            Arc::new(CircuitBreaker::new(name, self.default_config.clone())?);
        map.insert(name.to_owned(), Arc::clone(&breaker));
        Ok(breaker)
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

    /// Every breaker's status, sorted by name.
    pub fn statuses(&self) -> Vec<BreakerStatus> {
        let breakers: Vec<_> = self
            .breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        breakers.iter().map(|b| b.status()).collect()
    }
}

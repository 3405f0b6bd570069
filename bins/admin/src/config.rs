//! The admin CLI's configuration: the only place it reads the environment.

use haven_service::config::{CommonConfig, ConfigError, load_with_common};
use serde::{Deserialize, Serialize};

/// Settings of the admin CLI.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Shared settings (`DATABASE_URL`, …).
    pub common: CommonConfig,
}

#[derive(Debug, Deserialize)]
struct Own {}

#[derive(Debug, Serialize)]
struct Defaults {}

impl AdminConfig {
    /// Loads and validates the configuration (defaults → `HAVEN_CONFIG` file → environment).
    pub fn load() -> Result<Self, ConfigError> {
        let (common, Own {}) = load_with_common::<Own>(Defaults {})?;
        Ok(Self { common })
    }
}

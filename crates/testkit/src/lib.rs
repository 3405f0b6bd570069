//! Helpers for tests that talk to real services: [`TestDb`] (a fresh migrated database per
//! test, cloned from a template in milliseconds), [`TestRedis`] (a random key prefix per
//! test, cleaned afterwards) and [`Anvil`] (a local EVM node on a free port, killed on
//! drop) and [`RedisServer`] (a private redis-server that a test may stop and restart).
//! [`MetricsCapture`] records what code reports through the `metrics` facade, and
//! [`StubServer`] stands in for an HTTP partner, receiver or upstream, and
//! [`install_crypto_provider`] chooses the TLS crypto provider for a test process.
//! [`assert_answers_help_and_version`] runs a binary's `--help` and `--version` with every
//! service address pointing at a trap.
//!
//! A helper that cannot reach its service panics with a message saying how to start it:
//! tests never skip silently.

mod anvil;
mod cli;
mod crypto;
#[cfg(feature = "postgres")]
mod db;
mod local_server;
mod metrics_capture;
mod redis_kit;
mod redis_server;
mod stub_http;

pub use anvil::Anvil;
pub use cli::{assert_answers_help_and_version, run_without_side_effects};
pub use crypto::install_crypto_provider;
#[cfg(feature = "postgres")]
pub use db::TestDb;
pub use metrics_capture::MetricsCapture;
pub use redis_kit::TestRedis;
pub use redis_server::RedisServer;
pub use stub_http::{StubRequest, StubResponse, StubServer};

/// The workspace root (where `Cargo.toml`, `scripts/` and `.tools/` live).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}

/// How to bring the local services up, quoted in every "cannot reach" panic.
pub const START_HINT: &str =
    "start the local services with `./x services` (or `scripts/services.sh`)";

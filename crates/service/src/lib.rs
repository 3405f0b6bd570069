//! Plumbing shared by the haven binaries (api, worker, admin): layered [`config`] loading
//! (defaults → optional TOML file → environment), [`telemetry`] (JSON or pretty logs),
//! the [`shutdown`] signal, the readiness [`probe`]s of Postgres and Redis, and the
//! Prometheus [`metrics`] recorder the api and the worker serve on `/metrics`.
//!
//! Each binary keeps its own `config.rs` with its typed configuration; it calls
//! [`config::load`] there and nowhere else, so the environment is read in one place.
//!
//! ## Features
//! No optional features.

pub mod cache;
pub mod config;
pub mod metrics;
pub mod probe;
pub mod shutdown;
pub mod telemetry;

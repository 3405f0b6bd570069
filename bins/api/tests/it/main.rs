#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod addresses;
mod auth;
mod errors;
mod health;
mod idempotency;
mod metrics;
mod rate_limits;
mod security_headers;
mod tls;

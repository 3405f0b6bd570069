//! The no-secret-in-logs test runs in its own process: it installs a thread-local tracing
//! subscriber, and tests running beside it in one process could race it on tracing's
//! per-callsite interest cache and hide events from the capture.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)] // the shared support modules serve the other test binary too

#[path = "../it/no_leaks.rs"]
mod no_leaks;
#[path = "../it/support.rs"]
mod support;
#[path = "../it/vault_mock.rs"]
mod vault_mock;

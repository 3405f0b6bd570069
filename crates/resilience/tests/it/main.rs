#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests of haven-resilience against real Redis and local HTTP servers.

mod breaker;
mod fallback;
mod limiter;
#[cfg(feature = "redis")]
mod lockout;
mod properties;
mod retry;
#[cfg(feature = "redis")]
mod shared;
mod support;

/// Entry point of child processes started by [`support::spawn_child`] (which runs it with
/// `--ignored`); ignored in a normal run, so it never counts as a passing test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the entry point of child processes (support::spawn_child)"]
async fn child_entry() {
    let Ok(role) = std::env::var(support::CHILD_ROLE) else {
        return;
    };
    match role.as_str() {
        "limiter-memory" => limiter::child_memory(),
        #[cfg(feature = "redis")]
        "breaker-trip" => shared::child_trip().await,
        #[cfg(feature = "redis")]
        "gate-poll" => fallback::child_gate_poll().await,
        other => panic!("unknown child role {other}"),
    }
}

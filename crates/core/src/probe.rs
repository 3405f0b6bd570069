//! The readiness probe of a dependency, implemented where the dependency is known (the
//! Postgres pool in `haven-db`, the Redis pool in `haven-service`) and checked by the
//! binaries' `/ready` endpoints without the checker knowing what it pings.

/// Why a probe failed (kept for its message; never shown with secrets: the checker redacts).
pub type ProbeError = Box<dyn std::error::Error + Send + Sync>;

/// A dependency a readiness check can ask whether it answers.
///
/// One call is one round trip (`SELECT 1`, `PING`); the caller bounds it with a timeout and
/// may call it concurrently from several requests.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    /// Asks the dependency once; `Ok` when it answered.
    async fn probe(&self) -> Result<(), ProbeError>;
}

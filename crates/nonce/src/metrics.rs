//! The names of the metrics this crate records through the [`metrics`](::metrics) facade.
//!
//! The crate installs no recorder: in a process without one the calls cost next to
//! nothing, and a binary that installs one (haven's api and worker serve Prometheus text on
//! `/metrics`) gets these series from every [`NonceManager`](crate::NonceManager) in it.
//! The stores record nothing; only the manager does.

/// Gauge: nonce leases that this process's [`NonceManager`](crate::NonceManager)s handed out
/// and have not yet seen committed, released, lost or past their TTL.
///
/// It is **per process**, not the store's count: with several processes sharing a Redis or
/// Postgres store, each reports its own leases and the sum over processes approximates the
/// store's (a crashed process's leases leave the sum at once and the store at expiry). An
/// expired lease is taken off at the manager's next call after its TTL, as measured by this
/// process's clock from the moment the lease arrived.
pub const LEASES_OUTSTANDING: &str = "haven_nonce_leases_outstanding";

/// Describes this crate's series to the installed recorder and registers the gauge at 0
/// (dashboards show 0 rather than no data). A binary calls it once, after it installed its
/// recorder; without a recorder it does nothing.
pub fn describe() {
    metrics::describe_gauge!(
        LEASES_OUTSTANDING,
        "Nonce leases this process holds: reserved, not yet committed, released or expired."
    );
    // Adding 0 registers it without overwriting anything recorded meanwhile.
    metrics::gauge!(LEASES_OUTSTANDING).increment(0.0);
}

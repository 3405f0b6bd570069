//! The names of the metrics this crate records through the [`metrics`](::metrics) facade.
//!
//! The crate installs no recorder: in a process without one the calls cost next to
//! nothing, and a binary that installs one (haven's worker runs the monitoring cycle and
//! serves Prometheus text on `/metrics`) gets these series. Nonce leases taken by
//! [`TokenOps`](crate::TokenOps) are counted by `haven-nonce`
//! (`haven_nonce_leases_outstanding`).

/// Counter: mint transactions confirmed on chain, counted by the
/// [`monitor_once`](crate::TokenOps::monitor_once) cycle whose compare-and-set moved the
/// record to `confirmed`. That write happens once per record, so later cycles, concurrent
/// cycles in other processes and re-runs do not count it again; the sum over processes is
/// the number of confirmed mints. A confirmation whose block left the chain goes back to
/// `broadcast` ([`ALERTS`] with `kind="reorged"` counts those) and is not counted again when
/// it is confirmed anew (the record's `reorgs` says it was counted already); should it fail
/// instead, the series keeps the one count of the undone confirmation.
pub const TOKENS_MINTED: &str = "haven_tokens_minted_total";

/// Counter: burn transactions confirmed on chain — `burn` of the sending wallet's tokens and
/// `burn_from` of a custodial holder's — counted like [`TOKENS_MINTED`].
pub const TOKENS_BURNED: &str = "haven_tokens_burned_total";

/// Counter, labelled `kind` ([`ChainAlert::kind`](crate::ChainAlert::kind): `stuck`,
/// `failed`, `gas_spike`, `reorged`, `replacement_exhausted`): alerts the monitoring cycle
/// raised, one per alert handed to the [`ChainAlertSink`](crate::ChainAlertSink).
pub const ALERTS: &str = "haven_chain_alerts_total";

/// Describes this crate's series to the installed recorder and registers the unlabelled
/// counters at 0 (dashboards show 0 rather than no data). A binary calls it once, after it
/// installed its recorder; without a recorder it does nothing.
pub fn describe() {
    metrics::describe_counter!(TOKENS_MINTED, "Mint transactions confirmed on chain.");
    metrics::describe_counter!(TOKENS_BURNED, "Burn transactions confirmed on chain.");
    metrics::describe_counter!(
        ALERTS,
        "Alerts raised by the chain monitoring cycle, by kind."
    );
    // Adding 0 registers them without overwriting anything recorded meanwhile.
    metrics::counter!(TOKENS_MINTED).increment(0);
    metrics::counter!(TOKENS_BURNED).increment(0);
}

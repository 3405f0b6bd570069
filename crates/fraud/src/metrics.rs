//! The names of the metrics this crate records through the [`metrics`](::metrics) facade.
//!
//! The crate installs no recorder: in a process without one the calls cost next to
//! nothing, and a binary that installs one (haven's api and worker serve Prometheus text on
//! `/metrics`) gets these series from every [`Engine`](crate::Engine) in it.

/// Counter, labelled `rule` (the rule's `id`): alerts raised, one per alert that
/// [`Engine::evaluate`](crate::Engine::evaluate) returns. A repeated event id, a late event
/// and a finding held back by the rule's cooldown raise no alert and count nothing; an
/// evaluation that fails counts nothing either.
pub const ALERTS: &str = "haven_fraud_alerts_total";

/// Describes this crate's series to the installed recorder. A binary calls it once, after
/// it installed its recorder; without a recorder it does nothing.
pub fn describe() {
    metrics::describe_counter!(ALERTS, "Fraud alerts raised, by rule.");
}

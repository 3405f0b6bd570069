//! The worker's periodic jobs, one module each; [`crate::run`] decides which are registered.

pub mod chain_alerts;
pub mod chain_monitor;
pub mod fraud_delivery;
pub mod inbound_relay;
pub mod movements;
pub mod rewards;
pub mod scheduled;
pub mod sync;
pub mod webhook_delivery;

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod custodian;
mod exactly_once;
mod harness;
mod monitor;
mod outage;
mod store;

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod evm;
mod model;
mod refusals;
mod rotation;
mod solana;
mod store;
mod support;
mod tamper;
mod vault;
mod vault_mock;

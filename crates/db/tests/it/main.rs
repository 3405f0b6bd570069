#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod audit;
mod custody;
mod migrations;
mod nonce;
mod repos;

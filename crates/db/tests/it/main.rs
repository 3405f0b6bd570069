#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod admin;
mod audit;
mod auth;
mod chain;
mod custody;
mod fraud;
mod inbound;
mod migrations;
mod nonce;
mod repos;
mod retention;
mod vault;
mod webhooks;

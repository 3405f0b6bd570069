#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anvil;
mod concurrency;
mod properties;
mod redis_store;

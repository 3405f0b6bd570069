#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod canonical;
mod concurrency;
mod flow;
mod protocol;
mod refusals;
mod store;
mod support;
mod threshold;

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod amounts;
mod boundaries;
mod burst;
mod delivery;
mod engine;
mod helpers;
mod properties;
mod review;
mod stores;

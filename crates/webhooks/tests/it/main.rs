#![allow(clippy::unwrap_used, clippy::expect_used)]

mod delivery;
mod props;
mod rotation;
mod stores;
mod verify_vectors;

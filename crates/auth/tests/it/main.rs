//! Integration tests of haven-auth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cached_sessions;
mod jwt_attacks;
mod properties;
mod sessions;

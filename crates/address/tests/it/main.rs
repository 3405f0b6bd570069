//! Integration tests of haven-address: the public vectors, standard test cases, the wire
//! report, and property tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod properties;
mod report;
mod standards;
mod vectors;

//! Integration tests of the host: real bundle files, real refusals.
//!
//! One test binary (every binary links DataFusion again). The bundles are built on first use
//! by `util::bundles_built`, so `cargo test --workspace` from a fresh clone is all it takes.

mod catalog;
mod cli;
mod cluster;
mod compose;
mod corpus;
mod lifecycle;
mod linking;
mod load;
mod panics;
mod refusal;
mod slt;
mod trust;
mod util;
mod verify;

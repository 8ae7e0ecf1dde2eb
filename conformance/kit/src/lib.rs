//! # df-plugin-conformance
//!
//! The conformance kit for df-plugin bundles. For now it holds the sqllogictest runner
//! ([`slt`]): the same `.slt` files run against a session with a bundle loaded and against the
//! same functions registered natively, and both must produce the expected results. The files
//! use sqllogictest's format, as DataFusion's own test suite does.

pub mod slt;

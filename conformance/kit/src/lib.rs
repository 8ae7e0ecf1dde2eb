//! # df-plugin-conformance
//!
//! The conformance kit for df-plugin bundles: the sqllogictest runner ([`slt`]) — the same
//! `.slt` files run against a session with a bundle loaded and against the same objects
//! registered natively, and both must produce the expected results — and the helpers that
//! build a workspace's bundles for the tests that load them ([`bundles`]), [`craft`] for the
//! hostile files no honest build produces, and [`query::query_csv`] for asserting on results
//! as text. The checks themselves (`df-plugin-host verify`) are `df_plugin_host::conformance`.

pub mod bundles;
pub mod craft;
pub mod query;
pub mod slt;

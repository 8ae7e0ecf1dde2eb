//! Delta Lake tables for DataFusion, exported as a df-plugin bundle: the `DELTA` table
//! factory and the `delta_scan`, `delta_history` and `delta_changes` table functions.
//!
//! The code is `df-plugin-delta-tables`'s: tests and benchmarks register it natively through
//! that crate, so that nothing links this crate's entry points a second time.

df_plugin_api::export_bundle!(df_plugin_delta_tables::exports);

//! SQL planners for DataFusion, exported as a df-plugin bundle: the SQL types `UUID` and
//! `JSON`, the JSON operators and `TABLESAMPLE`.
//!
//! The code is `df-plugin-sql-planners`'s: tests and benchmarks install it natively through
//! that crate, so that nothing links this crate's entry points a second time.

df_plugin_api::export_bundle!(df_plugin_sql_planners::exports);

//! Web-analytics code for the project's bundles: URL text primitives ([`url`]); the scalar,
//! aggregate and window functions the udfs bundle exports ([`functions`]); and the table
//! functions the udtfs bundle exports ([`table_functions`]).
//!
//! The functions live here rather than in the bundle crates so that tests and benchmarks can
//! register them natively (this crate's `Cargo.toml` says why a bundle crate cannot be linked
//! for that).

pub mod functions;
pub mod time_buckets;
pub mod url;
pub mod url_tables;

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use df_plugin_api::toolkit::source::{SourceTableFunction, TableSource};

/// The table functions of the udtfs bundle, by name, as table sources: what the bundle exports
/// and what [`register_natively`] registers.
pub fn table_functions() -> Vec<(&'static str, Arc<dyn TableSource>)> {
    vec![
        ("url_query_params", Arc::new(url_tables::UrlQueryParams)),
        ("url_path_segments", Arc::new(url_tables::UrlPathSegments)),
        ("time_buckets", Arc::new(time_buckets::TimeBuckets)),
    ]
}

/// Registers the table functions directly (linked in, no ABI): the native baseline.
pub fn register_natively(ctx: &SessionContext) {
    for (name, source) in table_functions() {
        ctx.register_udtf(name, Arc::new(SourceTableFunction::new(name, source)));
    }
}

//! Web-analytics functions for DataFusion, exported as a df-plugin bundle.
//!
//! The functions are ordinary DataFusion UDFs; [`register_natively`] registers the very same
//! objects into a session without the ABI, which is what tests and benchmarks compare against.

pub mod geo_mean;
pub mod query_params;
pub mod sessionize;
pub mod url;

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    bundle
        .scalar_udf(url::UrlHost::new())
        .aggregate_udf(geo_mean::GeoMean::new())
        .window_udf(sessionize::Sessionize::new())
        .table_function("url_query_params", Arc::new(query_params::UrlQueryParams));
    Ok(())
}

df_plugin_api::export_bundle!(exports);

/// Registers the bundle's functions directly (linked in, no ABI): the native baseline.
pub fn register_natively(ctx: &SessionContext) {
    ctx.register_udf(url::UrlHost::new().into());
    ctx.register_udaf(geo_mean::GeoMean::new().into());
    ctx.register_udwf(sessionize::Sessionize::new().into());
    ctx.register_udtf("url_query_params", Arc::new(query_params::UrlQueryParams));
}

//! Web-analytics table functions for DataFusion, exported as a df-plugin bundle
//! (`url_query_params`, `url_path_segments`, `time_buckets`; the code is `df-plugin-web`'s).
//!
//! A bundle of its own rather than part of the udfs bundle: a table function crosses as
//! datafusion-ffi's `FFI_TableFunction`, which links DataFusion's physical plans, expressions
//! and Arrow's compute kernels into the bundle (the floor of a bundle with a table function is
//! 74 MB stripped in this workspace). The udfs bundle, with functions only, stays near 23 MB
//! for those who need nothing else.

use datafusion::error::Result;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    for (name, function) in df_plugin_web::table_functions() {
        bundle.table_function(name, function);
    }
    Ok(())
}

df_plugin_api::export_bundle!(exports);

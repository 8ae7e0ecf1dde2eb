//! Web-analytics table functions for DataFusion, exported as a df-plugin bundle
//! (`url_query_params`, `url_path_segments`, `time_buckets`; the code is `df-plugin-web`'s).
//!
//! Each is a table source (plugin ABI 1.15): its tables cross as batch streams, with none of
//! DataFusion's plans, which would make the bundle 74 MB stripped before its first line of code
//! (see `df_plugin_api::toolkit::source`).

use datafusion::error::Result;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    for (name, source) in df_plugin_web::table_functions() {
        bundle.table_source(name, source);
    }
    Ok(())
}

df_plugin_api::export_bundle!(exports);

//! Hostile-bundle corpus: a bundle exporting url_host, the name the udfs bundle exports too.

use datafusion::error::Result;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    bundle.scalar_udf(corpus_common::Echo::new("url_host"));
    Ok(())
}

df_plugin_api::export_bundle!(exports);

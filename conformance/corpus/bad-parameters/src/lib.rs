//! Hostile-bundle corpus: a bundle whose manifest names two parameters for a one-argument function.

use datafusion::error::Result;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    bundle.scalar_udf(corpus_common::Echo::new("corpus_echo"));
    Ok(())
}

df_plugin_api::export_bundle!(exports);

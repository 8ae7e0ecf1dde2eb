//! Hostile-bundle corpus: a bundle whose ABI record claims plugin ABI 2.0.

use datafusion::error::Result;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    bundle.scalar_udf(corpus_common::Echo::new("corpus_echo"));
    Ok(())
}

df_plugin_api::export_bundle!(exports);

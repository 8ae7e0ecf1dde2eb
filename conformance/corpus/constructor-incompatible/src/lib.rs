//! Hostile-bundle corpus: an incompatible bundle (DataFusion 54.0.0) with a load-time constructor.

use datafusion::error::Result;
use df_plugin_api::toolkit::Bundle;

corpus_common::constructor!();

fn exports(bundle: &mut Bundle) -> Result<()> {
    bundle.scalar_udf(corpus_common::Echo::new("corpus_ctor_echo"));
    Ok(())
}

df_plugin_api::export_bundle!(exports);

//! Hostile-bundle corpus: a bundle exporting two scalar functions of the same name.

use datafusion::error::Result;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    bundle
        .scalar_udf(corpus_common::Echo::new("corpus_twice"))
        .scalar_udf(corpus_common::Echo::new("corpus_twice"));
    Ok(())
}

df_plugin_api::export_bundle!(exports);

//! Hostile-bundle corpus: a bundle whose exports do not match its manifest.

use datafusion::error::Result;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    bundle
        .scalar_udf(corpus_common::Echo::new("corpus_undeclared"))
        // A kind its manifest (and so its record's capability bits) never mentions.
        .window_udf(corpus_common::PanicWindow::default());
    Ok(())
}

df_plugin_api::export_bundle!(exports);

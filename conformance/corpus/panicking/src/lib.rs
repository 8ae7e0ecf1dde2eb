//! Hostile-bundle corpus: a bundle whose every object panics when used.

use std::sync::Arc;

use datafusion::error::Result;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    use corpus_common::*;
    bundle
        .scalar_udf(PanicScalar::default())
        .aggregate_udf(PanicAggregate::default())
        .window_udf(PanicWindow::default())
        .table_function("corpus_panic_call", Arc::new(PanicTableFunction))
        .table_provider("corpus_panic_scan", Arc::new(PanicTable(PanicAt::Scan)))
        .table_provider("corpus_panic_stream", Arc::new(PanicTable(PanicAt::Stream)));
    Ok(())
}

df_plugin_api::export_bundle!(exports);

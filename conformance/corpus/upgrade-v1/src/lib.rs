//! Test bundle: version 1.0.0 of the bundle `corpus-upgrade`. It exports
//! `corpus_upgrade_echo` like the other version, and `corpus_upgrade_v1`, which only this
//! version has, so a test can tell which file's code a session runs.

use datafusion::error::Result;
use df_plugin_api::toolkit::Bundle;

fn exports(bundle: &mut Bundle) -> Result<()> {
    bundle.scalar_udf(corpus_common::Echo::new("corpus_upgrade_echo"));
    bundle.scalar_udf(corpus_common::Echo::new("corpus_upgrade_v1"));
    Ok(())
}

df_plugin_api::export_bundle!(exports);

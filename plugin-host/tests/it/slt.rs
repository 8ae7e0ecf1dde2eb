//! The udfs and udtfs bundles' `.slt` files, run against the functions loaded from each bundle
//! and the same functions registered natively, with 1 and 4 target partitions. Both must match
//! the expected results in the files, so bundle and native results are identical.

use std::path::Path;
use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_conformance::slt;

use crate::util::{host, plugin_dir};

fn config(partitions: usize) -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(partitions)
}

#[tokio::test]
async fn udfs_slt_files_pass_natively_and_from_the_bundle() {
    slt_files_pass(
        "udfs",
        "df-plugin-udfs",
        df_plugin_web::functions::register_natively,
    )
    .await;
}

#[tokio::test]
async fn udtfs_slt_files_pass_natively_and_from_the_bundle() {
    slt_files_pass("udtfs", "df-plugin-udtfs", df_plugin_web::register_natively).await;
}

/// Runs the `.slt` files of `conformance/slt/<slt_dir>` against bundle crate `bundle` and
/// against `register_natively`.
async fn slt_files_pass(slt_dir: &str, bundle: &str, register_natively: fn(&SessionContext)) {
    let files = slt::files_in(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../conformance/slt")
            .join(slt_dir),
    )
    .unwrap();
    assert!(files.len() >= 3, "{files:?}");
    let dir = plugin_dir(&[bundle]);
    let plugins = host(dir.path())
        .strict(true)
        .build()
        .unwrap()
        .load()
        .unwrap();
    let mut failures = Vec::new();
    for partitions in [1, 4] {
        let native = Arc::new(SessionContext::new_with_config(config(partitions)));
        register_natively(&native);
        let bundle = Arc::new(SessionContext::new_with_config(config(partitions)));
        plugins.register_into(&bundle).unwrap();
        for file in &files {
            for (how, ctx) in [("native", &native), ("bundle", &bundle)] {
                if let Err(e) = slt::run_file(Arc::clone(ctx), file).await {
                    failures.push(format!("[{how}, target_partitions={partitions}] {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

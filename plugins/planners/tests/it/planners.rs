//! The planner `.slt` files, natively and from the bundle, at 1 and 4 target partitions; the
//! planners composed with the UDF and Delta bundles; the catalogue listing the planners.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_conformance::query::query_csv;
use df_plugin_conformance::{bundles, slt};
use df_plugin_host::{PluginHost, Plugins};
use tempfile::TempDir;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The named bundles (crate names) loaded strictly from a fresh plugin directory.
fn load(crates: &[&str]) -> (TempDir, Plugins) {
    let dir = bundles::plugin_dir(bundles::built(&workspace()), crates);
    let plugins = PluginHost::builder()
        .search_path(dir.path())
        .ignore_env(true)
        .cache_dir(None)
        .strict(true)
        .build()
        .unwrap()
        .load()
        .unwrap();
    (dir, plugins)
}

fn config(partitions: usize) -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(partitions)
}

fn slt_files(dir: &str) -> Vec<PathBuf> {
    slt::files_in(&workspace().join("conformance/slt").join(dir)).unwrap()
}

#[tokio::test]
async fn planner_slt_files_pass_natively_and_from_the_bundle() {
    let files = slt_files("planners");
    assert!(files.len() >= 3, "{files:?}");
    let (_dir, plugins) = load(&["df-plugin-planners"]);
    let mut failures = Vec::new();
    for partitions in [1, 4] {
        for file in &files {
            let native = Arc::new(SessionContext::new_with_config(config(partitions)));
            df_plugin_sql_planners::register_natively(&native);
            let bundle = Arc::new(SessionContext::new_with_config(config(partitions)));
            plugins.register_into(&bundle).unwrap();
            for (how, ctx) in [("native", native), ("bundle", bundle)] {
                if let Err(e) = slt::run_file(ctx, file).await {
                    failures.push(format!("[{how}, target_partitions={partitions}] {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// An empty Delta table `(id BIGINT, u BINARY)`: Delta has no fixed-size binary, so a UUID
/// column is stored as binary and read back with `CAST(u AS UUID)`.
fn empty_delta_table(dir: &Path) {
    let log = dir.join("_delta_log");
    std::fs::create_dir_all(&log).unwrap();
    let schema = r#"{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},{"name":"u","type":"binary","nullable":true,"metadata":{}}]}"#;
    let commit = [
        r#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}"#.to_owned(),
        serde_json::json!({"metaData": {
            "id": "5f1f3a47-6f0c-4f4e-9d1c-0a8c5a3b6d01",
            "format": {"provider": "parquet", "options": {}},
            "schemaString": schema,
            "partitionColumns": [],
            "configuration": {},
            "createdTime": 1_700_000_000_000i64
        }})
        .to_string(),
    ];
    std::fs::write(
        log.join("00000000000000000000.json"),
        commit.join("\n") + "\n",
    )
    .unwrap();
}

#[tokio::test]
async fn planners_compose_with_the_udf_and_delta_bundles() {
    let (_dir, plugins) = load(&["df-plugin-planners", "df-plugin-udfs", "df-plugin-delta"]);
    let tables = TempDir::new().unwrap();
    slt::copy_dir(
        &workspace().join("conformance/data/delta/simple_table"),
        &tables.path().join("simple_table"),
    )
    .unwrap();
    empty_delta_table(&tables.path().join("uuids"));
    let root = tables.path().display().to_string();
    let mut failures = Vec::new();
    for file in slt_files("planners-composition") {
        let ctx = Arc::new(SessionContext::new_with_config(config(4)));
        plugins.register_into(&ctx).unwrap();
        if let Err(e) = slt::run_file_with_vars(ctx, &file, &[("DELTA", &root)]).await {
            failures.push(e.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn the_catalogue_lists_the_planners() {
    let (_dir, plugins) = load(&["df-plugin-planners"]);
    let ctx = Arc::new(SessionContext::new());
    plugins.register_into(&ctx).unwrap();
    let csv = query_csv(
        &ctx,
        "SELECT kind, name FROM df_plugin_objects() WHERE kind LIKE '%planner' ORDER BY kind",
    )
    .await
    .unwrap();
    assert_eq!(
        csv,
        "kind,name\nexpr_planner,json_operators\nrelation_planner,tablesample\ntype_planner,sql_types\n"
    );
    let caps = query_csv(
        &ctx,
        "SELECT array_to_string(capabilities, ' ') AS c FROM df_plugins() WHERE name = 'planners'",
    )
    .await
    .unwrap();
    for cap in ["expr_planner", "relation_planner", "type_planner"] {
        assert!(caps.contains(cap), "{caps}");
    }
}

#[tokio::test]
async fn deregistering_the_bundle_takes_its_planners_out() {
    let (_dir, plugins) = load(&["df-plugin-planners"]);
    let ctx = Arc::new(SessionContext::new());
    plugins.register_into(&ctx).unwrap();
    let sql = "SELECT '{\"a\": 1}' ->> 'a' AS v";
    assert_eq!(query_csv(&ctx, sql).await.unwrap(), "v\n1\n");
    df_plugin_host::lifecycle::deregister(&ctx, "planners").unwrap();
    let err = query_csv(&ctx, sql).await.unwrap_err().to_string();
    assert!(err.contains("->> is not yet supported"), "{err}");
    let err = query_csv(&ctx, "SELECT CAST(x'00' AS UUID)")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("unsupported sql type"), "{err}");
    // TABLESAMPLE is ignored by DataFusion itself again.
    let all = query_csv(
        &ctx,
        "SELECT count(*) AS n FROM (VALUES (1), (2)) AS t(x) TABLESAMPLE (0 PERCENT)",
    )
    .await
    .unwrap();
    assert_eq!(all, "n\n2\n");
}

//! Shared test helpers: building the bundles the tests load, plugin directories, and session
//! snapshots.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_conformance::bundles;
use df_plugin_host::{PluginHost, PluginHostBuilder, Plugins};
use tempfile::TempDir;

/// Builds every bundle the tests load (the project's and the hostile corpus), once per test
/// run (see [`df_plugin_conformance::bundles::built`]).
pub fn bundles_built() -> &'static PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    bundles::built(workspace)
}

/// The built bundle file of a workspace crate, e.g. `corpus-panicking`.
pub fn bundle(crate_name: &str) -> PathBuf {
    bundles::bundle_file(bundles_built(), crate_name)
}

/// A fresh plugin directory holding (symlinks to) the named bundles.
pub fn plugin_dir(crates: &[&str]) -> TempDir {
    bundles::plugin_dir(bundles_built(), crates)
}

/// A fresh plugin directory holding copies of the named bundles.
pub fn copied_dir(crates: &[&str]) -> TempDir {
    bundles::copied_plugin_dir(bundles_built(), crates)
}

/// The file name of a bundle crate's library.
pub fn file_name(crate_name: &str) -> String {
    bundle(crate_name)
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

/// CSV text (with a header) as rows of fields; fields may hold newlines when quoted.
pub fn csv_rows(csv: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = csv.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// A session like the CLI's: information_schema on.
pub fn session() -> Arc<SessionContext> {
    Arc::new(SessionContext::new_with_config(
        SessionConfig::new().with_information_schema(true),
    ))
}

/// Everything registered in a session, to prove a refusal left it exactly as it was.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    scalar: Vec<String>,
    aggregate: Vec<String>,
    window: Vec<String>,
    table_functions: Vec<String>,
    tables: Vec<String>,
    factories: Vec<String>,
}

///
/// The host's own catalogue functions (`df_plugins`, `df_plugin_objects`) are left out: they
/// are registered by the first `register_into`, whatever its outcome, so that refusals can be
/// read from SQL.
pub fn snapshot(ctx: &SessionContext) -> Snapshot {
    let state = ctx.state();
    let sorted = |it: Vec<String>| {
        let mut v = it;
        v.sort();
        v
    };
    let tables = ctx
        .catalog("datafusion")
        .and_then(|c| c.schema("public"))
        .map(|s| s.table_names())
        .unwrap_or_default();
    Snapshot {
        scalar: sorted(state.scalar_functions().keys().cloned().collect()),
        aggregate: sorted(state.aggregate_functions().keys().cloned().collect()),
        window: sorted(state.window_functions().keys().cloned().collect()),
        table_functions: sorted(
            state
                .table_functions()
                .keys()
                .filter(|k| !["df_plugins", "df_plugin_objects"].contains(&k.as_str()))
                .cloned()
                .collect(),
        ),
        tables: sorted(tables),
        factories: sorted(state.table_factories().keys().cloned().collect()),
    }
}

pub use df_plugin_conformance::query::query_csv;

/// The CLI binary built for this test run.
pub fn cli() -> Command {
    bundles_built();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_df-plugin-host"));
    // Isolated from the machine's config and digest cache.
    cmd.env_remove("DF_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .env("DF_PLUGIN_HOST_CONFIG", "")
        .env("DF_PLUGIN_HOST_CACHE_DIR", test_cache_dir());
    cmd
}

/// Runs the CLI with `args` and returns its standard output; fails the test when it fails.
pub fn cli_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run df-plugin-host");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A digest cache directory private to this test process.
pub fn test_cache_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// A host that searches only `dir` (never `DF_PLUGIN_PATH`).
pub fn host(dir: &Path) -> PluginHostBuilder {
    PluginHost::builder()
        .search_path(dir)
        .ignore_env(true)
        .cache_dir(Some(test_cache_dir().to_path_buf()))
}

/// Loads the bundles in `dir` with the default settings.
pub fn load(dir: &Path) -> Plugins {
    host(dir).build().unwrap().load().unwrap()
}

/// Runs `df-plugin-host sql --plugin-dir <dir> <args>`.
pub fn sql(dir: &Path, args: &[&str]) -> std::process::Output {
    cli()
        .args(["sql", "--plugin-dir"])
        .arg(dir)
        .args(args)
        .output()
        .expect("run df-plugin-host")
}

/// The names of the objects the udfs bundle's manifest declares, in order.
pub fn udfs_manifest_names() -> Vec<String> {
    df_plugin_api::manifest::Manifest::parse(include_str!("../../../manifests/udfs.toml"))
        .expect("the udfs manifest parses")
        .objects
        .into_iter()
        .map(|o| o.name)
        .collect()
}

/// Loads `dir`, expects exactly one refused bundle and nothing loaded, registers into a fresh
/// session and checks that the session did not change and still answers a query.
pub async fn only_refusal(dir: &Path) -> df_plugin_host::Refusal {
    let plugins = load(dir);
    assert!(plugins.bundles().is_empty(), "{:?}", plugins.bundles());
    assert_eq!(plugins.refused().len(), 1, "{:?}", plugins.refused());
    let ctx = session();
    let before = snapshot(&ctx);
    plugins.register_into(&ctx).unwrap();
    assert_eq!(snapshot(&ctx), before);
    assert_eq!(
        query_csv(&ctx, "select 1 as one").await.unwrap(),
        "one\n1\n"
    );
    plugins.refused()[0].clone()
}

/// A fresh session with the named bundles loaded strictly (any refusal fails the test).
pub fn session_with(crates: &[&str]) -> (TempDir, Arc<SessionContext>) {
    let dir = plugin_dir(crates);
    let ctx = session();
    register(host(dir.path()).strict(true), &ctx);
    (dir, ctx)
}

/// Loads with `builder` and registers into `ctx`; fails the test on any error.
pub fn register(builder: PluginHostBuilder, ctx: &Arc<SessionContext>) {
    builder
        .build()
        .unwrap()
        .load()
        .unwrap()
        .register_into(ctx)
        .unwrap();
}

//! Shared test helpers: building the bundles the tests load, plugin directories, and session
//! snapshots.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_host::{PluginHost, PluginHostBuilder, Plugins};
use tempfile::TempDir;

/// The directory cargo puts this test's artifacts in (`target/debug`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds every bundle the tests load (the project's and the hostile corpus), once per test
/// run. It selects exactly what `cargo test --workspace` builds, so that cargo's feature
/// unification is the same and the only new work is linking the cdylibs.
pub fn bundles_built() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(workspace).args([
            "build",
            "--workspace",
            "--lib",
            "--bins",
            "--tests",
            "--examples",
        ]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let out = cmd
            .output()
            .expect("cannot run cargo to build the test bundles");
        assert!(
            out.status.success(),
            "building the test bundles failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// The built bundle file of a workspace crate, e.g. `corpus-panicking`.
pub fn bundle(crate_name: &str) -> PathBuf {
    bundles_built().join(format!(
        "{}{}.{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_EXTENSION
    ))
}

/// A fresh plugin directory holding (symlinks to) the named bundles.
pub fn plugin_dir(crates: &[&str]) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for c in crates {
        let src = bundle(c);
        assert!(src.exists(), "{} was not built", src.display());
        let name = src.file_name().expect("file name");
        std::os::unix::fs::symlink(&src, dir.path().join(name)).expect("symlink bundle");
    }
    dir
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
        table_functions: sorted(state.table_functions().keys().cloned().collect()),
        tables: sorted(tables),
        factories: sorted(state.table_factories().keys().cloned().collect()),
    }
}

/// Runs one statement and returns its result as CSV text.
pub async fn query_csv(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<String> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut out = Vec::new();
    {
        let mut w = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        for b in &batches {
            w.write(b)?;
        }
    }
    Ok(String::from_utf8(out).expect("csv is utf-8"))
}

/// The CLI binary built for this test run.
pub fn cli() -> Command {
    bundles_built();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_df-plugin-host"));
    cmd.env_remove("DF_PLUGIN_PATH").env_remove("RUST_LOG");
    cmd
}

/// A host that searches only `dir` (never `DF_PLUGIN_PATH`).
pub fn host(dir: &Path) -> PluginHostBuilder {
    PluginHost::builder().search_path(dir).ignore_env(true)
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

/// A fresh session with the named bundles loaded strictly (any refusal fails the test).
pub fn session_with(crates: &[&str]) -> (TempDir, Arc<SessionContext>) {
    let dir = plugin_dir(crates);
    let ctx = session();
    host(dir.path())
        .strict(true)
        .build()
        .unwrap()
        .load()
        .unwrap()
        .register_into(&ctx)
        .unwrap();
    (dir, ctx)
}

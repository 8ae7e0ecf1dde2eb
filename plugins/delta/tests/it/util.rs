//! Loading the built Delta bundle into sessions.

use std::path::Path;
use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_conformance::bundles;
use df_plugin_host::{PluginHost, Plugins};
use tempfile::TempDir;

/// The Delta bundle in a fresh plugin directory, built on first use.
pub fn plugin_dir() -> TempDir {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    bundles::plugin_dir(bundles::built(&workspace), &["df-plugin-delta"])
}

/// The Delta bundle, loaded strictly (any refusal fails the test).
pub fn load() -> (TempDir, Plugins) {
    let dir = plugin_dir();
    let plugins = PluginHost::builder()
        .search_path(dir.path())
        .ignore_env(true)
        .strict(true)
        .build()
        .unwrap()
        .load()
        .unwrap();
    (dir, plugins)
}

pub fn config(partitions: usize) -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(partitions)
}

/// A session with the Delta bundle registered.
pub fn session() -> (TempDir, Arc<SessionContext>) {
    let (dir, plugins) = load();
    let ctx = Arc::new(SessionContext::new_with_config(config(4)));
    plugins.register_into(&ctx).unwrap();
    (dir, ctx)
}

pub use df_plugin_conformance::query::query_csv;

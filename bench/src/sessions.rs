//! The sessions a run compares: the same configuration and the same tables, with the
//! project's objects registered natively in one and loaded from the bundles in the other.

use std::path::Path;
use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_conformance::{bundles, craft};
use df_plugin_host::{PluginHost, Plugins};
use tempfile::TempDir;

use crate::Config;

/// The bundles a run loads.
pub const BUNDLES: [&str; 4] = [
    "df-plugin-udfs",
    "df-plugin-udtfs",
    "df-plugin-delta",
    "df-plugin-planners",
];

/// The compared sessions, and what keeps the bundle side alive.
pub struct Sessions {
    /// The functions, providers and planners linked in (`register_natively`).
    pub native: Arc<SessionContext>,
    /// The same objects loaded from the bundles through the host.
    pub bundle: Arc<SessionContext>,
    /// Neither: planning overhead is measured against it.
    pub plain: Arc<SessionContext>,
    /// The loaded bundles (the libraries stay open while they live).
    pub plugins: Plugins,
    _plugin_dir: TempDir,
}

impl Sessions {
    /// Loads the bundles from `built` (strictly: a refused bundle fails the run), builds the
    /// sessions and registers the generated tables into each.
    pub fn new(built: &Path, config: &Config, runtime: &tokio::runtime::Runtime) -> Self {
        let plugin_dir = match config.abi_minor {
            None => bundles::plugin_dir(built, &BUNDLES),
            Some(minor) => as_abi_minor(built, minor),
        };
        // SAFETY: the bench binary declares no `#[global_allocator]`.
        let builder = unsafe { PluginHost::builder().system_allocator() };
        let plugins = builder
            .search_path(plugin_dir.path())
            .ignore_env(true)
            .cache_dir(None)
            .strict(true)
            .build()
            .expect("a plugin host")
            .load()
            .expect("every bundle loads");

        let session = || {
            let session_config = SessionConfig::new();
            SessionContext::new_with_config(match config.batch_size {
                Some(rows) => session_config.with_batch_size(rows),
                None => session_config,
            })
        };
        let native = Arc::new(session());
        register_natively(&native);
        let bundle = Arc::new(session());
        if config.a_a {
            register_natively(&bundle);
        } else {
            plugins
                .register_into(&bundle)
                .expect("every bundle registers");
        }
        let plain = Arc::new(session());

        let partitions = native.state().config().target_partitions();
        let events = Arc::new(crate::data::events(
            config.rows,
            config.batch_size.unwrap_or(crate::data::BATCH_ROWS),
            config.many_groups,
            config.window_partitions,
            partitions,
        ));
        let delta = crate::delta_table::ensure(&config.data_dir, config.delta_rows, runtime);
        let create_hits = format!(
            "CREATE EXTERNAL TABLE hits STORED AS DELTA LOCATION '{}'",
            delta.display()
        );
        for ctx in [&native, &bundle, &plain] {
            ctx.register_table("events", Arc::clone(&events) as _)
                .expect("register events");
        }
        for ctx in [&native, &bundle] {
            runtime
                .block_on(async { ctx.sql(&create_hits).await?.collect().await })
                .unwrap_or_else(|e| panic!("{create_hits}: {e}"));
        }
        Self {
            native,
            bundle,
            plain,
            plugins,
            _plugin_dir: plugin_dir,
        }
    }
}

/// The bundles' objects, linked in.
fn register_natively(ctx: &SessionContext) {
    df_plugin_web::functions::register_natively(ctx);
    df_plugin_web::register_natively(ctx);
    df_plugin_delta_tables::register_natively(ctx);
    df_plugin_sql_planners::register_natively(ctx);
}

/// The oldest minor a bundle can be stamped: the udtfs bundle's table functions are table
/// sources, which a host calls only in bundles of 1.15 or later, and the planners bundle's
/// expression planner is lean, which a host takes only from bundles of 1.16 or later
/// (stamped older, the host would refuse either for not exporting them).
fn oldest_minor(bundle: &str) -> u16 {
    match bundle {
        "df-plugin-udtfs" => df_plugin_api::ffi::table_source::TABLE_SOURCES_MINOR,
        "df-plugin-planners" => df_plugin_api::ffi::planner::lean::LEAN_PLANNERS_MINOR,
        _ => 0,
    }
}

/// A plugin directory of copies of the bundles in `built` whose records say plugin ABI
/// `1.minor`, or their [`oldest_minor`] if that is later (see [`Config::abi_minor`]).
fn as_abi_minor(built: &Path, minor: u16) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in BUNDLES {
        let src = bundles::bundle_file(built, name);
        let dst = dir.path().join(src.file_name().expect("file name"));
        let minor = minor.max(oldest_minor(name));
        craft::with_record(&src, &dst, |r| r.abi_minor = minor)
            .unwrap_or_else(|e| panic!("re-stamping {}: {e}", src.display()));
    }
    dir
}

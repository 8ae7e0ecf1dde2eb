//! Embedding df-plugin-host in a DataFusion application.
//!
//! ```text
//! cargo run -p df-plugin-host --example embed -- <plugin dir>
//! ```
//!
//! Loads every compatible bundle from the directory (refused ones are printed with the reason
//! and the fix), registers them into one session, runs a query that uses the udfs bundle and
//! shows the catalogue. With `DF_PLUGIN_TRUST=pinned` only bundles listed in the directory's
//! `df-plugins.lock` (`df-plugin-host lock <dir>`) are loaded.

use std::sync::Arc;

use datafusion::prelude::SessionContext;
use df_plugin_host::{PluginHost, TrustLevel};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plugin_dir = std::env::args().nth(1).unwrap_or_else(|| "plugins".into());

    // One Arc<SessionContext> for as long as the plugins are used: the bundles' table
    // providers keep a weak reference to it.
    let ctx = Arc::new(SessionContext::new());

    // The embedding API's default trust level is `any` (file checks only); an application
    // that ships its plugins pins or signs them.
    let trust = match std::env::var("DF_PLUGIN_TRUST") {
        Ok(level) => TrustLevel::parse(&level)?,
        Err(_) => TrustLevel::Any,
    };

    // Steps 1–8: discover, verify and load; nothing is registered yet.
    let plugins = PluginHost::builder()
        .search_path(&plugin_dir)
        .trust_level(trust)
        .build()?
        .load()?;
    for refusal in plugins.refused() {
        eprintln!("{refusal}");
    }

    // Step 9: register every loaded bundle, each whole or not at all.
    let registration = plugins.register_into(&ctx)?;
    for bundle in &registration.registered {
        println!(
            "registered {} {} ({} objects)",
            bundle.name,
            bundle.version,
            bundle.objects.len()
        );
    }

    ctx.sql("SELECT url_host('https://www.Example.com/docs') AS host")
        .await?
        .show()
        .await?;
    // Every bundle considered, with its state, trust status and load time.
    ctx.sql("SELECT name, version, state, trust, load_time_us FROM df_plugins()")
        .await?
        .show()
        .await?;
    Ok(())
}

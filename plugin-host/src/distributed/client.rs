//! A client session whose queries run on a Ballista cluster (`df-plugin-host sql --ballista`).

use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::cluster_error;
use super::codec::PluginCodec;
use super::node::ClusterNode;
use crate::error::HostError;
use crate::register::PluginRegistry;

/// A session that sends its queries to the scheduler at `url` (`df://host:port`) with the
/// plugin codec installed. Register bundles into it as into any session
/// ([`crate::Plugins::register_into`]); they plan on the client and resolve on the cluster.
pub async fn remote_session(
    url: &str,
    config: SessionConfig,
) -> Result<Arc<SessionContext>, HostError> {
    // The codec looks owners up in the session's registry, which must exist before the
    // session does: Ballista copies the config when it upgrades the session.
    let registry = Arc::new(PluginRegistry::default());
    let codec = PluginCodec::new(ClusterNode::new(Arc::clone(&registry), "the client"));
    let mut config = config;
    // Each partition of a scan runs as its own task; see `replay::task_session`.
    config
        .options_mut()
        .execution
        .enable_file_stream_work_stealing = false;
    let config = config
        .with_extension(registry)
        .with_ballista_logical_extension_codec(codec.clone())
        .with_ballista_physical_extension_codec(codec);
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .build();
    let ctx = SessionContext::remote_with_state(url, state)
        .await
        .map_err(|e| cluster_error(&format!("the client of {url}"), e))?;
    Ok(Arc::new(ctx))
}

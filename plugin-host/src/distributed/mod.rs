//! The same bundles on an Apache DataFusion Ballista cluster.
//!
//! Every node loads the same plugin directory through the same pipeline (discovery, trust,
//! compatibility, handshake, truthfulness) and registers it into a session of its own:
//!
//! - the **client** ([`client::remote_session`]) plans SQL as usual, with the bundles'
//!   functions, table functions, factories and planners, and sends the logical plan;
//! - the **scheduler** ([`scheduler::run`]) plans it physically with its own copy of the
//!   bundles, cuts it into stages and sends each task to an executor;
//! - each **executor** ([`executor::run`]) resolves plugin functions from its own copy and
//!   replays plugin scans ([`replay::ReplayExec`]).
//!
//! What crosses the network is never a bundle's pointer: [`codec::PluginCodec`] wraps
//! Ballista's codecs and writes each plugin object as an envelope naming its bundle and
//! version, so a node without the bundle, or with another version of it, fails the query
//! with a message naming the bundle and the node. Tables travel as their [`origin`] (how the
//! bundle made them), and each executor task plans the same scan again and runs only its
//! own partitions ([`slice`]). Writes into a bundle's table stay on one machine.

pub mod client;
pub mod codec;
pub mod executor;
pub mod node;
pub mod origin;
pub mod replay;
pub mod scheduler;
pub mod slice;

use std::sync::Arc;

use datafusion::prelude::SessionContext;

use crate::error::HostError;
use crate::host::PluginHost;
use crate::register::PluginRegistry;
use node::ClusterNode;

/// Loads `host`'s bundles into a fresh session for a scheduler or executor. Refused bundles
/// are logged, not fatal: a query that needs one fails later with the bundle's name.
fn load_node(
    host: &PluginHost,
    label: &str,
) -> Result<(Arc<SessionContext>, Arc<ClusterNode>), HostError> {
    let ctx = Arc::new(SessionContext::new());
    let plugins = host.load()?;
    for r in plugins.refused() {
        tracing::warn!("{label}: {r}");
    }
    let registration = plugins.register_into(&ctx)?;
    for r in &registration.refused {
        tracing::warn!("{label}: {r}");
    }
    for b in &registration.registered {
        tracing::info!("{label}: bundle '{}' {} registered", b.name, b.version);
    }
    let node = ClusterNode::new(PluginRegistry::of(&ctx), label);
    Ok((ctx, node))
}

fn cluster_error(node: &str, e: impl std::fmt::Display) -> HostError {
    HostError::Cluster {
        node: node.to_owned(),
        message: e.to_string(),
    }
}

/// Why a write into a bundle's table does not run on a cluster.
fn writes_stay_local(table: impl std::fmt::Display) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::NotImplemented(format!(
        "writing into {table} is not distributed: a commit is one writer's step. Run the \
         INSERT in one process (df-plugin-host sql without --ballista), then query the table \
         on the cluster"
    ))
}

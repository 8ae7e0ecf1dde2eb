//! A Ballista scheduler that plans with the bundles (`df-plugin-host scheduler`).

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::optimizer::ballista_default_optimizer_rules;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use ballista_scheduler::scheduler_server::SessionBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;

use super::codec::PluginCodec;
use super::{cluster_error, load_node};
use crate::error::HostError;
use crate::host::PluginHost;
use crate::register::PluginRegistry;

/// Where the scheduler listens.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    pub bind_host: String,
    pub port: u16,
    /// The host name executors and clients reach it by (default: `bind_host`).
    pub external_host: Option<String>,
}

/// Loads the bundles, then serves until the process is stopped.
///
/// Tasks are pulled by executors (`PullStaged`): an executor that cannot decode a task —
/// it lacks a bundle, or has another version — then reports the task failed with its
/// reason, which reaches the client. Pushed tasks that fail to decode fail the job with
/// Ballista's generic "task could not be prepared or was rejected by executor".
pub async fn run(host: &PluginHost, opts: SchedulerOptions) -> Result<(), HostError> {
    let label = format!("the scheduler at {}:{}", opts.bind_host, opts.port);
    let (ctx, node) = load_node(host, &label)?;
    let codec = PluginCodec::new(node);
    let base = ctx.state();
    let registry = PluginRegistry::of(&ctx);
    // Each client session is planned with the client's settings and this node's bundles.
    let session_builder: SessionBuilder = Arc::new(move |config: SessionConfig| {
        let config = config.with_extension(Arc::clone(&registry));
        Ok(SessionStateBuilder::new_from_existing(base.clone())
            .with_config(config)
            .with_optimizer_rules(ballista_default_optimizer_rules())
            .build())
    });
    let addr: SocketAddr = format!("{}:{}", opts.bind_host, opts.port)
        .parse()
        .map_err(|e| cluster_error(&label, format!("bad bind address: {e}")))?;
    let mut config = SchedulerConfig {
        bind_host: opts.bind_host.clone(),
        bind_port: opts.port,
        external_host: opts.external_host.unwrap_or(opts.bind_host),
        scheduling_policy: TaskSchedulingPolicy::PullStaged,
        ..SchedulerConfig::default()
    };
    config.override_session_builder = Some(session_builder);
    config.override_logical_codec = Some(codec.clone());
    config.override_physical_codec = Some(codec);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| cluster_error(&label, e))?;
    tracing::info!("{label}: listening");
    let served = start_server(cluster, addr, Arc::new(config)).await;
    // The bundles' objects live in `ctx`; keep it until the server stops.
    drop(ctx);
    served.map_err(|e| cluster_error(&label, e))
}

//! A Ballista executor that runs plugin functions and scans (`df-plugin-host executor`).

use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};

use super::codec::PluginCodec;
use super::{cluster_error, load_node};
use crate::error::HostError;
use crate::host::PluginHost;

/// Where the executor listens and which scheduler it joins.
#[derive(Clone, Debug)]
pub struct ExecutorOptions {
    pub bind_host: String,
    /// The Arrow Flight port (shuffle data).
    pub port: u16,
    /// The gRPC port (tasks).
    pub grpc_port: u16,
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// Where shuffle files go (default: a temporary directory).
    pub work_dir: Option<PathBuf>,
    /// Task slots (0: one per core).
    pub vcores: usize,
    /// The host name the scheduler and other executors reach it by (default: `bind_host`).
    pub external_host: Option<String>,
}

/// Loads the bundles, joins the scheduler, then runs tasks until the process is stopped.
pub async fn run(host: &PluginHost, opts: ExecutorOptions) -> Result<(), HostError> {
    let defaults = ExecutorProcessConfig::default();
    let executor_id = defaults.executor_id.clone();
    let advertised = opts.external_host.clone().unwrap_or(opts.bind_host.clone());
    let label = format!("executor {executor_id} at {advertised}:{}", opts.port);
    let (ctx, node) = load_node(host, &label)?;
    let codec = PluginCodec::new(node);
    // Tasks look functions up here by name: the built-ins and every bundle's.
    let state = ctx.state();
    let functions = BallistaFunctionRegistry {
        scalar_functions: state.scalar_functions().clone(),
        aggregate_functions: state.aggregate_functions().clone(),
        window_functions: state.window_functions().clone(),
        ..BallistaFunctionRegistry::default()
    };
    let config = ExecutorProcessConfig {
        executor_id,
        bind_host: opts.bind_host,
        external_host: Some(advertised),
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host: opts.scheduler_host,
        scheduler_port: opts.scheduler_port,
        work_dir: opts.work_dir.map(|d| d.display().to_string()),
        vcores: opts.vcores,
        // As the scheduler (see `scheduler::run`).
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        override_function_registry: Some(Arc::new(functions)),
        override_logical_codec: Some(codec.clone()),
        override_physical_codec: Some(codec),
        ..defaults
    };
    tracing::info!("{label}: joining the scheduler");
    let served = start_executor_process(Arc::new(config)).await;
    drop(ctx);
    served.map_err(|e| cluster_error(&label, e))
}

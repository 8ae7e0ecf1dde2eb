//! One process of a cluster — the client, the scheduler or an executor — with its bundles
//! registered: what resolves the plugin objects a plan names when it arrives there.

use std::sync::Arc;

use datafusion::catalog::{Session, TableFunctionArgs, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use df_plugin_api::record::Capability;

use super::origin::{BundleRef, Origin, Source};
use crate::register::{Live, PluginRegistry};

/// A node's registered bundles and the name its errors give it ("executor 3f2a at
/// 127.0.0.1:50051").
#[derive(Debug)]
pub struct ClusterNode {
    registry: Arc<PluginRegistry>,
    label: String,
}

impl ClusterNode {
    pub fn new(registry: Arc<PluginRegistry>, label: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            registry,
            label: label.into(),
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn registry(&self) -> &Arc<PluginRegistry> {
        &self.registry
    }

    /// The owner of a function registered on this node, if a bundle registered it.
    pub fn owner(&self, kind: Capability, name: &str) -> Option<BundleRef> {
        self.registry
            .owner(kind, name)
            .map(|(name, version)| BundleRef { name, version })
    }

    /// This node's copy of `wanted`, or an error that names the bundle, the versions and this
    /// node. `needed_for` says what asked ("the scalar function 'time_bucket'").
    pub(crate) fn bundle(&self, wanted: &BundleRef, needed_for: &str) -> Result<Live> {
        let label = &self.label;
        let BundleRef { name, version } = wanted;
        match self.registry.live_by_name(name) {
            None => Err(DataFusionError::Execution(format!(
                "{label} has no bundle '{name}', which {needed_for} comes from (the query was \
                 planned with {name} {version}): put the same bundle file in the plugin \
                 directory of {label} and restart it"
            ))),
            Some(live) if &live.entry.version != version => {
                Err(DataFusionError::Execution(format!(
                    "{label} has bundle '{name}' {}, but the query was planned with {name} \
                     {version} ({needed_for} comes from it): run the same version of the \
                     bundle on the client, the scheduler and every executor",
                    live.entry.version
                )))
            }
            Some(live) => Ok(live),
        }
    }

    pub(crate) fn scalar(&self, bundle: &BundleRef, name: &str) -> Result<Arc<ScalarUDF>> {
        let live = self.bundle(bundle, &format!("the scalar function '{name}'"))?;
        let found = live.objects.scalar_udfs.iter().find(|f| f.name() == name);
        found
            .map(|f| Arc::new(f.clone()))
            .ok_or_else(|| self.not_exported(bundle, "scalar function", name))
    }

    pub(crate) fn aggregate(&self, bundle: &BundleRef, name: &str) -> Result<Arc<AggregateUDF>> {
        let live = self.bundle(bundle, &format!("the aggregate function '{name}'"))?;
        let found = live
            .objects
            .aggregate_udfs
            .iter()
            .find(|f| f.name() == name);
        found
            .map(|f| Arc::new(f.clone()))
            .ok_or_else(|| self.not_exported(bundle, "aggregate function", name))
    }

    pub(crate) fn window(&self, bundle: &BundleRef, name: &str) -> Result<Arc<WindowUDF>> {
        let live = self.bundle(bundle, &format!("the window function '{name}'"))?;
        let found = live.objects.window_udfs.iter().find(|f| f.name() == name);
        found
            .map(|f| Arc::new(f.clone()))
            .ok_or_else(|| self.not_exported(bundle, "window function", name))
    }

    /// Makes the table `origin` describes again, with this node's copy of its bundle.
    pub(crate) async fn table(
        &self,
        origin: &Origin,
        session: &dyn Session,
    ) -> Result<Arc<dyn TableProvider>> {
        let (kind, name) = origin.source.object();
        let live = self.bundle(&origin.bundle, &format!("the {kind} '{name}'"))?;
        let objects = &live.objects;
        let missing = || self.not_exported(&origin.bundle, kind, name);
        match &origin.source {
            Source::Table { name } => objects
                .table_providers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| Arc::clone(p))
                .ok_or_else(missing),
            Source::TableFunction { name, args } => {
                let (_, f) = objects
                    .table_functions
                    .iter()
                    .find(|(n, _)| n == name)
                    .ok_or_else(missing)?;
                f.call_with_args(TableFunctionArgs::new(args, session))
            }
            Source::Factory { name, cmd } => {
                let (_, f) = objects
                    .table_provider_factories
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .ok_or_else(missing)?;
                f.create(session, cmd).await
            }
        }
    }

    fn not_exported(&self, bundle: &BundleRef, kind: &str, name: &str) -> DataFusionError {
        DataFusionError::Execution(format!(
            "bundle {bundle} on {} exports no {kind} '{name}': run the same bundle file on \
             every node",
            self.label
        ))
    }
}

//! Keeping the host's runtime around the host's own plans when a bundle executes them.
//!
//! A bundle's plan tree is visible to the host's physical optimizer, which rewrites its
//! children: it inserts repartitions and coalesces between a bundle's nodes, and an `INSERT`'s
//! sink (a bundle node) gets the optimized host input as its child. datafusion-ffi hands such
//! new children to the bundle without a runtime (`ForeignExecutionPlan::replace_children`), so
//! when the bundle executes them on its own threads, host code that spawns tasks finds no
//! reactor, panics inside an `extern "C"` call and aborts the process.
//!
//! The host therefore wraps every foreign provider ([`HostTableProvider`]) so that each plan it
//! returns is a [`BundlePlan`]:
//!
//! - a scan is a leaf to the host: the bundle optimizes its subtree (the toolkit runs its own
//!   physical optimizer, when the host's reaches the scan: see [`super::optimize`]), and host
//!   rewrites inside it only add boundary crossings per batch or break nodes that inspect
//!   their children (deltalake's deletion-vector scan refuses a host `CooperativeExec` under
//!   it);
//! - an `INSERT`'s sink keeps its child, the host's input, for the host to optimize; every
//!   host-side child it is given is wrapped in [`InHostRuntime`], which enters the runtime the
//!   query was planned in for `execute` and every poll, and executes with the host session's
//!   runtime environment (its object stores) instead of the default one datafusion-ffi
//!   builds.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProviderFactory};
use datafusion::common::Statistics;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{CreateExternalTable, Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties,
};
use datafusion_ffi::execution_plan::{FFI_ExecutionPlan, ForeignExecutionPlan};
use datafusion_ffi::table_provider::{FFI_TableProvider, ForeignTableProvider};
use df_plugin_api::ffi::plan_runner::{ForeignPlanRunner, ForeignScan, LaterOptimization};
use futures::Stream;
use tokio::runtime::Handle;

use crate::distributed::origin::{BundleRef, Origin, ScanReplay, Source};
use crate::session::{WithTaskCtx, with_task_ctx};

/// A foreign table provider whose plans keep the host runtime around host-side children,
/// and which remembers how it was made ([`Origin`]) so a cluster node can make it again.
#[derive(Debug)]
pub struct HostTableProvider {
    inner: Arc<dyn TableProvider>,
    origin: Arc<Origin>,
    /// The bundle's lean path: it executes every scan of this table (ABI 1.3), plans the
    /// scans whose filters call no function (ABI 1.4) and says which such filters the table
    /// takes (ABI 1.8) and sends its schema only when it changed (ABI 1.11).
    runner: Option<Arc<ForeignPlanRunner>>,
    /// The schema the runner sent last, with its fingerprint: while the table's schema stays
    /// the same, a query's `schema()` gets it back without it crossing again.
    known_schema: Mutex<Option<(u64, SchemaRef)>>,
}

impl HostTableProvider {
    pub fn wrap(
        inner: Arc<dyn TableProvider>,
        origin: Origin,
        runner: Option<Arc<ForeignPlanRunner>>,
    ) -> Arc<dyn TableProvider> {
        Arc::new(Self {
            inner,
            origin: Arc::new(origin),
            runner,
            known_schema: Mutex::default(),
        })
    }

    /// How the bundle made this table.
    pub fn origin(&self) -> &Arc<Origin> {
        &self.origin
    }

    /// The bundle's runner and the bundle's struct of this table, for the runner's lean paths.
    fn lean(&self) -> Option<(&ForeignPlanRunner, &FFI_TableProvider)> {
        let provider = self.inner.downcast_ref::<ForeignTableProvider>()?;
        Some((self.runner.as_deref()?, &provider.0))
    }
}

#[async_trait]
impl TableProvider for HostTableProvider {
    fn schema(&self) -> SchemaRef {
        if let Some((runner, provider)) = self.lean() {
            // Not held across the call: queries planned at once each ask the bundle.
            let known = self
                .known_schema
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            // A runner that cannot answer, or answers wrong, leaves it to datafusion-ffi.
            if let Ok(Some(answer)) = runner.schema(provider, known.as_ref()) {
                let schema = Arc::clone(&answer.1);
                // Written only when the schema changed: most calls leave the lock's line alone.
                if known.is_none_or(|(fingerprint, _)| fingerprint != answer.0) {
                    *self.known_schema.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer);
                }
                return schema;
            }
        }
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let later = super::optimize::OptimizeBundleScans::in_session(state);
        let lean = match self.lean() {
            Some((runner, provider)) => {
                runner
                    .scan(provider, state, projection, filters, limit, later)
                    .await?
            }
            None => None,
        };
        let (plan, later) = match lean {
            Some(ForeignScan { plan, later }) => {
                (<Arc<dyn ExecutionPlan>>::try_from(&plan)?, later)
            }
            None => match super::scan_session::for_exprs(state, filters) {
                Some(slim) => {
                    let scan = self.inner.scan(&slim, projection, filters, limit);
                    (WithTaskCtx::new(slim.task_ctx(), scan).await?, None)
                }
                None => (
                    self.inner.scan(state, projection, filters, limit).await?,
                    None,
                ),
            },
        };
        let replay = ScanReplay {
            origin: Arc::clone(&self.origin),
            projection: projection.cloned(),
            filters: filters.to_vec(),
            limit,
        };
        Ok(BundlePlan::leaf(plan, replay, self.runner.clone(), later))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The bundle's runner answers filters that call no function (ABI 1.8) without the
        // configuration crossing.
        if let Some((runner, provider)) = self.lean()
            && let Some(answers) = runner.supports_filters_pushdown(provider, filters)?
        {
            return Ok(answers);
        }
        // datafusion-ffi decodes the filters in the bundle against the slot's task context,
        // which it converts whole, every function of the session, on every call: 3.4M of the
        // 6.5M instructions a partition-filtered Delta query executed more than natively
        // (callgrind; 3.0M more with this). The filters need only the functions they call.
        let slim = super::scan_session::for_filters(filters);
        with_task_ctx(&slim, || self.inner.supports_filters_pushdown(filters))
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.insert_into(state, input, insert_op).await?;
        let host = Handle::try_current()
            .ok()
            .map(|handle| (handle, Arc::clone(state.runtime_env())));
        Ok(BundlePlan::wrap(plan, host))
    }
}

/// A foreign factory whose tables are [`HostTableProvider`]s that remember the `CREATE`.
#[derive(Debug)]
pub struct HostTableProviderFactory {
    pub inner: Arc<dyn TableProviderFactory>,
    pub bundle: BundleRef,
    pub name: String,
    pub runner: Option<Arc<ForeignPlanRunner>>,
}

#[async_trait]
impl TableProviderFactory for HostTableProviderFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let origin = Origin {
            bundle: self.bundle.clone(),
            source: Source::Factory {
                name: self.name.clone(),
                cmd: Box::new(cmd.clone()),
            },
        };
        Ok(HostTableProvider::wrap(
            self.inner.create(state, cmd).await?,
            origin,
            self.runner.clone(),
        ))
    }
}

/// The host runtime and runtime environment a query was planned with.
type HostRuntime = (Handle, Arc<RuntimeEnv>);

/// A plan node from a bundle: a leaf, or a node whose foreign children are `BundlePlan`s too
/// and whose host-side children are wrapped in [`InHostRuntime`] before they cross.
#[derive(Debug)]
pub struct BundlePlan {
    inner: Arc<dyn ExecutionPlan>,
    children: Vec<Arc<dyn ExecutionPlan>>,
    host: Option<HostRuntime>,
    /// For a scan: how to plan the same scan elsewhere (see [`crate::distributed`]).
    replay: Option<ScanReplay>,
    /// For a scan of an ABI 1.3 bundle: its runner, and the bundle's own struct of `inner`
    /// (taken once), which the runner executes without datafusion-ffi's task context and
    /// per-batch schema.
    lean: Option<(Arc<ForeignPlanRunner>, FFI_ExecutionPlan)>,
    /// For a scan the bundle has not optimized yet: how to, when the host's physical
    /// optimizer reaches it ([`Self::optimized`]).
    later: Option<LaterOptimization>,
}

impl BundlePlan {
    /// A bundle subtree the host treats as one node, executed through `runner` when the
    /// bundle has one, and not optimized yet when `later` says how to.
    pub fn leaf(
        inner: Arc<dyn ExecutionPlan>,
        replay: ScanReplay,
        runner: Option<Arc<ForeignPlanRunner>>,
        later: Option<LaterOptimization>,
    ) -> Arc<dyn ExecutionPlan> {
        // `new` on a foreign plan hands back (a clone of) the bundle's struct it wraps.
        let lean = runner
            .filter(|_| inner.is::<ForeignExecutionPlan>())
            .map(|runner| (runner, FFI_ExecutionPlan::new(Arc::clone(&inner), None)));
        Arc::new(Self {
            inner,
            children: Vec::new(),
            host: None,
            replay: Some(replay),
            lean,
            later,
        })
    }
    /// A bundle node whose children the host may optimize.
    pub fn wrap(
        inner: Arc<dyn ExecutionPlan>,
        host: Option<HostRuntime>,
    ) -> Arc<dyn ExecutionPlan> {
        let children = inner
            .children()
            .into_iter()
            .map(|child| {
                if child.is::<ForeignExecutionPlan>() {
                    Self::wrap(Arc::clone(child), host.clone())
                } else {
                    Arc::clone(child)
                }
            })
            .collect();
        Arc::new(Self {
            inner,
            children,
            host,
            replay: None,
            lean: None,
            later: None,
        })
    }

    /// This scan after the bundle's physical optimizer, when the bundle left that for the
    /// host's (`None` otherwise, or when the bundle cannot optimize it).
    pub fn optimized(&self) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        // A scan left for later came from the runner, so it has its lean path.
        let (Some(later), Some(replay), Some((runner, plan))) =
            (&self.later, &self.replay, &self.lean)
        else {
            return Ok(None);
        };
        let Some(optimized) = later.optimize(plan)? else {
            return Ok(None);
        };
        let optimized = <Arc<dyn ExecutionPlan>>::try_from(&optimized)?;
        let leaf = Self::leaf(optimized, replay.clone(), Some(Arc::clone(runner)), None);
        Ok(Some(leaf))
    }

    fn is_leaf(&self) -> bool {
        self.children.is_empty()
    }

    /// How to plan this scan on another node (`None` for a node that is not a scan).
    pub fn replay(&self) -> Option<&ScanReplay> {
        self.replay.as_ref()
    }

    /// Whether this is a bundle subtree the host treats as one node (a scan).
    pub fn is_scan(&self) -> bool {
        self.is_leaf()
    }

    /// What crosses to the bundle in place of `child`.
    fn crossing(&self, child: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        if let Some(bundle) = child.downcast_ref::<BundlePlan>() {
            return Arc::clone(&bundle.inner);
        }
        if child.is::<ForeignExecutionPlan>() || child.is::<InHostRuntime>() {
            return child;
        }
        match &self.host {
            Some((handle, env)) => Arc::new(InHostRuntime {
                inner: child,
                handle: handle.clone(),
                env: Arc::clone(env),
            }),
            None => child,
        }
    }
}

impl DisplayAs for BundlePlan {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for BundlePlan {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.children.iter().collect()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.is_leaf() {
            return Ok(self);
        }
        let crossing = children.into_iter().map(|c| self.crossing(c)).collect();
        let plan = Arc::clone(&self.inner).replace_children(crossing, options)?;
        Ok(Self::wrap(plan, self.host.clone()))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if let Some((runner, plan)) = &self.lean {
            return runner.execute(plan, partition, &context);
        }
        if self.is_leaf() {
            // A scan's stream looks up no function (see `scan_session`).
            return self
                .inner
                .execute(partition, super::scan_session::for_execute(&context));
        }
        self.inner.execute(partition, context)
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        if self.is_leaf() {
            // The host sees no children: walk the bundle's subtree here.
            return StatisticsContext::new().compute(self.inner.as_ref(), args);
        }
        self.inner.statistics_from_inputs(input_stats, args)
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        if self.is_leaf() {
            return Vec::new();
        }
        self.inner.child_stats_requests(partition)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }
}

/// A host plan executed by a bundle: `execute` and every poll run inside the host runtime,
/// with the host session's runtime environment.
#[derive(Debug)]
pub struct InHostRuntime {
    inner: Arc<dyn ExecutionPlan>,
    handle: Handle,
    env: Arc<RuntimeEnv>,
}

impl DisplayAs for InHostRuntime {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for InHostRuntime {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inner.children()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let inner = Arc::clone(&self.inner).replace_children(children, options)?;
        Ok(Arc::new(Self {
            inner,
            handle: self.handle.clone(),
            env: Arc::clone(&self.env),
        }))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let _entered = self.handle.enter();
        let context = Arc::new(TaskContext::new(
            context.task_id(),
            context.session_id(),
            context.session_config().clone(),
            context.scalar_functions().clone(),
            context.higher_order_functions().clone(),
            context.aggregate_functions().clone(),
            context.window_functions().clone(),
            Arc::clone(&self.env),
        ));
        let inner = self.inner.execute(partition, context)?;
        Ok(Box::pin(InHostRuntimeStream {
            inner,
            handle: self.handle.clone(),
        }))
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.inner.statistics_from_inputs(input_stats, args)
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        self.inner.child_stats_requests(partition)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }
}

struct InHostRuntimeStream {
    inner: SendableRecordBatchStream,
    handle: Handle,
}

impl Stream for InHostRuntimeStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let _entered = self.handle.enter();
        self.inner.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for InHostRuntimeStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

//! Making a bundle's table, and a scan of it, again on the node a plan arrived at.
//!
//! [`ReplayedTable`] is a plugin table on the scheduler: it asks the scheduler's copy of the
//! bundle for the same table the first time the scheduler plans a scan of it.
//! [`ReplayExec`] is a plugin scan on an executor: each task asks the executor's copy of the
//! bundle for the same table, plans the same scan (projection, filters, limit) once with the
//! task's session settings, and runs only its own partitions. A bundle's scan splits its files across
//! partitions (a Delta table: one file group per partition), so the tasks of one scan read
//! disjoint files. The scheduler's partition count travels with the scan; a replay that comes
//! out different (the table changed, or the executor's bundle plans differently) fails
//! instead of reading the wrong files.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
};
use futures::TryStreamExt;
use tokio::sync::OnceCell;

use super::node::ClusterNode;
use super::origin::{Origin, ScanWire};

/// A plugin table decoded on the scheduler; made by the bundle at the first scan.
pub struct ReplayedTable {
    node: Arc<ClusterNode>,
    origin: Origin,
    schema: SchemaRef,
    table: OnceCell<Arc<dyn TableProvider>>,
}

impl fmt::Debug for ReplayedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayedTable")
            .field("origin", &self.origin)
            .finish()
    }
}

impl ReplayedTable {
    pub fn new(node: Arc<ClusterNode>, origin: Origin, schema: SchemaRef) -> Self {
        Self {
            node,
            origin,
            schema,
            table: OnceCell::new(),
        }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }
}

#[async_trait]
impl TableProvider for ReplayedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The client already pushed what the bundle takes; anything new is re-checked above.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table = self
            .table
            .get_or_try_init(|| self.node.table(&self.origin, state))
            .await?;
        // Ballista hands each task a slice of a stage's partitions; see `slice`.
        super::slice::sliced(table.scan(state, projection, filters, limit).await?)
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        _input: Arc<dyn ExecutionPlan>,
        _insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (kind, name) = self.origin.source.object();
        Err(super::writes_stay_local(format_args!(
            "a table of bundle {} (the {kind} '{name}')",
            self.origin.bundle
        )))
    }
}

/// A plugin scan decoded on an executor; each task replays it and runs its own partitions.
pub struct ReplayExec {
    replay: Arc<Replay>,
    properties: Arc<PlanProperties>,
}

/// What a task replays, and the scan it planned: one plan per decoded task plan, however many
/// partitions the task runs (each plan of a Delta scan reads the table's log).
struct Replay {
    node: Arc<ClusterNode>,
    origin: Origin,
    filters: Vec<Expr>,
    wire: ScanWire,
    planned: OnceCell<Arc<dyn ExecutionPlan>>,
}

impl fmt::Debug for ReplayExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayExec")
            .field("origin", &self.replay.origin)
            .field("partitions", &self.replay.wire.partitions)
            .finish()
    }
}

impl ReplayExec {
    pub fn new(
        node: Arc<ClusterNode>,
        origin: Origin,
        filters: Vec<Expr>,
        wire: ScanWire,
    ) -> Result<Self> {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(wire.schema()?),
            Partitioning::UnknownPartitioning(wire.partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self {
            replay: Arc::new(Replay {
                node,
                origin,
                filters,
                wire,
                planned: OnceCell::new(),
            }),
            properties: Arc::new(properties),
        })
    }

    pub fn wire(&self) -> &ScanWire {
        &self.replay.wire
    }
}

impl Replay {
    /// Plans the scan again with this node's bundle (once) and runs `partition` of it.
    async fn run(
        self: Arc<Self>,
        schema: SchemaRef,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let plan = self
            .planned
            .get_or_try_init(|| self.plan(&schema, &context))
            .await?;
        let (kind, name) = self.origin.source.object();
        tracing::debug!(
            node = self.node.label(),
            partition,
            partitions = self.wire.partitions,
            "replaying the scan of the {kind} '{name}'"
        );
        plan.execute(partition, context)
    }

    async fn plan(
        &self,
        schema: &SchemaRef,
        context: &TaskContext,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let session = task_session(context);
        let table = self.node.table(&self.origin, &session).await?;
        let wire = &self.wire;
        let plan = table
            .scan(
                &session,
                wire.projection.as_ref(),
                &self.filters,
                wire.limit,
            )
            .await?;
        let (kind, name) = self.origin.source.object();
        let (node, bundle) = (self.node.label(), &self.origin.bundle);
        let partitions = plan.properties().partitioning.partition_count();
        if partitions != wire.partitions {
            return Err(DataFusionError::Execution(format!(
                "on {node}, the scan of the {kind} '{name}' from bundle {bundle} has \
                 {partitions} partitions, but the scheduler planned {}: the table changed \
                 since the query was planned, or the nodes' settings differ. Run the query \
                 again",
                wire.partitions
            )));
        }
        if plan.schema().fields() != schema.fields() {
            return Err(DataFusionError::Execution(format!(
                "on {node}, the scan of the {kind} '{name}' from bundle {bundle} returns \
                 columns {}, but the scheduler planned {schema}",
                plan.schema()
            )));
        }
        Ok(plan)
    }
}

/// A session with the task's settings, runtime and functions, for the bundle's scan.
///
/// File work stealing is off: with it, a partition that finds its siblings idle reads their
/// files too, and on a cluster every sibling is idle (it runs as another task, in another
/// plan), so each task would read the whole table.
fn task_session(context: &TaskContext) -> SessionState {
    let mut config = context.session_config().clone();
    config
        .options_mut()
        .execution
        .enable_file_stream_work_stealing = false;
    SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(context.runtime_env())
        .with_scalar_functions(context.scalar_functions().values().cloned().collect())
        .with_aggregate_functions(context.aggregate_functions().values().cloned().collect())
        .with_window_functions(context.window_functions().values().cloned().collect())
        .build()
}

impl DisplayAs for ReplayExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let (kind, name) = self.replay.origin.source.object();
        write!(
            f,
            "ReplayExec: {kind}={name}, bundle={}, partitions={}",
            self.replay.origin.bundle, self.replay.wire.partitions
        )
    }
}

impl ExecutionPlan for ReplayExec {
    fn name(&self) -> &str {
        "ReplayExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.schema();
        let replay = Arc::clone(&self.replay).run(Arc::clone(&schema), partition, context);
        let stream = futures::stream::once(replay).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

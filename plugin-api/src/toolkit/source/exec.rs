//! A table source as DataFusion sees it: a table function, the table it returns and the plan
//! that scans it. The host registers a bundle's source through these; tests and benchmarks
//! register one natively through the same, so native and bundle run the same plan.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{internal_err, plan_err};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::coop::make_cooperative;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, SchedulingType};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

use super::{ScanRequest, SourceScan, SourceTable, TableSource};

/// A [`TableSource`] registered as a DataFusion table function under `name`.
#[derive(Debug)]
pub struct SourceTableFunction {
    name: Arc<str>,
    source: Arc<dyn TableSource>,
}

impl SourceTableFunction {
    pub fn new(name: &str, source: Arc<dyn TableSource>) -> Self {
        Self {
            name: Arc::from(name),
            source,
        }
    }
}

impl TableFunctionImpl for SourceTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        // DataFusion has constant-folded the arguments; what is left is not constant.
        let args = args
            .exprs()
            .iter()
            .map(|e| match e {
                Expr::Literal(v, _) => Ok(v.clone()),
                other => plan_err!(
                    "{} takes constant arguments, but one is {other}: use literals, or \
                     expressions of literals",
                    self.name
                ),
            })
            .collect::<Result<Vec<_>>>()?;
        let table = self.source.call(&args)?;
        Ok(Arc::new(SourceTableProvider {
            name: Arc::clone(&self.name),
            schema: table.schema(),
            table,
        }))
    }
}

/// The table of one call of a [`SourceTableFunction`].
#[derive(Debug)]
pub struct SourceTableProvider {
    name: Arc<str>,
    schema: SchemaRef,
    table: Arc<dyn SourceTable>,
}

#[async_trait]
impl TableProvider for SourceTableProvider {
    fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let config = state.config();
        let request = ScanRequest {
            projection: projection.cloned(),
            limit,
            batch_size: config.batch_size().max(1),
            target_partitions: config.target_partitions().max(1),
        };
        let schema = request.projected_schema(&self.schema)?;
        let scan = self.table.scan(&request)?;
        SourceExec::try_new(Arc::clone(&self.name), scan, schema)
            .map(|e| Arc::new(e) as Arc<dyn ExecutionPlan>)
    }
}

/// The most partitions a scan may plan: DataFusion sets up every partition of a plan (a
/// channel or a task each), so a count a bundle got wrong must not reach it.
pub const MAX_PARTITIONS: usize = 1 << 16;

/// Scans a [`SourceScan`]: one partition of the plan per partition of the scan.
pub struct SourceExec {
    name: Arc<str>,
    scan: Arc<dyn SourceScan>,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for SourceExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceExec")
            .field("name", &self.name)
            .field("scan", &self.scan)
            .finish()
    }
}

impl SourceExec {
    /// `schema`: the columns the scan was asked for.
    pub fn try_new(name: Arc<str>, scan: Arc<dyn SourceScan>, schema: SchemaRef) -> Result<Self> {
        let partitions = scan.partitions();
        if partitions == 0 {
            return internal_err!(
                "table function {name} planned a scan of no partitions (a bug in the function: \
                 a table without rows is one partition without batches)"
            );
        }
        if partitions > MAX_PARTITIONS {
            return internal_err!(
                "table function {name} planned a scan of {partitions} partitions, more than the \
                 {MAX_PARTITIONS} a scan may have (a bug in the function: plan about as many as \
                 the request's target_partitions)"
            );
        }
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
        .with_scheduling_type(SchedulingType::Cooperative);
        Ok(Self {
            name,
            scan,
            properties: Arc::new(properties),
        })
    }
}

impl DisplayAs for SourceExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "SourceExec: function={}, partitions={}",
            self.name,
            self.properties.partitioning.partition_count()
        )
    }
}

impl ExecutionPlan for SourceExec {
    fn name(&self) -> &str {
        "SourceExec"
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
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let partitions = self.properties.partitioning.partition_count();
        if partition >= partitions {
            return internal_err!(
                "partition {partition} of a scan of {} with {partitions} partitions",
                self.name
            );
        }
        let stream = self.scan.execute(partition)?;
        // Once per stream, not per batch. Across the boundary each batch is checked against
        // the stream's schema as it is imported; natively a stream's batches are its author's
        // to keep to its schema, as any DataFusion stream's are.
        let expected = self.schema();
        if stream.schema().fields() != expected.fields() {
            return Err(DataFusionError::Execution(format!(
                "table function {} returned a stream of columns {} for a scan of columns {} \
                 (a bug in the function: build the stream with the request's projected schema)",
                self.name,
                stream.schema(),
                expected
            )));
        }
        // A generator's stream is never pending, and a filter above it may drop every batch:
        // without a tokio budget a query that has its rows (a LIMIT) or was cancelled could not
        // stop the other partitions' tasks, which would run on until their ranges end.
        Ok(make_cooperative(stream))
    }
}

//! Splitting a plugin scan's partitions across Ballista tasks.
//!
//! Ballista's scheduler gives each task a slice of a stage's partitions and, before sending
//! the plan, restricts the plan's *leaves* to that slice — but only leaves it knows
//! (`DataSourceExec` over files or memory, shuffle readers). Any other leaf is sent whole, and
//! every task would run all of its partitions: a bundle's scan would be read once per task.
//!
//! So on the scheduler a plugin scan of N partitions is planned ([`sliced`]) as a
//! [`ClusterScanExec`] whose only child is a memory source of N one-row partitions, row `g`
//! holding the number `g` ("tickets"). Ballista restricts that
//! child like any memory scan, so a task receives exactly its own tickets, and
//! `ClusterScanExec` runs the scan's partition `g` for each ticket `g` it reads.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::memory::MemorySourceConfig;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

use crate::restore::plans::BundlePlan;

const TICKET: &str = "df_plugin_partition";

/// A memory source of `n` partitions, partition `g` holding one row with the number `g`.
pub fn tickets(n: usize) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        TICKET,
        DataType::UInt64,
        false,
    )]));
    let partitions = (0..n as u64)
        .map(|g| {
            let column = Arc::new(UInt64Array::from(vec![g]));
            Ok(vec![RecordBatch::try_new(
                Arc::clone(&schema),
                vec![column],
            )?])
        })
        .collect::<Result<Vec<_>>>()?;
    let source = MemorySourceConfig::try_new(&partitions, schema, None)?;
    Ok(DataSourceExec::from_data_source(source))
}

/// A plugin scan whose partitions are chosen by the tickets of its child (see the module).
#[derive(Debug)]
pub struct ClusterScanExec {
    scan: Arc<dyn ExecutionPlan>,
    tickets: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl ClusterScanExec {
    pub fn new(scan: Arc<dyn ExecutionPlan>, tickets: Arc<dyn ExecutionPlan>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(scan.schema()),
            Partitioning::UnknownPartitioning(tickets.properties().partitioning.partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            scan,
            tickets,
            properties: Arc::new(properties),
        }
    }

    /// The whole scan: a `BundlePlan` on the scheduler, a `ReplayExec` on an executor.
    pub fn scan(&self) -> &Arc<dyn ExecutionPlan> {
        &self.scan
    }
}

impl DisplayAs for ClusterScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ClusterScanExec: ")?;
        self.scan.fmt_as(t, f)
    }
}

impl ExecutionPlan for ClusterScanExec {
    fn name(&self) -> &str {
        "ClusterScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.tickets]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // The tickets are the partitioning: never repartition them.
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [tickets] = <[_; 1]>::try_from(children).map_err(|c| {
            DataFusionError::Internal(format!("ClusterScanExec takes 1 child, got {}", c.len()))
        })?;
        Ok(Arc::new(Self::new(Arc::clone(&self.scan), tickets)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let scan = Arc::clone(&self.scan);
        let tickets = self.tickets.execute(partition, Arc::clone(&context))?;
        let stream = tickets
            .map_ok(|batch| {
                let column = batch.column(0);
                let numbers = column.as_any().downcast_ref::<UInt64Array>().cloned();
                futures::stream::iter(numbers.into_iter().flat_map(|a| a.values().to_vec()))
                    .map(Ok::<u64, DataFusionError>)
            })
            .try_flatten()
            .and_then(move |g| {
                let (scan, context) = (Arc::clone(&scan), Arc::clone(&context));
                async move { scan.execute(g as usize, context) }
            })
            .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            stream,
        )))
    }
}

/// `plan` under a [`ClusterScanExec`] when it is a plugin scan that a cluster node can replay.
pub fn sliced(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let replayable = plan
        .downcast_ref::<BundlePlan>()
        .is_some_and(|b| b.replay().is_some());
    if !replayable {
        return Ok(plan);
    }
    let n = plan.properties().partitioning.partition_count();
    Ok(Arc::new(ClusterScanExec::new(plan, tickets(n)?)))
}

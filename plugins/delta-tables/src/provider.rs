//! The table provider behind `STORED AS DELTA` and `delta_scan`.
//!
//! deltalake's own provider (`DeltaScanNext`) reads the snapshot it was built with, so a
//! `SELECT` after an `INSERT` in the same session would not see the insert. This provider keeps
//! the table handle instead and, unless the user pinned a version or timestamp, brings it up to
//! the newest commit before every scan and every insert (an incremental log read), then
//! delegates to a `DeltaScanNext` built on that snapshot. Pinned tables are read-only.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::limit::GlobalLimitExec;
use deltalake::DeltaTable;
use deltalake::delta_datafusion::DeltaScanNext;

use crate::location::{TableLocation, TimeTravel, plan};

/// A Delta table as DataFusion sees it: latest on every query, or pinned.
#[derive(Debug)]
pub struct DeltaTableProvider {
    location: TableLocation,
    travel: TimeTravel,
    /// The newest state seen so far: the table handle and deltalake's provider over it.
    current: Mutex<Current>,
}

#[derive(Debug, Clone)]
struct Current {
    table: DeltaTable,
    scan: Arc<DeltaScanNext>,
}

impl DeltaTableProvider {
    /// Opens the table at `travel` (a missing table or version is an error).
    pub async fn open(location: TableLocation, travel: TimeTravel) -> Result<Self> {
        let table = location.open(travel).await?;
        let scan = Arc::new(build_scan(&location, &table).await?);
        Ok(Self {
            location,
            travel,
            current: Mutex::new(Current { table, scan }),
        })
    }

    /// The version this provider read last.
    pub fn version(&self) -> Option<u64> {
        self.lock().table.version()
    }

    /// The table's partition columns, in order.
    pub fn partition_columns(&self) -> Vec<String> {
        self.lock()
            .table
            .snapshot()
            .map(|s| s.metadata().partition_columns().to_vec())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The snapshot a query should read: the pinned one, or the newest commit.
    async fn refreshed(&self) -> Result<Arc<DeltaScanNext>> {
        let before = self.lock().clone();
        if self.travel.is_pinned() {
            return Ok(before.scan);
        }
        let mut table = before.table.clone();
        table
            .update_incremental(None)
            .await
            .map_err(|e| self.location.error(e))?;
        if table.version() == before.table.version() {
            return Ok(before.scan);
        }
        let scan = Arc::new(build_scan(&self.location, &table).await?);
        let mut current = self.lock();
        // Another query may have refreshed further meanwhile; never go back.
        if current.table.version() < table.version() {
            *current = Current {
                table,
                scan: Arc::clone(&scan),
            };
        }
        Ok(scan)
    }

    /// Fails when the table's schema changed after the query was planned: the planned column
    /// indexes would point at other columns.
    fn check_schema(&self, planned: &SchemaRef, scan: &DeltaScanNext) -> Result<()> {
        if scan.schema().fields() == planned.fields() {
            return Ok(());
        }
        Err(plan(format!(
            "the schema of Delta table '{}' changed while this statement was planned (it is now \
             at version {}); run the statement again",
            self.location.given,
            self.version().unwrap_or_default()
        )))
    }
}

/// deltalake's provider over a loaded table, with the log store so it can write and register
/// the table's object store in the reading session.
async fn build_scan(location: &TableLocation, table: &DeltaTable) -> Result<DeltaScanNext> {
    table
        .table_provider()
        .build()
        .await
        .map_err(|e| DataFusionError::Plan(format!("Delta table '{}': {e}", location.given)))
}

#[async_trait]
impl TableProvider for DeltaTableProvider {
    fn schema(&self) -> SchemaRef {
        self.lock().scan.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        None
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let planned = self.schema();
        let scan = self.refreshed().await?;
        self.check_schema(&planned, &scan)?;
        let plan = scan.scan(state, projection, filters, limit).await?;
        // deltalake's metadata-only plan (a scan that reads no data column) accepts a pushed
        // down fetch and ignores it; an explicit limit keeps `LIMIT` exact.
        Ok(match limit {
            Some(n) => Arc::new(GlobalLimitExec::new(
                Arc::new(CoalescePartitionsExec::new(plan)),
                0,
                Some(n),
            )),
            None => plan,
        })
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let scan = Arc::clone(&self.lock().scan);
        scan.supports_filters_pushdown(filters)
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.travel.is_pinned() {
            return Err(plan(format!(
                "Delta table '{}' is pinned to {}, which is read-only: writes always go to the \
                 newest version. Register the table without a version or timestamp to write",
                self.location.given,
                describe(self.travel)
            )));
        }
        if insert_op == InsertOp::Replace {
            return Err(plan(format!(
                "Delta table '{}': REPLACE INTO is not supported; use INSERT INTO to append or \
                 INSERT OVERWRITE to replace the table's rows",
                self.location.given
            )));
        }
        let planned = self.schema();
        let scan = self.refreshed().await?;
        self.check_schema(&planned, &scan)?;
        scan.insert_into(state, input, insert_op).await
    }
}

fn describe(travel: TimeTravel) -> String {
    match travel {
        TimeTravel::Latest => "the latest version".to_string(),
        TimeTravel::Version(v) => format!("version {v}"),
        TimeTravel::Timestamp(t) => format!("timestamp {}", t.to_rfc3339()),
    }
}

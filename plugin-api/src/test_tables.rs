//! Tables for the crate's unit tests.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

/// What a [`Scripted`] table's scan was given: filters, limit, query start (ns).
pub type Seen = (Vec<Expr>, Option<usize>, Option<i64>);

/// What a [`Scripted`] table puts over its in-memory plan.
pub type PlanOver = fn(Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>>;

/// An in-memory table scripted for a test: it answers `answer(filter)` when asked which
/// filters it takes, records what its scan was given in `seen`, and puts `plan` over its
/// in-memory scan. [`Scripted::new`] answers `Unsupported` and plans the scan as it is.
#[derive(Debug)]
pub struct Scripted {
    pub table: MemTable,
    pub answer: fn(&Expr) -> TableProviderFilterPushDown,
    pub plan: PlanOver,
    pub seen: Mutex<Option<Seen>>,
}

impl Scripted {
    pub fn new(table: MemTable) -> Self {
        Self {
            table,
            answer: |_| TableProviderFilterPushDown::Unsupported,
            plan: Ok,
            seen: Mutex::default(),
        }
    }
}

#[async_trait]
impl TableProvider for Scripted {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let start = state
            .execution_props()
            .query_execution_start_time
            .and_then(|t| t.timestamp_nanos_opt());
        *self.seen.lock().expect("not poisoned") = Some((filters.to_vec(), limit, start));
        (self.plan)(self.table.scan(state, projection, filters, limit).await?)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters.iter().map(|f| (self.answer)(f)).collect())
    }
}

//! Table providers, the plans and streams they produce, table functions and factories.
//!
//! Besides containing panics, these wrappers enter the bundle's tokio runtime in the calls
//! datafusion-ffi does not (`scan`, `insert_into`, `create`, table function calls), so that a
//! provider doing IO inside the bundle finds its reactor.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProviderFactory};
use datafusion::common::Statistics;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{CreateExternalTable, Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::statistics::{ChildStats, StatisticsArgs};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{FutureExt, Stream};
use tokio::runtime::Handle;

use crate::toolkit::panic::{BundleTag, ObjectLabel, guard, guard_or, panic_error};
use crate::toolkit::runtime::{self, InRuntime};
use crate::toolkit::session;

/// Awaits `fut` inside the bundle runtime, turning a panic into an error.
async fn guard_future<T>(
    label: &ObjectLabel,
    call: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    let fut = async {
        label.injected_panic(call);
        fut.await
    };
    match InRuntime::new(AssertUnwindSafe(fut).catch_unwind()).await {
        Ok(result) => result,
        Err(payload) => Err(panic_error(label, call, payload.as_ref())),
    }
}

/// A panic-guarded [`TableProvider`].
#[derive(Debug)]
pub struct GuardedTableProvider {
    inner: Arc<dyn TableProvider>,
    label: Arc<ObjectLabel>,
    /// Whether the host may offer the table filters: what it was exported with. datafusion-ffi
    /// keeps that flag to itself and answers for the table on the host's side; the plan
    /// runner asks the table, so the table says it too.
    pushdown: bool,
}

impl GuardedTableProvider {
    pub fn wrap(
        inner: Arc<dyn TableProvider>,
        bundle: &BundleTag,
        name: &str,
        pushdown: bool,
    ) -> Arc<Self> {
        Self::with_label(inner, ObjectLabel::new(bundle, "table", name), pushdown)
    }

    fn with_label(
        inner: Arc<dyn TableProvider>,
        label: Arc<ObjectLabel>,
        pushdown: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            inner,
            label,
            pushdown,
        })
    }
}

#[async_trait]
impl TableProvider for GuardedTableProvider {
    fn schema(&self) -> SchemaRef {
        // A provider that cannot say its schema has nothing to offer; an empty schema makes
        // every column reference fail with a plain "field not found" instead of an abort.
        guard_or(
            &self.label,
            "schema",
            Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            || self.inner.schema(),
        )
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
        let state = session::bundle_state(state);
        let plan = guard_future(&self.label, "scan", async {
            let plan = self.inner.scan(&state, projection, filters, limit).await?;
            session::optimize(plan, &state)
        })
        .await?;
        Ok(GuardedExec::wrap(plan, &self.label))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        if !self.pushdown {
            return Ok(vec![
                TableProviderFilterPushDown::Unsupported;
                filters.len()
            ]);
        }
        guard(&self.label, "supports_filters_pushdown", || {
            self.inner.supports_filters_pushdown(filters)
        })
    }

    fn statistics(&self) -> Option<Statistics> {
        guard_or(&self.label, "statistics", None, || self.inner.statistics())
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = session::bundle_state(state);
        let plan = guard_future(
            &self.label,
            "insert_into",
            self.inner.insert_into(&state, input, insert_op),
        )
        .await?;
        Ok(GuardedExec::wrap(plan, &self.label))
    }
}

/// A panic-guarded [`ExecutionPlan`] whose streams are guarded too.
#[derive(Debug)]
pub struct GuardedExec {
    inner: Arc<dyn ExecutionPlan>,
    label: Arc<ObjectLabel>,
}

impl GuardedExec {
    pub fn wrap(inner: Arc<dyn ExecutionPlan>, label: &Arc<ObjectLabel>) -> Arc<dyn ExecutionPlan> {
        Arc::new(Self {
            inner,
            label: Arc::clone(label),
        })
    }

    /// `f` applied to the plan `plan` guards (under the guard, as `call`), guarded again; or to
    /// `plan` itself when it is not a `GuardedExec`. For rewrites that must see the provider's
    /// own nodes, such as the physical optimizer's.
    pub fn map_guarded(
        plan: Arc<dyn ExecutionPlan>,
        call: &str,
        f: impl FnOnce(Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match plan.downcast_ref::<GuardedExec>() {
            Some(guarded) => {
                let inner = guard(&guarded.label, call, || f(Arc::clone(&guarded.inner)))?;
                Ok(Self::wrap(inner, &guarded.label))
            }
            None => f(plan),
        }
    }
}

impl DisplayAs for GuardedExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for GuardedExec {
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
        f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_plan::PhysicalExpr>,
        ) -> Result<datafusion::common::tree_node::TreeNodeRecursion>,
    ) -> Result<datafusion::common::tree_node::TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let inner = Arc::clone(&self.inner);
        let plan = guard(&self.label, "replace_children", || {
            inner.replace_children(children, options)
        })?;
        Ok(Self::wrap(plan, &self.label))
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
        let runtime = runtime::handle();
        let _entered = runtime.as_ref().map(|h| h.enter());
        // The bundle's runtime environment, where planning registered its object stores.
        let context = session::task_context(&context);
        let stream = guard(&self.label, "execute", || {
            self.inner.execute(partition, context)
        })?;
        Ok(Box::pin(GuardedStream::new(
            stream,
            Arc::clone(&self.label),
            runtime,
        )))
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        guard(&self.label, "statistics", || {
            self.inner.statistics_from_inputs(input_stats, args)
        })
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        self.inner.child_stats_requests(partition)
    }

    fn metrics(&self) -> Option<datafusion::physical_plan::metrics::MetricsSet> {
        self.inner.metrics()
    }
}

/// A record batch stream that reports a panic as its last item instead of unwinding.
pub(crate) struct GuardedStream {
    /// `None` once the inner stream panicked: it is not polled again.
    inner: Option<SendableRecordBatchStream>,
    label: Arc<ObjectLabel>,
    /// The bundle runtime, entered for every poll; taken once, not per poll.
    runtime: Option<Handle>,
}

impl GuardedStream {
    /// `runtime` is entered for every poll.
    pub(crate) fn new(
        inner: SendableRecordBatchStream,
        label: Arc<ObjectLabel>,
        runtime: Option<Handle>,
    ) -> Self {
        Self {
            inner: Some(inner),
            label,
            runtime,
        }
    }
}

impl Stream for GuardedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        // datafusion-ffi enters the bundle runtime only for plans it was given a handle for;
        // table functions' plans have none, so the guard enters it on every poll.
        let _entered = this.runtime.as_ref().map(Handle::enter);
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll_next(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                this.inner = None;
                Poll::Ready(Some(Err(panic_error(
                    &this.label,
                    "stream",
                    payload.as_ref(),
                ))))
            }
        }
    }
}

impl RecordBatchStream for GuardedStream {
    fn schema(&self) -> SchemaRef {
        let empty = || Arc::new(datafusion::arrow::datatypes::Schema::empty());
        match &self.inner {
            // The author's stream: a panic (logged) answers no columns, and the host refuses
            // the stream unless the scan asked for none (its schema is asked before any batch).
            Some(s) => guard_or(&self.label, "schema", empty(), || s.schema()),
            None => empty(),
        }
    }
}

/// A panic-guarded table function; the providers it returns are guarded as well.
#[derive(Debug)]
pub struct GuardedTableFunction {
    inner: Arc<dyn TableFunctionImpl>,
    label: Arc<ObjectLabel>,
}

impl GuardedTableFunction {
    pub fn wrap(inner: Arc<dyn TableFunctionImpl>, bundle: &BundleTag, name: &str) -> Arc<Self> {
        Arc::new(Self {
            inner,
            label: ObjectLabel::new(bundle, "table function", name),
        })
    }
}

impl TableFunctionImpl for GuardedTableFunction {
    #[allow(deprecated)]
    fn call(&self, exprs: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        let _rt = runtime::handle();
        let _entered = _rt.as_ref().map(|h| h.enter());
        let provider = guard(&self.label, "call", || self.inner.call(exprs))?;
        // Exported without filter pushdown, by datafusion-ffi and by the plan runner alike.
        Ok(GuardedTableProvider::with_label(
            provider,
            Arc::clone(&self.label),
            false,
        ))
    }

    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let _rt = runtime::handle();
        let _entered = _rt.as_ref().map(|h| h.enter());
        let provider = guard(&self.label, "call", || self.inner.call_with_args(args))?;
        Ok(GuardedTableProvider::with_label(
            provider,
            Arc::clone(&self.label),
            false,
        ))
    }
}

/// A panic-guarded [`TableProviderFactory`].
#[derive(Debug)]
pub struct GuardedTableProviderFactory {
    inner: Arc<dyn TableProviderFactory>,
    label: Arc<ObjectLabel>,
}

impl GuardedTableProviderFactory {
    pub fn wrap(inner: Arc<dyn TableProviderFactory>, bundle: &BundleTag, name: &str) -> Arc<Self> {
        Arc::new(Self {
            inner,
            label: ObjectLabel::new(bundle, "table provider factory", name),
        })
    }
}

#[async_trait]
impl TableProviderFactory for GuardedTableProviderFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let state = session::bundle_state(state);
        let provider = guard_future(&self.label, "create", self.inner.create(&state, cmd)).await?;
        // datafusion-ffi exports a factory's tables with filter pushdown.
        Ok(GuardedTableProvider::with_label(
            provider,
            Arc::clone(&self.label),
            true,
        ))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{col, lit};

    use super::*;
    use crate::test_tables::Scripted;

    /// The plan runner asks the table itself, which must then answer as it was exported.
    #[test]
    fn a_table_exported_without_filter_pushdown_takes_no_filter() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let tag = BundleTag::new("test", None);
        let filter = col("v").gt(lit(1));
        for (pushdown, answer) in [
            (true, TableProviderFilterPushDown::Exact),
            (false, TableProviderFilterPushDown::Unsupported),
        ] {
            let table = MemTable::try_new(Arc::clone(&schema), vec![vec![]]).expect("a table");
            let takes_all = Scripted {
                answer: |_| TableProviderFilterPushDown::Exact,
                ..Scripted::new(table)
            };
            let guarded = GuardedTableProvider::wrap(Arc::new(takes_all), &tag, "t", pushdown);
            let answers = guarded.supports_filters_pushdown(&[&filter]);
            assert_eq!(
                answers.expect("answers"),
                vec![answer],
                "pushdown {pushdown}"
            );
        }
    }
}

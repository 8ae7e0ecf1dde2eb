//! Errors from a bundle's functions, worded as DataFusion words them.
//!
//! datafusion-ffi carries errors as strings and turns them into `DataFusionError::Ffi`, so a
//! bundle's "Execution error: x" reaches the user as "FFI error: Execution error: x". The
//! string starts with DataFusion's own prefix for the variant, so the host rebuilds the variant
//! from it: the message then reads exactly as the same function's would natively. Errors
//! without a known prefix stay `Ffi`.
//!
//! The rebuilding itself is plugin-api's (`df_plugin_api::ffi::errors::native`), which table
//! sources' errors also go through; the wrappers below apply it to the objects a foreign
//! function creates per query (accumulators, groups accumulators, partition evaluators).

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::datasource::TableProvider;
use datafusion::error::Result;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator, PartitionEvaluator};
use datafusion::scalar::ScalarValue;
use df_plugin_api::ffi::plan_runner::ForeignPlanRunner;

use crate::distributed::origin::{BundleRef, Origin, Source};

pub use df_plugin_api::ffi::errors::natively;

/// A foreign accumulator whose errors read natively.
#[derive(Debug)]
pub struct NativeAccumulator(pub Box<dyn Accumulator>);

impl Accumulator for NativeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        natively(self.0.update_batch(values))
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        natively(self.0.evaluate())
    }
    fn size(&self) -> usize {
        self.0.size()
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        natively(self.0.state())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        natively(self.0.merge_batch(states))
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        natively(self.0.retract_batch(values))
    }
    fn supports_retract_batch(&self) -> bool {
        self.0.supports_retract_batch()
    }
}

/// A foreign groups accumulator whose errors read natively.
pub struct NativeGroupsAccumulator(pub Box<dyn GroupsAccumulator>);

impl GroupsAccumulator for NativeGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        natively(
            self.0
                .update_batch(values, group_indices, opt_filter, total_num_groups),
        )
    }
    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        natively(self.0.evaluate(emit_to))
    }
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        natively(self.0.state(emit_to))
    }
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        natively(self.0.merge_batch(values, group_indices, total_num_groups))
    }
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        natively(self.0.convert_to_state(values, opt_filter))
    }
    fn size(&self) -> usize {
        self.0.size()
    }
}

/// A foreign partition evaluator whose errors read natively.
#[derive(Debug)]
pub struct NativeEvaluator(pub Box<dyn PartitionEvaluator>);

impl PartitionEvaluator for NativeEvaluator {
    fn get_range(&self, idx: usize, n_rows: usize) -> Result<Range<usize>> {
        natively(self.0.get_range(idx, n_rows))
    }
    fn is_causal(&self) -> bool {
        self.0.is_causal()
    }
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        natively(self.0.evaluate_all(values, num_rows))
    }
    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        natively(self.0.evaluate(values, range))
    }
    fn evaluate_all_with_rank(
        &self,
        num_rows: usize,
        ranks_in_partition: &[Range<usize>],
    ) -> Result<ArrayRef> {
        natively(self.0.evaluate_all_with_rank(num_rows, ranks_in_partition))
    }
    fn supports_bounded_execution(&self) -> bool {
        self.0.supports_bounded_execution()
    }
    fn uses_window_frame(&self) -> bool {
        self.0.uses_window_frame()
    }
    fn include_rank(&self) -> bool {
        self.0.include_rank()
    }
}

/// A foreign table function whose errors read natively, and whose tables remember the call.
#[derive(Debug)]
pub struct NativeTableFunction {
    pub inner: Arc<dyn TableFunctionImpl>,
    pub bundle: BundleRef,
    pub name: String,
    pub runner: Option<Arc<ForeignPlanRunner>>,
}

impl TableFunctionImpl for NativeTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        // datafusion-ffi's path gets only the functions the arguments call (see
        // `scan_session`). The runner's needs none, and binds once per configuration: the
        // session's own, not the copy of it a slim session is.
        let lean = self
            .runner
            .as_ref()
            .is_some_and(|r| r.takes_table_function_call(args.exprs()));
        let slim = if lean {
            None
        } else {
            super::scan_session::for_exprs(args.session(), args.exprs())
        };
        let provider = match slim {
            Some(slim) => crate::session::with_task_ctx(&slim.task_ctx(), || {
                self.inner
                    .call_with_args(TableFunctionArgs::new(args.exprs(), &slim))
            }),
            None => self
                .inner
                .call_with_args(TableFunctionArgs::new(args.exprs(), args.session())),
        };
        let origin = Origin {
            bundle: self.bundle.clone(),
            source: Source::TableFunction {
                name: self.name.clone(),
                args: args.exprs().to_vec(),
            },
        };
        natively(provider)
            .map(|p| super::plans::HostTableProvider::wrap(p, origin, self.runner.clone()))
    }
}

//! Window UDFs and their partition evaluators.

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    Documentation, PartitionEvaluator, Signature, WindowUDF, WindowUDFImpl,
};
use datafusion::scalar::ScalarValue;

use crate::toolkit::panic::{BundleTag, ObjectLabel, guard, guard_or};

/// A window UDF whose every call, and every evaluator it creates, is panic-guarded.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GuardedWindowUDF {
    inner: WindowUDF,
    label: Arc<ObjectLabel>,
}

impl GuardedWindowUDF {
    pub fn wrap(inner: WindowUDF, bundle: &BundleTag) -> WindowUDF {
        let label = ObjectLabel::new(bundle, "window function", inner.name());
        WindowUDF::new_from_impl(Self { inner, label })
    }

    fn imp(&self) -> &Arc<dyn WindowUDFImpl> {
        self.inner.inner()
    }
}

impl WindowUDFImpl for GuardedWindowUDF {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        let inner = guard(&self.label, "partition_evaluator", || {
            self.imp().partition_evaluator(args)
        })?;
        Ok(Box::new(GuardedPartitionEvaluator {
            inner,
            label: Arc::clone(&self.label),
        }))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        guard(&self.label, "field", || self.imp().field(field_args))
    }

    fn sort_options(&self) -> Option<SortOptions> {
        self.imp().sort_options()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        guard(&self.label, "coerce_types", || {
            self.imp().coerce_types(arg_types)
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.imp().documentation()
    }
}

/// A panic-guarded [`PartitionEvaluator`].
#[derive(Debug)]
pub struct GuardedPartitionEvaluator {
    inner: Box<dyn PartitionEvaluator>,
    label: Arc<ObjectLabel>,
}

impl PartitionEvaluator for GuardedPartitionEvaluator {
    fn get_range(&self, idx: usize, n_rows: usize) -> Result<Range<usize>> {
        guard(&self.label, "get_range", || {
            self.inner.get_range(idx, n_rows)
        })
    }

    fn is_causal(&self) -> bool {
        guard_or(&self.label, "is_causal", false, || self.inner.is_causal())
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        guard(&self.label, "evaluate_all", || {
            self.inner.evaluate_all(values, num_rows)
        })
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        guard(&self.label, "evaluate", || {
            self.inner.evaluate(values, range)
        })
    }

    fn evaluate_all_with_rank(
        &self,
        num_rows: usize,
        ranks_in_partition: &[Range<usize>],
    ) -> Result<ArrayRef> {
        guard(&self.label, "evaluate_all_with_rank", || {
            self.inner
                .evaluate_all_with_rank(num_rows, ranks_in_partition)
        })
    }

    fn supports_bounded_execution(&self) -> bool {
        guard_or(&self.label, "supports_bounded_execution", false, || {
            self.inner.supports_bounded_execution()
        })
    }

    fn uses_window_frame(&self) -> bool {
        guard_or(&self.label, "uses_window_frame", false, || {
            self.inner.uses_window_frame()
        })
    }

    fn include_rank(&self) -> bool {
        guard_or(&self.label, "include_rank", false, || {
            self.inner.include_rank()
        })
    }
}

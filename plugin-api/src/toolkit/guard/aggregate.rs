//! Aggregate UDFs, their accumulators and groups accumulators.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator,
    Signature,
};
use datafusion::scalar::ScalarValue;

use crate::toolkit::panic::{BundleTag, ObjectLabel, guard, guard_or};

/// An aggregate UDF whose every call, and every accumulator it creates, is panic-guarded.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GuardedAggregateUDF {
    inner: AggregateUDF,
    label: Arc<ObjectLabel>,
}

impl GuardedAggregateUDF {
    pub fn wrap(inner: AggregateUDF, bundle: &BundleTag) -> AggregateUDF {
        let label = ObjectLabel::new(bundle, "aggregate function", inner.name());
        AggregateUDF::new_from_impl(Self { inner, label })
    }

    fn imp(&self) -> &Arc<dyn AggregateUDFImpl> {
        self.inner.inner()
    }
}

impl AggregateUDFImpl for GuardedAggregateUDF {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        guard(&self.label, "return_type", || {
            self.imp().return_type(arg_types)
        })
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        guard(&self.label, "return_field", || {
            self.imp().return_field(arg_fields)
        })
    }

    fn is_nullable(&self) -> bool {
        self.imp().is_nullable()
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let acc = guard(&self.label, "accumulator", || {
            self.imp().accumulator(acc_args)
        })?;
        Ok(Box::new(GuardedAccumulator {
            inner: acc,
            label: Arc::clone(&self.label),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        guard(&self.label, "state_fields", || {
            self.imp().state_fields(args)
        })
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        guard_or(&self.label, "groups_accumulator_supported", false, || {
            self.imp().groups_accumulator_supported(args)
        })
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let acc = guard(&self.label, "create_groups_accumulator", || {
            self.imp().create_groups_accumulator(args)
        })?;
        Ok(Box::new(GuardedGroupsAccumulator {
            inner: acc,
            label: Arc::clone(&self.label),
        }))
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let acc = guard(&self.label, "create_sliding_accumulator", || {
            self.imp().create_sliding_accumulator(args)
        })?;
        Ok(Box::new(GuardedAccumulator {
            inner: acc,
            label: Arc::clone(&self.label),
        }))
    }

    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        let label = Arc::clone(&self.label);
        let inner = Arc::clone(self.imp());
        let reordered = guard(&label, "with_beneficial_ordering", || {
            inner.with_beneficial_ordering(beneficial_ordering)
        })?;
        Ok(reordered.map(|imp| {
            Arc::new(Self {
                inner: AggregateUDF::new_from_shared_impl(imp),
                label,
            }) as Arc<dyn AggregateUDFImpl>
        }))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.imp().order_sensitivity()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        guard(&self.label, "coerce_types", || {
            self.imp().coerce_types(arg_types)
        })
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.imp().supports_null_handling_clause()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.imp().documentation()
    }
}

/// A panic-guarded [`Accumulator`].
#[derive(Debug)]
pub struct GuardedAccumulator {
    inner: Box<dyn Accumulator>,
    label: Arc<ObjectLabel>,
}

impl Accumulator for GuardedAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        guard(&self.label, "update_batch", || {
            self.inner.update_batch(values)
        })
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        guard(&self.label, "evaluate", || self.inner.evaluate())
    }

    fn size(&self) -> usize {
        guard_or(&self.label, "size", 0, || self.inner.size())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        guard(&self.label, "state", || self.inner.state())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        guard(&self.label, "merge_batch", || {
            self.inner.merge_batch(states)
        })
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        guard(&self.label, "retract_batch", || {
            self.inner.retract_batch(values)
        })
    }

    fn supports_retract_batch(&self) -> bool {
        guard_or(&self.label, "supports_retract_batch", false, || {
            self.inner.supports_retract_batch()
        })
    }
}

/// A panic-guarded [`GroupsAccumulator`].
pub struct GuardedGroupsAccumulator {
    inner: Box<dyn GroupsAccumulator>,
    label: Arc<ObjectLabel>,
}

impl GroupsAccumulator for GuardedGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        guard(&self.label, "update_batch", || {
            self.inner
                .update_batch(values, group_indices, opt_filter, total_num_groups)
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        guard(&self.label, "evaluate", || self.inner.evaluate(emit_to))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        guard(&self.label, "state", || self.inner.state(emit_to))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        guard(&self.label, "merge_batch", || {
            self.inner
                .merge_batch(values, group_indices, total_num_groups)
        })
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        guard(&self.label, "convert_to_state", || {
            self.inner.convert_to_state(values, opt_filter)
        })
    }

    fn size(&self) -> usize {
        guard_or(&self.label, "size", 0, || self.inner.size())
    }
}

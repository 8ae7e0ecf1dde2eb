//! `geo_mean(value)`: the geometric mean, `exp(avg(ln(value)))`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array};
use datafusion::arrow::array::{BooleanArray, Float64Builder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::{as_float64_array, as_int64_array};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

/// The `geo_mean` aggregate function. Supports sliding windows (`retract_batch`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GeoMean {
    signature: Signature,
}

impl GeoMean {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable),
                &["value"],
            ),
        }
    }
}

impl Default for GeoMean {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for GeoMean {
    fn name(&self) -> &str {
        "geo_mean"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(GeoMeanAccumulator::default()))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(GeoMeanGroups::default()))
    }

    fn create_sliding_accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(GeoMeanAccumulator::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "sum_ln"),
                DataType::Float64,
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "count"),
                DataType::Int64,
                true,
            )),
        ])
    }
}

/// Sum of logarithms and count of the values seen.
#[derive(Debug, Default)]
struct GeoMeanAccumulator {
    sum_ln: f64,
    count: i64,
}

/// `ln(v)`, refusing values the geometric mean is not defined for.
fn checked_ln(v: f64) -> Result<f64> {
    if v <= 0.0 || v.is_nan() {
        return exec_err!(
            "geo_mean is defined for positive values only, got {v}; \
             filter them out, e.g. geo_mean(x) FILTER (WHERE x > 0)"
        );
    }
    Ok(v.ln())
}

/// Sums `ln(v)` over the non-null values, refusing non-positive ones.
fn sum_ln(values: &Float64Array) -> Result<(f64, i64)> {
    let mut sum = 0.0;
    let mut count = 0;
    for v in values.iter().flatten() {
        sum += checked_ln(v)?;
        count += 1;
    }
    Ok((sum, count))
}

/// The geometric mean of `sum_ln / count`, NULL without values.
fn finish(sum_ln: f64, count: i64) -> Option<f64> {
    (count > 0).then(|| (sum_ln / count as f64).exp())
}

/// Whether row `i` passes the aggregate's `FILTER` clause.
fn passes(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(i) && f.value(i))
}

/// The vectorised accumulator for `GROUP BY`: one slot per group, no per-group allocation.
#[derive(Debug, Default)]
struct GeoMeanGroups {
    sum_ln: Vec<f64>,
    counts: Vec<i64>,
}

impl GeoMeanGroups {
    fn resize(&mut self, total_num_groups: usize) {
        self.sum_ln.resize(total_num_groups, 0.0);
        self.counts.resize(total_num_groups, 0);
    }
}

impl GroupsAccumulator for GeoMeanGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let values = as_float64_array(&values[0])?;
        for (i, &g) in group_indices.iter().enumerate() {
            if values.is_valid(i) && passes(opt_filter, i) {
                self.sum_ln[g] += checked_ln(values.value(i))?;
                self.counts[g] += 1;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let sums = emit_to.take_needed(&mut self.sum_ln);
        let counts = emit_to.take_needed(&mut self.counts);
        let mut out = Float64Builder::with_capacity(sums.len());
        for (s, c) in sums.into_iter().zip(counts) {
            out.append_option(finish(s, c));
        }
        Ok(Arc::new(out.finish()))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let sums = emit_to.take_needed(&mut self.sum_ln);
        let counts = emit_to.take_needed(&mut self.counts);
        Ok(vec![
            Arc::new(Float64Array::from(sums)),
            Arc::new(Int64Array::from(counts)),
        ])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let sums = as_float64_array(&values[0])?;
        let counts = as_int64_array(&values[1])?;
        for (i, &g) in group_indices.iter().enumerate() {
            if sums.is_valid(i) && counts.is_valid(i) {
                self.sum_ln[g] += sums.value(i);
                self.counts[g] += counts.value(i);
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let values = as_float64_array(&values[0])?;
        let mut sums = Vec::with_capacity(values.len());
        let mut counts = Vec::with_capacity(values.len());
        for i in 0..values.len() {
            if values.is_valid(i) && passes(opt_filter, i) {
                sums.push(checked_ln(values.value(i))?);
                counts.push(1);
            } else {
                sums.push(0.0);
                counts.push(0);
            }
        }
        Ok(vec![
            Arc::new(Float64Array::from(sums)),
            Arc::new(Int64Array::from(counts)),
        ])
    }

    fn size(&self) -> usize {
        self.sum_ln.capacity() * size_of::<f64>() + self.counts.capacity() * size_of::<i64>()
    }
}

impl Accumulator for GeoMeanAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (sum, count) = sum_ln(as_float64_array(&values[0])?)?;
        self.sum_ln += sum;
        self.count += count;
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (sum, count) = sum_ln(as_float64_array(&values[0])?)?;
        self.sum_ln -= sum;
        self.count -= count;
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(finish(self.sum_ln, self.count)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Float64(Some(self.sum_ln)),
            ScalarValue::Int64(Some(self.count)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let sums: &Float64Array = as_float64_array(&states[0])?;
        let counts: &Int64Array = as_int64_array(&states[1])?;
        for i in 0..sums.len() {
            if sums.is_valid(i) && counts.is_valid(i) {
                self.sum_ln += sums.value(i);
                self.count += counts.value(i);
            }
        }
        Ok(())
    }
}

//! `geo_mean(value)`: the geometric mean, `exp(avg(ln(value)))`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::{as_float64_array, as_int64_array};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

/// The `geo_mean` aggregate function. Supports sliding windows (`retract_batch`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GeoMean {
    signature: Signature,
}

impl GeoMean {
    pub fn new() -> Self {
        Self {
            signature: crate::with_names(
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

/// Sums `ln(v)` over the non-null values, refusing non-positive ones.
fn sum_ln(values: &Float64Array) -> Result<(f64, i64)> {
    let mut sum = 0.0;
    let mut count = 0;
    for v in values.iter().flatten() {
        if v <= 0.0 || v.is_nan() {
            return exec_err!(
                "geo_mean is defined for positive values only, got {v}; \
                 filter them out, e.g. geo_mean(x) FILTER (WHERE x > 0)"
            );
        }
        sum += v.ln();
        count += 1;
    }
    Ok((sum, count))
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
        Ok(ScalarValue::Float64(
            (self.count > 0).then(|| (self.sum_ln / self.count as f64).exp()),
        ))
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

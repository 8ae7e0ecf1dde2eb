//! `sessionize(ts, max_gap_seconds) OVER (PARTITION BY user ORDER BY ts)`: session numbers.
//!
//! A new session starts at the first row of the partition and whenever the time since the
//! previous non-NULL timestamp exceeds `max_gap_seconds`. Rows with a NULL timestamp get a NULL
//! session and do not break the current one. Integer timestamps are taken as epoch seconds.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::cast::{as_float64_array, as_int64_array};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{PartitionEvaluator, Signature, Volatility, WindowUDFImpl};

/// The `sessionize` window function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Sessionize {
    signature: Signature,
}

impl Sessionize {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::user_defined(Volatility::Immutable),
                &["ts", "max_gap_seconds"],
            ),
        }
    }
}

impl Default for Sessionize {
    fn default() -> Self {
        Self::new()
    }
}

/// Units of the timestamp column per second.
fn units_per_second(ts_type: &DataType) -> f64 {
    match ts_type {
        DataType::Timestamp(TimeUnit::Second, _) => 1.0,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1e3,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1e6,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1e9,
        _ => 1.0,
    }
}

/// Argument coercion shared by the session window functions: `(timestamp | integer, number)`.
pub(crate) fn coerce(name: &str, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    let [ts, gap] = arg_types else {
        return plan_err!(
            "{name} expects 2 arguments (ts, max_gap_seconds), got {}",
            arg_types.len()
        );
    };
    let ts = match ts {
        DataType::Timestamp(..) => ts.clone(),
        t if t.is_integer() || t.is_null() => DataType::Int64,
        other => {
            return plan_err!(
                "{name}: ts must be a timestamp or an integer (epoch seconds), got {other}"
            );
        }
    };
    if !(gap.is_numeric() || gap.is_null()) {
        return plan_err!("{name}: max_gap_seconds must be a number, got {gap}");
    }
    Ok(vec![ts, DataType::Float64])
}

/// A partition cut into sessions: per row its session number (NULL for a NULL timestamp) and
/// its raw timestamp, in `units_per_second` units.
pub(crate) struct SessionCut {
    pub sessions: Vec<Option<i64>>,
    pub ts: Vec<Option<i64>>,
    pub units_per_second: f64,
}

/// Cuts an ordered partition into sessions: a new one starts at the first row and whenever
/// the time since the previous non-NULL timestamp exceeds the row's `max_gap_seconds`.
pub(crate) fn cut_sessions(name: &str, values: &[ArrayRef], num_rows: usize) -> Result<SessionCut> {
    let [ts, gap] = values else {
        return exec_err!("{name} expects 2 arguments, got {}", values.len());
    };
    let units_per_second = units_per_second(ts.data_type());
    // Timestamps of any unit cast to their raw Int64 value without conversion.
    let ts = cast(ts, &DataType::Int64)?;
    let ts: &Int64Array = as_int64_array(&ts)?;
    let gap = as_float64_array(gap)?;

    let mut sessions = Vec::with_capacity(num_rows);
    let mut raw = Vec::with_capacity(num_rows);
    let mut session = 0i64;
    let mut previous: Option<i64> = None;
    for i in 0..num_rows {
        if ts.is_null(i) {
            sessions.push(None);
            raw.push(None);
            continue;
        }
        if gap.is_null(i) {
            return exec_err!("{name}: max_gap_seconds must not be NULL");
        }
        let max_gap = gap.value(i);
        if max_gap.is_nan() || max_gap < 0.0 {
            return exec_err!("{name}: max_gap_seconds must be >= 0, got {max_gap}");
        }
        let t = ts.value(i);
        let new_session = match previous {
            None => true,
            Some(p) => (t.saturating_sub(p)) as f64 > max_gap * units_per_second,
        };
        if new_session {
            session += 1;
        }
        previous = Some(t);
        sessions.push(Some(session));
        raw.push(Some(t));
    }
    Ok(SessionCut {
        sessions,
        ts: raw,
        units_per_second,
    })
}

impl WindowUDFImpl for Sessionize {
    fn name(&self) -> &str {
        "sessionize"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce("sessionize", arg_types)
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(SessionizeEvaluator))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Int64,
            true,
        )))
    }
}

#[derive(Debug)]
struct SessionizeEvaluator;

impl PartitionEvaluator for SessionizeEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let cut = cut_sessions("sessionize", values, num_rows)?;
        Ok(Arc::new(Int64Array::from(cut.sessions)))
    }
}

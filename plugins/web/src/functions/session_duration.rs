//! `session_duration(ts, max_gap_seconds) OVER (PARTITION BY ... ORDER BY ts)`: the length in
//! seconds of the session each row belongs to (sessions as `sessionize` cuts them), so every
//! row can be compared with its whole session.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Builder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{PartitionEvaluator, Signature, Volatility, WindowUDFImpl};

use super::sessionize::{SessionCut, cut_sessions};

/// The `session_duration` window function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SessionDuration {
    signature: Signature,
}

impl SessionDuration {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::user_defined(Volatility::Immutable),
                &["ts", "max_gap_seconds"],
            ),
        }
    }
}

impl Default for SessionDuration {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowUDFImpl for SessionDuration {
    fn name(&self) -> &str {
        "session_duration"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        super::sessionize::coerce("session_duration", arg_types)
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(SessionDurationEvaluator))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            true,
        )))
    }
}

#[derive(Debug)]
struct SessionDurationEvaluator;

impl PartitionEvaluator for SessionDurationEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let SessionCut {
            sessions,
            ts,
            units_per_second,
        } = cut_sessions("session_duration", values, num_rows)?;
        // First and last timestamp of each session (sessions are numbered 1.. in row order).
        let count = sessions.iter().flatten().max().copied().unwrap_or(0) as usize;
        let mut bounds = vec![(i64::MAX, i64::MIN); count];
        for (s, t) in sessions.iter().zip(&ts) {
            if let (Some(s), Some(t)) = (s, t) {
                let b = &mut bounds[*s as usize - 1];
                b.0 = b.0.min(*t);
                b.1 = b.1.max(*t);
            }
        }
        let mut out = Float64Builder::with_capacity(num_rows);
        for s in &sessions {
            out.append_option(s.map(|s| {
                let (first, last) = bounds[s as usize - 1];
                (last - first) as f64 / units_per_second
            }));
        }
        Ok(Arc::new(out.finish()))
    }
}

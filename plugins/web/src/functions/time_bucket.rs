//! Time buckets over epoch seconds, the unit web logs and event streams carry:
//! `time_bucket(seconds, width)` puts each event in its bucket. The udtfs bundle's table
//! function `time_buckets(start, stop, width)` lists every bucket of a range with the same
//! alignment, so that a chart of counts per bucket can show the empty ones too.
//!
//! A bucket is `[b, b + width)` with `b` a multiple of `width` (buckets are aligned to the
//! epoch, whatever the range); DataFusion's `date_bin` does this for timestamps, not for
//! integer seconds.

use std::sync::Arc;

use crate::time_buckets::bucket_of;
use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::compute::kernels::arity::{try_binary, try_unary};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_int64_array;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// The `time_bucket(seconds, width)` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TimeBucket {
    signature: Signature,
}

impl TimeBucket {
    pub fn new() -> Self {
        Self {
            signature: super::with_names(
                Signature::exact(
                    vec![DataType::Int64, DataType::Int64],
                    Volatility::Immutable,
                ),
                &["seconds", "width"],
            ),
        }
    }
}

impl Default for TimeBucket {
    fn default() -> Self {
        Self::new()
    }
}

fn int64(value: &ScalarValue) -> Result<Option<i64>> {
    match value {
        ScalarValue::Int64(v) => Ok(*v),
        ScalarValue::Null => Ok(None),
        other => exec_err!(
            "time_bucket expects Int64 arguments, got {}",
            other.data_type()
        ),
    }
}

impl ScalarUDFImpl for TimeBucket {
    fn name(&self) -> &str {
        "time_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [seconds, width] = args.args.as_slice() else {
            return exec_err!("time_bucket expects 2 arguments, got {}", args.args.len());
        };
        let out: Int64Array = match (seconds, width) {
            (ColumnarValue::Scalar(s), ColumnarValue::Scalar(w)) => {
                let bucket = match (int64(s)?, int64(w)?) {
                    (Some(s), Some(w)) => Some(bucket_of(s, w)?),
                    _ => None,
                };
                return Ok(ColumnarValue::Scalar(ScalarValue::Int64(bucket)));
            }
            // The common case, `time_bucket(ts, 300)`: one width for the whole batch.
            (ColumnarValue::Array(s), ColumnarValue::Scalar(w)) => match int64(w)? {
                Some(w) => try_unary(as_int64_array(s)?, |s| bucket_of(s, w))?,
                None => Int64Array::new_null(s.len()),
            },
            (s, w) => {
                let rows = args.number_rows;
                let (s, w) = (s.to_array(rows)?, w.to_array(rows)?);
                try_binary(as_int64_array(&s)?, as_int64_array(&w)?, bucket_of)?
            }
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

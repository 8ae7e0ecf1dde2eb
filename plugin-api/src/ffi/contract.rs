//! What a scalar function's result must be, checked on both sides of the boundary: by the
//! toolkit's guard in the bundle (so the error names the bundle and object) and by the host
//! (for bundles not written with the toolkit). Without it DataFusion reports a wrong result as
//! an internal error "likely caused by a bug in DataFusion's code", or, for a type it did not
//! check, fails later far from the cause.

use std::borrow::Cow;

use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::ColumnarValue;

/// Fails unless `value` holds one value per row (`rows`) of type `expected`. `who` names the
/// function in the error, e.g. "scalar function 'f' of plugin bundle 'b'".
pub fn check_scalar_result(
    who: &dyn std::fmt::Display,
    rows: usize,
    expected: &DataType,
    value: &ColumnarValue,
) -> Result<()> {
    // Runs on every batch, twice (bundle and host): an array's type is borrowed, not cloned.
    let (len, found) = match value {
        ColumnarValue::Array(a) => (a.len(), Cow::Borrowed(a.data_type())),
        ColumnarValue::Scalar(s) => (rows, Cow::Owned(s.data_type())),
    };
    if len != rows {
        return Err(DataFusionError::Execution(format!(
            "{who} returned {len} value(s) for a batch of {rows} row(s); a scalar function must return one value per row (a bug in the bundle)"
        )));
    }
    if found.as_ref() != expected {
        return Err(DataFusionError::Execution(format!(
            "{who} returned values of type {found} where its return type says {expected} (a bug in the bundle)"
        )));
    }
    Ok(())
}

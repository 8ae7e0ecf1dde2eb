//! Time buckets over epoch seconds, the unit web logs and event streams carry:
//! `time_bucket(seconds, width)` puts each event in its bucket. The udtfs bundle's table
//! function `time_buckets(start, stop, width)` lists every bucket of a range with the same
//! alignment, so that a chart of counts per bucket can show the empty ones too.
//!
//! A bucket is `[b, b + width)` with `b` a multiple of `width` (buckets are aligned to the
//! epoch, whatever the range); DataFusion's `date_bin` does this for timestamps, not for
//! integer seconds.
//!
//! A function of a few instructions a row, written over values
//! ([`df_plugin_api::toolkit::values`]): a host of plugin ABI 1.14 calls its loop on the
//! batch's values, and the bundle builds no arrays (see `bench/JOURNAL.md` for what that
//! saves).

use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};
use df_plugin_api::toolkit::values::ValuesUDF;

use crate::time_buckets::bucket_of;

/// The `time_bucket(seconds, width)` scalar function: null where either argument is null, an
/// error for a width that is not positive.
pub fn time_bucket() -> ScalarUDF {
    let udf = ValuesUDF::binary::<Int64Type, Int64Type, Int64Type, _, _>(
        "time_bucket",
        Volatility::Immutable,
        bucket_of,
    );
    let signature = Signature::exact(
        vec![DataType::Int64, DataType::Int64],
        Volatility::Immutable,
    );
    udf.with_signature(super::with_names(signature, &["seconds", "width"]))
        .into()
}

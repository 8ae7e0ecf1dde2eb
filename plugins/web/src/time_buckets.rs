//! `time_buckets(start, stop, width)`: every bucket of a range, so that a chart of counts per
//! bucket can show the empty ones too (`time_buckets(...) LEFT JOIN counts`).
//!
//! A bucket is `[b, b + width)` with `b` a multiple of `width`, aligned to the epoch as the udfs
//! bundle's `time_bucket(seconds, width)` aligns them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use df_plugin_api::toolkit::source::{
    ScanRequest, SourceScan, SourceTable, TableSource, stream_of,
};

/// The start of the bucket of `width` seconds that holds `seconds`; an error for a width that
/// is not positive and for a bucket before the first representable second. The udfs bundle's
/// `time_bucket` calls it per row, from another crate: hence `#[inline]`.
#[inline]
pub fn bucket_of(seconds: i64, width: i64) -> Result<i64, ArrowError> {
    if width <= 0 {
        return Err(ArrowError::InvalidArgumentError(format!(
            "time_bucket: the width must be a positive number of seconds, got {width}"
        )));
    }
    seconds.checked_sub(seconds.rem_euclid(width)).ok_or_else(|| {
        ArrowError::ComputeError(format!(
            "time_bucket: the bucket of {seconds} (width {width}) is before the first Int64 second"
        ))
    })
}

/// The `time_buckets(start, stop, width)` table function: one row
/// `(bucket_start, bucket_end)` per bucket that meets `[start, stop)`, generated batch by
/// batch as the scan pulls them (a range of a billion buckets costs no memory up front). A
/// table source: the udtfs bundle exports it without DataFusion's plans.
#[derive(Debug)]
pub struct TimeBuckets;

impl TableSource for TimeBuckets {
    fn call(&self, args: &[ScalarValue]) -> Result<Arc<dyn SourceTable>> {
        let values: Vec<Option<i64>> = args
            .iter()
            .map(|v| match v {
                ScalarValue::Null => Ok(None),
                v if v.data_type().is_integer() => match v.cast_to(&DataType::Int64)? {
                    ScalarValue::Int64(v) => Ok(v),
                    _ => plan_err!("time_buckets expects integer arguments, got {v}"),
                },
                v => plan_err!("time_buckets expects integer arguments, got {v}"),
            })
            .collect::<Result<_>>()?;
        let [start, stop, width] = values.as_slice() else {
            return plan_err!(
                "time_buckets expects 3 arguments (start, stop, width), got {}",
                values.len()
            );
        };
        let range = match (start, stop, width) {
            (Some(start), Some(stop), Some(width)) => {
                if *width <= 0 {
                    return plan_err!(
                        "time_buckets: the width must be a positive number of seconds, got {width}"
                    );
                }
                let first = bucket_of(*start, *width)?;
                // Buckets are counted in i128: `stop - first` may not fit an i64. An empty
                // range has no buckets, even where `first` (aligned down) is below `stop`.
                let span = (i128::from(*stop) - i128::from(first)) as u128;
                let count = if stop <= start {
                    0
                } else {
                    span.div_ceil(*width as u128)
                };
                Some(BucketRange {
                    first,
                    width: *width,
                    count: u64::try_from(count).unwrap_or(u64::MAX),
                })
            }
            // A NULL bound or width: no buckets, as `generate_series` gives no rows.
            _ => None,
        };
        Ok(Arc::new(TimeBucketsTable {
            range: range.unwrap_or(BucketRange {
                first: 0,
                width: 1,
                count: 0,
            }),
        }))
    }
}

/// `count` buckets of `width` seconds from `first`.
#[derive(Debug, Clone, Copy)]
struct BucketRange {
    first: i64,
    width: i64,
    count: u64,
}

#[derive(Debug)]
struct TimeBucketsTable {
    range: BucketRange,
}

fn buckets_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("bucket_start", DataType::Int64, false),
        Field::new("bucket_end", DataType::Int64, false),
    ]))
}

impl SourceTable for TimeBucketsTable {
    fn schema(&self) -> SchemaRef {
        buckets_schema()
    }

    fn scan(&self, request: &ScanRequest) -> Result<Arc<dyn SourceScan>> {
        let rows = request
            .limit
            .map_or(self.range.count, |l| self.range.count.min(l as u64));
        let batch_size = request.batch_size.max(1) as u64;
        // Contiguous slices, one per partition, each a whole number of batches.
        let batches = rows.div_ceil(batch_size);
        let partitions = (request.target_partitions as u64).clamp(1, batches.max(1));
        Ok(Arc::new(BucketScan {
            range: self.range,
            rows,
            // In u128: a range may hold close to 2^64 buckets, a whole number of batches more.
            per_partition: u128::from(batches.div_ceil(partitions)) * u128::from(batch_size),
            partitions: partitions as usize,
            batch_size,
            request: request.clone(),
        }))
    }
}

/// A scan of the first `rows` buckets of a range, `per_partition` in each partition.
#[derive(Debug)]
struct BucketScan {
    range: BucketRange,
    rows: u64,
    per_partition: u128,
    partitions: usize,
    batch_size: u64,
    request: ScanRequest,
}

impl SourceScan for BucketScan {
    fn partitions(&self) -> usize {
        self.partitions
    }

    fn execute(&self, partition: usize) -> Result<SendableRecordBatchStream> {
        // Below `rows`, so back in u64.
        let bound = |p: u128| (p * self.per_partition).min(u128::from(self.rows)) as u64;
        let (from, end) = (bound(partition as u128), bound(partition as u128 + 1));
        let BucketRange { first, width, .. } = self.range;
        let (batch_size, request) = (self.batch_size, self.request.clone());
        let schema = buckets_schema();
        let projected = request.projected_schema(&schema)?;
        let batches = (from..end).step_by(batch_size as usize).map(move |next| {
            let to = end.min(next.saturating_add(batch_size));
            // Clamped: the last bucket of a range that ends near i64::MAX ends there.
            let clamp = |v: i128| v.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
            let start_of = |i: u64| clamp(i128::from(first) + i128::from(i) * i128::from(width));
            let starts = Int64Array::from_iter_values((next..to).map(start_of));
            let ends = Int64Array::from_iter_values(
                starts.values().iter().map(|s| s.saturating_add(width)),
            );
            let columns: Vec<ArrayRef> = vec![Arc::new(starts), Arc::new(ends)];
            request.project(RecordBatch::try_new(SchemaRef::clone(&schema), columns)?)
        });
        Ok(stream_of(projected, batches))
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_of;

    #[test]
    fn buckets_floor_towards_minus_infinity() {
        assert_eq!(bucket_of(0, 300).ok(), Some(0));
        assert_eq!(bucket_of(299, 300).ok(), Some(0));
        assert_eq!(bucket_of(300, 300).ok(), Some(300));
        assert_eq!(bucket_of(-1, 300).ok(), Some(-300));
        assert!(bucket_of(i64::MIN, 300).is_err());
        assert!(bucket_of(1, 0).is_err());
        assert!(bucket_of(1, -5).is_err());
    }
}

//! `time_buckets(start, stop, width)`: every bucket of a range, so that a chart of counts per
//! bucket can show the empty ones too (`time_buckets(...) LEFT JOIN counts`).
//!
//! A bucket is `[b, b + width)` with `b` a multiple of `width`, aligned to the epoch as the udfs
//! bundle's `time_bucket(seconds, width)` aligns them.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::memory::{LazyBatchGenerator, LazyMemoryExec};
use parking_lot::RwLock;

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
/// batch as the scan pulls them (a range of a billion buckets costs no memory up front).
#[derive(Debug)]
pub struct TimeBuckets;

impl TableFunctionImpl for TimeBuckets {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let values: Vec<Option<i64>> = args
            .exprs()
            .iter()
            .map(|e| match e {
                Expr::Literal(ScalarValue::Null, _) => Ok(None),
                Expr::Literal(v, _) if v.data_type().is_integer() => {
                    match v.cast_to(&DataType::Int64)? {
                        ScalarValue::Int64(v) => Ok(v),
                        _ => plan_err!("time_buckets expects integer arguments, got {v}"),
                    }
                }
                Expr::Literal(v, _) => plan_err!("time_buckets expects integer arguments, got {v}"),
                other => plan_err!(
                    "time_buckets expects constant arguments (start, stop, width), got {other}"
                ),
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

#[async_trait]
impl TableProvider for TimeBucketsTable {
    fn schema(&self) -> SchemaRef {
        buckets_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let config = state.config();
        let rows = limit.map_or(self.range.count, |l| self.range.count.min(l as u64));
        let batch_size = config.batch_size().max(1) as u64;
        // Contiguous slices, one per partition, each a whole number of batches.
        let batches = rows.div_ceil(batch_size);
        let partitions = (config.target_partitions() as u64).clamp(1, batches.max(1));
        let per_partition = batches.div_ceil(partitions) * batch_size;
        let generators = (0..partitions)
            .map(|p| {
                let from = (p * per_partition).min(rows);
                let to = ((p + 1) * per_partition).min(rows);
                Arc::new(RwLock::new(BucketGenerator {
                    range: self.range,
                    from,
                    next: from,
                    end: to,
                    batch_size,
                })) as Arc<RwLock<dyn LazyBatchGenerator>>
            })
            .collect();
        let exec = LazyMemoryExec::try_new(buckets_schema(), generators)?
            .with_projection(projection.cloned());
        Ok(Arc::new(exec))
    }
}

/// Generates buckets `from..end` (indices into the range) of one partition; `next` is the
/// first one not generated yet.
#[derive(Debug, Clone)]
struct BucketGenerator {
    range: BucketRange,
    from: u64,
    next: u64,
    end: u64,
    batch_size: u64,
}

impl fmt::Display for BucketGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "time_buckets: first={}, width={}, buckets={}..{}",
            self.range.first, self.range.width, self.next, self.end
        )
    }
}

impl LazyBatchGenerator for BucketGenerator {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn generate_next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.next >= self.end {
            return Ok(None);
        }
        let to = self.end.min(self.next + self.batch_size);
        let BucketRange { first, width, .. } = self.range;
        // Clamped: the last bucket of a range that ends near i64::MAX ends there.
        let clamp = |v: i128| v.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
        let start_of = |i: u64| clamp(i128::from(first) + i128::from(i) * i128::from(width));
        let starts = Int64Array::from_iter_values((self.next..to).map(start_of));
        let ends =
            Int64Array::from_iter_values(starts.values().iter().map(|s| s.saturating_add(width)));
        self.next = to;
        let columns: Vec<ArrayRef> = vec![Arc::new(starts), Arc::new(ends)];
        Ok(Some(RecordBatch::try_new(buckets_schema(), columns)?))
    }

    fn reset_state(&self) -> Arc<RwLock<dyn LazyBatchGenerator>> {
        Arc::new(RwLock::new(Self {
            next: self.from,
            ..self.clone()
        }))
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

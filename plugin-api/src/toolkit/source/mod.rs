//! Table sources: table functions whose tables are batches and nothing else (plugin ABI 1.15).
//!
//! A table function exported through datafusion-ffi returns an `FFI_TableProvider`, whose scan
//! returns an `FFI_ExecutionPlan`: exporting one links DataFusion's physical plans, physical
//! expressions and Arrow's compute kernels into the bundle, 74 MB stripped before the first line
//! of its own code (`bench/floor/ffi`). Most table functions are generators (a range, the rows
//! of a parsed value, a remote listing) that only ever make batches. A table source is that and
//! no more:
//!
//! - [`TableSource::call`] makes a table from the call's constant arguments;
//! - [`SourceTable::scan`] is told the columns, row limit, batch size and partition count the
//!   query wants, and answers with a [`SourceScan`]: a number of partitions, each a stream of
//!   batches.
//!
//! The plan around it is the host's ([`SourceTableFunction`], [`SourceExec`]), so a bundle of
//! table sources links no `ExecutionPlan` and weighs what a bundle of functions weighs. Tests
//! and benchmarks register a source natively through the same [`SourceTableFunction`], so the
//! two differ only by the crossing ([`crate::ffi::table_source`]).
//!
//! ```ignore
//! bundle.table_source("time_buckets", Arc::new(TimeBuckets));
//! ```

mod exec;

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

pub use exec::{MAX_PARTITIONS, SourceExec, SourceTableFunction, SourceTableProvider};

/// A table function over constant arguments: `SELECT * FROM name(1, 'a')`.
pub trait TableSource: Debug + Send + Sync {
    /// The table of one call. `args` are the call's arguments, constant-folded by the host;
    /// say what is wrong with them in a plan error (`plan_err!`).
    fn call(&self, args: &[ScalarValue]) -> Result<Arc<dyn SourceTable>>;
}

/// The table one call made.
pub trait SourceTable: Debug + Send + Sync {
    /// Every column of the table. Asked once per call.
    fn schema(&self) -> SchemaRef;

    /// Plans a scan. The scan's streams must have [`ScanRequest::projected_schema`]'s
    /// columns; the host checks each stream's schema before it reads a batch.
    fn scan(&self, request: &ScanRequest) -> Result<Arc<dyn SourceScan>>;
}

/// A planned scan: its partitions, each a stream of batches, run in parallel by the host.
pub trait SourceScan: Debug + Send + Sync {
    /// How many partitions [`SourceScan::execute`] takes (at least one; a table with no rows
    /// answers one partition with no batches).
    fn partitions(&self) -> usize;

    /// The batches of `partition` (below [`SourceScan::partitions`]). Called again when a
    /// query runs the plan again, so it starts from the first batch each time.
    fn execute(&self, partition: usize) -> Result<SendableRecordBatchStream>;
}

/// What a query wants of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// The columns, by index into [`SourceTable::schema`], in this order; `None` for all.
    pub projection: Option<Vec<usize>>,
    /// At most this many rows are read (the host still applies the limit itself).
    pub limit: Option<usize>,
    /// The session's `datafusion.execution.batch_size` (at least 1).
    pub batch_size: usize,
    /// The session's `datafusion.execution.target_partitions` (at least 1). A scan may plan
    /// more or fewer partitions, up to [`MAX_PARTITIONS`].
    pub target_partitions: usize,
}

impl ScanRequest {
    /// `schema` with the requested columns only.
    pub fn projected_schema(&self, schema: &SchemaRef) -> Result<SchemaRef> {
        match &self.projection {
            Some(columns) => Ok(Arc::new(schema.project(columns)?)),
            None => Ok(SchemaRef::clone(schema)),
        }
    }

    /// `batch` (of every column) with the requested columns only.
    pub fn project(&self, batch: RecordBatch) -> Result<RecordBatch> {
        match &self.projection {
            Some(columns) => Ok(batch.project(columns)?),
            None => Ok(batch),
        }
    }
}

/// A stream of `schema` over an iterator of batches: how a generator answers
/// [`SourceScan::execute`].
pub fn stream_of(
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>> + Send + 'static,
) -> SendableRecordBatchStream {
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(batches),
    ))
}

/// A table of one batch held in memory, scanned as one partition: for a table function whose
/// rows are computed whole at the call (the parts of a URL, the entries of a document).
#[derive(Debug, Clone)]
pub struct BatchTable {
    batch: RecordBatch,
}

impl BatchTable {
    pub fn new(batch: RecordBatch) -> Arc<Self> {
        Arc::new(Self { batch })
    }
}

impl SourceTable for BatchTable {
    fn schema(&self) -> SchemaRef {
        self.batch.schema()
    }

    fn scan(&self, request: &ScanRequest) -> Result<Arc<dyn SourceScan>> {
        let rows = request
            .limit
            .map_or(self.batch.num_rows(), |l| l.min(self.batch.num_rows()));
        let batch = request.project(self.batch.slice(0, rows))?;
        Ok(Arc::new(BatchScan { batch }))
    }
}

/// [`BatchTable`]'s scan: its one batch, projected and limited.
#[derive(Debug)]
struct BatchScan {
    batch: RecordBatch,
}

impl SourceScan for BatchScan {
    fn partitions(&self) -> usize {
        1
    }

    fn execute(&self, _partition: usize) -> Result<SendableRecordBatchStream> {
        let batch = self.batch.clone();
        Ok(stream_of(batch.schema(), std::iter::once(Ok(batch))))
    }
}

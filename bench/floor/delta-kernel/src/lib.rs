//! What a Delta bundle would weigh if its Delta code used no DataFusion: a table source (plugin
//! ABI 1.15) that reads a Delta table with delta-kernel's default engine, its change data feed,
//! and an append through kernel transactions, over local, S3, GCS and Azure stores.
//!
//! The Delta bundle cannot be this small today: it uses delta-rs 1.1's `DeltaTableProvider`,
//! and delta-rs enables DataFusion's default features (`bench/floor/delta`, 147.6 MB stripped).
//! This crate is the other design's size before its first line of this project's code: the
//! kernel resolves the snapshot (log replay, checkpoints, deletion vectors, column mapping) and
//! reads Parquet with arrow-rs, and only batches cross. The benchmark reports its stripped size
//! next to the Delta bundle's (`bench/src/sizes.rs`); nothing loads it.
//!
//! Left out, because each is small next to the kernel: time travel by timestamp, `delta_history`
//! (the kernel's log reader already reads commit files), turning filters into kernel predicates
//! (the predicate evaluator is linked by the scan itself), writes split by partition (the
//! kernel's partitioned write context is a sibling of the one used here) and the
//! `STORED AS DELTA` factory.

use std::collections::HashMap;
use std::ffi::{CStr, c_char};
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ffi_stream::{ArrowArrayStreamReader, FFI_ArrowArrayStream};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_conversion::TryIntoArrow;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::table_changes::TableChanges;
use delta_kernel::transaction::CommitResult;
use delta_kernel::{DeltaResult, Engine, EngineData, Snapshot, SnapshotRef};
use delta_kernel_engine::executor::tokio::TokioBackgroundExecutor;
use delta_kernel_engine::{DefaultEngine, DefaultEngineBuilder};
use df_plugin_api::ffi::table_source::FFI_TableSource;
use df_plugin_api::toolkit::panic::{BundleTag, ObjectLabel};
use df_plugin_api::toolkit::source::{
    ScanRequest, SourceScan, SourceTable, TableSource, stream_of,
};
use url::Url;

type KernelEngine = DefaultEngine<TokioBackgroundExecutor>;

fn kernel_error(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The engine for the table at `url`: its object store from the storage `options`.
fn engine_for(url: &Url, options: &HashMap<String, String>) -> Result<Arc<KernelEngine>> {
    let (store, _) = object_store::parse_url_opts(url, options).map_err(kernel_error)?;
    Ok(Arc::new(
        DefaultEngineBuilder::new(Arc::from(store)).build(),
    ))
}

/// `delta_kernel(location [, changes_from_version])`: the table, or its change data feed.
#[derive(Debug)]
struct KernelDelta;

impl TableSource for KernelDelta {
    fn call(&self, args: &[ScalarValue]) -> Result<Arc<dyn SourceTable>> {
        let Some(ScalarValue::Utf8(Some(location))) = args.first() else {
            return plan_err!("delta_kernel needs a table location");
        };
        let url = Url::parse(location).map_err(kernel_error)?;
        let engine = engine_for(&url, &HashMap::new())?;
        let snapshot = Snapshot::builder_for(url.as_str())
            .build(engine.as_ref())
            .map_err(kernel_error)?;
        let changes_from = match args.get(1) {
            Some(ScalarValue::Int64(Some(v))) => Some(u64::try_from(*v).map_err(kernel_error)?),
            _ => None,
        };
        let schema = snapshot.schema();
        let schema: Schema = schema.as_ref().try_into_arrow()?;
        Ok(Arc::new(KernelTable {
            url,
            engine,
            snapshot,
            changes_from,
            schema: Arc::new(schema),
        }))
    }
}

#[derive(Debug)]
struct KernelTable {
    url: Url,
    engine: Arc<KernelEngine>,
    snapshot: SnapshotRef,
    changes_from: Option<u64>,
    schema: SchemaRef,
}

impl KernelTable {
    fn read(&self, columns: &[String]) -> Result<Vec<RecordBatch>> {
        let engine: Arc<dyn Engine> = self.engine.clone();
        let chunks: Vec<Box<dyn EngineData>> = match self.changes_from {
            None => {
                let schema = self
                    .snapshot
                    .schema()
                    .project(columns)
                    .map_err(kernel_error)?;
                let scan = Arc::clone(&self.snapshot)
                    .scan_builder()
                    .with_schema(schema)
                    .build()
                    .map_err(kernel_error)?;
                all_chunks(scan.execute(engine))?
            }
            Some(start) => {
                let changes = TableChanges::try_new(self.url.clone(), engine.as_ref(), start, None)
                    .map_err(kernel_error)?;
                let scan = Arc::new(changes)
                    .scan_builder()
                    .build()
                    .map_err(kernel_error)?;
                all_chunks(scan.execute(engine))?
            }
        };
        chunks
            .into_iter()
            .map(|chunk| {
                let data = ArrowEngineData::try_from_engine_data(chunk).map_err(kernel_error)?;
                Ok(data.record_batch().clone())
            })
            .collect()
    }
}

/// Every chunk a kernel scan (of the table or of its changes) reads.
fn all_chunks(
    chunks: DeltaResult<impl Iterator<Item = DeltaResult<Box<dyn EngineData>>>>,
) -> Result<Vec<Box<dyn EngineData>>> {
    chunks
        .map_err(kernel_error)?
        .collect::<DeltaResult<_>>()
        .map_err(kernel_error)
}

impl SourceTable for KernelTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn scan(&self, request: &ScanRequest) -> Result<Arc<dyn SourceScan>> {
        let schema = request.projected_schema(&self.schema)?;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let batches = self.read(&columns)?;
        Ok(Arc::new(KernelScan { schema, batches }))
    }
}

#[derive(Debug)]
struct KernelScan {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl SourceScan for KernelScan {
    fn partitions(&self) -> usize {
        1
    }

    fn execute(&self, _partition: usize) -> Result<SendableRecordBatchStream> {
        let batches = self.batches.clone().into_iter().map(Ok);
        Ok(stream_of(Arc::clone(&self.schema), batches))
    }
}

/// Appends the batches of `stream` to the table at `location` as one commit.
fn append(location: &str, stream: ArrowArrayStreamReader) -> Result<u64> {
    let url = Url::parse(location).map_err(kernel_error)?;
    let engine = engine_for(&url, &HashMap::new())?;
    let snapshot = Snapshot::builder_for(url.as_str())
        .build(engine.as_ref())
        .map_err(kernel_error)?;
    let mut transaction = snapshot
        .transaction(Box::new(FileSystemCommitter::new()), engine.as_ref())
        .map_err(kernel_error)?
        .with_engine_info("df-plugin size floor");
    let write = transaction.write_state().map_err(kernel_error)?;
    let context = write.unpartitioned_write_context().map_err(kernel_error)?;
    for batch in stream {
        let data = ArrowEngineData::new(batch?);
        let added = futures::executor::block_on(engine.write_parquet(&data, &context))
            .map_err(kernel_error)?;
        transaction.add_files(added);
    }
    match transaction.commit(engine.as_ref()).map_err(kernel_error)? {
        CommitResult::CommittedTransaction(done) => Ok(done.commit_version()),
        _ => plan_err!("another writer committed first; run the append again"),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn size_floor_delta_kernel() -> FFI_TableSource {
    let bundle = BundleTag::new("size-floor-delta-kernel", None);
    let label = ObjectLabel::new(&bundle, "table function", "delta_kernel");
    FFI_TableSource::new(Arc::new(KernelDelta), label, None)
}

/// Appends `stream` to the table at `location`; the new version, or -1 on error.
///
/// # Safety
/// `location` must be a NUL-terminated string and `stream` a valid Arrow C stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn size_floor_delta_kernel_append(
    location: *const c_char,
    stream: *mut FFI_ArrowArrayStream,
) -> i64 {
    // SAFETY: the caller's contract.
    let (location, stream) = unsafe {
        (
            CStr::from_ptr(location).to_string_lossy(),
            ArrowArrayStreamReader::from_raw(stream),
        )
    };
    stream
        .map_err(DataFusionError::from)
        .and_then(|stream| append(&location, stream))
        .map_or(-1, |v| i64::try_from(v).unwrap_or(-1))
}

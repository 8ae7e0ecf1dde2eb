//! `FFI_TableSource`, `FFI_SourceTable`, `FFI_SourceScan`: a table source across the boundary
//! (plugin ABI 1.15; see [`crate::toolkit::source`] for why the kind exists).
//!
//! What crosses is what a generated table needs and no more: the call's constant arguments as
//! one-row arrays through the C data interface, the table's schema once, the scan request as
//! plain values, and per partition an [`FFI_BatchStream`] whose fixed-width columns cross as
//! their buffers (as the plan runner's streams do since 1.7). No DataFusion plan or expression
//! crosses, so the bundle side of this module links none.
//!
//! Each struct follows datafusion-ffi's shape: `extern "C"` fns, `clone`, `release`,
//! `private_data` and `library_marker_id`, made by `FFI_X::new` in the bundle and used through
//! `ForeignX` in the host. Every bundle-side call runs inside the bundle's runtime and under the
//! object's panic guard, so a panic becomes an error naming the bundle and the function.

use std::ffi::c_void;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ffi::FFI_ArrowSchema;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion_ffi::arrow_wrappers::{WrappedArray, WrappedSchema};
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use stabby::vec::Vec as SVec;
use tokio::runtime::Handle;

use super::batch_stream::{FFI_BatchBuffers, FFI_BatchStream, ForeignBatchStream};
use crate::toolkit::guard::table::GuardedStream;
use crate::toolkit::panic::{ObjectLabel, guard, guard_or};
use crate::toolkit::source::{ScanRequest, SourceScan, SourceTable, TableSource};

/// The plugin ABI minor that added table sources: a bundle of this minor or later exports them
/// through [`super::INIT_WITH_TABLE_SOURCES_SYMBOL`].
pub const TABLE_SOURCES_MINOR: u16 = 15;

/// What every struct of this module keeps behind `private_data`: the object, who it is (for
/// its panic guard) and the bundle runtime its calls enter.
struct Private<T: ?Sized> {
    object: Arc<T>,
    label: Arc<ObjectLabel>,
    runtime: Option<Handle>,
}

impl<T: ?Sized> Private<T> {
    fn new_raw(object: Arc<T>, label: Arc<ObjectLabel>, runtime: Option<Handle>) -> *mut c_void {
        Box::into_raw(Box::new(Self {
            object,
            label,
            runtime,
        })) as *mut c_void
    }

    /// # Safety
    /// `data` is the `private_data` [`Private::new_raw`] made for a `T`, not yet released.
    unsafe fn get<'a>(data: *mut c_void) -> &'a Self {
        // SAFETY: the caller's contract.
        unsafe { &*(data as *const Self) }
    }

    /// A copy for a cloned struct.
    fn clone_raw(&self) -> *mut c_void {
        Self::new_raw(
            Arc::clone(&self.object),
            Arc::clone(&self.label),
            self.runtime.clone(),
        )
    }

    /// # Safety
    /// As [`Private::get`]; `*data` is cleared, so a second release does nothing.
    unsafe fn release(data: &mut *mut c_void) {
        if data.is_null() {
            return;
        }
        // SAFETY: the caller's contract; the pointer is cleared below.
        let private = unsafe { Box::from_raw(*data as *mut Self) };
        *data = std::ptr::null_mut();
        // The object's `Drop` is the author's: a panic in it must not unwind out of the
        // `extern "C"` release into the host.
        let label = Arc::clone(&private.label);
        guard_or(&label, "release", (), || drop(private));
    }

    /// Runs `call` of the object inside the bundle runtime and its panic guard.
    fn run<R>(&self, call: &str, f: impl FnOnce(&T) -> Result<R>) -> FFI_Result<R> {
        let _entered = self.runtime.as_ref().map(Handle::enter);
        match guard(&self.label, call, || f(&self.object)) {
            Ok(v) => FFI_Result::Ok(v),
            Err(e) => FFI_Result::Err(e.to_string().as_str().into()),
        }
    }
}

/// An error the bundle sent, with its variant rebuilt from the message ([`super::errors`]):
/// it reads as the same source's error would natively.
fn crossed(message: impl fmt::Display) -> DataFusionError {
    super::errors::native(DataFusionError::Ffi(message.to_string()))
}

/// A [`TableSource`]: a table function over constant arguments.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_TableSource {
    /// The table of one call; `args` are one-row arrays, one per argument.
    pub call: unsafe extern "C" fn(
        source: &Self,
        args: SVec<WrappedArray>,
    ) -> FFI_Result<FFI_SourceTable>,
    pub clone: unsafe extern "C" fn(source: &Self) -> Self,
    pub release: unsafe extern "C" fn(source: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
}

// SAFETY: the private data is `Send + Sync` (`Arc`s of `Send + Sync` objects, a runtime handle).
unsafe impl Send for FFI_TableSource {}
unsafe impl Sync for FFI_TableSource {}

impl FFI_TableSource {
    /// Exports `source`; `label` names it in its errors and `runtime` is entered by its calls.
    pub fn new(
        source: Arc<dyn TableSource>,
        label: Arc<ObjectLabel>,
        runtime: Option<Handle>,
    ) -> Self {
        Self {
            call: call_fn_wrapper,
            clone: clone_source_fn_wrapper,
            release: release_source_fn_wrapper,
            private_data: Private::new_raw(source, label, runtime),
            library_marker_id: super::library_marker_id,
        }
    }
}

unsafe extern "C" fn call_fn_wrapper(
    source: &FFI_TableSource,
    args: SVec<WrappedArray>,
) -> FFI_Result<FFI_SourceTable> {
    // SAFETY: made by `FFI_TableSource::new` in this image.
    let data = unsafe { Private::<dyn TableSource>::get(source.private_data) };
    data.run("call", |s| {
        let args = args
            .into_iter()
            .map(ScalarValue::try_from)
            .collect::<Result<Vec<_>>>()?;
        let table = s.call(&args)?;
        Ok(FFI_SourceTable::new(
            table,
            Arc::clone(&data.label),
            data.runtime.clone(),
        ))
    })
}

unsafe extern "C" fn clone_source_fn_wrapper(source: &FFI_TableSource) -> FFI_TableSource {
    // SAFETY: made by `FFI_TableSource::new` in this image.
    let data = unsafe { Private::<dyn TableSource>::get(source.private_data) };
    FFI_TableSource {
        private_data: data.clone_raw(),
        ..*source
    }
}

unsafe extern "C" fn release_source_fn_wrapper(source: &mut FFI_TableSource) {
    // SAFETY: made by `FFI_TableSource::new` in this image; cleared once released.
    unsafe { Private::<dyn TableSource>::release(&mut source.private_data) }
}

impl Clone for FFI_TableSource {
    fn clone(&self) -> Self {
        // SAFETY: `clone` belongs to the image that made the struct.
        unsafe { (self.clone)(self) }
    }
}

impl Drop for FFI_TableSource {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct.
        unsafe { (self.release)(self) }
    }
}

/// The host side of an [`FFI_TableSource`].
#[derive(Debug)]
pub struct ForeignTableSource(pub FFI_TableSource);

impl TableSource for ForeignTableSource {
    fn call(&self, args: &[ScalarValue]) -> Result<Arc<dyn SourceTable>> {
        let args = args
            .iter()
            .map(WrappedArray::try_from)
            .collect::<Result<SVec<_>>>()?;
        // SAFETY: `call` belongs to the image that made the struct.
        let table = unsafe { (self.0.call)(&self.0, args) }
            .into_result()
            .map_err(crossed)?;
        Ok(Arc::new(ForeignSourceTable::try_new(table)?))
    }
}

/// A [`SourceTable`]: the table one call made.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_SourceTable {
    pub schema: unsafe extern "C" fn(table: &Self) -> FFI_Result<WrappedSchema>,
    /// Plans a scan of the columns `projection` (all when `None`).
    pub scan: unsafe extern "C" fn(
        table: &Self,
        projection: FFI_Option<SVec<usize>>,
        limit: FFI_Option<usize>,
        batch_size: usize,
        target_partitions: usize,
    ) -> FFI_Result<FFI_SourceScan>,
    pub clone: unsafe extern "C" fn(table: &Self) -> Self,
    pub release: unsafe extern "C" fn(table: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
}

// SAFETY: as `FFI_TableSource`.
unsafe impl Send for FFI_SourceTable {}
unsafe impl Sync for FFI_SourceTable {}

impl FFI_SourceTable {
    pub fn new(
        table: Arc<dyn SourceTable>,
        label: Arc<ObjectLabel>,
        runtime: Option<Handle>,
    ) -> Self {
        Self {
            schema: schema_fn_wrapper,
            scan: scan_fn_wrapper,
            clone: clone_table_fn_wrapper,
            release: release_table_fn_wrapper,
            private_data: Private::new_raw(table, label, runtime),
            library_marker_id: super::library_marker_id,
        }
    }
}

unsafe extern "C" fn schema_fn_wrapper(table: &FFI_SourceTable) -> FFI_Result<WrappedSchema> {
    // SAFETY: made by `FFI_SourceTable::new` in this image.
    let data = unsafe { Private::<dyn SourceTable>::get(table.private_data) };
    data.run("schema", |t| {
        Ok(WrappedSchema(FFI_ArrowSchema::try_from(
            t.schema().as_ref(),
        )?))
    })
}

unsafe extern "C" fn scan_fn_wrapper(
    table: &FFI_SourceTable,
    projection: FFI_Option<SVec<usize>>,
    limit: FFI_Option<usize>,
    batch_size: usize,
    target_partitions: usize,
) -> FFI_Result<FFI_SourceScan> {
    // SAFETY: made by `FFI_SourceTable::new` in this image.
    let data = unsafe { Private::<dyn SourceTable>::get(table.private_data) };
    data.run("scan", |t| {
        let request = ScanRequest {
            projection: Option::from(projection).map(|p: SVec<usize>| p.iter().copied().collect()),
            limit: limit.into(),
            // At least 1, as a request the host makes natively is.
            batch_size: batch_size.max(1),
            target_partitions: target_partitions.max(1),
        };
        Ok(FFI_SourceScan::new(
            t.scan(&request)?,
            Arc::clone(&data.label),
            data.runtime.clone(),
        ))
    })
}

unsafe extern "C" fn clone_table_fn_wrapper(table: &FFI_SourceTable) -> FFI_SourceTable {
    // SAFETY: made by `FFI_SourceTable::new` in this image.
    let data = unsafe { Private::<dyn SourceTable>::get(table.private_data) };
    FFI_SourceTable {
        private_data: data.clone_raw(),
        ..*table
    }
}

unsafe extern "C" fn release_table_fn_wrapper(table: &mut FFI_SourceTable) {
    // SAFETY: made by `FFI_SourceTable::new` in this image; cleared once released.
    unsafe { Private::<dyn SourceTable>::release(&mut table.private_data) }
}

impl Clone for FFI_SourceTable {
    fn clone(&self) -> Self {
        // SAFETY: `clone` belongs to the image that made the struct.
        unsafe { (self.clone)(self) }
    }
}

impl Drop for FFI_SourceTable {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct.
        unsafe { (self.release)(self) }
    }
}

/// The host side of an [`FFI_SourceTable`]; the schema crossed once.
#[derive(Debug)]
pub struct ForeignSourceTable {
    table: FFI_SourceTable,
    schema: SchemaRef,
}

impl ForeignSourceTable {
    pub fn try_new(table: FFI_SourceTable) -> Result<Self> {
        // SAFETY: `schema` belongs to the image that made the struct.
        let schema = unsafe { (table.schema)(&table) }
            .into_result()
            .map_err(crossed)?;
        let schema = Schema::try_from(&schema.0).map_err(|e| {
            DataFusionError::Execution(format!(
                "a table function's table has a schema this host cannot read ({e}): the bundle \
                 is broken or was built with another Arrow; rebuild it against this host's \
                 df-plugin-api"
            ))
        })?;
        Ok(Self {
            table,
            schema: Arc::new(schema),
        })
    }
}

impl SourceTable for ForeignSourceTable {
    fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }

    fn scan(&self, request: &ScanRequest) -> Result<Arc<dyn SourceScan>> {
        let projection = match &request.projection {
            Some(columns) => FFI_Option::Some(columns.iter().copied().collect()),
            None => FFI_Option::None,
        };
        // SAFETY: `scan` belongs to the image that made the struct.
        let scan = unsafe {
            (self.table.scan)(
                &self.table,
                projection,
                request.limit.into(),
                request.batch_size,
                request.target_partitions,
            )
        }
        .into_result()
        .map_err(crossed)?;
        Ok(Arc::new(ForeignSourceScan { scan }))
    }
}

/// A [`SourceScan`]: a planned scan's partitions.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_SourceScan {
    /// How many partitions `execute` takes: fixed when the scan is planned, so a plain value.
    pub partitions: usize,
    /// The batches of one partition, its schema crossing once.
    pub execute: unsafe extern "C" fn(
        scan: &Self,
        partition: usize,
    ) -> FFI_Result<FFI_BatchStream<FFI_BatchBuffers>>,
    pub clone: unsafe extern "C" fn(scan: &Self) -> Self,
    pub release: unsafe extern "C" fn(scan: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
}

// SAFETY: as `FFI_TableSource`.
unsafe impl Send for FFI_SourceScan {}
unsafe impl Sync for FFI_SourceScan {}

impl FFI_SourceScan {
    pub fn new(
        scan: Arc<dyn SourceScan>,
        label: Arc<ObjectLabel>,
        runtime: Option<Handle>,
    ) -> Self {
        Self {
            partitions: scan.partitions(),
            execute: execute_fn_wrapper,
            clone: clone_scan_fn_wrapper,
            release: release_scan_fn_wrapper,
            private_data: Private::new_raw(scan, label, runtime),
            library_marker_id: super::library_marker_id,
        }
    }
}

unsafe extern "C" fn execute_fn_wrapper(
    scan: &FFI_SourceScan,
    partition: usize,
) -> FFI_Result<FFI_BatchStream<FFI_BatchBuffers>> {
    // SAFETY: made by `FFI_SourceScan::new` in this image.
    let data = unsafe { Private::<dyn SourceScan>::get(scan.private_data) };
    data.run("execute", |s| {
        // The host checks the stream's schema against the scan's columns, natively too
        // (`SourceExec`), and every batch against the stream's schema as it imports it.
        let stream = s.execute(partition)?;
        let stream: SendableRecordBatchStream = Box::pin(GuardedStream::new(
            stream,
            Arc::clone(&data.label),
            data.runtime.clone(),
        ));
        Ok(FFI_BatchStream::new(stream, None))
    })
}

unsafe extern "C" fn clone_scan_fn_wrapper(scan: &FFI_SourceScan) -> FFI_SourceScan {
    // SAFETY: made by `FFI_SourceScan::new` in this image.
    let data = unsafe { Private::<dyn SourceScan>::get(scan.private_data) };
    FFI_SourceScan {
        private_data: data.clone_raw(),
        ..*scan
    }
}

unsafe extern "C" fn release_scan_fn_wrapper(scan: &mut FFI_SourceScan) {
    // SAFETY: made by `FFI_SourceScan::new` in this image; cleared once released.
    unsafe { Private::<dyn SourceScan>::release(&mut scan.private_data) }
}

impl Clone for FFI_SourceScan {
    fn clone(&self) -> Self {
        // SAFETY: `clone` belongs to the image that made the struct.
        unsafe { (self.clone)(self) }
    }
}

impl Drop for FFI_SourceScan {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct.
        unsafe { (self.release)(self) }
    }
}

/// The host side of an [`FFI_SourceScan`].
#[derive(Debug)]
pub struct ForeignSourceScan {
    scan: FFI_SourceScan,
}

impl SourceScan for ForeignSourceScan {
    fn partitions(&self) -> usize {
        self.scan.partitions
    }

    fn execute(&self, partition: usize) -> Result<SendableRecordBatchStream> {
        // SAFETY: `execute` belongs to the image that made the struct.
        let stream = unsafe { (self.scan.execute)(&self.scan, partition) }
            .into_result()
            .map_err(crossed)?;
        Ok(Box::pin(ForeignBatchStream::try_new(stream)?))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::common::plan_err;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::toolkit::panic::BundleTag;
    use crate::toolkit::source::{MAX_PARTITIONS, SourceTableFunction, stream_of};

    /// `numbers(n[, label])`: rows `(i, label || i)` for `i` in `0..n`, every third label NULL,
    /// in partitions of `batch_size`-row batches, as many as the scan asks for. It records the
    /// requests it was given, and panics where `panic_in` says.
    #[derive(Debug, Default)]
    struct Numbers {
        requests: Arc<Mutex<Vec<ScanRequest>>>,
        panic_in: Option<&'static str>,
        /// Streams of all columns whatever the projection: a bug the host must catch.
        ignore_projection: bool,
        /// Plans this many partitions instead of the request's (which it then cannot run).
        partitions: Option<usize>,
    }

    #[derive(Debug)]
    struct NumbersTable {
        rows: u64,
        label: String,
        panic_in: Option<&'static str>,
        ignore_projection: bool,
        partitions: Option<usize>,
        requests: Arc<Mutex<Vec<ScanRequest>>>,
    }

    #[derive(Debug)]
    struct NumbersScan {
        rows: u64,
        label: String,
        panic_in: Option<&'static str>,
        request: ScanRequest,
        ignore_projection: bool,
        partitions: Option<usize>,
    }

    fn numbers_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, false),
            Field::new("label", DataType::Utf8, true),
        ]))
    }

    impl TableSource for Numbers {
        fn call(&self, args: &[ScalarValue]) -> Result<Arc<dyn SourceTable>> {
            if self.panic_in == Some("call") {
                panic!("boom in call");
            }
            let (rows, label) = match args {
                [ScalarValue::Int64(Some(n))] => (*n, "n".to_owned()),
                [ScalarValue::Int64(Some(n)), ScalarValue::Utf8(Some(l))] => (*n, l.clone()),
                _ => return plan_err!("numbers expects (n: Int64[, label: Utf8]), got {args:?}"),
            };
            Ok(Arc::new(NumbersTable {
                rows: u64::try_from(rows).unwrap_or(0),
                label,
                panic_in: self.panic_in,
                ignore_projection: self.ignore_projection,
                partitions: self.partitions,
                requests: Arc::clone(&self.requests),
            }))
        }
    }

    impl SourceTable for NumbersTable {
        fn schema(&self) -> SchemaRef {
            numbers_schema()
        }

        fn scan(&self, request: &ScanRequest) -> Result<Arc<dyn SourceScan>> {
            if self.panic_in == Some("scan") {
                panic!("boom in scan");
            }
            self.requests.lock().unwrap().push(request.clone());
            Ok(Arc::new(NumbersScan {
                rows: request.limit.map_or(self.rows, |l| self.rows.min(l as u64)),
                label: self.label.clone(),
                panic_in: self.panic_in,
                request: request.clone(),
                ignore_projection: self.ignore_projection,
                partitions: self.partitions,
            }))
        }
    }

    impl SourceScan for NumbersScan {
        fn partitions(&self) -> usize {
            self.partitions.unwrap_or(self.request.target_partitions)
        }

        fn execute(&self, partition: usize) -> Result<SendableRecordBatchStream> {
            if self.panic_in == Some("schema") {
                return Ok(Box::pin(SchemaPanics));
            }
            let n = self.request.target_partitions as u64;
            let (from, to) = (
                self.rows * partition as u64 / n,
                self.rows * (partition as u64 + 1) / n,
            );
            let (label, panics) = (self.label.clone(), self.panic_in == Some("stream"));
            let request = self.request.clone();
            let ignore = self.ignore_projection;
            let step = self.request.batch_size;
            let batches = (from..to).step_by(step).map(move |start| {
                if panics {
                    panic!("boom in stream");
                }
                let end = to.min(start + step as u64);
                let i = Int64Array::from_iter_values((start..end).map(|i| i as i64));
                let labels: StringArray = (start..end)
                    .map(|i| (i % 3 != 0).then(|| format!("{label}{i}")))
                    .collect();
                let batch =
                    RecordBatch::try_new(numbers_schema(), vec![Arc::new(i), Arc::new(labels)])?;
                if ignore {
                    Ok(batch)
                } else {
                    request.project(batch)
                }
            });
            let schema = if ignore {
                numbers_schema()
            } else {
                self.request.projected_schema(&numbers_schema())?
            };
            Ok(stream_of(schema, batches))
        }
    }

    /// A stream without batches whose `schema()` panics.
    struct SchemaPanics;

    impl futures::Stream for SchemaPanics {
        type Item = Result<RecordBatch>;

        fn poll_next(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(None)
        }
    }

    impl datafusion::execution::RecordBatchStream for SchemaPanics {
        fn schema(&self) -> SchemaRef {
            panic!("boom in schema")
        }
    }

    impl Drop for NumbersTable {
        fn drop(&mut self) {
            if self.panic_in == Some("drop") && !std::thread::panicking() {
                panic!("boom in drop");
            }
        }
    }

    fn label() -> Arc<ObjectLabel> {
        ObjectLabel::new(&BundleTag::new("tests", None), "table function", "numbers")
    }

    /// A session with `numbers` registered natively, or across the boundary.
    fn session(source: Numbers, across: bool) -> SessionContext {
        let source: Arc<dyn TableSource> = Arc::new(source);
        let source: Arc<dyn TableSource> = if across {
            Arc::new(ForeignTableSource(FFI_TableSource::new(
                source,
                label(),
                None,
            )))
        } else {
            source
        };
        let ctx = SessionContext::new();
        ctx.register_udtf(
            "numbers",
            Arc::new(SourceTableFunction::new("numbers", source)),
        );
        ctx
    }

    async fn query(ctx: &SessionContext, sql: &str) -> Result<String> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(pretty_format_batches(&batches)?.to_string())
    }

    /// The error of `SELECT * FROM numbers(3)` over `source`, natively or `across`.
    async fn error_of(source: Numbers, across: bool) -> String {
        let ctx = session(source, across);
        match query(&ctx, "SELECT * FROM numbers(3)").await {
            Ok(rows) => panic!("no error, rows:\n{rows}"),
            Err(e) => e.to_string(),
        }
    }

    #[tokio::test]
    async fn a_source_answers_the_same_across_as_natively() {
        let cases = [
            (
                "SELECT * FROM numbers(4, 'x') ORDER BY i",
                "+---+-------+\n| i | label |\n+---+-------+\n| 0 |       |\n| 1 | x1    |\n\
                 | 2 | x2    |\n| 3 |       |\n+---+-------+",
            ),
            (
                "SELECT label FROM numbers(2 + 3) WHERE label IS NOT NULL ORDER BY label",
                "+-------+\n| label |\n+-------+\n| n1    |\n| n2    |\n| n4    |\n+-------+",
            ),
            (
                "SELECT count(*) AS c, sum(i) AS s FROM numbers(10000)",
                "+-------+----------+\n| c     | s        |\n+-------+----------+\n\
                 | 10000 | 49995000 |\n+-------+----------+",
            ),
            (
                "SELECT count(*) AS c FROM numbers(0)",
                "+---+\n| c |\n+---+\n| 0 |\n+---+",
            ),
        ];
        for across in [false, true] {
            let ctx = session(Numbers::default(), across);
            for (sql, expected) in cases {
                let got = query(&ctx, sql).await.unwrap();
                assert_eq!(got, expected, "{sql} (across: {across})");
            }
        }
    }

    #[tokio::test]
    async fn the_scan_request_crosses_whole() {
        for across in [false, true] {
            let source = Numbers::default();
            let requests = Arc::clone(&source.requests);
            let ctx = session(source, across);
            let config = ctx.copied_config();
            let got = query(&ctx, "SELECT label FROM numbers(100) LIMIT 3")
                .await
                .unwrap();
            assert_eq!(got.lines().count(), 7, "{got}");
            let requests = requests.lock().unwrap().clone();
            assert_eq!(
                requests,
                [ScanRequest {
                    projection: Some(vec![1]),
                    limit: Some(3),
                    batch_size: config.batch_size(),
                    target_partitions: config.target_partitions(),
                }],
                "across: {across}"
            );
        }
    }

    /// A host other than ours may send a zero batch size or partition count; the bundle reads
    /// them as 1, as `SourceExec` does natively, so no source divides by zero or plans nothing.
    #[test]
    fn a_zero_batch_size_or_partition_count_reads_as_one() {
        let source = Numbers::default();
        let requests = Arc::clone(&source.requests);
        let table = source.call(&[ScalarValue::Int64(Some(3))]).unwrap();
        let table = ForeignSourceTable::try_new(FFI_SourceTable::new(table, label(), None));
        let request = ScanRequest {
            projection: None,
            limit: None,
            batch_size: 0,
            target_partitions: 0,
        };
        table.unwrap().scan(&request).unwrap();
        let seen = requests.lock().unwrap().clone();
        assert_eq!(
            seen,
            [ScanRequest {
                batch_size: 1,
                target_partitions: 1,
                ..request
            }]
        );
    }

    #[test]
    fn a_schema_the_host_cannot_read_is_an_error_that_says_so() {
        /// An Int32, where a table's schema is a struct of columns.
        unsafe extern "C" fn not_a_struct(_: &FFI_SourceTable) -> FFI_Result<WrappedSchema> {
            FFI_Result::Ok(WrappedSchema(
                FFI_ArrowSchema::try_new("i", vec![], None).unwrap(),
            ))
        }
        let table = Numbers::default()
            .call(&[ScalarValue::Int64(Some(3))])
            .unwrap();
        let mut ffi = FFI_SourceTable::new(table, label(), None);
        ffi.schema = not_a_struct;
        let e = ForeignSourceTable::try_new(ffi).unwrap_err().to_string();
        assert!(
            e.contains("has a schema this host cannot read") && e.contains("rebuild it"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn errors_cross_with_their_message() {
        for across in [false, true] {
            let ctx = session(Numbers::default(), across);
            // The variant too: a planning error, not "FFI error: Error during planning: ...".
            let e = query(&ctx, "SELECT * FROM numbers('a')").await.unwrap_err();
            assert!(
                e.to_string().starts_with(
                    "Error during planning: numbers expects (n: Int64[, label: Utf8])"
                ),
                "{e}"
            );
            // Refused by the host before anything crosses, the same either way.
            let e = query(&ctx, "SELECT * FROM numbers(random())")
                .await
                .unwrap_err();
            assert!(
                e.to_string().contains("numbers takes constant arguments"),
                "{e}"
            );
        }
    }

    #[tokio::test]
    async fn a_panic_across_is_an_error_naming_the_function() {
        for (panic_in, message) in [
            ("call", "panicked in call: boom in call"),
            ("scan", "panicked in scan: boom in scan"),
            ("stream", "panicked in stream: boom in stream"),
        ] {
            let source = Numbers {
                panic_in: Some(panic_in),
                ..Numbers::default()
            };
            let e = error_of(source, true).await;
            assert!(
                e.contains("table function 'numbers' of plugin bundle 'tests'")
                    && e.contains(message),
                "{e}"
            );
        }
    }

    #[tokio::test]
    async fn a_stream_of_other_columns_than_asked_is_refused() {
        for across in [false, true] {
            let source = Numbers {
                ignore_projection: true,
                ..Numbers::default()
            };
            let ctx = session(source, across);
            let e = query(&ctx, "SELECT label FROM numbers(3)")
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains("returned a stream of columns"), "{e}");
            // All columns asked for: the same stream is right.
            assert!(query(&ctx, "SELECT * FROM numbers(3)").await.is_ok());
        }
    }

    #[tokio::test]
    async fn a_scan_of_no_partitions_or_too_many_is_refused() {
        for (partitions, message) in [
            (0, "planned a scan of no partitions"),
            (MAX_PARTITIONS + 1, "planned a scan of 65537 partitions"),
        ] {
            for across in [false, true] {
                let source = Numbers {
                    partitions: Some(partitions),
                    ..Numbers::default()
                };
                let e = error_of(source, across).await;
                assert!(e.contains(message), "{e} (across: {across})");
            }
        }
    }

    /// Both would unwind out of an `extern "C"` function and abort the test process.
    #[tokio::test]
    async fn a_panic_in_a_streams_schema_or_a_tables_drop_stays_in_the_bundle() {
        let source = Numbers {
            panic_in: Some("schema"),
            ..Numbers::default()
        };
        let e = error_of(source, true).await;
        assert!(e.contains("returned a stream of columns"), "{e}");

        let source = Numbers {
            panic_in: Some("drop"),
            ..Numbers::default()
        };
        let ctx = session(source, true);
        let got = query(&ctx, "SELECT count(*) AS c FROM numbers(3)")
            .await
            .unwrap();
        assert_eq!(got, "+---+\n| c |\n+---+\n| 3 |\n+---+");
    }
}

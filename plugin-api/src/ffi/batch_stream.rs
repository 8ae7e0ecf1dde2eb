//! `FFI_BatchStream`: a bundle plan's output stream, leaner than datafusion-ffi's (plugin ABI
//! 1.3).
//!
//! datafusion-ffi's `FFI_RecordBatchStream` exports the schema twice with every batch (once as
//! `WrappedSchema`, once from `to_ffi`, discarded) and the consumer imports it twice (to decode
//! the array, then as the batch's schema) and re-validates the batch against it. A stream's
//! schema never changes, so here it crosses once, when the stream is made: per batch only the
//! columns cross, and the consumer imports them with the types it already knows. On `SELECT *
//! FROM time_buckets(...)` (8192-row batches of two cheap columns) that was about 4 µs of the
//! bundle's extra 6 µs per batch.
//!
//! How a batch's columns cross is the stream's type parameter ([`StreamBatch`]), as a scalar
//! kernel's values are: ABI 1.3 sends them as one struct array through the Arrow C data
//! interface ([`FFI_ArrowArray`]); ABI 1.7 sends each fixed-width column as its buffers
//! ([`FFI_BatchBuffers`], see [`super::buffers`]), through the runner's `execute_buffers`. The
//! struct has the same layout either way.

use std::ffi::c_void;
use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_ffi::{ContextExt, FfiContext, FfiPoll};
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, StructArray};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::ffi::{FFI_ArrowArray, from_ffi_and_data_type};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use datafusion_ffi::arrow_wrappers::WrappedSchema;
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use futures::{Stream, TryStreamExt};
use stabby::vec::Vec as SVec;
use tokio::runtime::Handle;

use super::buffers::{FFI_ArrayBuffers, import_columns};

/// How a batch's columns cross in a stream. The schema crossed once, when the stream was made.
pub trait StreamBatch: Debug + Sized + 'static {
    /// The plugin ABI minor that introduced this way of crossing.
    const ABI_MINOR: u16;

    /// Exports `batch`'s columns.
    fn export(batch: RecordBatch) -> Self;

    /// Imports a batch of `schema`.
    ///
    /// # Safety
    /// `self` was exported by [`StreamBatch::export`] from a batch of `schema`.
    unsafe fn import(self, schema: &SchemaRef) -> Result<RecordBatch>;
}

/// A batch of `schema` with `columns`; `rows` matters when there are none (`COUNT(*)`).
fn batch_of(schema: &SchemaRef, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        SchemaRef::clone(schema),
        columns,
        &options,
    )?)
}

/// ABI 1.3: the columns as one struct array through the Arrow C data interface.
impl StreamBatch for FFI_ArrowArray {
    const ABI_MINOR: u16 = 3;

    fn export(batch: RecordBatch) -> Self {
        FFI_ArrowArray::new(&StructArray::from(batch).to_data())
    }

    unsafe fn import(self, schema: &SchemaRef) -> Result<RecordBatch> {
        let batch_type = DataType::Struct(schema.fields().clone());
        // SAFETY: the producer exports every batch as a struct array of the schema's columns.
        let data = unsafe { from_ffi_and_data_type(self, batch_type) }?;
        let rows = data.len();
        let (_, columns, _) = StructArray::from(data).into_parts();
        batch_of(schema, columns, rows)
    }
}

/// A batch crossing in an ABI 1.7 stream: each column by [`FFI_ArrayBuffers`], so a
/// fixed-width column crosses as its buffers, any other through the C data interface.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_BatchBuffers {
    /// Number of rows.
    pub rows: usize,
    /// The columns, in the schema's order.
    pub columns: SVec<FFI_ArrayBuffers>,
}

impl StreamBatch for FFI_BatchBuffers {
    const ABI_MINOR: u16 = 7;

    fn export(batch: RecordBatch) -> Self {
        let (_, columns, rows) = batch.into_parts();
        Self {
            rows,
            columns: columns
                .into_iter()
                .map(FFI_ArrayBuffers::from_owned)
                .collect(),
        }
    }

    unsafe fn import(self, schema: &SchemaRef) -> Result<RecordBatch> {
        let fields = schema.fields();
        let rows = self.rows;
        // SAFETY: the producer exported each column with its field's type; the import checks
        // the layout it was sent against that type.
        let columns = unsafe { import_columns(self.columns, fields) }?;
        for (column, field) in columns.iter().zip(fields.iter()) {
            if column.len() != rows {
                return Err(DataFusionError::Execution(format!(
                    "column {} crossed the plugin boundary with {} rows in a batch of {rows} (a \
                     bug in the bundle or in its plugin-api)",
                    field.name(),
                    column.len()
                )));
            }
            if !field.is_nullable() && column.null_count() > 0 {
                return Err(DataFusionError::Execution(format!(
                    "column {} is declared non-nullable but crossed the plugin boundary with \
                     nulls (a bug in the bundle)",
                    field.name()
                )));
            }
        }
        // SAFETY: one column per field, each of `rows` rows (checked above) and of its field's
        // type: `import_columns` builds every array with the type it is given. `try_new` would
        // compare the types again, for every column of every batch.
        Ok(unsafe { RecordBatch::new_unchecked(SchemaRef::clone(schema), columns, rows) })
    }
}

/// A stable struct for a stream of record batches whose schema crosses once; `B` is how each
/// batch's columns cross.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_BatchStream<B = FFI_ArrowArray> {
    /// The next batch's columns (no schema), `None` at the end.
    pub poll_next: unsafe extern "C" fn(
        stream: &Self,
        cx: &mut FfiContext,
    ) -> FfiPoll<FFI_Option<FFI_Result<B>>>,
    /// The schema of every batch. The consumer asks once.
    pub schema: unsafe extern "C" fn(stream: &Self) -> WrappedSchema,
    pub release: unsafe extern "C" fn(stream: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
}

unsafe impl<B> Send for FFI_BatchStream<B> {}

struct BatchStreamPrivateData {
    stream: SendableRecordBatchStream,
    /// The bundle runtime, entered for every poll (the stream may do IO).
    runtime: Option<Handle>,
}

impl<B: StreamBatch> FFI_BatchStream<B> {
    /// Exports `stream`; each poll runs inside `runtime` when given.
    pub fn new(stream: SendableRecordBatchStream, runtime: Option<Handle>) -> Self {
        let data = Box::new(BatchStreamPrivateData { stream, runtime });
        Self {
            poll_next: poll_next_fn_wrapper::<B>,
            schema: schema_fn_wrapper::<B>,
            release: release_fn_wrapper::<B>,
            private_data: Box::into_raw(data) as *mut c_void,
            library_marker_id: super::library_marker_id,
        }
    }
}

unsafe extern "C" fn poll_next_fn_wrapper<B: StreamBatch>(
    stream: &FFI_BatchStream<B>,
    cx: &mut FfiContext,
) -> FfiPoll<FFI_Option<FFI_Result<B>>> {
    // SAFETY: the box `new` made; the consumer polls through a pinned `&mut`, so no other
    // call touches it meanwhile (datafusion-ffi's stream relies on the same).
    let data = unsafe { &mut *(stream.private_data as *mut BatchStreamPrivateData) };
    let _entered = data.runtime.as_ref().map(Handle::enter);
    let polled = catch_unwind(AssertUnwindSafe(|| {
        cx.with_context(|cx| data.stream.try_poll_next_unpin(cx))
    }));
    match polled {
        Ok(Poll::Ready(Some(Ok(batch)))) => {
            FfiPoll::Ready(FFI_Option::Some(FFI_Result::Ok(B::export(batch))))
        }
        Ok(Poll::Ready(Some(Err(e)))) => FfiPoll::Ready(FFI_Option::Some(FFI_Result::Err(
            e.to_string().as_str().into(),
        ))),
        Ok(Poll::Ready(None)) => FfiPoll::Ready(FFI_Option::None),
        Ok(Poll::Pending) => FfiPoll::Pending,
        Err(payload) => FfiPoll::Ready(FFI_Option::Some(FFI_Result::Err(
            format!(
                "a bundle's stream panicked: {}",
                crate::toolkit::panic::panic_message(payload.as_ref())
            )
            .as_str()
            .into(),
        ))),
    }
}

unsafe extern "C" fn schema_fn_wrapper<B>(stream: &FFI_BatchStream<B>) -> WrappedSchema {
    // SAFETY: the box `new` made; only this image reads it.
    let data = unsafe { &*(stream.private_data as *const BatchStreamPrivateData) };
    WrappedSchema::from(data.stream.schema())
}

unsafe extern "C" fn release_fn_wrapper<B>(stream: &mut FFI_BatchStream<B>) {
    if stream.private_data.is_null() {
        return;
    }
    // SAFETY: the box `new` made, released once (the pointer is cleared).
    drop(unsafe { Box::from_raw(stream.private_data as *mut BatchStreamPrivateData) });
    stream.private_data = std::ptr::null_mut();
}

impl<B> Drop for FFI_BatchStream<B> {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct.
        unsafe { (self.release)(self) }
    }
}

/// The consumer side of an [`FFI_BatchStream`]: a [`RecordBatchStream`] whose batches carry the
/// schema it imported once.
#[derive(Debug)]
pub struct ForeignBatchStream<B = FFI_ArrowArray> {
    stream: FFI_BatchStream<B>,
    schema: SchemaRef,
}

impl<B: StreamBatch> ForeignBatchStream<B> {
    /// Wraps `stream`, importing its schema.
    pub fn try_new(stream: FFI_BatchStream<B>) -> Result<Self> {
        // SAFETY: `schema` belongs to the image that made the struct.
        let schema = unsafe { (stream.schema)(&stream) };
        let schema = SchemaRef::new(Schema::try_from(&schema.0)?);
        Ok(Self { stream, schema })
    }
}

impl<B: StreamBatch> Stream for ForeignBatchStream<B> {
    type Item = Result<RecordBatch>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // SAFETY: `poll_next` belongs to the image that made the struct.
        let polled =
            unsafe { cx.with_ffi_context(|ffi_cx| (this.stream.poll_next)(&this.stream, ffi_cx)) };
        match polled {
            FfiPoll::Ready(FFI_Option::Some(FFI_Result::Ok(batch))) => {
                // SAFETY: the producer exports every batch of the schema it sent.
                Poll::Ready(Some(unsafe { batch.import(&this.schema) }))
            }
            FfiPoll::Ready(FFI_Option::Some(FFI_Result::Err(e))) => {
                Poll::Ready(Some(Err(DataFusionError::Ffi(e.to_string()))))
            }
            FfiPoll::Ready(FFI_Option::None) => Poll::Ready(None),
            FfiPoll::Pending => Poll::Pending,
            FfiPoll::Panicked => Poll::Ready(Some(Err(DataFusionError::Ffi(
                "a bundle's stream panicked".into(),
            )))),
        }
    }
}

impl<B: StreamBatch> RecordBatchStream for ForeignBatchStream<B> {
    fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use futures::StreamExt;

    use super::*;

    fn schema() -> SchemaRef {
        let meta = [("unit".to_owned(), "seconds".to_owned())].into();
        Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Int64, false).with_metadata(meta),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    fn batch(from: i64) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(vec![from, from + 1])),
                Arc::new(StringArray::from(vec![Some("a"), None])),
            ],
        )
        .expect("a valid batch")
    }

    fn export<B: StreamBatch>(
        schema: SchemaRef,
        items: Vec<Result<RecordBatch>>,
    ) -> FFI_BatchStream<B> {
        let stream = RecordBatchStreamAdapter::new(schema, futures::stream::iter(items));
        FFI_BatchStream::new(Box::pin(stream), None)
    }

    async fn round_trip<B: StreamBatch>(batches: Vec<RecordBatch>) {
        let schema = batches[0].schema();
        let items = batches.iter().cloned().map(Ok).collect();
        let mut stream = ForeignBatchStream::try_new(export::<B>(Arc::clone(&schema), items))
            .expect("the schema imports");
        assert_eq!(stream.schema(), schema);
        let mut got = Vec::new();
        while let Some(b) = stream.next().await {
            got.push(b.expect("a batch"));
        }
        assert_eq!(got, batches, "as ABI 1.{}", B::ABI_MINOR);
        for b in &got {
            // The field metadata is the stream's, not rebuilt from the array.
            assert_eq!(b.schema(), schema);
        }
    }

    /// Both ways of crossing, the columns whole, sliced off a byte boundary of their bitmaps,
    /// and no columns at all (the rows of a `COUNT(*)`).
    #[tokio::test]
    async fn batches_keep_their_schema_and_values() {
        let nullable = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let values: Vec<Option<i64>> = (0..40).map(|i| (i % 3 != 0).then_some(i)).collect();
        let names: Vec<Option<String>> = (0..40)
            .map(|i| (i % 4 != 0).then(|| i.to_string()))
            .collect();
        let whole = RecordBatch::try_new(
            nullable,
            vec![
                Arc::new(Int64Array::from(values)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .expect("a valid batch");
        let empty = Arc::new(Schema::empty());
        let no_columns = |rows| {
            let options = RecordBatchOptions::new().with_row_count(Some(rows));
            RecordBatch::try_new_with_options(Arc::clone(&empty), vec![], &options)
                .expect("a batch of rows only")
        };
        let cases = [
            vec![batch(0), batch(10)],
            vec![whole.slice(3, 30), whole.slice(0, 0), whole],
            vec![no_columns(8192), no_columns(1)],
        ];
        for batches in cases {
            round_trip::<FFI_ArrowArray>(batches.clone()).await;
            round_trip::<FFI_BatchBuffers>(batches).await;
        }
    }

    #[test]
    fn fixed_width_columns_cross_by_their_buffers() {
        let exported = FFI_BatchBuffers::export(batch(0));
        assert_eq!(exported.rows, 2);
        let widths: Vec<usize> = exported.columns.iter().map(|c| c.byte_width).collect();
        assert_eq!(widths, [8, 0]);
    }

    #[test]
    fn a_batch_of_other_columns_than_the_schemas_is_an_error() {
        let one_column = Arc::new(Schema::new(vec![Field::new("ts", DataType::Int64, false)]));
        let wrong_type = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Int64, false),
            Field::new("name", DataType::Int32, true),
        ]));
        // `batch` has a null name.
        let no_nulls = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let cases = [
            (
                one_column,
                0,
                "a batch of 2 columns crossed the plugin boundary in a stream of 1",
            ),
            (
                wrong_type,
                0,
                "type Int32 crossed the plugin boundary as a C data interface array",
            ),
            (
                no_nulls,
                0,
                "column name is declared non-nullable but crossed the plugin boundary with nulls",
            ),
            (
                schema(),
                1,
                "column ts crossed the plugin boundary with 2 rows in a batch of 3",
            ),
        ];
        for (schema, more_rows, message) in cases {
            let mut exported = FFI_BatchBuffers::export(batch(0));
            exported.rows += more_rows;
            // SAFETY: the consumer checks what it was sent against the schema before reading.
            let e = unsafe { exported.import(&schema) }
                .expect_err("a mismatch")
                .to_string();
            assert!(e.contains(message), "{e}");
        }
    }

    async fn an_error_crosses_with_its_message<B: StreamBatch>() {
        let failing = Err(DataFusionError::Execution("the file is gone".into()));
        let mut stream =
            ForeignBatchStream::try_new(export::<B>(schema(), vec![Ok(batch(0)), failing]))
                .expect("imports");
        assert!(stream.next().await.expect("one batch").is_ok());
        let e = stream
            .next()
            .await
            .expect("an item")
            .expect_err("the error");
        assert!(e.to_string().contains("the file is gone"), "{e}");
    }

    #[tokio::test]
    async fn an_error_crosses_with_its_message_either_way() {
        an_error_crosses_with_its_message::<FFI_ArrowArray>().await;
        an_error_crosses_with_its_message::<FFI_BatchBuffers>().await;
    }

    async fn a_panicking_stream_is_an_error<B: StreamBatch>() {
        let stream = RecordBatchStreamAdapter::new(
            schema(),
            futures::stream::poll_fn(|_| -> Poll<Option<Result<RecordBatch>>> {
                panic!("boom in poll")
            }),
        );
        let stream = FFI_BatchStream::<B>::new(Box::pin(stream), None);
        let mut stream = ForeignBatchStream::try_new(stream).expect("imports");
        let e = stream
            .next()
            .await
            .expect("an item")
            .expect_err("the panic");
        assert!(e.to_string().contains("boom in poll"), "{e}");
    }

    #[tokio::test]
    async fn a_panicking_stream_is_an_error_either_way() {
        a_panicking_stream_is_an_error::<FFI_ArrowArray>().await;
        a_panicking_stream_is_an_error::<FFI_BatchBuffers>().await;
    }
}

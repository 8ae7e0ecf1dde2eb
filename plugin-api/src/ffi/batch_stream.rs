//! `FFI_BatchStream`: a bundle plan's output stream, leaner than datafusion-ffi's (plugin ABI
//! 1.3).
//!
//! datafusion-ffi's `FFI_RecordBatchStream` exports the schema twice with every batch (once as
//! `WrappedSchema`, once from `to_ffi`, discarded) and the consumer imports it twice (to decode
//! the array, then as the batch's schema) and re-validates the batch against it. A stream's
//! schema never changes, so here it crosses once, when the stream is made: per batch only the
//! columns cross, as one struct array through the Arrow C data interface, and the consumer
//! imports them with the type it already knows. On `SELECT * FROM time_buckets(...)` (8192-row
//! batches of two cheap columns) that was about 4 µs of the bundle's extra 6 µs per batch.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_ffi::{ContextExt, FfiContext, FfiPoll};
use datafusion::arrow::array::{Array, RecordBatch, RecordBatchOptions, StructArray};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::ffi::{FFI_ArrowArray, from_ffi_and_data_type};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use datafusion_ffi::arrow_wrappers::WrappedSchema;
use datafusion_ffi::util::{FFI_Option, FFI_Result};
use futures::{Stream, TryStreamExt};
use tokio::runtime::Handle;

/// A stable struct for a stream of record batches whose schema crosses once.
#[repr(C)]
#[derive(Debug)]
pub struct FFI_BatchStream {
    /// The next batch as a struct array of the stream's columns (no schema), `None` at the end.
    pub poll_next: unsafe extern "C" fn(
        stream: &Self,
        cx: &mut FfiContext,
    ) -> FfiPoll<FFI_Option<FFI_Result<FFI_ArrowArray>>>,
    /// The schema of every batch. The consumer asks once.
    pub schema: unsafe extern "C" fn(stream: &Self) -> WrappedSchema,
    pub release: unsafe extern "C" fn(stream: &mut Self),
    /// Internal data. Only the producer may access it.
    pub private_data: *mut c_void,
    /// Identifies the image that made this struct.
    pub library_marker_id: extern "C" fn() -> usize,
}

unsafe impl Send for FFI_BatchStream {}

struct BatchStreamPrivateData {
    stream: SendableRecordBatchStream,
    /// The bundle runtime, entered for every poll (the stream may do IO).
    runtime: Option<Handle>,
}

impl FFI_BatchStream {
    /// Exports `stream`; each poll runs inside `runtime` when given.
    pub fn new(stream: SendableRecordBatchStream, runtime: Option<Handle>) -> Self {
        let data = Box::new(BatchStreamPrivateData { stream, runtime });
        Self {
            poll_next: poll_next_fn_wrapper,
            schema: schema_fn_wrapper,
            release: release_fn_wrapper,
            private_data: Box::into_raw(data) as *mut c_void,
            library_marker_id: super::library_marker_id,
        }
    }
}

fn export_batch(batch: RecordBatch) -> FFI_ArrowArray {
    FFI_ArrowArray::new(&StructArray::from(batch).to_data())
}

unsafe extern "C" fn poll_next_fn_wrapper(
    stream: &FFI_BatchStream,
    cx: &mut FfiContext,
) -> FfiPoll<FFI_Option<FFI_Result<FFI_ArrowArray>>> {
    // SAFETY: the box `new` made; the consumer polls through a pinned `&mut`, so no other
    // call touches it meanwhile (datafusion-ffi's stream relies on the same).
    let data = unsafe { &mut *(stream.private_data as *mut BatchStreamPrivateData) };
    let _entered = data.runtime.as_ref().map(Handle::enter);
    let polled = catch_unwind(AssertUnwindSafe(|| {
        cx.with_context(|cx| data.stream.try_poll_next_unpin(cx))
    }));
    match polled {
        Ok(Poll::Ready(Some(Ok(batch)))) => {
            FfiPoll::Ready(FFI_Option::Some(FFI_Result::Ok(export_batch(batch))))
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

unsafe extern "C" fn schema_fn_wrapper(stream: &FFI_BatchStream) -> WrappedSchema {
    // SAFETY: the box `new` made; only this image reads it.
    let data = unsafe { &*(stream.private_data as *const BatchStreamPrivateData) };
    WrappedSchema::from(data.stream.schema())
}

unsafe extern "C" fn release_fn_wrapper(stream: &mut FFI_BatchStream) {
    if stream.private_data.is_null() {
        return;
    }
    // SAFETY: the box `new` made, released once (the pointer is cleared).
    drop(unsafe { Box::from_raw(stream.private_data as *mut BatchStreamPrivateData) });
    stream.private_data = std::ptr::null_mut();
}

impl Drop for FFI_BatchStream {
    fn drop(&mut self) {
        // SAFETY: `release` belongs to the image that made the struct.
        unsafe { (self.release)(self) }
    }
}

/// The consumer side of an [`FFI_BatchStream`]: a [`RecordBatchStream`] whose batches carry the
/// schema it imported once.
#[derive(Debug)]
pub struct ForeignBatchStream {
    stream: FFI_BatchStream,
    schema: SchemaRef,
    /// `Struct(schema.fields)`: the type every batch crosses as.
    batch_type: DataType,
}

impl ForeignBatchStream {
    /// Wraps `stream`, importing its schema.
    pub fn try_new(stream: FFI_BatchStream) -> Result<Self> {
        // SAFETY: `schema` belongs to the image that made the struct.
        let schema = unsafe { (stream.schema)(&stream) };
        let schema = SchemaRef::new(Schema::try_from(&schema.0)?);
        let batch_type = DataType::Struct(schema.fields().clone());
        Ok(Self {
            stream,
            schema,
            batch_type,
        })
    }

    fn import(&self, array: FFI_ArrowArray) -> Result<RecordBatch> {
        // SAFETY: the producer exports every batch as a struct array of the schema's columns.
        let data = unsafe { from_ffi_and_data_type(array, self.batch_type.clone()) }?;
        let rows = data.len();
        let (_, columns, _) = StructArray::from(data).into_parts();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            SchemaRef::clone(&self.schema),
            columns,
            &options,
        )?)
    }
}

impl Stream for ForeignBatchStream {
    type Item = Result<RecordBatch>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // SAFETY: `poll_next` belongs to the image that made the struct.
        let polled =
            unsafe { cx.with_ffi_context(|ffi_cx| (this.stream.poll_next)(&this.stream, ffi_cx)) };
        match polled {
            FfiPoll::Ready(FFI_Option::Some(FFI_Result::Ok(array))) => {
                Poll::Ready(Some(this.import(array)))
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

impl RecordBatchStream for ForeignBatchStream {
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

    fn export(items: Vec<Result<RecordBatch>>) -> FFI_BatchStream {
        let stream = RecordBatchStreamAdapter::new(schema(), futures::stream::iter(items));
        FFI_BatchStream::new(Box::pin(stream), None)
    }

    #[tokio::test]
    async fn batches_keep_their_schema_and_values() {
        let mut stream = ForeignBatchStream::try_new(export(vec![Ok(batch(0)), Ok(batch(10))]))
            .expect("the schema imports");
        assert_eq!(stream.schema(), schema());
        let mut got = Vec::new();
        while let Some(b) = stream.next().await {
            got.push(b.expect("a batch"));
        }
        assert_eq!(got, vec![batch(0), batch(10)]);
        // The field metadata is the stream's, not rebuilt from the array.
        assert_eq!(got[0].schema(), schema());
    }

    #[tokio::test]
    async fn an_error_crosses_with_its_message() {
        let failing = Err(DataFusionError::Execution("the file is gone".into()));
        let mut stream =
            ForeignBatchStream::try_new(export(vec![Ok(batch(0)), failing])).expect("imports");
        assert!(stream.next().await.expect("one batch").is_ok());
        let e = stream
            .next()
            .await
            .expect("an item")
            .expect_err("the error");
        assert!(e.to_string().contains("the file is gone"), "{e}");
    }

    #[tokio::test]
    async fn a_panicking_stream_is_an_error() {
        let stream = RecordBatchStreamAdapter::new(
            schema(),
            futures::stream::poll_fn(|_| -> Poll<Option<Result<RecordBatch>>> {
                panic!("boom in poll")
            }),
        );
        let mut stream = ForeignBatchStream::try_new(FFI_BatchStream::new(Box::pin(stream), None))
            .expect("imports");
        let e = stream
            .next()
            .await
            .expect("an item")
            .expect_err("the panic");
        assert!(e.to_string().contains("boom in poll"), "{e}");
    }
}
